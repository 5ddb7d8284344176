// Identifiers: random, URL-safe, sortable by creation time.
// Thread safety: safe for concurrent use.
#ifndef SLIPWAY_CORE_IDS_H_
#define SLIPWAY_CORE_IDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace slipway {

// "<prefix>-<12 hex digits of unix millis><8 random hex digits>", for
// example "run-018c1a2b3c4d9f00e1a2". Ids from one process sort by time.
std::string NewId(std::string_view prefix, int64_t unix_micros);

// The unix milliseconds NewId wrote into `id`; nullopt for an id NewId did
// not make (no "-" followed by exactly 20 lowercase hex digits at its end).
std::optional<int64_t> IdMillis(std::string_view id);

// The prediction log's ids: row i of a request of several rows is logged
// as "<request id>/<i>"; a shadow's prediction of a request as "<request
// id>~shadow" (row i: "<request id>~shadow/<i>").
//
// The id a shadow's prediction is logged under, for the id `logged_id` of
// the answer it shadows (either form of the first two).
std::string ShadowLoggedId(std::string_view logged_id);
// The request id a logged id belongs to (any of the four forms).
std::string_view LoggedRequestId(std::string_view logged_id);

// True when `name` is a valid object name (app, alias, pipeline, step,
// feature): 1 to 63 characters of [A-Za-z0-9_.-], starting with a letter or
// digit. Names pass this check before they reach a path or a query.
bool IsValidName(std::string_view name);

}  // namespace slipway

#endif  // SLIPWAY_CORE_IDS_H_
