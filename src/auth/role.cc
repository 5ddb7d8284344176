#include "auth/role.h"

namespace slipway {

namespace {
constexpr Role kRoles[] = {Role::kViewer, Role::kOperator, Role::kApprover,
                           Role::kAdmin};
}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kApprover:
      return "approver";
    case Role::kAdmin:
      return "admin";
  }
  return "admin";
}

absl::StatusOr<Role> ParseRole(std::string_view name) {
  for (Role role : kRoles) {
    if (RoleName(role) == name) return role;
  }
  return absl::InvalidArgumentError(
      "unknown role '" + std::string(name) +
      "'; roles are: viewer, operator, approver, admin");
}

}  // namespace slipway
