// The only translation unit that includes Boost.Beast and Boost.Asio.
//
// Shape: one io_context run by N threads. The acceptor lives on its own
// strand; each accepted connection gets a Session on a strand of its own
// (with one thread, the thread is the strand), so a Session's state is only
// touched by one thread at a time and needs no lock. A Session reads one
// request (header, then body, each under its own deadline), hands it to the
// Router with an HttpResponder, and waits: the responder, called on whatever
// thread the handler answers from, posts the answer back onto the Session's
// strand, which writes it and reads the next request. Requests on one
// connection are therefore answered strictly in order, and a request waiting
// for an asynchronous answer holds no thread.
//
// The Server keeps a table of live Sessions (guarded by mu_) for the
// connection limit and for Shutdown, which must reach every connection, and
// counts answers not yet delivered, so Shutdown never destroys the event
// loop while a responder could still post to it.
#include "serving/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "core/http_error.h"
#include "core/logging.h"
#include "core/status.h"
#include "serving/io_round.h"

namespace slipway {
namespace http_server_internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Request line plus headers; generous for tokens and long OIP paths, small
// enough that a client cannot make the server buffer megabytes of headers.
constexpr uint32_t kMaxHeaderBytes = 64 * 1024;
// How much one read between requests asks the socket for.
constexpr size_t kReadChunk = 16 * 1024;
// After answering on a connection that must close, the server stops sending
// and reads (and drops) what the client still sends for this long before it
// closes. Closing with unread bytes makes the kernel send a reset, which can
// destroy the answer (a 413 or 503) before the client has read it.
constexpr auto kLingerTime = std::chrono::seconds(2);
// Connections over max_connections are answered 503; beyond this many such
// answers in progress, further connections are closed without one.
constexpr size_t kMaxRejectedInFlight = 64;
// Pause before accepting again after accept() failed (typically out of file
// descriptors), so the failure does not spin a thread.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(50);

std::string ToStd(beast::string_view s) {
  return std::string(s.data(), s.size());
}

char AsciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes; with `plus_is_space` (query strings, form encoding)
// '+' becomes ' '. `what` names the decoded part in the error.
absl::StatusOr<std::string> PercentDecode(std::string_view in,
                                          bool plus_is_space,
                                          const std::string& what) {
  bool plain = true;  // nothing to decode, the usual case
  for (char c : in) {
    if (c == '%' || (c == '+' && plus_is_space)) {
      plain = false;
      break;
    }
  }
  if (plain) return std::string(in);
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (c == '%') {
      int high = i + 2 < in.size() ? HexValue(in[i + 1]) : -1;
      int low = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
      if (high < 0 || low < 0) {
        return absl::InvalidArgumentError(
            "invalid percent-escape in " + what + " '" + std::string(in) +
            "' at offset " + std::to_string(i) +
            "; encode '%' as %25 and use two hex digits after every '%'");
      }
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Splits an origin-form target ("/path?query") into the request's decoded
// path and query parameters. A repeated query parameter keeps its last value.
absl::Status ParseTarget(std::string_view target, HttpRequest* request) {
  if (target.empty() || target.front() != '/') {
    return absl::InvalidArgumentError(
        "request target '" + std::string(target) +
        "' is not a path; send the path starting with '/' (origin form)");
  }
  size_t question = target.find('?');
  std::string_view path = target.substr(0, question);
  ASSIGN_OR_RETURN(request->path, PercentDecode(path, false, "path"));
  if (question == std::string_view::npos) return absl::OkStatus();
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view()
                                          : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    ASSIGN_OR_RETURN(std::string name, PercentDecode(key, true, "query"));
    ASSIGN_OR_RETURN(request->query[name], PercentDecode(value, true, "query"));
  }
  return absl::OkStatus();
}

// An error answer with a status HttpStatusCode cannot express (413, 431,
// 500 from the server itself, 503 at the connection limit).
HttpResponse ErrorResponse(int http_status, const std::string& message) {
  return HttpResponse::Json(http_status,
                            ErrorBody(absl::UnknownError(message)));
}

bool HasLineBreak(std::string_view s) {
  // A plain loop: find_first_of calls memchr once per character.
  for (char c : s) {
    if (c == '\r' || c == '\n') return true;
  }
  return false;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != lower[i]) {
      return false;
    }
  }
  return true;
}

// Headers the server owns: framing and identity come from the server, the
// content type from HttpResponse::content_type.
bool IsServerOwnedHeader(std::string_view name) {
  return EqualsIgnoreCase(name, "content-length") ||
         EqualsIgnoreCase(name, "transfer-encoding") ||
         EqualsIgnoreCase(name, "connection") ||
         EqualsIgnoreCase(name, "server") ||
         EqualsIgnoreCase(name, "content-type");
}

// Appends "name: value\r\n", the value without leading or trailing spaces
// and tabs (as Beast's fields store it).
void AppendField(std::string_view name, std::string_view value,
                 std::string* head) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  head->append(name).append(": ", 2).append(value).append("\r\n", 2);
}

// Writes the status line and header block of `response` into `*head`
// (cleared first), the bytes Boost.Beast's serializer writes for the same
// message: "HTTP/1.1 200 OK", Server, the handler's extra headers in order,
// Connection when `keep_alive` differs from the version's default, then
// Content-Type and Content-Length (neither for 204 and 304, which carry no
// body). Serializing here rather than through a beast::http::response saves
// a node allocation per header and Beast's buffer-sequence machinery on
// every answer.
void WriteHead(const HttpResponse& response, unsigned version, bool keep_alive,
               std::string* head) {
  using namespace std::string_view_literals;
  const unsigned code = static_cast<unsigned>(response.status);
  char start[] = "HTTP/x.x xxx ";
  start[5] = static_cast<char>('0' + version / 10);
  start[7] = static_cast<char>('0' + version % 10);
  start[9] = static_cast<char>('0' + code / 100);
  start[10] = static_cast<char>('0' + code / 10 % 10);
  start[11] = static_cast<char>('0' + code % 10);
  const beast::string_view reason =
      http::obsolete_reason(static_cast<http::status>(code));
  head->assign(start, sizeof(start) - 1)
      .append(reason.data(), reason.size())
      .append("\r\nServer: slipway\r\n"sv);
  for (const auto& [name, value] : response.headers) {
    if (name.empty() || IsServerOwnedHeader(name)) continue;
    if (HasLineBreak(name) || HasLineBreak(value)) {
      // Writing it would let the value inject headers or a second response.
      LogWarning("http.header_dropped",
                 {{"header", name}, {"reason", "line break in name or value"}});
      continue;
    }
    AppendField(name, value, head);
  }
  if (version < 11 && keep_alive) {
    head->append("Connection: keep-alive\r\n"sv);
  } else if (version >= 11 && !keep_alive) {
    head->append("Connection: close\r\n"sv);
  }
  // RFC 9110: 204 and 304 carry no content and no Content-Length.
  if (response.status != 204 && response.status != 304) {
    AppendField("Content-Type",
                response.content_type.empty()
                    ? std::string_view("application/octet-stream")
                    : std::string_view(response.content_type),
                head);
    char length[24];
    const char* end =
        std::to_chars(length, length + sizeof(length), response.body.size())
            .ptr;
    head->append("Content-Length: "sv)
        .append(length, static_cast<size_t>(end - length))
        .append("\r\n"sv);
  }
  head->append("\r\n"sv);
}

// Parse failures the client caused by sending something that is not HTTP,
// as opposed to the connection ending or timing out mid-request.
bool IsMalformedRequest(const beast::error_code& ec) {
  static const beast::error_category& kHttpCategory =
      http::make_error_code(http::error::bad_method).category();
  return ec.category() == kHttpCategory && ec != http::error::end_of_stream &&
         ec != http::error::partial_message && ec != http::error::short_read;
}

class Session;

class Server {
 public:
  Server(HttpServer::Options options, const Router* router)
      : options_(std::move(options)),
        router_(router),
        ioc_(ThreadCount(options_)),
        accept_strand_(asio::make_strand(ioc_)),
        acceptor_(accept_strand_),
        accept_retry_timer_(accept_strand_) {}

  absl::Status Listen();
  void StartThreads();
  int port() const { return port_; }
  void Shutdown(int drain_timeout_ms);
  void Wait();

  const HttpServer::Options& options() const { return options_; }
  const Router& router() const { return *router_; }
  bool shutting_down() const {
    return shutting_down_.load(std::memory_order_acquire);
  }
  // Called by a Session's destructor.
  void Unregister(Session* session, bool counted);
  // Bracket each request handed to the Router: AnswerPending before the
  // handler runs, AnswerDelivered once its answer has been posted to the
  // event loop. Shutdown waits for the count to reach zero before it stops
  // the loop, so a late answer never posts to a destroyed io_context.
  void AnswerPending();
  void AnswerDelivered();

 private:
  static int ThreadCount(const HttpServer::Options& options) {
    if (options.threads > 0) return options.threads;
    return std::max(1u, std::thread::hardware_concurrency());
  }

  // Runs on accept_strand_.
  void Accept();
  void OnAccept(beast::error_code ec, tcp::socket socket);

  std::vector<std::shared_ptr<Session>> LiveSessions();
  bool NoSessions() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return sessions_.empty();
  }
  bool NoPendingAnswers() const { return pending_answers_.load() == 0; }

  const HttpServer::Options options_;
  const Router* const router_;
  int port_ = 0;  // written by Listen before the threads start
  std::atomic<bool> shutting_down_{false};
  // Requests whose answer has not been posted to the event loop yet. An
  // atomic rather than a field under mu_, which every request would take
  // twice; see AnswerDelivered for how Shutdown still waits on it.
  std::atomic<int64_t> pending_answers_{0};

  absl::Mutex mu_;
  // Every connection with a Session, counted or being answered 503.
  std::unordered_set<Session*> sessions_ ABSL_GUARDED_BY(mu_);
  // Connections that count toward max_connections.
  size_t counted_connections_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_started_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_done_ ABSL_GUARDED_BY(mu_) = false;

  // Declared after mu_ and sessions_ so it is destroyed before them:
  // destroying the io_context destroys queued handlers, which may hold the
  // last reference to a Session, whose destructor unregisters under mu_.
  asio::io_context ioc_;
  asio::strand<asio::io_context::executor_type> accept_strand_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_timer_;
  // Keeps the threads running while a connection waits for an answer with
  // no I/O of its own in progress; released by Shutdown once every answer
  // has been delivered.
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work_;
  std::vector<std::thread> threads_;
};

// One connection. All members are touched only on the connection's strand
// (socket_'s executor); the public methods post there.
//
// Timeouts: one deadline per connection, moved with every phase (header,
// body, idle, write, linger) and checked by one timer. Moving the deadline
// later, which is what every request does, only stores a time; the timer is
// re-armed only when the deadline moves earlier than it is set for, or when
// it fires early and finds the deadline moved on. A deadline that passes
// closes the socket, which ends the pending operation with an error: the
// connection closes without an answer. (beast::tcp_stream did the same with
// a timer wait started and cancelled around every read and write.)
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server* server, bool counted)
      : server_(server),
        counted_(counted),
        remote_address_(PeerAddress(socket)),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()) {}
  ~Session() { server_->Unregister(this, counted_); }

  // False for a connection over max_connections, which only gets a 503.
  bool counted() const { return counted_; }

  // Reads and answers requests until the connection ends.
  void Serve() {
    asio::dispatch(socket_.get_executor(),
                   beast::bind_front_handler(&Session::ReadNextRequest,
                                             shared_from_this()));
  }
  // Answers 503 (over the connection limit) and closes.
  void Reject() {
    asio::dispatch(
        socket_.get_executor(),
        beast::bind_front_handler(&Session::SendRejection, shared_from_this()));
  }
  // Closes the connection now if it is between requests; a request in
  // progress finishes and is answered with "Connection: close".
  void OnShutdown() {
    asio::post(
        socket_.get_executor(),
        beast::bind_front_handler(&Session::CloseIfIdle, shared_from_this()));
  }
  // Closes the connection whatever it is doing (drain timeout).
  void ForceClose() {
    asio::post(socket_.get_executor(),
               beast::bind_front_handler(&Session::Close, shared_from_this()));
  }

 private:
  enum class State { kIdle, kReading, kHandling, kClosing, kClosed };

  static std::string PeerAddress(const tcp::socket& socket) {
    beast::error_code ec;
    tcp::endpoint peer = socket.remote_endpoint(ec);
    if (ec) return "";
    return peer.address().to_string() + ":" + std::to_string(peer.port());
  }

  std::chrono::milliseconds Millis(int ms) const {
    return std::chrono::milliseconds(ms);
  }

  // The connection closes if the current phase has not ended `timeout`
  // from now.
  void SetDeadline(std::chrono::steady_clock::duration timeout) {
    deadline_ = std::chrono::steady_clock::now() + timeout;
    if (!timer_waiting_ || deadline_ < timer_.expiry()) ArmTimer();
  }

  // No deadline while a handler works on the request.
  void ClearDeadline() {
    deadline_ = std::chrono::steady_clock::time_point::max();
  }

  void ArmTimer() {
    timer_waiting_ = true;
    // Replacing the expiry of a pending wait cancels it (OnTimer sees
    // operation_aborted and leaves the new wait in charge).
    timer_.expires_at(deadline_);
    // A weak reference: a pending wait does not keep a finished connection.
    timer_.async_wait([weak = weak_from_this()](const beast::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      if (auto self = weak.lock()) self->OnTimer();
    });
  }

  void OnTimer() {
    timer_waiting_ = false;
    if (state_ == State::kClosed) return;
    if (deadline_ == std::chrono::steady_clock::time_point::max()) return;
    if (std::chrono::steady_clock::now() < deadline_) {
      ArmTimer();
      return;
    }
    Close();  // the pending read or write ends with an error
  }

  void ReadNextRequest() {
    if (server_->shutting_down()) {
      Close();
      return;
    }
    parser_.emplace();
    parser_->body_limit(server_->options().max_body_bytes);
    parser_->header_limit(kMaxHeaderBytes);
    if (buffer_.size() > 0) {  // a pipelined request is already here
      SetDeadline(Millis(server_->options().header_timeout_ms));
      ParseBuffered();
      return;
    }
    // Waiting for the first byte is "idle" on a kept-alive connection; on a
    // new one it is part of the time allowed to send the header.
    state_ = State::kIdle;
    SetDeadline(Millis(first_request_ ? server_->options().header_timeout_ms
                                      : server_->options().idle_timeout_ms));
    socket_.async_read_some(
        buffer_.prepare(kReadChunk),
        beast::bind_front_handler(&Session::OnFirstBytes, shared_from_this()));
  }

  void OnFirstBytes(beast::error_code ec, size_t bytes) {
    if (ec) {  // closed by the client, idle timeout, or shutdown
      Close();
      return;
    }
    buffer_.commit(bytes);
    ParseBuffered();
  }

  // Parses what the buffer holds without another trip through the event
  // loop: a small request usually arrives whole in its first read. What is
  // still missing is read asynchronously, under its deadline.
  void ParseBuffered() {
    state_ = State::kReading;
    beast::error_code ec;
    while (!parser_->is_done() && buffer_.size() > 0) {
      const size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec) {
        OnReadError(ec);
        return;
      }
      if (used == 0) break;
    }
    if (parser_->is_done()) {
      HandleRequest();
    } else if (parser_->is_header_done()) {
      OnHeader({}, 0);
    } else {
      ReadHeader();
    }
  }

  void ReadHeader() {
    state_ = State::kReading;
    SetDeadline(Millis(server_->options().header_timeout_ms));
    http::async_read_header(
        socket_, buffer_, *parser_,
        beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (ec) {
      OnReadError(ec);
      return;
    }
    if (parser_->is_done()) {
      HandleRequest();
      return;
    }
    // A client that asks first (curl does for larger bodies) would otherwise
    // wait a second before sending the body.
    const auto& header = parser_->get();
    if (header.version() >= 11 &&
        beast::iequals(header[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue =
          "HTTP/1.1 100 Continue\r\n\r\n";
      SetDeadline(Millis(server_->options().body_timeout_ms));
      asio::async_write(socket_,
                        asio::buffer(kContinue.data(), kContinue.size()),
                        beast::bind_front_handler(&Session::OnContinueSent,
                                                  shared_from_this()));
      return;
    }
    ReadBody();
  }

  void OnContinueSent(beast::error_code ec, size_t) {
    if (ec) {
      Close();
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    SetDeadline(Millis(server_->options().body_timeout_ms));
    http::async_read(
        socket_, buffer_, *parser_,
        beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, size_t) {
    if (ec) {
      OnReadError(ec);
      return;
    }
    HandleRequest();
  }

  void OnReadError(const beast::error_code& ec) {
    // After any of these the rest of the stream cannot be parsed, so the
    // connection closes after the answer.
    if (ec == http::error::body_limit) {
      Write(ErrorResponse(
                413, "request body exceeds the limit of " +
                         std::to_string(server_->options().max_body_bytes) +
                         " bytes; send a smaller body (split the batch) or "
                         "raise the server's max_body_bytes"),
            11, false);
    } else if (ec == http::error::header_limit) {
      Write(ErrorResponse(431, "request header exceeds the limit of " +
                                   std::to_string(kMaxHeaderBytes) +
                                   " bytes; send fewer or shorter headers"),
            11, false);
    } else if (IsMalformedRequest(ec)) {
      Write(ErrorResponse(400, "malformed HTTP request (" + ec.message() +
                                   "); send a valid HTTP/1.1 request"),
            11, false);
    } else {
      // Timeout, reset, end of stream or shutdown: nobody to answer.
      Close();
    }
  }

  void HandleRequest() {
    state_ = State::kHandling;
    ClearDeadline();
    http::request<http::string_body> message = parser_->release();
    parser_.reset();

    HttpRequest request;
    request.method = ToStd(message.method_string());
    request.remote_address = remote_address_;
    for (const auto& field : message) {
      const beast::string_view raw_name = field.name_string();
      std::string name(raw_name.data(), raw_name.size());
      // Field names are tokens (ASCII), which the parser has checked.
      for (char& c : name) c = AsciiLower(c);
      const beast::string_view value = field.value();
      auto [it, inserted] = request.headers.try_emplace(
          std::move(name), value.data(), value.size());
      if (!inserted) {  // RFC 9110 list combining
        it->second.append(", ");
        it->second.append(value.data(), value.size());
      }
    }
    request.body = std::move(message.body());

    const beast::string_view target_text = message.target();
    absl::Status target = ParseTarget(
        std::string_view(target_text.data(), target_text.size()), &request);
    if (!target.ok()) {
      Write(HttpResponse::Error(target), message.version(),
            message.keep_alive() && !server_->shutting_down());
      return;
    }
    // Read by OnAnswer, on this strand, before the next request replaces
    // them: a connection has one request in progress at a time.
    request_line_.assign(request.method);
    request_line_.push_back(' ');
    request_line_.append(request.path);
    version_ = message.version();
    keep_alive_ = message.keep_alive();
    CallHandler(request, Responder());
  }

  // The responder of the request being handled: whatever thread calls it
  // posts the answer onto this connection's strand.
  HttpResponder Responder() {
    server_->AnswerPending();
    return HttpResponder(
        [self = shared_from_this()](HttpResponse response) mutable {
          Server* server = self->server_;
          auto executor = self->socket_.get_executor();
          asio::post(executor, [self = std::move(self),
                                response = std::move(response)]() mutable {
            self->OnAnswer(std::move(response));
          });
          server->AnswerDelivered();
        },
        request_line_);
  }

  void CallHandler(const HttpRequest& request, HttpResponder respond) {
    std::string failure;
    try {
      server_->router().DispatchAsync(request, respond);
      return;
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "exception of unknown type";
    }
    // Ignored by the responder when the handler answered before throwing.
    respond(HandlerFailure(request.method + " " + request.path, failure));
  }

  HttpResponse HandlerFailure(const std::string& request_line,
                              const std::string& failure) {
    LogError("http.handler_failed", {{"request", request_line},
                                     {"remote", remote_address_},
                                     {"error", failure}});
    return ErrorResponse(500, "internal error while handling " + request_line +
                                  "; the server log has the details (event "
                                  "http.handler_failed)");
  }

  // On the strand: the handler's answer to the request in progress.
  void OnAnswer(HttpResponse response) {
    // Closed by the drain timeout while the handler worked: nobody to tell.
    if (state_ == State::kClosed) return;
    if (response.status < 200 || response.status > 599) {
      response = HandlerFailure(request_line_,
                                "handler returned invalid HTTP status " +
                                    std::to_string(response.status));
    }
    Write(std::move(response), version_,
          keep_alive_ && !server_->shutting_down());
  }

  void SendRejection() {
    state_ = State::kHandling;
    HttpResponse response = ErrorResponse(
        503, "server is at its limit of " +
                 std::to_string(server_->options().max_connections) +
                 " open connections; retry later, reuse keep-alive "
                 "connections, or raise max_connections");
    response.headers.emplace_back("Retry-After", "1");
    Write(std::move(response), 11, false);
  }

  void Write(HttpResponse response, unsigned version, bool keep_alive) {
    state_ = State::kHandling;
    WriteHead(response, version, keep_alive, &head_);
    if (response.status != 204 && response.status != 304) {
      body_ = std::move(response.body);
    }
    // A client that does not read its answer cannot hold the connection.
    SetDeadline(Millis(server_->options().body_timeout_ms));
    // One gather write: head and body leave in the same send.
    const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head_),
                                                       asio::buffer(body_)};
    asio::async_write(socket_, buffers,
                      beast::bind_front_handler(
                          &Session::OnWritten, shared_from_this(), keep_alive));
  }

  void OnWritten(bool keep_alive, beast::error_code ec, size_t) {
    // The head keeps its capacity for the next answer; a body may be large.
    body_ = std::string();
    if (ec) {
      Close();
      return;
    }
    if (!keep_alive) {
      LingerClose();
      return;
    }
    first_request_ = false;
    ReadNextRequest();
  }

  void LingerClose() {
    state_ = State::kClosing;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    SetDeadline(kLingerTime);
    Discard();
  }

  void Discard() {
    socket_.async_read_some(
        asio::buffer(discard_),
        beast::bind_front_handler(&Session::OnDiscarded, shared_from_this()));
  }

  void OnDiscarded(beast::error_code ec, size_t) {
    if (ec) {  // the client closed (the usual case) or the linger ran out
      Close();
      return;
    }
    Discard();
  }

  void CloseIfIdle() {
    if (state_ == State::kIdle) Close();
  }

  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    timer_.cancel();
  }

  Server* const server_;
  const bool counted_;
  std::string remote_address_;
  tcp::socket socket_;
  asio::steady_timer timer_;  // checks deadline_
  std::chrono::steady_clock::time_point deadline_ =
      std::chrono::steady_clock::time_point::max();
  bool timer_waiting_ = false;  // a wait on timer_ is pending
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string head_;  // status line and headers of the answer being written
  std::string body_;  // its body
  std::array<char, 4096> discard_;
  State state_ = State::kIdle;
  bool first_request_ = true;
  // The request in progress: "POST /v1/apps/churn/predict", its HTTP
  // version, and whether the client asked to keep the connection.
  std::string request_line_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
};

absl::Status Server::Listen() {
  std::string address =
      (options_.host.find(':') != std::string::npos ? "[" + options_.host + "]"
                                                    : options_.host) +
      ":" + std::to_string(options_.port);
  auto fail = [&](const beast::error_code& ec) {
    return absl::UnavailableError("cannot listen on " + address + ": " +
                                  ec.message());
  };
  beast::error_code ec;
  tcp::resolver resolver(ioc_);
  auto endpoints = resolver.resolve(
      options_.host, std::to_string(options_.port),
      tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return fail(ec);
  if (endpoints.empty()) {
    return absl::UnavailableError("cannot listen on " + address +
                                  ": the host resolves to no address");
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return fail(ec);
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return fail(ec);
  acceptor_.bind(endpoint, ec);
  if (ec) return fail(ec);
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(ec);
  port_ = acceptor_.local_endpoint(ec).port();
  if (ec) return fail(ec);
  // Queued before the threads start, so they always have work to wait on.
  asio::dispatch(accept_strand_, [this] { Accept(); });
  return absl::OkStatus();
}

void Server::StartThreads() {
  work_.emplace(ioc_.get_executor());
  int count = ThreadCount(options_);
  threads_.reserve(count);
  for (int i = 0; i < count; ++i) {
    threads_.emplace_back([this] {
      // Work deferred to the end of an event-loop pass (the batcher's
      // flush) queues behind what the loop already has.
      IoRound::Scope round([this](std::function<void()> work) {
        asio::post(ioc_, std::move(work));
      });
      // An exception escaping a completion handler ends run(); log it and
      // keep the thread serving rather than terminate the process.
      while (true) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          LogError("http.event_loop_error", {{"error", e.what()}});
        }
      }
    });
  }
}

void Server::Accept() {
  // One thread runs every handler in turn, so a strand per connection would
  // only add a queue to each step.
  asio::any_io_executor executor =
      ThreadCount(options_) == 1
          ? asio::any_io_executor(ioc_.get_executor())
          : asio::any_io_executor(asio::make_strand(ioc_));
  acceptor_.async_accept(executor,
                         beast::bind_front_handler(&Server::OnAccept, this));
}

void Server::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (!acceptor_.is_open()) return;  // closed by Shutdown
  if (ec) {
    LogWarning("http.accept_failed", {{"error", ec.message()}});
    accept_retry_timer_.expires_after(kAcceptRetryDelay);
    accept_retry_timer_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor_.is_open()) Accept();
    });
    return;
  }
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    bool counted =
        counted_connections_ < static_cast<size_t>(options_.max_connections);
    size_t rejecting = sessions_.size() - counted_connections_;
    if (counted || rejecting < kMaxRejectedInFlight) {
      session = std::make_shared<Session>(std::move(socket), this, counted);
      sessions_.insert(session.get());
      if (counted) ++counted_connections_;
    }
  }
  if (session == nullptr) {
    beast::error_code ignored;
    socket.close(ignored);
  } else if (session->counted()) {
    session->Serve();
  } else {
    LogWarning("http.connection_limit",
               {{"max_connections", std::to_string(options_.max_connections)}});
    session->Reject();
  }
  Accept();
}

void Server::Unregister(Session* session, bool counted) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(session);
  if (counted) --counted_connections_;
}

void Server::AnswerPending() { pending_answers_.fetch_add(1); }

void Server::AnswerDelivered() {
  // Shutdown waits for zero in mu_.Await, which re-checks its condition
  // when mu_ is released: so the last answer during shutdown passes through
  // mu_. Both sides use sequentially consistent operations (Shutdown sets
  // shutting_down_ before it reads the count), so either this thread sees
  // shutting_down_ or Shutdown sees the count at zero.
  if (pending_answers_.fetch_sub(1) == 1 && shutting_down_.load()) {
    absl::MutexLock lock(&mu_);
  }
}

std::vector<std::shared_ptr<Session>> Server::LiveSessions() {
  std::vector<std::shared_ptr<Session>> live;
  absl::MutexLock lock(&mu_);
  for (Session* session : sessions_) {
    // Empty when the Session is being destroyed (its destructor is waiting
    // for mu_ to unregister).
    if (auto shared = session->weak_from_this().lock()) {
      live.push_back(std::move(shared));
    }
  }
  return live;
}

void Server::Shutdown(int drain_timeout_ms) {
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_started_) {
      mu_.Await(absl::Condition(&shutdown_done_));
      return;
    }
    shutdown_started_ = true;
  }
  // Set before anything else so that every Session that reaches "between
  // requests" from now on closes instead of waiting for another request.
  shutting_down_.store(true);
  asio::post(accept_strand_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_timer_.cancel();
  });
  for (const auto& session : LiveSessions()) session->OnShutdown();

  bool drained;
  {
    absl::MutexLock lock(&mu_);
    drained =
        mu_.AwaitWithTimeout(absl::Condition(this, &Server::NoSessions),
                             absl::Milliseconds(std::max(0, drain_timeout_ms)));
  }
  if (!drained) {
    std::vector<std::shared_ptr<Session>> live = LiveSessions();
    // With no drain time asked for, closing open connections is the request
    // itself, not news.
    if (drain_timeout_ms > 0) {
      LogWarning("http.drain_timeout",
                 {{"drain_timeout_ms", std::to_string(drain_timeout_ms)},
                  {"closed_connections", std::to_string(live.size())}});
    }
    for (const auto& session : live) session->ForceClose();
  }
  {
    // A handler still working holds its responder, and so its connection;
    // like a running thread it cannot be interrupted, so wait for its answer
    // (dropped if the connection was closed) while the loop still runs.
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &Server::NoPendingAnswers));
  }
  // With the acceptor and every connection closed the event loop runs out
  // of work and the threads return.
  work_.reset();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();

  absl::MutexLock lock(&mu_);
  // A request read just as the connections were closed may have reached a
  // handler after the wait above; its answer must be posted (to the
  // stopped loop, which drops it) before the io_context can be destroyed.
  mu_.Await(absl::Condition(this, &Server::NoPendingAnswers));
  shutdown_done_ = true;
}

void Server::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&shutdown_done_));
}

absl::Status ValidateOptions(const HttpServer::Options& options) {
  auto invalid = [](const std::string& field, long long value,
                    const std::string& fix) {
    return absl::InvalidArgumentError("HTTP server option " + field + " is " +
                                      std::to_string(value) + "; " + fix);
  };
  if (options.port < 0 || options.port > 65535) {
    return invalid("port", options.port,
                   "use 1..65535, or 0 to take any free port");
  }
  if (options.threads < 0) {
    return invalid("threads", options.threads,
                   "use a positive count, or 0 for one per CPU");
  }
  if (options.max_body_bytes == 0) {
    return invalid("max_body_bytes", 0, "use a positive byte count");
  }
  if (options.header_timeout_ms <= 0) {
    return invalid("header_timeout_ms", options.header_timeout_ms,
                   "use a positive number of milliseconds");
  }
  if (options.body_timeout_ms <= 0) {
    return invalid("body_timeout_ms", options.body_timeout_ms,
                   "use a positive number of milliseconds");
  }
  if (options.idle_timeout_ms <= 0) {
    return invalid("idle_timeout_ms", options.idle_timeout_ms,
                   "use a positive number of milliseconds");
  }
  if (options.max_connections <= 0) {
    return invalid("max_connections", options.max_connections,
                   "use a positive count");
  }
  return absl::OkStatus();
}

}  // namespace http_server_internal

class HttpServer::Impl : public http_server_internal::Server {
 public:
  using Server::Server;
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    Options options, const Router* router) {
  RETURN_IF_ERROR(http_server_internal::ValidateOptions(options));
  auto impl = std::make_unique<Impl>(std::move(options), router);
  RETURN_IF_ERROR(impl->Listen());
  impl->StartThreads();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { impl_->Shutdown(0); }

int HttpServer::port() const { return impl_->port(); }

void HttpServer::Shutdown(int drain_timeout_ms) {
  impl_->Shutdown(drain_timeout_ms);
}

void HttpServer::Wait() { impl_->Wait(); }

}  // namespace slipway
