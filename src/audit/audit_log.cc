#include "audit/audit_log.h"

#include <charconv>
#include <optional>
#include <string_view>
#include <utility>

#include "core/clock.h"
#include "core/hash.h"
#include "core/logging.h"
#include "core/status.h"

namespace slipway {
namespace {

constexpr std::string_view kHeadPrefix = "slipway-audit-head v1 ";

std::string HeadLine(int64_t count, const std::string& hash) {
  std::string line(kHeadPrefix);
  line += std::to_string(count);
  line += ' ';
  line += hash;
  line += '\n';
  return line;
}

// "audit record 7 (alias.move by api:alice at 2026-11-27T12:58:37.123Z)".
std::string Describe(const AuditRecord& r) {
  return "audit record " + std::to_string(r.seq) + " (" + r.action + " by " +
         r.actor + " at " + FormatTimestamp(r.at) + ")";
}

std::string RecordName(int64_t seq) {
  return seq == 0 ? std::string("the start of the log")
                  : "record " + std::to_string(seq);
}

struct ChainBreak {
  int64_t seq = 0;
  std::string problem;
};

// Checks `records` (ascending seq) as the continuation of a chain whose
// newest record is `after_seq` with hash `after_hash` (0 and the genesis
// hash for the whole log): consecutive seqs, each hash matching its record,
// each prev_hash the hash before it. Returns the first break.
std::optional<ChainBreak> FindChainBreak(
    const std::vector<AuditRecord>& records, int64_t after_seq,
    const std::string& after_hash) {
  int64_t expected = after_seq + 1;
  std::string prev = after_hash;
  for (const AuditRecord& r : records) {
    if (r.seq != expected) {
      std::string problem = "audit record " + std::to_string(expected) +
                            " is missing: the table goes from " +
                            RecordName(expected - 1) + " to record " +
                            std::to_string(r.seq) +
                            ", so records were deleted from it";
      return ChainBreak{expected, std::move(problem)};
    }
    const std::string actual = AuditRecordHash(r);
    if (actual != r.hash) {
      return ChainBreak{r.seq, Describe(r) +
                                   " does not match its hash: it was changed "
                                   "after it was written (stored hash " +
                                   r.hash + ", contents hash to " + actual +
                                   ")"};
    }
    if (r.prev_hash != prev) {
      std::string problem = "audit record " + std::to_string(r.seq) +
                            " does not chain onto " + RecordName(r.seq - 1) +
                            " (prev_hash " + r.prev_hash + " != " + prev +
                            "): one of the two was rewritten";
      return ChainBreak{r.seq, std::move(problem)};
    }
    prev = r.hash;
    ++expected;
  }
  return std::nullopt;
}

// A stored before/after text as a JSON value (a string when it is not JSON).
nlohmann::json Embedded(const std::string& text) {
  nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded()) return nlohmann::json(text);
  return value;
}

}  // namespace

AuditLog::AuditLog(Store* store, Filesystem* fs, std::string head_path)
    : store_(store), fs_(fs), head_path_(std::move(head_path)) {}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(
    Store* store, Filesystem* fs, std::string head_path) {
  std::unique_ptr<AuditLog> log(new AuditLog(store, fs, std::move(head_path)));
  {
    absl::MutexLock lock(&log->mu_);
    RETURN_IF_ERROR(log->Settle(), "opening the audit log");
  }
  return log;
}

absl::StatusOr<AuditLog::Head> AuditLog::ParseHead(std::string_view text) {
  const absl::Status malformed = absl::DataLossError(
      "it does not hold one line \"slipway-audit-head v1 <count> <hash>\"");
  if (text.substr(0, kHeadPrefix.size()) != kHeadPrefix ||
      text.back() != '\n') {
    return malformed;
  }
  text.remove_prefix(kHeadPrefix.size());
  text.remove_suffix(1);
  const size_t space = text.find(' ');
  if (space == std::string_view::npos) return malformed;
  std::string_view count_text = text.substr(0, space);
  std::string_view hash = text.substr(space + 1);
  Head head;
  auto [end, ec] = std::from_chars(
      count_text.data(), count_text.data() + count_text.size(), head.count);
  if (ec != std::errc() || end != count_text.data() + count_text.size() ||
      count_text.empty() || head.count < 0 || !IsSha256Hex(hash)) {
    return malformed;
  }
  head.hash = std::string(hash);
  return head;
}

absl::StatusOr<AuditLog::Head> AuditLog::ReadHead() {
  if (!fs_->Exists(head_path_)) {
    return absl::NotFoundError("the audit head file " + head_path_ +
                               " is missing");
  }
  absl::StatusOr<std::string> text = fs_->ReadFile(head_path_);
  if (!text.ok()) {
    return Annotate(text.status(),
                    "the audit head file " + head_path_ + " cannot be read");
  }
  absl::StatusOr<Head> head = ParseHead(*text);
  if (!head.ok()) {
    return Annotate(head.status(),
                    "the audit head file " + head_path_ + " is damaged");
  }
  return head;
}

absl::Status AuditLog::WriteHead(int64_t count, const std::string& hash) {
  return Annotate(fs_->WriteFileAtomic(head_path_, HeadLine(count, hash)),
                  "writing the audit head file " + head_path_);
}

absl::Status AuditLog::Settle() {
  absl::StatusOr<Head> head = ReadHead();
  if (head.ok()) {
    AuditFilter after;
    after.after_seq = head->count;
    ASSIGN_OR_RETURN(std::vector<AuditRecord> newer, store_->ListAudit(after));
    if (newer.empty()) return absl::OkStatus();
    const AuditRecord& newest = newer.back();
    if (std::optional<ChainBreak> gap =
            FindChainBreak(newer, head->count, head->hash)) {
      LogWarning("audit.head_not_moved",
                 {{"head_file", head_path_},
                  {"head_entries", std::to_string(head->count)},
                  {"table_entries", std::to_string(newest.seq)},
                  {"problem", gap->problem},
                  {"fix", "run `slipway audit verify`"}});
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(WriteHead(newest.seq, newest.hash));
    LogWarning("audit.head_brought_forward",
               {{"head_file", head_path_},
                {"from_entries", std::to_string(head->count)},
                {"to_entries", std::to_string(newest.seq)},
                {"reason",
                 "the newest entries were stored but their head was not "
                 "written (the process stopped in between)"}});
    return absl::OkStatus();
  }
  if (!absl::IsNotFound(head.status())) {
    // Left for Verify to report: rebuilding would hide whatever was done
    // to the file.
    LogWarning("audit.head_unreadable",
               {{"head_file", head_path_},
                {"problem", std::string(head.status().message())},
                {"fix",
                 "run `slipway audit verify`; to start a new head from the "
                 "table, remove the file and restart (the rebuild is "
                 "recorded as audit.head_rebuilt)"}});
    return absl::OkStatus();
  }

  ASSIGN_OR_RETURN(std::vector<AuditRecord> records,
                   store_->ListAudit(AuditFilter{}));
  if (records.empty()) return WriteHead(0, kAuditGenesisHash);
  const AuditRecord& newest = records.back();
  RETURN_IF_ERROR(WriteHead(newest.seq, newest.hash));
  LogWarning("audit.head_rebuilt",
             {{"head_file", head_path_},
              {"entries", std::to_string(newest.seq)},
              {"hash", newest.hash},
              {"reason",
               "the head file was missing while the table holds entries; "
               "entries deleted or rewritten before now cannot be detected"}});
  nlohmann::json after = {{"head_file", head_path_},
                          {"entries", newest.seq},
                          {"hash", newest.hash}};
  AuditEntry entry;
  entry.actor = "server";
  entry.action = "audit.head_rebuilt";
  entry.object = "audit head";
  entry.after_json = after.dump();
  ASSIGN_OR_RETURN(AuditRecord rebuilt, store_->AppendAudit(entry));
  AdvanceHead(rebuilt);
  return absl::OkStatus();
}

void AuditLog::AdvanceHead(const AuditRecord& record) {
  constexpr std::string_view kCheck =
      "run `slipway audit verify` to see what the table and the head file "
      "disagree on";
  auto not_written = [&](std::string_view problem, std::string_view fix) {
    LogError("audit.head_not_written", {{"seq", std::to_string(record.seq)},
                                        {"head_file", head_path_},
                                        {"problem", problem},
                                        {"fix", fix}});
  };
  absl::StatusOr<Head> head = ReadHead();
  if (!head.ok()) {
    return not_written(std::string(head.status().message()), kCheck);
  }
  if (record.seq <= head->count) {
    return not_written(
        "the head file records " + std::to_string(head->count) +
            " entries but this record is number " + std::to_string(record.seq) +
            ": records were deleted from the table after the head was written",
        kCheck);
  }
  if (record.seq != head->count + 1 || record.prev_hash != head->hash) {
    // Another writer appended in between, or the head was not written for a
    // while: move forward only along an intact chain.
    AuditFilter between;
    between.after_seq = head->count;
    between.limit = static_cast<int>(record.seq - head->count);
    absl::StatusOr<std::vector<AuditRecord>> records =
        store_->ListAudit(between);
    if (!records.ok()) {
      return not_written(std::string(records.status().message()),
                         "the next record or a restart moves the head");
    }
    if (records->empty() || records->back().seq != record.seq) {
      return not_written("the table's records after the head's entry " +
                             std::to_string(head->count) + " do not end at " +
                             std::to_string(record.seq),
                         kCheck);
    }
    if (std::optional<ChainBreak> gap =
            FindChainBreak(*records, head->count, head->hash)) {
      return not_written(gap->problem, kCheck);
    }
  }
  absl::Status written = WriteHead(record.seq, record.hash);
  if (!written.ok()) {
    not_written(std::string(written.message()),
                "make the data directory writable (free space, permissions); "
                "the next record or a restart moves the head forward");
  }
}

absl::StatusOr<AuditRecord> AuditLog::Record(const AuditEntry& entry) {
  auto check_json = [&](std::string_view field,
                        const std::string& text) -> absl::Status {
    if (nlohmann::json::accept(text)) return absl::OkStatus();
    return absl::InvalidArgumentError(
        "audit entry '" + entry.action + "' on '" + entry.object +
        "': " + std::string(field) +
        " is not valid JSON; give a JSON value (\"null\" for none)");
  };
  RETURN_IF_ERROR(check_json("before_json", entry.before_json));
  RETURN_IF_ERROR(check_json("after_json", entry.after_json));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(AuditRecord record, store_->AppendAudit(entry));
  AdvanceHead(record);
  for (AuditObserver* observer : observers_) observer->OnAudit(record);
  return record;
}

void AuditLog::AddObserver(AuditObserver* observer) {
  absl::MutexLock lock(&mu_);
  observers_.push_back(observer);
}

absl::StatusOr<std::vector<AuditRecord>> AuditLog::List(
    const AuditFilter& filter) {
  return store_->ListAudit(filter);
}

absl::StatusOr<AuditVerification> AuditLog::Verify() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<AuditRecord> records,
                   store_->ListAudit(AuditFilter{}));
  AuditVerification v;
  v.records = static_cast<int64_t>(records.size());
  v.head_hash = records.empty() ? kAuditGenesisHash : records.back().hash;
  auto fail = [&](int64_t seq, std::string problem) {
    v.ok = false;
    v.first_bad_seq = seq;
    v.problem = std::move(problem);
    return v;
  };

  if (std::optional<ChainBreak> gap =
          FindChainBreak(records, 0, kAuditGenesisHash)) {
    return fail(gap->seq, std::move(gap->problem));
  }

  absl::StatusOr<Head> head = ReadHead();
  if (!head.ok()) {
    return fail(0, std::string(head.status().message()) +
                       ": deleted or rewritten entries cannot be detected; "
                       "restart the server to rebuild the head from the "
                       "table (recorded as audit.head_rebuilt), after "
                       "checking the table against a head hash kept "
                       "elsewhere");
  }
  const int64_t n = v.records;
  if (head->count > n) {
    return fail(n + 1, "the head file " + head_path_ + " records " +
                           std::to_string(head->count) + " entries ending in " +
                           head->hash + ", but the table holds " +
                           std::to_string(n) + ": entries after " +
                           std::to_string(n) + " were deleted");
  }
  if (head->count == 0 && head->hash != kAuditGenesisHash) {
    return fail(0, "the head file " + head_path_ +
                       " records an empty log with hash " + head->hash +
                       ", but an empty log ends in the genesis hash: the "
                       "head file was edited");
  }
  if (head->count > 0) {
    // The chain check above guarantees records[i].seq == i + 1.
    const std::string& table_hash = records[head->count - 1].hash;
    if (head->hash != table_hash) {
      return fail(head->count, "the head file records entry " +
                                   std::to_string(head->count) + " with hash " +
                                   head->hash + ", the table's entry " +
                                   std::to_string(head->count) + " hashes to " +
                                   table_hash + ": the chain was rewritten");
    }
  }
  if (head->count < n) {
    return fail(head->count + 1,
                "the table holds " + std::to_string(n) +
                    " entries but the head file " + head_path_ +
                    " records only " + std::to_string(head->count) +
                    ": entries " + std::to_string(head->count + 1) + " to " +
                    std::to_string(n) +
                    " were stored without their head (the server stopped "
                    "in between, or they were added outside slipway); "
                    "restarting the server brings the head forward when "
                    "they chain on");
  }
  v.ok = true;
  return v;
}

nlohmann::json ToJson(const AuditRecord& record) {
  return nlohmann::json{{"seq", record.seq},
                        {"at", FormatTimestamp(record.at)},
                        {"at_micros", record.at},
                        {"actor", record.actor},
                        {"action", record.action},
                        {"app", record.app},
                        {"object", record.object},
                        {"before", Embedded(record.before_json)},
                        {"after", Embedded(record.after_json)},
                        {"prev_hash", record.prev_hash},
                        {"hash", record.hash}};
}

}  // namespace slipway
