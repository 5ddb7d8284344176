// Who may call what: the minimum role of every control-plane route
// (`/api/v1/...`), in one table. The control plane enforces it
// (control_plane.h), access_test walks it with a token of each role over
// HTTP, and openapi_test checks that docs/openapi.yaml states the same role
// (`x-slipway-role`) on each operation.
//
// The data plane (/v1, /v2, /metrics, /healthz, /readyz) is not in the
// table: it is open, except predict and infer of an app whose spec says
// `endpoint.auth: token`, which take a valid token of any role.
// Thread safety: pure functions over constant data.
#ifndef SLIPWAY_API_ACCESS_H_
#define SLIPWAY_API_ACCESS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "auth/role.h"
#include "auth/tokens.h"
#include "serving/http.h"

namespace slipway {

struct RouteAccess {
  std::string_view method;   // "GET"
  std::string_view pattern;  // "/api/v1/apps/{app}"
  Role role;                 // the least role that may call it
};

// Every control-plane route and its minimum role, in registration order.
const std::vector<RouteAccess>& ControlPlaneAccess();

// The minimum role of a route; nullopt when the table does not list it.
std::optional<Role> RequiredRole(std::string_view method,
                                 std::string_view pattern);

// OK when `caller` may call `method pattern`, which needs `needed`; else
// PermissionDenied naming the token, its role, the route and the role it
// needs.
absl::Status CheckRole(const ApiToken& caller, Role needed,
                       std::string_view method, std::string_view pattern);

// The answer to a refused request: the one error shape, plus
// `WWW-Authenticate: Bearer` on a 401.
HttpResponse AccessRefusal(const absl::Status& status);

}  // namespace slipway

#endif  // SLIPWAY_API_ACCESS_H_
