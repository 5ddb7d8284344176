// Error handling for every Slipway module: absl::Status and absl::StatusOr,
// plus the RETURN_IF_ERROR / ASSIGN_OR_RETURN pair that Debian's Abseil
// (20220623) does not ship.
//
//   RETURN_IF_ERROR(store.Put(x));
//   RETURN_IF_ERROR(store.Put(x), "registering model churn v3");
//   ASSIGN_OR_RETURN(Table t, ReadCsv(path));
//   ASSIGN_OR_RETURN(Table t, ReadCsv(path), "ingest step");
//
// The optional context is prepended to the message ("ingest step: ..."), and
// the code is kept, so the caller still knows what to do next.
#ifndef SLIPWAY_CORE_STATUS_H_
#define SLIPWAY_CORE_STATUS_H_

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipway {

// Returns `status` with "context: " prepended to its message; OK stays OK.
absl::Status Annotate(const absl::Status& status, std::string_view context);

namespace status_internal {
inline absl::Status WithContext(absl::Status s) { return s; }
inline absl::Status WithContext(absl::Status s, std::string_view context) {
  return Annotate(s, context);
}
}  // namespace status_internal

}  // namespace slipway

#define SLIPWAY_STATUS_CONCAT_INNER_(a, b) a##b
#define SLIPWAY_STATUS_CONCAT_(a, b) SLIPWAY_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr, ...)                                \
  do {                                                            \
    ::absl::Status slipway_status_ = (expr);                      \
    if (!slipway_status_.ok()) {                                  \
      return ::slipway::status_internal::WithContext(             \
          std::move(slipway_status_) __VA_OPT__(, ) __VA_ARGS__); \
    }                                                             \
  } while (0)

#define SLIPWAY_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr, ...)  \
  auto tmp = (expr);                                         \
  if (!tmp.ok()) {                                           \
    return ::slipway::status_internal::WithContext(          \
        std::move(tmp).status() __VA_OPT__(, ) __VA_ARGS__); \
  }                                                          \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr, ...)                        \
  SLIPWAY_ASSIGN_OR_RETURN_IMPL_(                               \
      SLIPWAY_STATUS_CONCAT_(slipway_statusor_, __LINE__), lhs, \
      expr __VA_OPT__(, ) __VA_ARGS__)

#endif  // SLIPWAY_CORE_STATUS_H_
