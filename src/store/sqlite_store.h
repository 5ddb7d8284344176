// The embedded SQLite implementation of Store (store/store.h): one file,
// `<data_dir>/slipway.db`, in WAL mode with synchronous=FULL, so a method
// that returned OK survives a crash or power loss.
//
// The schema is created and upgraded by numbered, forward-only migrations
// applied at open time; the number of the last one applied is kept in
// PRAGMA user_version and is the data directory's format version. A
// directory written by a newer Slipway is refused (FailedPrecondition), never
// downgraded or half-read.
//
// Several processes may open the same data directory: writes take SQLite's
// write lock for the whole method (BEGIN IMMEDIATE) and wait up to
// `busy_timeout_ms` for it before answering Unavailable.
//
// Ownership: the returned Store owns the database connection and closes it
// when destroyed; `clock` must outlive it.
// Thread safety: the Store is safe for concurrent use (one connection,
// serialized by a mutex).
#ifndef SLIPWAY_STORE_SQLITE_STORE_H_
#define SLIPWAY_STORE_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "store/store.h"

namespace slipway {

struct SqliteStoreOptions {
  // How long a method waits for another connection's write lock.
  int busy_timeout_ms = 5000;
};

// Opens (creating when missing) `<data_dir>/slipway.db`, creating
// `data_dir` too, and applies the migrations it lacks.
//   FailedPrecondition: the directory has a newer format version than this
//     binary supports, or it cannot be written.
//   DataLoss: slipway.db is not a (readable) SQLite database.
//   Unavailable: another process held the database beyond the busy timeout.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& data_dir, Clock* clock,
    const SqliteStoreOptions& options = {});

// The data directory format version this binary writes (the number of the
// newest migration it knows).
int SqliteStoreFormatVersion();

}  // namespace slipway

#endif  // SLIPWAY_STORE_SQLITE_STORE_H_
