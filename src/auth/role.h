// Roles of API tokens, ordered: each role may do everything the roles
// before it may.
//   viewer    reads the control plane (every GET)
//   operator  applies specs, rolls back, runs pipelines, fires events,
//             moves aliases, imports models
//   approver  what an operator may, plus approving requests
//   admin     everything, including managing tokens
// Thread safety: pure functions.
#ifndef SLIPWAY_AUTH_ROLE_H_
#define SLIPWAY_AUTH_ROLE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace slipway {

enum class Role { kViewer = 0, kOperator = 1, kApprover = 2, kAdmin = 3 };

// "viewer", "operator", "approver", "admin".
std::string_view RoleName(Role role);

// The role named `name`; InvalidArgument listing the roles otherwise.
absl::StatusOr<Role> ParseRole(std::string_view name);

// True when a token with role `held` may do what needs role `needed`.
inline bool RoleAllows(Role held, Role needed) {
  return static_cast<int>(held) >= static_cast<int>(needed);
}

}  // namespace slipway

#endif  // SLIPWAY_AUTH_ROLE_H_
