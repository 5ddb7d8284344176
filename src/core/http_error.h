// The one mapping from absl::Status to an HTTP answer, used by every handler
// (data plane and control plane), and the one error body shape:
//   {"error": "<message naming the object and the fix>"}
#ifndef SLIPWAY_CORE_HTTP_ERROR_H_
#define SLIPWAY_CORE_HTTP_ERROR_H_

#include <string>

#include "absl/status/status.h"

namespace slipway {

// HTTP status code for a non-OK status; 200 for OK.
//   InvalidArgument, FailedPrecondition(*), OutOfRange -> 400
//   Unauthenticated -> 401, PermissionDenied -> 403, NotFound -> 404
//   AlreadyExists, Aborted -> 409, ResourceExhausted -> 429, Unavailable ->
//   503, DeadlineExceeded -> 504, Unimplemented -> 501, everything else -> 500.
// (*) FailedPrecondition means "the system is not in the state the request
// needs" (for example a run that is already finished): 409.
int HttpStatusCode(const absl::Status& status);

// `{"error": "..."}` with the status message, JSON-escaped.
std::string ErrorBody(const absl::Status& status);

}  // namespace slipway

#endif  // SLIPWAY_CORE_HTTP_ERROR_H_
