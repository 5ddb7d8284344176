// Plain HTTP request and response types and the router that maps a method
// and a path pattern to a handler. Handlers (data plane in serving/, control
// plane in api/) see only these types; Boost.Beast stays inside
// http_server.cc.
//
// Patterns are literal segments and `{name}` captures, for example
// "/v2/models/{app}/versions/{version}/infer". A request whose path matches
// a pattern but not its method gets 405; no match gets 404; both with the
// JSON error body.
//
// Handlers come in two forms. A synchronous HttpHandler returns the answer
// and holds its thread while it works. An AsyncHttpHandler gets an
// HttpResponder and may answer later from any thread (the batcher's worker
// answers predictions), so a request waiting in a queue holds no server
// thread.
// Thread safety: add routes before the server starts; afterwards Dispatch,
// DispatchAsync and Routes may be called concurrently.
#ifndef SLIPWAY_SERVING_HTTP_H_
#define SLIPWAY_SERVING_HTTP_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace slipway {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string, percent-decoded
  std::map<std::string, std::string> query;    // decoded query parameters
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string remote_address;

  // Header value, or "" when absent. `name` must be lowercase.
  std::string Header(const std::string& name) const;
  // Content type without parameters, lowercased ("application/json").
  std::string ContentType() const;
  // ContentType() == type, without copying. `type` must be lowercase.
  bool ContentTypeIs(std::string_view type) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers

  static HttpResponse Json(int status, std::string body);
  static HttpResponse Text(int status, std::string body,
                           std::string content_type = "text/plain");
  // The one error answer: HttpStatusCode(status) and ErrorBody(status).
  static HttpResponse Error(const absl::Status& status);
};

// Delivers the one answer to a request, from any thread. Copies share that
// answer: the first call sends it and later calls are ignored (and logged),
// so an answer can never be sent twice. When the last copy is destroyed
// without a call, the request is answered 500 naming `request_line`, so a
// handler that loses its responder (a bug) cannot leave a connection
// waiting forever.
class HttpResponder {
 public:
  using Send = std::function<void(HttpResponse)>;
  // `send` receives the answer exactly once, on the thread that answered.
  // `request_line` ("POST /v1/apps/churn/predict") names the request in
  // logs and in the 500 for a dropped responder.
  HttpResponder(Send send, std::string request_line);

  void operator()(HttpResponse response) const;

 private:
  class State;
  std::shared_ptr<State> state_;
};

// Captured `{name}` segments of the matched pattern.
using PathParams = std::map<std::string, std::string>;
using HttpHandler =
    std::function<HttpResponse(const HttpRequest&, const PathParams&)>;
// `request` and `params` are valid only during the call: copy what the
// answer needs. `respond` may be called before returning or later from any
// thread.
using AsyncHttpHandler = std::function<void(
    const HttpRequest& request, const PathParams& params, HttpResponder)>;

// One registered route, as given to Router::Add.
struct RouteInfo {
  std::string method;   // "GET"
  std::string pattern;  // "/v2/models/{app}/infer"
};

class Router {
 public:
  void Add(std::string method, std::string pattern, HttpHandler handler);
  void AddAsync(std::string method, std::string pattern,
                AsyncHttpHandler handler);

  // Runs the matching handler, or answers 404/405, through `respond`: at
  // once for a synchronous handler and for 404/405, whenever it answers for
  // an asynchronous one. Exceptions from the handler propagate to the
  // caller (the server turns them into 500).
  void DispatchAsync(const HttpRequest& request, HttpResponder respond) const;
  // Runs the matching handler and returns its answer; for an asynchronous
  // handler it blocks until the handler answers, so it must not be called
  // from a thread that answer depends on. For tests and in-process callers.
  HttpResponse Dispatch(const HttpRequest& request) const;

  // Every route in the order it was added (the API reference is checked
  // against this list).
  std::vector<RouteInfo> Routes() const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{x}" marks a capture
    AsyncHttpHandler handler;           // synchronous ones are wrapped
  };
  std::vector<Route> routes_;
  // Indexes into routes_ by the pattern's segment count: a path is matched
  // only against the patterns as long as it is.
  std::vector<std::vector<size_t>> routes_by_length_;
};

}  // namespace slipway

#endif  // SLIPWAY_SERVING_HTTP_H_
