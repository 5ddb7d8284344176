// Building blocks of the control plane's JSON handlers, shared by the
// route files of the api module: handlers that return
// StatusOr<HttpResponse>, JSON answers, stored JSON and times as the API
// shows them, and query parameters.
#ifndef SLIPWAY_API_HANDLERS_H_
#define SLIPWAY_API_HANDLERS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "auth/tokens.h"
#include "nlohmann/json.hpp"
#include "serving/http.h"

namespace slipway {

// Wraps a handler body that returns StatusOr<HttpResponse>; an error
// becomes the JSON error answer with the status's HTTP code.
template <typename F>
HttpHandler Handle(F f) {
  return [f = std::move(f)](const HttpRequest& request,
                            const PathParams& params) -> HttpResponse {
    absl::StatusOr<HttpResponse> response = f(request, params);
    if (!response.ok()) return HttpResponse::Error(response.status());
    return *std::move(response);
  };
}

// The same for a handler that also takes the caller's token.
template <typename F>
std::function<HttpResponse(const HttpRequest&, const PathParams&,
                           const ApiToken&)>
HandleCaller(F f) {
  return
      [f = std::move(f)](const HttpRequest& request, const PathParams& params,
                         const ApiToken& caller) -> HttpResponse {
        absl::StatusOr<HttpResponse> response = f(request, params, caller);
        if (!response.ok()) return HttpResponse::Error(response.status());
        return *std::move(response);
      };
}

HttpResponse JsonResponse(int status, const nlohmann::json& body);

// Parses a stored JSON text; an unparsable one is shown as a string rather
// than failing the whole answer. "" is {}.
nlohmann::json StoredJson(const std::string& text);

// A wall-clock time as the API shows it; null for 0 (never).
nlohmann::json Timestamp(int64_t micros);

// Query parameter `name` as a non-negative integer, `fallback` when absent.
absl::StatusOr<uint64_t> QueryNumber(const HttpRequest& request,
                                     const std::string& name,
                                     uint64_t fallback);

// Query parameter `name`, "" when absent.
std::string QueryText(const HttpRequest& request, const std::string& name);

}  // namespace slipway

#endif  // SLIPWAY_API_HANDLERS_H_
