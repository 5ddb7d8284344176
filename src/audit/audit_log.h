// AuditLog: Slipway's tamper-evident record of every state change (an
// apply, a run starting or finishing, a model registered, an alias moved, an
// approval decided, a token created or revoked), with who made it, when,
// what it concerns and the object before and after.
//
// The records live in the store (Store::AppendAudit), each carrying the
// SHA-256 of the one before it, so changing a record breaks the chain. The
// chain alone cannot show that its newest records were deleted, or that the
// whole chain was recomputed after an edit; for that the log also keeps the
// head (entry count and newest hash) in a file outside the database,
// DATA_DIR/audit.head, one line:
//   "slipway-audit-head v1 <count> <hash>\n"
// written atomically (Filesystem::WriteFileAtomic). Verify compares the
// table with both its own chain and that file, and names the first entry
// that does not match.
//
// The head only ever moves forward along the chain: Record writes it only
// when the new record chains onto the head the file holds (directly, or
// through records another writer appended in between), so an append after
// tampering never overwrites the evidence.
//
// Ownership: `store` and `fs` are borrowed and must outlive the log;
// observers are borrowed too.
// Thread safety: safe for concurrent use. Record and Verify are serialized
// by one mutex, so head writes happen in append order and Verify never sees
// a record whose head is still being written.
#ifndef SLIPWAY_AUDIT_AUDIT_LOG_H_
#define SLIPWAY_AUDIT_AUDIT_LOG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/filesystem.h"
#include "nlohmann/json.hpp"
#include "store/store.h"

namespace slipway {

// The head file's name in the data directory.
inline constexpr char kAuditHeadFile[] = "audit.head";

// Told about every record the log appends (webhooks, live feeds).
class AuditObserver {
 public:
  virtual ~AuditObserver() = default;
  // Called after `record` is appended and its head written, on the thread
  // that called AuditLog::Record, while the log's lock is held: it must
  // return quickly and must not call back into the log.
  virtual void OnAudit(const AuditRecord& record) = 0;
};

// What AuditLog::Verify found.
struct AuditVerification {
  bool ok = false;
  int64_t records = 0;  // records in the table
  // The first record that fails: one changed after it was written, one that
  // does not chain onto its predecessor, the first missing one (table count
  // + 1 when the newest were deleted), or the head's entry when the chain
  // was rewritten. 0 when no record is to blame (an intact log, or a head
  // file that is missing or unreadable).
  int64_t first_bad_seq = 0;
  // What is wrong and what it means; empty when ok.
  std::string problem;
  // The newest record's hash in the table (the genesis hash when it is
  // empty). Copied somewhere else, it lets a later verify detect a rewrite
  // of both the table and the head file.
  std::string head_hash;
};

class AuditLog {
 public:
  // Opens the log over `store`, with its head file at `head_path`
  // (DATA_DIR/audit.head), and settles the head:
  //   - no head file, empty table: writes "0 <genesis hash>";
  //   - no head file, records in the table: rebuilds the head from the
  //     table, logs a warning and appends an "audit.head_rebuilt" record
  //     (actor "server", object "audit head"), so the event is on the record;
  //   - a head behind the table by records that chain onto its hash (a crash
  //     between an append and its head write): brings the head forward;
  //   - anything else (a head ahead of the table, a chain that does not
  //     connect, an unreadable head file) is left as it is for Verify to
  //     report: tampering never keeps the server from starting.
  // Errors: the store's, and a head file that cannot be written.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(Store* store,
                                                        Filesystem* fs,
                                                        std::string head_path);

  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends `entry` (Store::AppendAudit), writes the head, then tells every
  // observer. Returns the record as stored; an error means nothing was
  // recorded (InvalidArgument for a missing actor, action or object; the
  // store's errors otherwise). A head file that cannot be written, or a
  // record that does not chain onto it, does not fail the call (the record
  // is in the log): it is logged ("audit.head_not_written"), Verify reports
  // it, and the next Record or Open moves the head forward when the chain
  // allows it.
  absl::StatusOr<AuditRecord> Record(const AuditEntry& entry);

  // REQUIRES: called before any other thread calls Record; `observer`
  // outlives the log.
  void AddObserver(AuditObserver* observer);

  // Matching records, oldest first (Store::ListAudit).
  absl::StatusOr<std::vector<AuditRecord>> List(const AuditFilter& filter);

  // Reads every record and checks, in order: seq runs 1..n without gaps,
  // each record's hash matches its contents (AuditRecordHash), each
  // prev_hash is the hash of the record before (the genesis hash for the
  // first), and the head file agrees with the table (same count and newest
  // hash; a head behind the table must name a record of the chain). The
  // first failure is reported; errors are only the store's.
  absl::StatusOr<AuditVerification> Verify();

  const std::string& head_path() const { return head_path_; }

 private:
  AuditLog(Store* store, Filesystem* fs, std::string head_path);

  // What the head file says: the log had `count` entries, the newest
  // hashing to `hash` (the genesis hash for an empty log).
  struct Head {
    int64_t count = 0;
    std::string hash;
  };
  static absl::StatusOr<Head> ParseHead(std::string_view text);
  // NotFound when the file is missing; DataLoss when it is malformed.
  absl::StatusOr<Head> ReadHead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteHead(int64_t count, const std::string& hash)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Settles the head at Open (see Open).
  absl::Status Settle() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the head file forward to `record` when `record` chains onto the
  // head it holds; logs why not otherwise.
  void AdvanceHead(const AuditRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* const store_;
  Filesystem* const fs_;
  const std::string head_path_;

  absl::Mutex mu_;
  std::vector<AuditObserver*> observers_ ABSL_GUARDED_BY(mu_);
};

// The record as JSON for the API and webhooks:
//   {"seq", "at" ("2026-11-27T12:58:37.123Z", as the API writes times),
//    "at_micros" (unix micros, the value the hash covers), "actor",
//    "action", "app", "object", "before", "after" (embedded JSON values; a
//    string when the stored text is not JSON), "prev_hash", "hash"}
nlohmann::json ToJson(const AuditRecord& record);

}  // namespace slipway

#endif  // SLIPWAY_AUDIT_AUDIT_LOG_H_
