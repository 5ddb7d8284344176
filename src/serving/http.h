// Plain HTTP request and response types and the router that maps a method
// and a path pattern to a handler. Handlers (data plane in serving/, control
// plane in api/) see only these types; Boost.Beast stays inside
// http_server.cc.
//
// Patterns are literal segments and `{name}` captures, for example
// "/v2/models/{app}/versions/{version}/infer". A request whose path matches
// a pattern but not its method gets 405; no match gets 404; both with the
// JSON error body.
// Thread safety: add routes before the server starts; afterwards Dispatch
// may be called concurrently.
#ifndef SLIPWAY_SERVING_HTTP_H_
#define SLIPWAY_SERVING_HTTP_H_

#include <functional>
#include <map>
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

// Captured `{name}` segments of the matched pattern.
using PathParams = std::map<std::string, std::string>;
using HttpHandler =
    std::function<HttpResponse(const HttpRequest&, const PathParams&)>;

class Router {
 public:
  void Add(std::string method, std::string pattern, HttpHandler handler);
  // Runs the matching handler, or answers 404/405.
  HttpResponse Dispatch(const HttpRequest& request) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{x}" marks a capture
    HttpHandler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace slipway

#endif  // SLIPWAY_SERVING_HTTP_H_
