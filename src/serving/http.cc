#include "serving/http.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"
#include "core/http_error.h"
#include "core/logging.h"

namespace slipway {
namespace {

// Splits `path` at '/' into `*segments`: "/v2/models/x" -> {"v2", "models",
// "x"}; "/" -> {""}; "/a/" -> {"a", ""}. Keeping the empty trailing segment
// makes "/a/" and "/a" different paths, so a pattern matches exactly one
// spelling. The views point into `path`.
template <typename Segments>
void SplitPath(std::string_view path, Segments* segments) {
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    size_t slash = path.find('/');
    segments->emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
}

bool IsCapture(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

std::string CaptureName(std::string_view segment) {
  return std::string(segment.substr(1, segment.size() - 2));
}

// A path split into segments; eight cover every route without allocating.
using PathSegments = absl::InlinedVector<std::string_view, 8>;

// True when `path` matches `pattern`.
bool Matches(const std::vector<std::string>& pattern,
             const PathSegments& path) {
  if (pattern.size() != path.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (IsCapture(pattern[i])) {
      // An empty segment ("/v2/models//infer") names nothing.
      if (path[i].empty()) return false;
    } else if (pattern[i] != path[i]) {
      return false;
    }
  }
  return true;
}

// The captures of `path`, which matches `pattern`.
PathParams Captures(const std::vector<std::string>& pattern,
                    const PathSegments& path) {
  PathParams params;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (IsCapture(pattern[i])) {
      params.emplace(CaptureName(pattern[i]), std::string(path[i]));
    }
  }
  return params;
}

// True when `a` is more specific than `b`: at the first segment where one
// has a literal and the other a capture, the literal wins. So
// "/api/v1/apps/export" beats "/api/v1/apps/{app}" whatever the order the
// routes were added in.
bool MoreSpecific(const std::vector<std::string>& a,
                  const std::vector<std::string>& b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    bool a_capture = IsCapture(a[i]);
    bool b_capture = IsCapture(b[i]);
    if (a_capture != b_capture) return b_capture;
  }
  return false;
}

// The Content-Type header without parameters and surrounding blanks, as
// written (not lowercased); "" when absent.
std::string_view BareContentType(const HttpRequest& request) {
  auto it = request.headers.find("content-type");
  if (it == request.headers.end()) return {};
  std::string_view value = it->second;
  value = value.substr(0, value.find(';'));
  size_t begin = value.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  size_t end = value.find_last_not_of(" \t");
  return value.substr(begin, end - begin + 1);
}

std::string ToLower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

std::string HttpRequest::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::string HttpRequest::ContentType() const {
  return ToLower(std::string(BareContentType(*this)));
}

bool HttpRequest::ContentTypeIs(std::string_view type) const {
  std::string_view value = BareContentType(*this);
  if (value.size() != type.size()) return false;
  for (size_t i = 0; i < value.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != type[i]) {
      return false;
    }
  }
  return true;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

HttpResponse HttpResponse::Text(int status, std::string body,
                                std::string content_type) {
  HttpResponse response;
  response.status = status;
  response.content_type = std::move(content_type);
  response.body = std::move(body);
  return response;
}

HttpResponse HttpResponse::Error(const absl::Status& status) {
  return Json(HttpStatusCode(status), ErrorBody(status));
}

// Shared by every copy of one HttpResponder.
class HttpResponder::State {
 public:
  State(Send send, std::string request_line)
      : send_(std::move(send)), request_line_(std::move(request_line)) {}

  ~State() {
    if (answered_.exchange(true, std::memory_order_acq_rel)) return;
    LogError("http.responder_dropped", {{"request", request_line_}});
    send_(HttpResponse::Json(
        500, ErrorBody(absl::InternalError(
                 "internal error: the handler of " + request_line_ +
                 " ended without answering; the server log has the details "
                 "(event http.responder_dropped)"))));
  }

  void Answer(HttpResponse response) {
    if (answered_.exchange(true, std::memory_order_acq_rel)) {
      LogWarning("http.answered_twice", {{"request", request_line_}});
      return;
    }
    // Moved out so what `send_` holds (the connection) is released now, not
    // when the last copy of the responder goes. Only the one thread that
    // won the exchange above touches send_.
    Send send = std::move(send_);
    send(std::move(response));
  }

 private:
  std::atomic<bool> answered_{false};
  Send send_;
  const std::string request_line_;
};

HttpResponder::HttpResponder(Send send, std::string request_line)
    : state_(
          std::make_shared<State>(std::move(send), std::move(request_line))) {}

void HttpResponder::operator()(HttpResponse response) const {
  state_->Answer(std::move(response));
}

void Router::Add(std::string method, std::string pattern, HttpHandler handler) {
  AddAsync(std::move(method), std::move(pattern),
           [handler = std::move(handler)](
               const HttpRequest& request, const PathParams& params,
               HttpResponder respond) { respond(handler(request, params)); });
}

void Router::AddAsync(std::string method, std::string pattern,
                      AsyncHttpHandler handler) {
  std::vector<std::string> segments;
  SplitPath(pattern, &segments);
  if (routes_by_length_.size() <= segments.size()) {
    routes_by_length_.resize(segments.size() + 1);
  }
  routes_by_length_[segments.size()].push_back(routes_.size());
  routes_.push_back(Route{std::move(method), std::move(pattern),
                          std::move(segments), std::move(handler)});
}

std::vector<RouteInfo> Router::Routes() const {
  std::vector<RouteInfo> routes;
  routes.reserve(routes_.size());
  for (const Route& route : routes_) {
    routes.push_back(RouteInfo{route.method, route.pattern});
  }
  return routes;
}

HttpResponse Router::Dispatch(const HttpRequest& request) const {
  struct Answer {
    absl::Mutex mu;
    std::optional<HttpResponse> response ABSL_GUARDED_BY(mu);
    bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return response.has_value();
    }
  };
  // Shared with the responder, which may outlive this call when the
  // handler throws after handing a copy elsewhere.
  auto answer = std::make_shared<Answer>();
  DispatchAsync(request, HttpResponder(
                             [answer](HttpResponse response) {
                               absl::MutexLock lock(&answer->mu);
                               answer->response = std::move(response);
                             },
                             request.method + " " + request.path));
  absl::MutexLock lock(&answer->mu);
  answer->mu.Await(absl::Condition(answer.get(), &Answer::Ready));
  return std::move(*answer->response);
}

void Router::DispatchAsync(const HttpRequest& request,
                           HttpResponder respond) const {
  PathSegments path;
  SplitPath(request.path, &path);
  static const std::vector<size_t> kNone;
  const std::vector<size_t>& candidates = path.size() < routes_by_length_.size()
                                              ? routes_by_length_[path.size()]
                                              : kNone;
  const Route* best = nullptr;
  for (size_t index : candidates) {
    const Route& route = routes_[index];
    if (route.method != request.method || !Matches(route.segments, path)) {
      continue;
    }
    if (best == nullptr || MoreSpecific(route.segments, best->segments)) {
      best = &route;
    }
  }
  if (best != nullptr) {
    best->handler(request, Captures(best->segments, path), std::move(respond));
    return;
  }

  std::vector<std::string> allowed;  // methods of routes matching the path
  for (size_t index : candidates) {
    const Route& route = routes_[index];
    if (Matches(route.segments, path) &&
        std::find(allowed.begin(), allowed.end(), route.method) ==
            allowed.end()) {
      allowed.push_back(route.method);
    }
  }
  if (allowed.empty()) {
    respond(HttpResponse::Error(absl::NotFoundError(
        "no endpoint at " + request.method + " " + request.path +
        "; check the path against the API reference (docs/openapi.yaml)")));
    return;
  }
  std::sort(allowed.begin(), allowed.end());
  std::string allow;
  for (const std::string& method : allowed) {
    if (!allow.empty()) allow += ", ";
    allow += method;
  }
  // HttpStatusCode has no Status code for "method not allowed": 405 is set
  // here, with the same body shape as every other error.
  HttpResponse response = HttpResponse::Json(
      405, ErrorBody(absl::InvalidArgumentError(
               "method " + request.method + " is not allowed on " +
               request.path + "; use one of: " + allow)));
  response.headers.emplace_back("Allow", allow);
  respond(std::move(response));
}

}  // namespace slipway
