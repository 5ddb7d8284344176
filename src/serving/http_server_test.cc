#include "serving/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "serving/http.h"

namespace slipway {
namespace {

using std::chrono::milliseconds;

// Upper bound for any single wait on the server; reached only when a test
// is about to fail, so it is generous.
constexpr milliseconds kIoTimeout(10000);

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  nlohmann::json Json() const { return nlohmann::json::parse(body); }
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(c));
  return s;
}

// A blocking HTTP/1.1 client on a plain POSIX socket, just enough to drive
// the server byte by byte: it sends raw text and parses responses framed by
// Content-Length.
class Connection {
 public:
  explicit Connection(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
        0) {
      connect_errno_ = errno;
      close(fd_);
      fd_ = -1;
    }
  }
  ~Connection() { Close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool connected() const { return fd_ >= 0; }
  int connect_errno() const { return connect_errno_; }

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One response, or nullopt when the connection ends (or kIoTimeout
  // passes) before a whole response arrived.
  std::optional<Response> ReadResponse() {
    size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore(kIoTimeout)) return std::nullopt;
    }
    std::string head = buffer_.substr(0, header_end);
    buffer_.erase(0, header_end + 4);

    Response response;
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    // "HTTP/1.1 200 OK"
    size_t space = status_line.find(' ');
    if (space == std::string::npos) return std::nullopt;
    response.status = std::stoi(status_line.substr(space + 1, 3));
    while (line_end != std::string::npos) {
      size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      std::string line = head.substr(start, line_end - start);
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      size_t value_start = line.find_first_not_of(' ', colon + 1);
      response.headers[Lower(line.substr(0, colon))] =
          value_start == std::string::npos ? "" : line.substr(value_start);
    }
    size_t length = 0;
    if (response.headers.count("content-length")) {
      length = std::stoul(response.headers["content-length"]);
    }
    while (buffer_.size() < length) {
      if (!ReadMore(kIoTimeout)) return std::nullopt;
    }
    response.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return response;
  }

  // True when the server closes the connection (end of stream or reset)
  // within `timeout`. Bytes that arrive meanwhile are kept in unread().
  bool WaitForClose(milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto left = std::chrono::duration_cast<milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      if (!ReadMore(left)) return !timed_out_;
    }
  }

  const std::string& unread() const { return buffer_; }

 private:
  // Appends what arrives within `timeout`; false on end of stream, error or
  // timeout (timed_out_ tells which).
  bool ReadMore(milliseconds timeout) {
    timed_out_ = false;
    pollfd p{fd_, POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(timeout.count()));
    if (ready == 0) {
      timed_out_ = true;
      return false;
    }
    if (ready < 0) return false;
    char chunk[8192];
    ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  int connect_errno_ = 0;
  bool timed_out_ = false;
  std::string buffer_;
};

std::string Get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n\r\n";
}

std::string Post(const std::string& target, const std::string& body,
                 const std::string& extra_headers = "") {
  return "POST " + target + " HTTP/1.1\r\nHost: test\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

// Every answer, success or error, carries these.
void ExpectStandardHeaders(const Response& response) {
  EXPECT_EQ(response.Header("server"), "slipway");
  EXPECT_FALSE(response.Header("content-type").empty());
  EXPECT_EQ(response.Header("content-length"),
            std::to_string(response.body.size()));
}

void ExpectJsonError(const Response& response, int status,
                     const std::string& fragment) {
  EXPECT_EQ(response.status, status);
  ExpectStandardHeaders(response);
  EXPECT_EQ(response.Header("content-type"), "application/json");
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << response.body;
  ASSERT_TRUE(body.contains("error")) << response.body;
  EXPECT_NE(body["error"].get<std::string>().find(fragment), std::string::npos)
      << body["error"];
}

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() {
    router_.Add("GET", "/hello", [](const HttpRequest&, const PathParams&) {
      return HttpResponse::Text(200, "hello");
    });
    router_.Add("GET", "/items/{id}",
                [](const HttpRequest& request, const PathParams& params) {
                  nlohmann::json body = {{"id", params.at("id")},
                                         {"path", request.path},
                                         {"query", request.query},
                                         {"remote", request.remote_address}};
                  return HttpResponse::Json(200, body.dump());
                });
    router_.Add(
        "POST", "/echo", [](const HttpRequest& request, const PathParams&) {
          nlohmann::json body = {{"body", request.body},
                                 {"content_type", request.ContentType()},
                                 {"custom", request.Header("x-custom")}};
          return HttpResponse::Json(200, body.dump());
        });
    router_.Add("GET", "/headers", [](const HttpRequest&, const PathParams&) {
      HttpResponse response = HttpResponse::Text(200, "ok");
      response.headers = {{"X-Request-Id", "req-1"},
                          {"Content-Length", "999"},
                          {"X-Evil", "a\r\nInjected: 1"}};
      return response;
    });
    router_.Add("GET", "/throw",
                [](const HttpRequest&, const PathParams&) -> HttpResponse {
                  throw std::runtime_error("boom");
                });
    router_.Add("GET", "/block", [this](const HttpRequest&, const PathParams&) {
      block_entered_.Notify();
      block_release_.WaitForNotification();
      return HttpResponse::Text(200, "done");
    });
    // Keeps the responder for the test thread to answer.
    router_.AddAsync(
        "GET", "/async",
        [this](const HttpRequest&, const PathParams&, HttpResponder respond) {
          {
            absl::MutexLock lock(&held_mu_);
            held_.emplace(std::move(respond));
          }
          async_entered_.Notify();
        });
    router_.AddAsync(
        "GET", "/async-drop",
        [](const HttpRequest&, const PathParams&, HttpResponder) {});
  }

  ~HttpServerTest() override {
    // A test that failed while a handler was blocked or an answer was held
    // must not hang the server's shutdown in the destructor.
    if (!block_release_.HasBeenNotified()) block_release_.Notify();
    {
      absl::MutexLock lock(&held_mu_);
      held_.reset();
    }
    server_.reset();
  }

  // Answers the request the /async handler holds, on the calling thread.
  void AnswerHeld(HttpResponse response) {
    std::optional<HttpResponder> respond;
    {
      absl::MutexLock lock(&held_mu_);
      respond.swap(held_);
    }
    ASSERT_TRUE(respond.has_value());
    (*respond)(std::move(response));
  }

  void Start(HttpServer::Options options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    if (options.threads == 0) options.threads = 2;
    auto server = HttpServer::Start(options, &router_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    ASSERT_GT(server_->port(), 0);
  }

  int port() const { return server_->port(); }

  Router router_;
  absl::Notification block_entered_;
  absl::Notification block_release_;
  absl::Notification async_entered_;
  absl::Mutex held_mu_;
  std::optional<HttpResponder> held_ ABSL_GUARDED_BY(held_mu_);
  std::unique_ptr<HttpServer> server_;  // destroyed before router_
};

TEST_F(HttpServerTest, RoutesRequestAndSetsStandardHeaders) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Get("/hello")));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello");
  EXPECT_EQ(response->Header("content-type"), "text/plain");
  ExpectStandardHeaders(*response);
}

TEST_F(HttpServerTest, DecodesCapturesAndQuery) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Get("/items/a%20b?x=1%2B2&y=a+b&flag&&z=%41")));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  ASSERT_EQ(response->status, 200) << response->body;
  nlohmann::json body = response->Json();
  EXPECT_EQ(body["id"], "a b");
  EXPECT_EQ(body["path"], "/items/a b");
  EXPECT_EQ(
      body["query"],
      nlohmann::json({{"x", "1+2"}, {"y", "a b"}, {"flag", ""}, {"z", "A"}}));
  EXPECT_EQ(body["remote"].get<std::string>().rfind("127.0.0.1:", 0), 0u);
}

TEST_F(HttpServerTest, PassesBodyAndLowercasedHeaders) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(
      client.Send(Post("/echo", "{\"a\":1}",
                       "Content-Type: Application/JSON; charset=utf-8\r\n"
                       "X-Custom: yes\r\n")));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  ASSERT_EQ(response->status, 200);
  nlohmann::json body = response->Json();
  EXPECT_EQ(body["body"], "{\"a\":1}");
  EXPECT_EQ(body["content_type"], "application/json");
  EXPECT_EQ(body["custom"], "yes");
}

TEST_F(HttpServerTest, ExtraHeadersPassButServerOwnsFramingAndDropsInjection) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Get("/headers")));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->Header("x-request-id"), "req-1");
  EXPECT_EQ(response->Header("content-length"), "2");
  EXPECT_EQ(response->Header("x-evil"), "");
  EXPECT_EQ(response->Header("injected"), "");
  EXPECT_EQ(response->body, "ok");
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Get("/nothing/here")));
  std::optional<Response> not_found = client.ReadResponse();
  ASSERT_TRUE(not_found.has_value());
  ExpectJsonError(*not_found, 404, "GET /nothing/here");

  ASSERT_TRUE(client.Send(Post("/hello", "x")));
  std::optional<Response> not_allowed = client.ReadResponse();
  ASSERT_TRUE(not_allowed.has_value());
  ExpectJsonError(*not_allowed, 405, "POST");
  EXPECT_EQ(not_allowed->Header("allow"), "GET");
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Get("/hello")));
  std::optional<Response> first = client.ReadResponse();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 200);
  EXPECT_NE(Lower(first->Header("connection")), "close");

  ASSERT_TRUE(client.Send(Post("/echo", "second")));
  std::optional<Response> second = client.ReadResponse();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(second->Json()["body"], "second");
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(
      client.Send(Get("/items/1") + Post("/echo", "two") + Get("/items/3")));
  std::optional<Response> first = client.ReadResponse();
  std::optional<Response> second = client.ReadResponse();
  std::optional<Response> third = client.ReadResponse();
  ASSERT_TRUE(first && second && third);
  EXPECT_EQ(first->Json()["id"], "1");
  EXPECT_EQ(second->Json()["body"], "two");
  EXPECT_EQ(third->Json()["id"], "3");
}

TEST_F(HttpServerTest, Http10IsAnsweredThenClosed) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send("GET /hello HTTP/1.0\r\n\r\n"));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello");
  EXPECT_TRUE(client.WaitForClose(kIoTimeout));
  EXPECT_EQ(client.unread(), "");
}

// The exact bytes of answers: status line, Server first, the handler's
// headers in order (values without surrounding blanks), Connection only
// when it differs from the version's default, then Content-Type and
// Content-Length; none of the last two for 204.
TEST_F(HttpServerTest, AnswersAreWrittenByteForByte) {
  router_.Add("GET", "/padded", [](const HttpRequest&, const PathParams&) {
    HttpResponse response = HttpResponse::Json(201, "{}");
    response.headers = {{"X-One", "  1\t"}, {"X-Two", "two"}};
    return response;
  });
  router_.Add("GET", "/empty", [](const HttpRequest&, const PathParams&) {
    return HttpResponse::Text(204, "dropped", "");
  });
  router_.Add("GET", "/untyped", [](const HttpRequest&, const PathParams&) {
    return HttpResponse::Text(200, "raw", "");
  });
  Start();
  auto exchange = [this](const std::string& requests) {
    Connection client(port());
    EXPECT_TRUE(client.connected());
    EXPECT_TRUE(client.Send(requests));
    EXPECT_TRUE(client.WaitForClose(kIoTimeout));
    return client.unread();
  };
  EXPECT_EQ(exchange("GET /padded HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /empty HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /untyped HTTP/1.1\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 201 Created\r\nServer: slipway\r\nX-One: 1\r\n"
            "X-Two: two\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\n\r\n{}"
            "HTTP/1.1 204 No Content\r\nServer: slipway\r\n\r\n"
            "HTTP/1.1 200 OK\r\nServer: slipway\r\nConnection: close\r\n"
            "Content-Type: application/octet-stream\r\n"
            "Content-Length: 3\r\n\r\nraw");
  EXPECT_EQ(exchange("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                     "GET /nowhere HTTP/1.0\r\n\r\n"),
            "HTTP/1.0 200 OK\r\nServer: slipway\r\nConnection: keep-alive\r\n"
            "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
            "HTTP/1.0 404 Not Found\r\nServer: slipway\r\n"
            "Content-Type: application/json\r\nContent-Length: 101\r\n\r\n"
            "{\"error\":\"no endpoint at GET /nowhere; check the path against "
            "the API reference (docs/openapi.yaml)\"}");
}

TEST_F(HttpServerTest, ExpectContinueGetsInterimResponse) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(
      client.Send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
                  "Expect: 100-continue\r\n\r\n"));
  std::optional<Response> interim = client.ReadResponse();
  ASSERT_TRUE(interim.has_value());
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client.Send("hello"));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->Json()["body"], "hello");
}

TEST_F(HttpServerTest, BodyAtTheLimitIsAccepted) {
  HttpServer::Options options;
  options.max_body_bytes = 1024;
  Start(options);
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Post("/echo", std::string(1024, 'a'))));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
}

TEST_F(HttpServerTest, OversizedBodyIs413AndCloses) {
  HttpServer::Options options;
  options.max_body_bytes = 1024;
  Start(options);
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Post("/echo", std::string(1025, 'a'))));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  ExpectJsonError(*response, 413, "limit of 1024 bytes");
  ExpectJsonError(*response, 413, "max_body_bytes");
  EXPECT_EQ(Lower(response->Header("connection")), "close");
  EXPECT_TRUE(client.WaitForClose(kIoTimeout));
}

TEST_F(HttpServerTest, OversizedChunkedBodyIs413) {
  HttpServer::Options options;
  options.max_body_bytes = 1024;
  Start(options);
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(
      "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "800\r\n" +
      std::string(0x800, 'a') + "\r\n0\r\n\r\n"));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  ExpectJsonError(*response, 413, "limit of 1024 bytes");
}

TEST_F(HttpServerTest, GarbageIs400AndCloses) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send("\x01\x02 not http at all\r\n\r\n"));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  ExpectJsonError(*response, 400, "malformed HTTP request");
  EXPECT_TRUE(client.WaitForClose(kIoTimeout));
}

TEST_F(HttpServerTest, BadPercentEscapeIs400) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Get("/items/%zz")));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  ExpectJsonError(*response, 400, "percent-escape");
}

TEST_F(HttpServerTest, SlowHeaderTimesOutAndClosesConnection) {
  HttpServer::Options options;
  options.header_timeout_ms = 200;
  Start(options);
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send("GET /hello HTTP/1.1\r\nHost: te"));
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.WaitForClose(kIoTimeout));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(150));
  EXPECT_EQ(client.unread(), "");
}

TEST_F(HttpServerTest, SilentNewConnectionTimesOut) {
  HttpServer::Options options;
  options.header_timeout_ms = 200;
  Start(options);
  Connection client(port());
  ASSERT_TRUE(client.connected());
  EXPECT_TRUE(client.WaitForClose(kIoTimeout));
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosed) {
  HttpServer::Options options;
  options.idle_timeout_ms = 200;
  Start(options);
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Get("/hello")));
  ASSERT_TRUE(client.ReadResponse().has_value());
  EXPECT_TRUE(client.WaitForClose(kIoTimeout));
  EXPECT_EQ(client.unread(), "");
}

TEST_F(HttpServerTest, SlowHeaderOnAKeptAliveConnectionTimesOut) {
  // The idle deadline after the first answer is far off; the header
  // deadline that replaces it when bytes arrive is sooner and still holds.
  HttpServer::Options options;
  options.header_timeout_ms = 200;
  Start(options);
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Get("/hello")));
  ASSERT_TRUE(client.ReadResponse().has_value());
  ASSERT_TRUE(client.Send("GET /hello HTTP/1.1\r\nHost: te"));
  EXPECT_TRUE(client.WaitForClose(kIoTimeout));
  EXPECT_EQ(client.unread(), "");
}

TEST_F(HttpServerTest, ActiveConnectionOutlivesItsFirstIdleDeadline) {
  HttpServer::Options options;
  options.idle_timeout_ms = 500;
  Start(options);
  Connection client(port());
  ASSERT_TRUE(client.connected());
  // Together longer than the idle timeout, each pause well within it.
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(client.Send(Get("/hello")));
    std::optional<Response> response = client.ReadResponse();
    ASSERT_TRUE(response.has_value()) << "request " << i;
    EXPECT_EQ(response->body, "hello");
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(client.WaitForClose(kIoTimeout));
}

TEST_F(HttpServerTest, NoTimeoutWhileTheHandlerWorks) {
  HttpServer::Options options;
  options.header_timeout_ms = 100;
  options.body_timeout_ms = 100;
  options.idle_timeout_ms = 100;
  Start(options);
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Get("/async")));
  async_entered_.WaitForNotification();
  EXPECT_FALSE(client.WaitForClose(milliseconds(400)));
  AnswerHeld(HttpResponse::Text(200, "slow"));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body, "slow");
}

TEST_F(HttpServerTest, HandlerExceptionIs500AndServerKeepsServing) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Get("/throw")));
  std::optional<Response> failed = client.ReadResponse();
  ASSERT_TRUE(failed.has_value());
  ExpectJsonError(*failed, 500, "GET /throw");
  EXPECT_EQ(failed->Json()["error"].get<std::string>().find("boom"),
            std::string::npos);  // internals stay in the log

  ASSERT_TRUE(client.Send(Get("/hello")));
  std::optional<Response> after = client.ReadResponse();
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->status, 200);
}

TEST_F(HttpServerTest, ConnectionsOverTheLimitGet503) {
  HttpServer::Options options;
  options.max_connections = 1;
  Start(options);
  Connection first(port());
  ASSERT_TRUE(first.connected());
  // A completed request proves the server has accepted and counted it.
  ASSERT_TRUE(first.Send(Get("/hello")));
  ASSERT_TRUE(first.ReadResponse().has_value());

  Connection second(port());
  ASSERT_TRUE(second.connected());
  ASSERT_TRUE(second.Send(Get("/hello")));
  std::optional<Response> rejected = second.ReadResponse();
  ASSERT_TRUE(rejected.has_value());
  ExpectJsonError(*rejected, 503, "max_connections");
  EXPECT_EQ(rejected->Header("retry-after"), "1");
  EXPECT_TRUE(second.WaitForClose(kIoTimeout));

  ASSERT_TRUE(first.Send(Get("/hello")));
  std::optional<Response> still_served = first.ReadResponse();
  ASSERT_TRUE(still_served.has_value());
  EXPECT_EQ(still_served->status, 200);
}

TEST_F(HttpServerTest, ShutdownFinishesInFlightRequestAndClosesIdleOnes) {
  Start();
  Connection idle(port());
  ASSERT_TRUE(idle.connected());
  ASSERT_TRUE(idle.Send(Get("/hello")));
  ASSERT_TRUE(idle.ReadResponse().has_value());

  Connection busy(port());
  ASSERT_TRUE(busy.connected());
  ASSERT_TRUE(busy.Send(Get("/block")));
  block_entered_.WaitForNotification();

  std::thread shutdown(
      [this] { server_->Shutdown(/*drain_timeout_ms=*/30000); });
  absl::Notification waited;
  std::thread waiter([this, &waited] {
    server_->Wait();
    waited.Notify();
  });
  // Closing the idle connection is Shutdown's doing (the idle timeout is a
  // minute), so once it is closed Shutdown is under way.
  EXPECT_TRUE(idle.WaitForClose(kIoTimeout));
  EXPECT_FALSE(waited.HasBeenNotified());

  block_release_.Notify();
  std::optional<Response> response = busy.ReadResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "done");
  EXPECT_EQ(Lower(response->Header("connection")), "close");
  EXPECT_TRUE(busy.WaitForClose(kIoTimeout));
  busy.Close();

  shutdown.join();
  waiter.join();
  EXPECT_TRUE(waited.HasBeenNotified());

  Connection refused(port());
  EXPECT_FALSE(refused.connected());
  EXPECT_EQ(refused.connect_errno(), ECONNREFUSED);
}

TEST_F(HttpServerTest, DrainTimeoutClosesUnfinishedConnections) {
  Start();
  Connection busy(port());
  ASSERT_TRUE(busy.connected());
  ASSERT_TRUE(busy.Send(Get("/block")));
  block_entered_.WaitForNotification();

  std::thread shutdown([this] { server_->Shutdown(/*drain_timeout_ms=*/0); });
  // A running handler cannot be interrupted: Shutdown returns once it has
  // returned, and the connection is closed whether or not its answer made it.
  block_release_.Notify();
  shutdown.join();
  EXPECT_TRUE(busy.WaitForClose(kIoTimeout));
}

TEST_F(HttpServerTest, AsyncHandlerIsAnsweredFromAnotherThread) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Get("/async")));
  async_entered_.WaitForNotification();
  AnswerHeld(HttpResponse::Text(200, "answered by the test thread"));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "answered by the test thread");
  ExpectStandardHeaders(*response);

  // The connection reads the next request once the answer is written.
  ASSERT_TRUE(client.Send(Get("/hello")));
  std::optional<Response> next = client.ReadResponse();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->body, "hello");
}

TEST_F(HttpServerTest, AsyncRequestsWaitWithoutHoldingAThread) {
  HttpServer::Options options;
  options.threads = 1;
  Start(options);
  Connection waiting(port());
  ASSERT_TRUE(waiting.connected());
  ASSERT_TRUE(waiting.Send(Get("/async")));
  async_entered_.WaitForNotification();
  // The only server thread is free while the async request waits.
  Connection other(port());
  ASSERT_TRUE(other.connected());
  ASSERT_TRUE(other.Send(Get("/hello")));
  std::optional<Response> hello = other.ReadResponse();
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->status, 200);

  AnswerHeld(HttpResponse::Text(200, "late"));
  std::optional<Response> late = waiting.ReadResponse();
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->body, "late");
}

TEST_F(HttpServerTest, AsyncHandlerThatDropsItsResponderGets500) {
  Start();
  Connection client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(Get("/async-drop")));
  std::optional<Response> response = client.ReadResponse();
  ASSERT_TRUE(response.has_value());
  ExpectJsonError(*response, 500, "GET /async-drop ended without answering");
}

TEST_F(HttpServerTest, ShutdownWaitsForAnAsyncAnswer) {
  Start();
  Connection idle(port());
  ASSERT_TRUE(idle.connected());
  ASSERT_TRUE(idle.Send(Get("/hello")));
  ASSERT_TRUE(idle.ReadResponse().has_value());
  Connection busy(port());
  ASSERT_TRUE(busy.connected());
  ASSERT_TRUE(busy.Send(Get("/async")));
  async_entered_.WaitForNotification();

  absl::Notification returned;
  std::thread shutdown([this, &returned] {
    server_->Shutdown(/*drain_timeout_ms=*/30000);
    returned.Notify();
  });
  // Once Shutdown has closed the idle connection it is under way; it cannot
  // return before the answer, since the request is in flight.
  EXPECT_TRUE(idle.WaitForClose(kIoTimeout));
  EXPECT_FALSE(returned.HasBeenNotified());
  AnswerHeld(HttpResponse::Text(200, "finished during shutdown"));
  std::optional<Response> response = busy.ReadResponse();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "finished during shutdown");
  EXPECT_EQ(Lower(response->Header("connection")), "close");
  EXPECT_TRUE(busy.WaitForClose(kIoTimeout));
  busy.Close();
  shutdown.join();
  EXPECT_TRUE(returned.HasBeenNotified());
}

TEST_F(HttpServerTest, AsyncAnswerAfterTheDrainTimeoutIsDropped) {
  Start();
  Connection busy(port());
  ASSERT_TRUE(busy.connected());
  ASSERT_TRUE(busy.Send(Get("/async")));
  async_entered_.WaitForNotification();

  absl::Notification returned;
  std::thread shutdown([this, &returned] {
    server_->Shutdown(/*drain_timeout_ms=*/0);
    returned.Notify();
  });
  // The drain timeout closes the connection, but Shutdown still waits for
  // the handler to give up its responder before stopping the event loop.
  EXPECT_TRUE(busy.WaitForClose(kIoTimeout));
  EXPECT_FALSE(returned.HasBeenNotified());
  AnswerHeld(HttpResponse::Text(200, "too late"));
  shutdown.join();
  EXPECT_TRUE(returned.HasBeenNotified());
}

TEST_F(HttpServerTest, ShutdownTwiceIsHarmless) {
  Start();
  server_->Shutdown(0);
  server_->Shutdown(0);
  server_->Wait();
}

TEST_F(HttpServerTest, PortInUseErrorNamesTheAddress) {
  Start();
  HttpServer::Options options;
  options.port = port();
  auto second = HttpServer::Start(options, &router_);
  ASSERT_FALSE(second.ok());
  std::string message(second.status().message());
  EXPECT_NE(message.find(
                "cannot listen on 127.0.0.1:" + std::to_string(port()) + ": "),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("Address already in use"), std::string::npos)
      << message;
}

TEST_F(HttpServerTest, InvalidOptionsAreRejected) {
  HttpServer::Options options;
  options.port = 70000;
  auto server = HttpServer::Start(options, &router_);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(server.status().message()).find("port"),
            std::string::npos);

  options.port = 0;
  options.header_timeout_ms = 0;
  EXPECT_FALSE(HttpServer::Start(options, &router_).ok());
}

}  // namespace
}  // namespace slipway
