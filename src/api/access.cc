#include "api/access.h"

namespace slipway {

const std::vector<RouteAccess>& ControlPlaneAccess() {
  static const auto* table = new std::vector<RouteAccess>{
      // Apps.
      {"POST", "/api/v1/apps", Role::kOperator},
      {"GET", "/api/v1/apps", Role::kViewer},
      {"GET", "/api/v1/apps/{app}", Role::kViewer},
      {"POST", "/api/v1/apps/{app}/rollback", Role::kOperator},
      // Runs and events.
      {"POST", "/api/v1/apps/{app}/runs", Role::kOperator},
      {"POST", "/api/v1/apps/{app}/events", Role::kOperator},
      {"GET", "/api/v1/apps/{app}/runs", Role::kViewer},
      {"GET", "/api/v1/runs/{run}", Role::kViewer},
      {"GET", "/api/v1/runs/{run}/steps/{step}/log", Role::kViewer},
      {"POST", "/api/v1/runs/{run}/cancel", Role::kOperator},
      // Models and aliases.
      {"GET", "/api/v1/apps/{app}/models", Role::kViewer},
      {"GET", "/api/v1/apps/{app}/models/{version}", Role::kViewer},
      {"POST", "/api/v1/apps/{app}/models", Role::kOperator},
      {"GET", "/api/v1/apps/{app}/models/{version}/diff/{other}",
       Role::kViewer},
      {"GET", "/api/v1/apps/{app}/models/{version}/card", Role::kViewer},
      {"GET", "/api/v1/apps/{app}/models/{version}/artifact", Role::kViewer},
      {"GET", "/api/v1/apps/{app}/models/{version}/baseline", Role::kViewer},
      {"PUT", "/api/v1/apps/{app}/aliases/{alias}", Role::kOperator},
      {"POST", "/api/v1/apps/{app}/aliases", Role::kOperator},
      {"GET", "/api/v1/apps/{app}/aliases/history", Role::kViewer},
      {"GET", "/api/v1/serving", Role::kViewer},
      {"GET", "/api/v1/apps/{app}/deliveries", Role::kViewer},
      // Monitoring.
      {"GET", "/api/v1/alerts", Role::kViewer},
      {"GET", "/api/v1/apps/{app}/monitor", Role::kViewer},
      // Approvals and the audit log.
      {"GET", "/api/v1/approvals", Role::kViewer},
      {"GET", "/api/v1/approvals/{approval}", Role::kViewer},
      {"POST", "/api/v1/approvals/{approval}/approve", Role::kApprover},
      {"POST", "/api/v1/approvals/{approval}/reject", Role::kApprover},
      {"GET", "/api/v1/audit", Role::kViewer},
      {"GET", "/api/v1/audit/verify", Role::kViewer},
      {"GET", "/api/v1/apps/{app}/history", Role::kViewer},
      // Tokens.
      {"POST", "/api/v1/tokens", Role::kAdmin},
      {"GET", "/api/v1/tokens", Role::kAdmin},
      {"DELETE", "/api/v1/tokens/{token}", Role::kAdmin},
      // Servers started with --test-clock only.
      {"GET", "/api/v1/admin/clock", Role::kAdmin},
      {"POST", "/api/v1/admin/clock", Role::kAdmin},
  };
  return *table;
}

std::optional<Role> RequiredRole(std::string_view method,
                                 std::string_view pattern) {
  for (const RouteAccess& route : ControlPlaneAccess()) {
    if (route.method == method && route.pattern == pattern) return route.role;
  }
  return std::nullopt;
}

absl::Status CheckRole(const ApiToken& caller, Role needed,
                       std::string_view method, std::string_view pattern) {
  if (RoleAllows(caller.role, needed)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      "API token '" + caller.name + "' (" + caller.id + ") has role " +
      std::string(RoleName(caller.role)) + ", but " + std::string(method) +
      " " + std::string(pattern) + " needs role " +
      std::string(RoleName(needed)) +
      " or higher; ask an admin for such a token (`slipway tokens create "
      "--role " +
      std::string(RoleName(needed)) + "`)");
}

HttpResponse AccessRefusal(const absl::Status& status) {
  HttpResponse response = HttpResponse::Error(status);
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    response.headers.emplace_back("WWW-Authenticate",
                                  "Bearer realm=\"slipway\"");
  }
  return response;
}

}  // namespace slipway
