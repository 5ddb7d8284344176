#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "core/filesystem.h"
#include "core/hash.h"
#include "core/ids.h"
#include "core/status.h"

namespace slipway {
namespace {

constexpr char kDatabaseFile[] = "slipway.db";

// Forward-only schema history. Migration i (1-based) takes the database from
// format version i-1 to i. A shipped migration is never edited: a change to
// the schema is a new entry appended at the end.
constexpr const char* kMigrations[] = {
    // 1: apps, revisions, runs, steps, model versions, aliases.
    R"sql(
CREATE TABLE apps (
  name TEXT NOT NULL PRIMARY KEY,
  created_at INTEGER NOT NULL,
  current_revision INTEGER NOT NULL
);
CREATE TABLE app_revisions (
  app TEXT NOT NULL REFERENCES apps(name),
  revision INTEGER NOT NULL,
  spec_yaml TEXT NOT NULL,
  spec_sha256 TEXT NOT NULL,
  source_dir TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (app, revision)
);
CREATE TABLE runs (
  id TEXT NOT NULL PRIMARY KEY,
  app TEXT NOT NULL,
  pipeline TEXT NOT NULL,
  revision INTEGER NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  FOREIGN KEY (app, revision) REFERENCES app_revisions(app, revision)
);
CREATE INDEX runs_by_app_newest_first ON runs(app, created_at DESC);
CREATE INDEX runs_newest_first ON runs(created_at DESC);
CREATE INDEX runs_by_state ON runs(state);
CREATE TABLE steps (
  run_id TEXT NOT NULL REFERENCES runs(id),
  name TEXT NOT NULL,
  ordinal INTEGER NOT NULL,
  state TEXT NOT NULL,
  message TEXT NOT NULL,
  outputs_json TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, name),
  UNIQUE (run_id, ordinal)
);
CREATE TABLE model_versions (
  app TEXT NOT NULL REFERENCES apps(name),
  version INTEGER NOT NULL,
  artifact_sha256 TEXT NOT NULL,
  format TEXT NOT NULL,
  signature_json TEXT NOT NULL,
  params_json TEXT NOT NULL,
  metrics_json TEXT NOT NULL,
  data_fingerprint TEXT NOT NULL,
  row_count INTEGER NOT NULL,
  run_id TEXT NOT NULL,
  revision INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (app, version)
);
CREATE TABLE aliases (
  app TEXT NOT NULL,
  alias TEXT NOT NULL,
  version INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (app, alias),
  FOREIGN KEY (app, version) REFERENCES model_versions(app, version)
);
)sql",
    // 2: the last cron fire the scheduler acted on, per pipeline.
    R"sql(
CREATE TABLE schedule_state (
  app TEXT NOT NULL REFERENCES apps(name),
  pipeline TEXT NOT NULL,
  last_fire_micros INTEGER NOT NULL,
  PRIMARY KEY (app, pipeline)
);
)sql",
    // 3: pipelines as DAGs: a version's transform; the run a run retries;
    // per-step kind, attempts, resources, cache key and progress; the step
    // cache; run events.
    R"sql(
ALTER TABLE model_versions ADD COLUMN transform_json TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN retry_of TEXT NOT NULL DEFAULT '';
ALTER TABLE steps ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE steps ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN cpu_user_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN cpu_system_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN peak_rss_kb INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN cache_key TEXT NOT NULL DEFAULT '';
ALTER TABLE steps ADD COLUMN cached_from_run TEXT NOT NULL DEFAULT '';
ALTER TABLE steps ADD COLUMN progress_json TEXT NOT NULL DEFAULT '{}';
CREATE TABLE step_cache (
  app TEXT NOT NULL REFERENCES apps(name),
  pipeline TEXT NOT NULL,
  step TEXT NOT NULL,
  cache_key TEXT NOT NULL,
  run_id TEXT NOT NULL REFERENCES runs(id),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (app, pipeline, step, cache_key)
);
CREATE TABLE run_events (
  run_id TEXT NOT NULL REFERENCES runs(id),
  step TEXT NOT NULL,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  type TEXT NOT NULL,
  name TEXT NOT NULL,
  value_json TEXT NOT NULL,
  message TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
);
)sql",
    // 4: lineage of model versions; the history of alias moves.
    R"sql(
ALTER TABLE model_versions ADD COLUMN code_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE model_versions ADD COLUMN parent_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE model_versions ADD COLUMN runtime_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE model_versions ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE model_versions ADD COLUMN data_sources_json TEXT NOT NULL
  DEFAULT '[]';
CREATE TABLE alias_history (
  app TEXT NOT NULL REFERENCES apps(name),
  seq INTEGER NOT NULL,
  alias TEXT NOT NULL,
  from_version INTEGER NOT NULL,
  to_version INTEGER NOT NULL,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  PRIMARY KEY (app, seq)
);
)sql",
    // 5: API tokens (only the SHA-256 of each secret).
    R"sql(
CREATE TABLE tokens (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER NOT NULL,
  created_by TEXT NOT NULL
);
)sql",
    // 6: the hash-chained audit log, approvals, webhook deliveries.
    R"sql(
CREATE TABLE audit_log (
  seq INTEGER NOT NULL PRIMARY KEY,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  app TEXT NOT NULL,
  object TEXT NOT NULL,
  before_json TEXT NOT NULL,
  after_json TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX audit_log_by_app ON audit_log (app, seq);
CREATE TABLE approvals (
  id INTEGER NOT NULL PRIMARY KEY,
  app TEXT NOT NULL REFERENCES apps(name),
  kind TEXT NOT NULL,
  change_json TEXT NOT NULL,
  state TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  requested_by_token TEXT NOT NULL,
  request_comment TEXT NOT NULL,
  requested_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  decided_by TEXT NOT NULL,
  decided_by_token TEXT NOT NULL,
  decision_comment TEXT NOT NULL,
  decided_at INTEGER NOT NULL
);
CREATE INDEX approvals_by_state ON approvals (state, expires_at);
CREATE TABLE webhook_deliveries (
  id INTEGER NOT NULL PRIMARY KEY,
  app TEXT NOT NULL,
  audit_seq INTEGER NOT NULL,
  event TEXT NOT NULL,
  url TEXT NOT NULL,
  payload_json TEXT NOT NULL,
  signature TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_status INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries
  (state, next_attempt_at);
)sql",
    // 7: the training baseline profile of a model version (monitoring).
    R"sql(
ALTER TABLE model_versions ADD COLUMN baseline_sha256 TEXT NOT NULL
  DEFAULT '';
)sql",
    // 8: monitoring: the prediction log and its feedback, monitoring
    // windows, alerts and the alert engines' state.
    R"sql(
CREATE TABLE predictions (
  request_id TEXT NOT NULL PRIMARY KEY,
  app TEXT NOT NULL,
  version INTEGER NOT NULL,
  at INTEGER NOT NULL,
  prediction_json TEXT NOT NULL,
  inputs_json TEXT NOT NULL
);
CREATE INDEX predictions_by_app_time ON predictions (app, at);
CREATE TABLE feedback (
  request_id TEXT NOT NULL PRIMARY KEY REFERENCES predictions(request_id),
  app TEXT NOT NULL,
  label TEXT NOT NULL,
  kpis_json TEXT NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE INDEX feedback_by_app_time ON feedback (app, received_at);
CREATE TABLE monitor_windows (
  app TEXT NOT NULL REFERENCES apps(name),
  version INTEGER NOT NULL,
  start_at INTEGER NOT NULL,
  end_at INTEGER NOT NULL,
  rows INTEGER NOT NULL,
  profile_json TEXT NOT NULL,
  drift_json TEXT NOT NULL,
  kpis_json TEXT NOT NULL,
  PRIMARY KEY (app, version, start_at)
);
CREATE INDEX monitor_windows_by_time ON monitor_windows (app, start_at);
CREATE TABLE alerts (
  app TEXT NOT NULL REFERENCES apps(name),
  rule TEXT NOT NULL,
  state TEXT NOT NULL,
  since INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  value REAL,
  alert_json TEXT NOT NULL,
  PRIMARY KEY (app, rule)
);
CREATE TABLE alert_engines (
  app TEXT NOT NULL PRIMARY KEY REFERENCES apps(name),
  state_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
)sql",
    // 9: the prediction log in chunks (one row per app and batch, found by
    // the time in the request ids), and feedback that keeps the prediction
    // it labels, so logging a prediction costs no index entry of its own.
    R"sql(
CREATE TABLE prediction_chunks (
  id INTEGER PRIMARY KEY,
  app TEXT NOT NULL,
  first_ms INTEGER NOT NULL,
  last_ms INTEGER NOT NULL,
  first_at INTEGER NOT NULL,
  last_at INTEGER NOT NULL,
  rows INTEGER NOT NULL,
  records TEXT NOT NULL
);
CREATE INDEX prediction_chunks_by_ms ON prediction_chunks (first_ms);
CREATE INDEX prediction_chunks_by_app_time ON prediction_chunks (app, last_at);
INSERT INTO prediction_chunks (app, first_ms, last_ms, first_at, last_at,
                               rows, records)
  SELECT app, at / 1000 - 30000, at / 1000 + 30000, at, at, 1,
         request_id || char(9) || version || char(9) || at || char(9) ||
         prediction_json || char(9) || inputs_json || char(10)
  FROM predictions ORDER BY at, request_id;
CREATE TABLE labels (
  request_id TEXT NOT NULL PRIMARY KEY,
  app TEXT NOT NULL,
  version INTEGER NOT NULL,
  predicted_at INTEGER NOT NULL,
  prediction_json TEXT NOT NULL,
  label TEXT NOT NULL,
  kpis_json TEXT NOT NULL,
  received_at INTEGER NOT NULL
);
INSERT INTO labels
  SELECT f.request_id, f.app, p.version, p.at, p.prediction_json, f.label,
         f.kpis_json, f.received_at
  FROM feedback f JOIN predictions p ON p.request_id = f.request_id;
DROP TABLE feedback;
DROP TABLE predictions;
ALTER TABLE labels RENAME TO feedback;
CREATE INDEX feedback_by_app_time ON feedback (app, received_at);
CREATE INDEX feedback_by_app_prediction ON feedback (app, predicted_at);
)sql",
};

constexpr int kFormatVersion =
    static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));

// Every table, in the order CountRows reports them. Fixed names from code,
// never from input.
constexpr const char* kTables[] = {"apps",
                                   "app_revisions",
                                   "runs",
                                   "steps",
                                   "model_versions",
                                   "aliases",
                                   "schedule_state",
                                   "step_cache",
                                   "run_events",
                                   "alias_history",
                                   "tokens",
                                   "audit_log",
                                   "approvals",
                                   "webhook_deliveries",
                                   "prediction_chunks",
                                   "feedback",
                                   "monitor_windows",
                                   "alerts",
                                   "alert_engines"};

// Column lists matching the row readers below.
constexpr char kRunColumns[] =
    "id, app, pipeline, revision, state, reason, created_at, started_at, "
    "finished_at, retry_of";
constexpr char kStepColumns[] =
    "run_id, name, ordinal, state, message, outputs_json, started_at, "
    "finished_at, kind, attempts, cpu_user_micros, cpu_system_micros, "
    "peak_rss_kb, cache_key, cached_from_run, progress_json";
constexpr char kTokenColumns[] =
    "id, name, role, secret_sha256, created_at, expires_at, revoked_at, "
    "created_by";
constexpr char kModelVersionColumns[] =
    "app, version, artifact_sha256, format, signature_json, params_json, "
    "metrics_json, data_fingerprint, row_count, run_id, revision, "
    "created_at, transform_json, code_sha256, parent_version, runtime_json, "
    "created_by, data_sources_json, baseline_sha256";

bool IsFinalRunState(std::string_view state) {
  return state == "succeeded" || state == "failed" || state == "cancelled";
}

bool IsRunState(std::string_view state) {
  return state == "queued" || state == "running" || IsFinalRunState(state);
}

bool IsStepState(std::string_view state) {
  return state == "pending" || state == "skipped" || IsRunState(state);
}

std::string Quote(std::string_view name) {
  return "'" + std::string(name) + "'";
}

std::string ModelName(const std::string& app, int version) {
  return "model " + app + " v" + std::to_string(version);
}

absl::Status AppNotFound(const std::string& app) {
  return absl::NotFoundError("app " + Quote(app) +
                             " not found (slipway apply creates it)");
}

absl::Status RunNotFound(const std::string& run_id) {
  return absl::NotFoundError("run " + Quote(run_id) + " not found");
}

absl::Status RevisionNotFound(const std::string& app, int revision) {
  return absl::NotFoundError(
      "revision " + std::to_string(revision) + " of app " + Quote(app) +
      " not found (slipway apps show " + app + " lists its revisions)");
}

absl::Status ModelNotFound(const std::string& app, int version) {
  return absl::NotFoundError(ModelName(app, version) +
                             " not found (slipway models list " + app +
                             " lists its versions)");
}

// Maps a SQLite result code to the status code that tells the caller what to
// do next; `what` says which operation failed.
absl::Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string message =
      "metadata store: " + std::string(what) + ": " + sqlite3_errstr(rc);
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : nullptr;
  if (detail != nullptr && std::string_view(detail) != sqlite3_errstr(rc)) {
    message += " (" + std::string(detail) + ")";
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(
          message + ": another writer holds the database; retry");
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE ||
          rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return absl::AlreadyExistsError(message);
      }
      return absl::FailedPreconditionError(message);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message + ": free disk space");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
      return absl::FailedPreconditionError(
          message + ": check that the data directory is writable");
    default:
      return absl::InternalError(message);
  }
}

// A prepared statement with positional parameters bound in order:
//   Statement s(db, "SELECT ... WHERE app = ? AND version = ?");
//   s.Bind(app).Bind(version);
//   while (s.Step() yields true) read s.Int(0), s.Text(1) ...
// Errors from preparing or binding are kept and returned by the next Step,
// so call sites stay linear.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    if (rc != SQLITE_OK) status_ = SqliteError(db, rc, "preparing a query");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(int64_t value) {
    if (status_.ok()) Check(sqlite3_bind_int64(stmt_, ++bound_, value));
    return *this;
  }
  Statement& Bind(std::string_view value) {
    if (status_.ok()) {
      Check(sqlite3_bind_text64(stmt_, ++bound_, value.data(), value.size(),
                                SQLITE_TRANSIENT, SQLITE_UTF8));
    }
    return *this;
  }

  // NaN is bound as NULL (SQLite stores no NaN); Double reads it back.
  Statement& BindDouble(double value) {
    if (!status_.ok()) return *this;
    if (std::isnan(value)) {
      Check(sqlite3_bind_null(stmt_, ++bound_));
    } else {
      Check(sqlite3_bind_double(stmt_, ++bound_, value));
    }
    return *this;
  }

  // Makes the statement ready to bind and run again, so a batch prepares
  // its INSERT once.
  void Reset() {
    if (!status_.ok()) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    bound_ = 0;
  }

  // True when a row is ready to read, false when the statement is done.
  absl::StatusOr<bool> Step() {
    if (!status_.ok()) return status_;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    status_ = SqliteError(db_, sqlite3_extended_errcode(db_), "query failed");
    return status_;
  }

  // Runs a statement that returns no rows.
  absl::Status Run() {
    ASSIGN_OR_RETURN(bool row, Step());
    if (row) return absl::InternalError("metadata store: unexpected row");
    return absl::OkStatus();
  }

  int64_t Int(int column) { return sqlite3_column_int64(stmt_, column); }
  bool IsNull(int column) {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
  }
  // NULL reads as NaN.
  double Double(int column) {
    if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) {
      return std::numeric_limits<double>::quiet_NaN();
    }
    return sqlite3_column_double(stmt_, column);
  }
  std::string Text(int column) {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) return "";
    return std::string(
        reinterpret_cast<const char*>(text),
        static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK) status_ = SqliteError(db_, rc, "binding a parameter");
  }

  sqlite3* const db_;
  sqlite3_stmt* stmt_ = nullptr;
  int bound_ = 0;
  absl::Status status_;
};

// Appends `read` of every row `s` yields to `out`.
template <typename Record>
absl::Status ReadAll(Statement& s, Record (*read)(Statement&),
                     std::vector<Record>* out) {
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return absl::OkStatus();
    out->push_back(read(s));
  }
}

// Runs SQL text that has no parameters (transaction control, pragmas,
// migrations).
absl::Status Exec(sqlite3* db, const char* sql, std::string_view what) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    return SqliteError(db, sqlite3_extended_errcode(db), what);
  }
  return absl::OkStatus();
}

enum class TransactionMode { kRead, kWrite };

// Runs `body` in one transaction: committed when it returns OK, rolled back
// otherwise. Writes take the write lock up front (BEGIN IMMEDIATE) so that
// checks made in `body` still hold when it writes.
absl::Status Transact(sqlite3* db, TransactionMode mode,
                      absl::FunctionRef<absl::Status(sqlite3*)> body) {
  RETURN_IF_ERROR(
      Exec(db, mode == TransactionMode::kWrite ? "BEGIN IMMEDIATE" : "BEGIN",
           "starting a transaction"));
  absl::Status status = body(db);
  if (status.ok()) status = Exec(db, "COMMIT", "committing");
  if (!status.ok() && !sqlite3_get_autocommit(db)) {
    Exec(db, "ROLLBACK", "rolling back").IgnoreError();
  }
  return status;
}

absl::StatusOr<int> UserVersion(sqlite3* db) {
  Statement s(db, "PRAGMA user_version");
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::InternalError("metadata store: no user_version");
  return static_cast<int>(s.Int(0));
}

absl::Status NewerFormatError(const std::string& data_dir, int version) {
  return absl::FailedPreconditionError(
      "data directory '" + data_dir + "' has format version " +
      std::to_string(version) + ", but this slipway supports format version " +
      std::to_string(kFormatVersion) + " at most: upgrade slipway");
}

// Row readers. Column order matches the SELECT lists below.
AppRecord ReadApp(Statement& s) {
  AppRecord r;
  r.name = s.Text(0);
  r.created_at = s.Int(1);
  r.current_revision = static_cast<int>(s.Int(2));
  return r;
}

AppRevisionRecord ReadRevision(Statement& s) {
  AppRevisionRecord r;
  r.app = s.Text(0);
  r.revision = static_cast<int>(s.Int(1));
  r.spec_yaml = s.Text(2);
  r.spec_sha256 = s.Text(3);
  r.source_dir = s.Text(4);
  r.created_at = s.Int(5);
  return r;
}

RunRecord ReadRun(Statement& s) {
  RunRecord r;
  r.id = s.Text(0);
  r.app = s.Text(1);
  r.pipeline = s.Text(2);
  r.revision = static_cast<int>(s.Int(3));
  r.state = s.Text(4);
  r.reason = s.Text(5);
  r.created_at = s.Int(6);
  r.started_at = s.Int(7);
  r.finished_at = s.Int(8);
  r.retry_of = s.Text(9);
  return r;
}

StepRecord ReadStep(Statement& s) {
  StepRecord r;
  r.run_id = s.Text(0);
  r.name = s.Text(1);
  r.ordinal = static_cast<int>(s.Int(2));
  r.state = s.Text(3);
  r.message = s.Text(4);
  r.outputs_json = s.Text(5);
  r.started_at = s.Int(6);
  r.finished_at = s.Int(7);
  r.kind = s.Text(8);
  r.attempts = static_cast<int>(s.Int(9));
  r.cpu_user_micros = s.Int(10);
  r.cpu_system_micros = s.Int(11);
  r.peak_rss_kb = s.Int(12);
  r.cache_key = s.Text(13);
  r.cached_from_run = s.Text(14);
  r.progress_json = s.Text(15);
  return r;
}

ModelVersionRecord ReadModelVersion(Statement& s) {
  ModelVersionRecord r;
  r.app = s.Text(0);
  r.version = static_cast<int>(s.Int(1));
  r.artifact_sha256 = s.Text(2);
  r.format = s.Text(3);
  r.signature_json = s.Text(4);
  r.params_json = s.Text(5);
  r.metrics_json = s.Text(6);
  r.data_fingerprint = s.Text(7);
  r.row_count = s.Int(8);
  r.run_id = s.Text(9);
  r.revision = static_cast<int>(s.Int(10));
  r.created_at = s.Int(11);
  r.transform_json = s.Text(12);
  r.code_sha256 = s.Text(13);
  r.parent_version = static_cast<int>(s.Int(14));
  r.runtime_json = s.Text(15);
  r.created_by = s.Text(16);
  r.data_sources_json = s.Text(17);
  r.baseline_sha256 = s.Text(18);
  return r;
}

TokenRecord ReadToken(Statement& s) {
  TokenRecord r;
  r.id = s.Text(0);
  r.name = s.Text(1);
  r.role = s.Text(2);
  r.secret_sha256 = s.Text(3);
  r.created_at = s.Int(4);
  r.expires_at = s.Int(5);
  r.revoked_at = s.Int(6);
  r.created_by = s.Text(7);
  return r;
}

constexpr char kAuditColumns[] =
    "seq, at, actor, action, app, object, before_json, after_json, "
    "prev_hash, hash";

AuditRecord ReadAudit(Statement& s) {
  AuditRecord r;
  r.seq = s.Int(0);
  r.at = s.Int(1);
  r.actor = s.Text(2);
  r.action = s.Text(3);
  r.app = s.Text(4);
  r.object = s.Text(5);
  r.before_json = s.Text(6);
  r.after_json = s.Text(7);
  r.prev_hash = s.Text(8);
  r.hash = s.Text(9);
  return r;
}

constexpr char kApprovalColumns[] =
    "id, app, kind, change_json, state, requested_by, requested_by_token, "
    "request_comment, requested_at, expires_at, decided_by, "
    "decided_by_token, decision_comment, decided_at";

ApprovalRecord ReadApproval(Statement& s) {
  ApprovalRecord r;
  r.id = s.Int(0);
  r.app = s.Text(1);
  r.kind = s.Text(2);
  r.change_json = s.Text(3);
  r.state = s.Text(4);
  r.requested_by = s.Text(5);
  r.requested_by_token = s.Text(6);
  r.request_comment = s.Text(7);
  r.requested_at = s.Int(8);
  r.expires_at = s.Int(9);
  r.decided_by = s.Text(10);
  r.decided_by_token = s.Text(11);
  r.decision_comment = s.Text(12);
  r.decided_at = s.Int(13);
  return r;
}

constexpr char kDeliveryColumns[] =
    "id, app, audit_seq, event, url, payload_json, signature, state, "
    "attempts, next_attempt_at, last_status, last_error, created_at, "
    "delivered_at";

DeliveryRecord ReadDelivery(Statement& s) {
  DeliveryRecord r;
  r.id = s.Int(0);
  r.app = s.Text(1);
  r.audit_seq = s.Int(2);
  r.event = s.Text(3);
  r.url = s.Text(4);
  r.payload_json = s.Text(5);
  r.signature = s.Text(6);
  r.state = s.Text(7);
  r.attempts = static_cast<int>(s.Int(8));
  r.next_attempt_at = s.Int(9);
  r.last_status = static_cast<int>(s.Int(10));
  r.last_error = s.Text(11);
  r.created_at = s.Int(12);
  r.delivered_at = s.Int(13);
  return r;
}

StepCacheRecord ReadStepCache(Statement& s) {
  StepCacheRecord r;
  r.app = s.Text(0);
  r.pipeline = s.Text(1);
  r.step = s.Text(2);
  r.cache_key = s.Text(3);
  r.run_id = s.Text(4);
  r.created_at = s.Int(5);
  return r;
}

RunEventRecord ReadRunEvent(Statement& s) {
  RunEventRecord r;
  r.run_id = s.Text(0);
  r.step = s.Text(1);
  r.seq = s.Int(2);
  r.at = s.Int(3);
  r.type = s.Text(4);
  r.name = s.Text(5);
  r.value_json = s.Text(6);
  r.message = s.Text(7);
  return r;
}

AliasRecord ReadAlias(Statement& s) {
  AliasRecord r;
  r.app = s.Text(0);
  r.alias = s.Text(1);
  r.version = static_cast<int>(s.Int(2));
  r.updated_at = s.Int(3);
  return r;
}

// The prediction log is stored in chunks: one row per app and writer batch,
// whose `records` hold one line per prediction,
//   request_id \t version \t at \t prediction_json \t inputs_json \n
// so that logging costs one row per batch rather than a row and an index
// entry per prediction. A prediction is found by the time its request id
// carries (core/ids.h NewId: "<prefix>-<12 hex digits of unix
// milliseconds><8 hex digits>"): its chunk spans at most kChunkSpanMillis
// of request-id time and starts within that span before it.
constexpr int64_t kChunkSpanMillis = 60'000;

// The time a logged request id carries: NewId's, also for row i of a
// request of several rows and for a shadow's prediction (core/ids.h).
std::optional<int64_t> LoggedIdMillis(std::string_view request_id) {
  return IdMillis(LoggedRequestId(request_id));
}

// A field of a chunk line may hold neither a tab nor a line break.
absl::Status CheckLoggable(const PredictionRecord& p) {
  for (const std::string* field :
       {&p.request_id, &p.prediction_json, &p.inputs_json}) {
    if (field->find_first_of("\t\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          "prediction " + p.request_id +
          " has a tab or a line break in its request id, prediction or "
          "inputs; the prediction log stores them as single-line JSON");
    }
  }
  if (p.request_id.empty()) {
    return absl::InvalidArgumentError("a prediction needs a request id");
  }
  return absl::OkStatus();
}

struct PredictionChunk {
  std::string app;
  int64_t first_ms = 0;
  int64_t last_ms = 0;
  int64_t first_at = 0;
  int64_t last_at = 0;
  int64_t rows = 0;
  std::string records;
};

// The chunks of a batch: per app in batch order, a new chunk whenever the
// request-id time would span more than kChunkSpanMillis. An id without a
// time (not issued by serving) counts with its prediction's time.
std::vector<PredictionChunk> MakeChunks(
    const std::vector<PredictionRecord>& predictions) {
  std::vector<PredictionChunk> chunks;
  std::map<std::string, size_t, std::less<>> open;  // app -> its last chunk
  for (const PredictionRecord& p : predictions) {
    const int64_t ms = LoggedIdMillis(p.request_id).value_or(p.at / 1000);
    auto it = open.find(p.app);
    PredictionChunk* chunk =
        it == open.end() ? nullptr : &chunks[it->second];
    if (chunk != nullptr &&
        (std::max(chunk->last_ms, ms) - std::min(chunk->first_ms, ms) >
         kChunkSpanMillis)) {
      chunk = nullptr;
    }
    if (chunk == nullptr) {
      open[p.app] = chunks.size();
      chunk = &chunks.emplace_back();
      chunk->app = p.app;
      chunk->first_ms = chunk->last_ms = ms;
      chunk->first_at = chunk->last_at = p.at;
    }
    chunk->first_ms = std::min(chunk->first_ms, ms);
    chunk->last_ms = std::max(chunk->last_ms, ms);
    chunk->first_at = std::min(chunk->first_at, p.at);
    chunk->last_at = std::max(chunk->last_at, p.at);
    ++chunk->rows;
    std::string& r = chunk->records;
    char number[24];
    r.append(p.request_id).push_back('\t');
    r.append(number, std::to_chars(number, number + sizeof(number), p.version)
                         .ptr)
        .push_back('\t');
    r.append(number, std::to_chars(number, number + sizeof(number), p.at).ptr)
        .push_back('\t');
    r.append(p.prediction_json).push_back('\t');
    r.append(p.inputs_json).push_back('\n');
  }
  return chunks;
}

// A prediction read back from its chunk.
struct LoggedPrediction {
  std::string app;
  int version = 0;
  int64_t at = 0;
  std::string prediction_json;
};

// Finds logged predictions by request id within one transaction, reading
// each chunk once.
class ChunkReader {
 public:
  explicit ChunkReader(sqlite3* db)
      : by_time_(db,
                 "SELECT id, app, records FROM prediction_chunks "
                 "WHERE first_ms >= ? AND first_ms <= ? AND last_ms >= ? "
                 "ORDER BY id"),
        every_(db, "SELECT id, app, records FROM prediction_chunks ORDER BY id") {
  }

  // The first prediction logged under `request_id`, or nullopt.
  absl::StatusOr<std::optional<LoggedPrediction>> Find(
      const std::string& request_id) {
    std::optional<int64_t> ms = LoggedIdMillis(request_id);
    // An id serving did not issue is looked for in every chunk.
    Statement& s = ms.has_value() ? by_time_ : every_;
    s.Reset();
    if (ms.has_value()) s.Bind(*ms - kChunkSpanMillis).Bind(*ms).Bind(*ms);
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return std::optional<LoggedPrediction>();
      const int64_t id = s.Int(0);
      auto [it, inserted] = chunks_.try_emplace(id);
      if (inserted) {
        it->second.app = s.Text(1);
        it->second.records.push_back('\n');
        it->second.records += s.Text(2);
      }
      std::optional<LoggedPrediction> found = Scan(it->second, request_id);
      if (found.has_value()) return found;
    }
  }

 private:
  struct Chunk {
    std::string app;
    std::string records;  // with a leading line break
  };

  static std::optional<LoggedPrediction> Scan(const Chunk& chunk,
                                              const std::string& request_id) {
    std::string key(1, '\n');
    key += request_id;
    key.push_back('\t');
    const size_t at = chunk.records.find(key);
    if (at == std::string::npos) return std::nullopt;
    const size_t end = chunk.records.find('\n', at + 1);
    // version, at, prediction_json, inputs_json
    std::vector<std::string_view> fields;
    std::string_view line = std::string_view(chunk.records)
                                .substr(at + key.size(), end - at - key.size());
    for (size_t tab = line.find('\t'); tab != std::string_view::npos;
         tab = line.find('\t')) {
      fields.push_back(line.substr(0, tab));
      line.remove_prefix(tab + 1);
    }
    fields.push_back(line);
    if (fields.size() != 4) return std::nullopt;
    LoggedPrediction p;
    p.app = chunk.app;
    p.version = std::atoi(std::string(fields[0]).c_str());
    p.at = std::strtoll(std::string(fields[1]).c_str(), nullptr, 10);
    p.prediction_json = std::string(fields[2]);
    return p;
  }

  Statement by_time_;
  Statement every_;
  std::map<int64_t, Chunk> chunks_;
};

constexpr char kLabeledColumns[] =
    "request_id, version, predicted_at, prediction_json, label, kpis_json, "
    "received_at";

LabeledRecord ReadLabeled(Statement& s) {
  LabeledRecord r;
  r.request_id = s.Text(0);
  r.version = static_cast<int>(s.Int(1));
  r.predicted_at = s.Int(2);
  r.prediction_json = s.Text(3);
  r.label = s.Text(4);
  r.kpis_json = s.Text(5);
  r.received_at = s.Int(6);
  return r;
}

constexpr char kMonitorWindowColumns[] =
    "app, version, start_at, end_at, rows, profile_json, drift_json, "
    "kpis_json";

MonitorWindowRecord ReadMonitorWindow(Statement& s) {
  MonitorWindowRecord r;
  r.app = s.Text(0);
  r.version = static_cast<int>(s.Int(1));
  r.start_at = s.Int(2);
  r.end_at = s.Int(3);
  r.rows = s.Int(4);
  r.profile_json = s.Text(5);
  r.drift_json = s.Text(6);
  r.kpis_json = s.Text(7);
  return r;
}

constexpr char kAlertColumns[] =
    "app, rule, state, since, updated_at, value, alert_json";

AlertRecord ReadAlert(Statement& s) {
  AlertRecord r;
  r.app = s.Text(0);
  r.rule = s.Text(1);
  r.state = s.Text(2);
  r.since = s.Int(3);
  r.updated_at = s.Int(4);
  r.value = s.Double(5);
  r.alert_json = s.Text(6);
  return r;
}

absl::StatusOr<std::optional<AppRecord>> FindApp(sqlite3* db,
                                                 const std::string& app) {
  Statement s(db,
              "SELECT name, created_at, current_revision FROM apps "
              "WHERE name = ?");
  s.Bind(app);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::nullopt;
  return ReadApp(s);
}

absl::StatusOr<ApprovalRecord> FindApproval(sqlite3* db, int64_t id) {
  Statement s(db, ("SELECT " + std::string(kApprovalColumns) +
                   " FROM approvals WHERE id = ?")
                      .c_str());
  s.Bind(id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) {
    return absl::NotFoundError(
        "approval " + std::to_string(id) +
        " not found (slipway approvals list lists them)");
  }
  return ReadApproval(s);
}

absl::Status RequireApp(sqlite3* db, const std::string& app) {
  ASSIGN_OR_RETURN(std::optional<AppRecord> found, FindApp(db, app));
  if (!found.has_value()) return AppNotFound(app);
  return absl::OkStatus();
}

absl::StatusOr<bool> RevisionExists(sqlite3* db, const std::string& app,
                                    int revision) {
  Statement s(db, "SELECT 1 FROM app_revisions WHERE app = ? AND revision = ?");
  s.Bind(app).Bind(revision);
  return s.Step();
}

absl::StatusOr<std::optional<RunRecord>> FindRun(sqlite3* db,
                                                 const std::string& run_id) {
  Statement s(db,
              (std::string("SELECT ") + kRunColumns + " FROM runs WHERE id = ?")
                  .c_str());
  s.Bind(run_id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::nullopt;
  return ReadRun(s);
}

absl::StatusOr<bool> ModelVersionExists(sqlite3* db, const std::string& app,
                                        int version) {
  Statement s(db, "SELECT 1 FROM model_versions WHERE app = ? AND version = ?");
  s.Bind(app).Bind(version);
  return s.Step();
}

// After an UPDATE of one step: OK when it changed a row, else NotFound
// naming the run or the step.
absl::Status RequireStepChanged(sqlite3* db, const std::string& run_id,
                                const std::string& step) {
  if (sqlite3_changes(db) == 1) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::optional<RunRecord> run, FindRun(db, run_id));
  if (!run.has_value()) return RunNotFound(run_id);
  return absl::NotFoundError("step " + Quote(step) + " of run " +
                             Quote(run_id) + " not found");
}

absl::Status ValidateName(std::string_view kind, const std::string& name) {
  if (IsValidName(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      std::string(kind) + " name " + Quote(name) +
      " is invalid: use 1 to 63 letters, digits, '_', '-' or '.', starting "
      "with a letter or digit");
}

class SqliteStore : public Store {
 public:
  SqliteStore(sqlite3* db, Clock* clock) : clock_(clock), db_(db) {}
  ~SqliteStore() override {
    absl::MutexLock lock(&mu_);
    sqlite3_close_v2(db_);
  }

  absl::StatusOr<AppRevisionRecord> AddAppRevision(
      const AppRevisionRecord& revision) override {
    RETURN_IF_ERROR(ValidateName("app", revision.app));
    if (revision.spec_sha256 != Sha256Hex(revision.spec_yaml)) {
      return absl::InvalidArgumentError(
          "revision of app " + Quote(revision.app) + ": spec_sha256 '" +
          revision.spec_sha256 +
          "' is not the SHA-256 of spec_yaml (core/hash.h Sha256Hex)");
    }
    AppRevisionRecord stored = revision;
    stored.created_at = clock_->NowMicros();
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          ASSIGN_OR_RETURN(std::optional<AppRecord> app,
                           FindApp(db, stored.app));
          if (!app.has_value()) {
            Statement insert(db,
                             "INSERT INTO apps (name, created_at, "
                             "current_revision) VALUES (?, ?, 0)");
            insert.Bind(stored.app).Bind(stored.created_at);
            RETURN_IF_ERROR(insert.Run());
          }
          Statement next(db,
                         "SELECT COALESCE(MAX(revision), 0) + 1 "
                         "FROM app_revisions WHERE app = ?");
          next.Bind(stored.app);
          RETURN_IF_ERROR(next.Step().status());
          stored.revision = static_cast<int>(next.Int(0));

          Statement insert(db,
                           "INSERT INTO app_revisions (app, revision, "
                           "spec_yaml, spec_sha256, source_dir, created_at) "
                           "VALUES (?, ?, ?, ?, ?, ?)");
          insert.Bind(stored.app)
              .Bind(stored.revision)
              .Bind(stored.spec_yaml)
              .Bind(stored.spec_sha256)
              .Bind(stored.source_dir)
              .Bind(stored.created_at);
          RETURN_IF_ERROR(insert.Run());

          Statement current(
              db, "UPDATE apps SET current_revision = ? WHERE name = ?");
          current.Bind(stored.revision).Bind(stored.app);
          return current.Run();
        }));
    return stored;
  }

  absl::StatusOr<AppRecord> GetApp(const std::string& app) override {
    AppRecord record;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          ASSIGN_OR_RETURN(std::optional<AppRecord> found, FindApp(db, app));
          if (!found.has_value()) return AppNotFound(app);
          record = std::move(*found);
          return absl::OkStatus();
        }));
    return record;
  }

  absl::StatusOr<std::vector<AppRecord>> ListApps() override {
    std::vector<AppRecord> apps;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          Statement s(db,
                      "SELECT name, created_at, current_revision FROM apps "
                      "ORDER BY name");
          return ReadAll(s, ReadApp, &apps);
        }));
    return apps;
  }

  absl::StatusOr<AppRevisionRecord> GetAppRevision(const std::string& app,
                                                   int revision) override {
    AppRevisionRecord record;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db,
                      "SELECT app, revision, spec_yaml, spec_sha256, "
                      "source_dir, created_at FROM app_revisions "
                      "WHERE app = ? AND revision = ?");
          s.Bind(app).Bind(revision);
          ASSIGN_OR_RETURN(bool row, s.Step());
          if (!row) return RevisionNotFound(app, revision);
          record = ReadRevision(s);
          return absl::OkStatus();
        }));
    return record;
  }

  absl::StatusOr<std::vector<AppRevisionRecord>> ListAppRevisions(
      const std::string& app) override {
    std::vector<AppRevisionRecord> revisions;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db,
                      "SELECT app, revision, spec_yaml, spec_sha256, "
                      "source_dir, created_at FROM app_revisions "
                      "WHERE app = ? ORDER BY revision");
          s.Bind(app);
          return ReadAll(s, ReadRevision, &revisions);
        }));
    return revisions;
  }

  absl::Status CreateRun(const RunRecord& run,
                         const std::vector<StepRecord>& steps) override {
    RETURN_IF_ERROR(ValidateName("run id", run.id));
    RETURN_IF_ERROR(ValidateName("pipeline", run.pipeline));
    std::set<std::string> names;
    std::set<int> ordinals;
    for (const StepRecord& step : steps) {
      RETURN_IF_ERROR(ValidateName("step", step.name));
      if (!names.insert(step.name).second) {
        return absl::InvalidArgumentError("step " + Quote(step.name) +
                                          " appears twice in run " +
                                          Quote(run.id));
      }
      if (!ordinals.insert(step.ordinal).second) {
        return absl::InvalidArgumentError(
            "step " + Quote(step.name) + " of run " + Quote(run.id) +
            " has ordinal " + std::to_string(step.ordinal) +
            ", which another step already has");
      }
    }
    const int64_t now = clock_->NowMicros();
    absl::MutexLock lock(&mu_);
    return Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, run.app));
          ASSIGN_OR_RETURN(bool revision_exists,
                           RevisionExists(db, run.app, run.revision));
          if (!revision_exists) return RevisionNotFound(run.app, run.revision);
          ASSIGN_OR_RETURN(std::optional<RunRecord> existing,
                           FindRun(db, run.id));
          if (existing.has_value()) {
            return absl::AlreadyExistsError("run " + Quote(run.id) +
                                            " already exists");
          }
          Statement insert(db,
                           "INSERT INTO runs (id, app, pipeline, revision, "
                           "state, reason, created_at, started_at, "
                           "finished_at, retry_of) VALUES (?, ?, ?, ?, "
                           "'queued', '', ?, 0, 0, ?)");
          insert.Bind(run.id)
              .Bind(run.app)
              .Bind(run.pipeline)
              .Bind(run.revision)
              .Bind(now)
              .Bind(run.retry_of);
          RETURN_IF_ERROR(insert.Run());
          for (const StepRecord& step : steps) {
            Statement s(db,
                        "INSERT INTO steps (run_id, name, ordinal, kind, "
                        "state, message, outputs_json, started_at, "
                        "finished_at) VALUES (?, ?, ?, ?, 'pending', '', "
                        "'{}', 0, 0)");
            s.Bind(run.id).Bind(step.name).Bind(step.ordinal).Bind(step.kind);
            RETURN_IF_ERROR(s.Run(), "step " + Quote(step.name) + " of run " +
                                         Quote(run.id));
          }
          return absl::OkStatus();
        });
  }

  absl::Status UpdateRun(const RunRecord& run) override {
    if (!IsRunState(run.state)) {
      return absl::InvalidArgumentError(
          "run " + Quote(run.id) + ": unknown state " + Quote(run.state) +
          " (queued, running, succeeded, failed or cancelled)");
    }
    absl::MutexLock lock(&mu_);
    return Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          ASSIGN_OR_RETURN(std::optional<RunRecord> stored,
                           FindRun(db, run.id));
          if (!stored.has_value()) return RunNotFound(run.id);
          if (IsFinalRunState(stored->state)) {
            return absl::FailedPreconditionError(
                "run " + Quote(run.id) + " is already " + stored->state +
                "; a finished run cannot change");
          }
          Statement update(db,
                           "UPDATE runs SET state = ?, reason = ?, "
                           "started_at = ?, finished_at = ? WHERE id = ?");
          update.Bind(run.state)
              .Bind(run.reason)
              .Bind(run.started_at)
              .Bind(run.finished_at)
              .Bind(run.id);
          return update.Run();
        });
  }

  absl::Status UpdateStep(const StepRecord& step) override {
    if (!IsStepState(step.state)) {
      return absl::InvalidArgumentError(
          "step " + Quote(step.name) + " of run " + Quote(step.run_id) +
          ": unknown state " + Quote(step.state) +
          " (pending, queued, running, succeeded, failed, cancelled or "
          "skipped)");
    }
    absl::MutexLock lock(&mu_);
    return Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          Statement update(
              db,
              "UPDATE steps SET state = ?, message = ?, outputs_json = ?, "
              "started_at = ?, finished_at = ?, attempts = ?, "
              "cpu_user_micros = ?, cpu_system_micros = ?, peak_rss_kb = ?, "
              "cache_key = ?, cached_from_run = ?, progress_json = ? "
              "WHERE run_id = ? AND name = ?");
          update.Bind(step.state)
              .Bind(step.message)
              .Bind(step.outputs_json)
              .Bind(step.started_at)
              .Bind(step.finished_at)
              .Bind(step.attempts)
              .Bind(step.cpu_user_micros)
              .Bind(step.cpu_system_micros)
              .Bind(step.peak_rss_kb)
              .Bind(step.cache_key)
              .Bind(step.cached_from_run)
              .Bind(step.progress_json)
              .Bind(step.run_id)
              .Bind(step.name);
          RETURN_IF_ERROR(update.Run());
          return RequireStepChanged(db, step.run_id, step.name);
        });
  }

  absl::Status UpdateStepProgress(const std::string& run_id,
                                  const std::string& step,
                                  const std::string& progress_json) override {
    absl::MutexLock lock(&mu_);
    return Transact(db_, TransactionMode::kWrite,
                    [&](sqlite3* db) -> absl::Status {
                      Statement update(db,
                                       "UPDATE steps SET progress_json = ? "
                                       "WHERE run_id = ? AND name = ?");
                      update.Bind(progress_json).Bind(run_id).Bind(step);
                      RETURN_IF_ERROR(update.Run());
                      return RequireStepChanged(db, run_id, step);
                    });
  }

  absl::StatusOr<RunRecord> GetRun(const std::string& run_id) override {
    RunRecord record;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          ASSIGN_OR_RETURN(std::optional<RunRecord> found, FindRun(db, run_id));
          if (!found.has_value()) return RunNotFound(run_id);
          record = std::move(*found);
          return absl::OkStatus();
        }));
    return record;
  }

  absl::StatusOr<std::vector<StepRecord>> ListSteps(
      const std::string& run_id) override {
    std::vector<StepRecord> steps;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          ASSIGN_OR_RETURN(std::optional<RunRecord> run, FindRun(db, run_id));
          if (!run.has_value()) return RunNotFound(run_id);
          Statement s(db, (std::string("SELECT ") + kStepColumns +
                           " FROM steps WHERE run_id = ? ORDER BY ordinal")
                              .c_str());
          s.Bind(run_id);
          return ReadAll(s, ReadStep, &steps);
        }));
    return steps;
  }

  absl::StatusOr<std::vector<RunRecord>> ListRuns(const std::string& app,
                                                  int limit) override {
    if (limit < 1) {
      return absl::InvalidArgumentError(
          "run list limit must be at least 1, got " + std::to_string(limit));
    }
    std::vector<RunRecord> runs;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          // Runs created in the same microsecond keep their creation order
          // through the rowid.
          const std::string all_apps =
              std::string("SELECT ") + kRunColumns +
              " FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?";
          const std::string one_app =
              std::string("SELECT ") + kRunColumns +
              " FROM runs WHERE app = ? ORDER BY created_at DESC, rowid DESC "
              "LIMIT ?";
          if (!app.empty()) RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db, app.empty() ? all_apps.c_str() : one_app.c_str());
          if (!app.empty()) s.Bind(app);
          s.Bind(limit);
          return ReadAll(s, ReadRun, &runs);
        }));
    return runs;
  }

  absl::StatusOr<std::vector<std::string>> FailUnfinishedRuns(
      const std::string& reason, int64_t now) override {
    std::vector<std::string> failed;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          Statement select(db,
                           "SELECT id FROM runs WHERE state IN ('queued', "
                           "'running') ORDER BY created_at, rowid");
          while (true) {
            ASSIGN_OR_RETURN(bool row, select.Step());
            if (!row) break;
            failed.push_back(select.Text(0));
          }
          for (const std::string& id : failed) {
            Statement steps(db,
                            "UPDATE steps SET state = 'failed', message = ?, "
                            "finished_at = ? WHERE run_id = ? AND state IN "
                            "('pending', 'running')");
            steps.Bind(reason).Bind(now).Bind(id);
            RETURN_IF_ERROR(steps.Run());
            Statement run(db,
                          "UPDATE runs SET state = 'failed', reason = ?, "
                          "finished_at = ? WHERE id = ?");
            run.Bind(reason).Bind(now).Bind(id);
            RETURN_IF_ERROR(run.Run());
          }
          return absl::OkStatus();
        }));
    return failed;
  }

  absl::Status PutStepCache(const StepCacheRecord& record) override {
    const int64_t now = clock_->NowMicros();
    absl::MutexLock lock(&mu_);
    return Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, record.app));
          ASSIGN_OR_RETURN(std::optional<RunRecord> run,
                           FindRun(db, record.run_id));
          if (!run.has_value()) return RunNotFound(record.run_id);
          Statement upsert(db,
                           "INSERT INTO step_cache (app, pipeline, step, "
                           "cache_key, run_id, created_at) "
                           "VALUES (?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT (app, pipeline, step, cache_key) DO "
                           "UPDATE SET run_id = excluded.run_id, "
                           "created_at = excluded.created_at");
          upsert.Bind(record.app)
              .Bind(record.pipeline)
              .Bind(record.step)
              .Bind(record.cache_key)
              .Bind(record.run_id)
              .Bind(now);
          return upsert.Run();
        });
  }

  absl::StatusOr<std::optional<StepCacheRecord>> FindStepCache(
      const std::string& app, const std::string& pipeline,
      const std::string& step, const std::string& cache_key) override {
    std::optional<StepCacheRecord> record;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          Statement s(db,
                      "SELECT app, pipeline, step, cache_key, run_id, "
                      "created_at FROM step_cache WHERE app = ? AND "
                      "pipeline = ? AND step = ? AND cache_key = ?");
          s.Bind(app).Bind(pipeline).Bind(step).Bind(cache_key);
          ASSIGN_OR_RETURN(bool row, s.Step());
          if (row) record = ReadStepCache(s);
          return absl::OkStatus();
        }));
    return record;
  }

  absl::StatusOr<std::vector<RunEventRecord>> AddRunEvents(
      const std::vector<RunEventRecord>& events) override {
    std::vector<RunEventRecord> stored = events;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          for (RunEventRecord& event : stored) {
            ASSIGN_OR_RETURN(std::optional<RunRecord> run,
                             FindRun(db, event.run_id));
            if (!run.has_value()) return RunNotFound(event.run_id);
            Statement next(db,
                           "SELECT COALESCE(MAX(seq), 0) + 1 FROM run_events "
                           "WHERE run_id = ?");
            next.Bind(event.run_id);
            RETURN_IF_ERROR(next.Step().status());
            event.seq = next.Int(0);
            Statement insert(db,
                             "INSERT INTO run_events (run_id, step, seq, at, "
                             "type, name, value_json, message) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
            insert.Bind(event.run_id)
                .Bind(event.step)
                .Bind(event.seq)
                .Bind(event.at)
                .Bind(event.type)
                .Bind(event.name)
                .Bind(event.value_json)
                .Bind(event.message);
            RETURN_IF_ERROR(insert.Run());
          }
          return absl::OkStatus();
        }));
    return stored;
  }

  absl::StatusOr<std::vector<RunEventRecord>> ListRunEvents(
      const std::string& run_id) override {
    std::vector<RunEventRecord> events;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          ASSIGN_OR_RETURN(std::optional<RunRecord> run, FindRun(db, run_id));
          if (!run.has_value()) return RunNotFound(run_id);
          Statement s(db,
                      "SELECT run_id, step, seq, at, type, name, value_json, "
                      "message FROM run_events WHERE run_id = ? ORDER BY seq");
          s.Bind(run_id);
          return ReadAll(s, ReadRunEvent, &events);
        }));
    return events;
  }

  absl::StatusOr<ModelVersionRecord> AddModelVersion(
      const ModelVersionRecord& record) override {
    RETURN_IF_ERROR(ValidateName("app", record.app));
    if (!IsSha256Hex(record.artifact_sha256)) {
      return absl::InvalidArgumentError(
          "model version of app " + Quote(record.app) + ": artifact_sha256 " +
          Quote(record.artifact_sha256) +
          " is not 64 lowercase hex digits (the artifact store's name)");
    }
    ModelVersionRecord stored = record;
    stored.created_at = clock_->NowMicros();
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, stored.app));
          Statement next(db,
                         "SELECT COALESCE(MAX(version), 0) + 1 "
                         "FROM model_versions WHERE app = ?");
          next.Bind(stored.app);
          RETURN_IF_ERROR(next.Step().status());
          stored.version = static_cast<int>(next.Int(0));
          Statement insert(db, (std::string("INSERT INTO model_versions (") +
                                kModelVersionColumns +
                                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                                "?, ?, ?, ?, ?, ?, ?, ?)")
                                   .c_str());
          insert.Bind(stored.app)
              .Bind(stored.version)
              .Bind(stored.artifact_sha256)
              .Bind(stored.format)
              .Bind(stored.signature_json)
              .Bind(stored.params_json)
              .Bind(stored.metrics_json)
              .Bind(stored.data_fingerprint)
              .Bind(stored.row_count)
              .Bind(stored.run_id)
              .Bind(stored.revision)
              .Bind(stored.created_at)
              .Bind(stored.transform_json)
              .Bind(stored.code_sha256)
              .Bind(stored.parent_version)
              .Bind(stored.runtime_json)
              .Bind(stored.created_by)
              .Bind(stored.data_sources_json)
              .Bind(stored.baseline_sha256);
          return insert.Run();
        }));
    return stored;
  }

  absl::StatusOr<ModelVersionRecord> GetModelVersion(const std::string& app,
                                                     int version) override {
    ModelVersionRecord record;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db, (std::string("SELECT ") + kModelVersionColumns +
                           " FROM model_versions WHERE app = ? AND version = ?")
                              .c_str());
          s.Bind(app).Bind(version);
          ASSIGN_OR_RETURN(bool row, s.Step());
          if (!row) return ModelNotFound(app, version);
          record = ReadModelVersion(s);
          return absl::OkStatus();
        }));
    return record;
  }

  absl::StatusOr<std::vector<ModelVersionRecord>> ListModelVersions(
      const std::string& app) override {
    std::vector<ModelVersionRecord> versions;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db,
                      (std::string("SELECT ") + kModelVersionColumns +
                       " FROM model_versions WHERE app = ? ORDER BY version")
                          .c_str());
          s.Bind(app);
          return ReadAll(s, ReadModelVersion, &versions);
        }));
    return versions;
  }

  absl::Status SetAliases(const std::string& app,
                          const std::vector<AliasMove>& moves,
                          const std::string& actor) override {
    if (moves.empty()) {
      return absl::InvalidArgumentError("no alias of app " + Quote(app) +
                                        " to move: name at least one");
    }
    std::set<std::string> named;
    for (const AliasMove& move : moves) {
      RETURN_IF_ERROR(ValidateName("alias", move.alias));
      if (!named.insert(move.alias).second) {
        return absl::InvalidArgumentError(
            "alias " + Quote(move.alias) + " of app " + Quote(app) +
            " is moved twice in one request; name each alias once");
      }
    }
    const int64_t now = clock_->NowMicros();
    absl::MutexLock lock(&mu_);
    return Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement next(db,
                         "SELECT COALESCE(MAX(seq), 0) FROM alias_history "
                         "WHERE app = ?");
          next.Bind(app);
          RETURN_IF_ERROR(next.Step().status());
          int64_t seq = next.Int(0);
          for (const AliasMove& move : moves) {
            ASSIGN_OR_RETURN(bool exists,
                             ModelVersionExists(db, app, move.version));
            if (!exists) return ModelNotFound(app, move.version);
            Statement current(db,
                              "SELECT version FROM aliases WHERE app = ? AND "
                              "alias = ?");
            current.Bind(app).Bind(move.alias);
            ASSIGN_OR_RETURN(bool set, current.Step());
            const int64_t from = set ? current.Int(0) : 0;
            Statement upsert(db,
                             "INSERT INTO aliases (app, alias, version, "
                             "updated_at) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (app, alias) DO UPDATE SET "
                             "version = excluded.version, "
                             "updated_at = excluded.updated_at");
            upsert.Bind(app).Bind(move.alias).Bind(move.version).Bind(now);
            RETURN_IF_ERROR(upsert.Run());
            Statement history(db,
                              "INSERT INTO alias_history (app, seq, alias, "
                              "from_version, to_version, at, actor) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?)");
            history.Bind(app)
                .Bind(++seq)
                .Bind(move.alias)
                .Bind(from)
                .Bind(move.version)
                .Bind(now)
                .Bind(actor);
            RETURN_IF_ERROR(history.Run());
          }
          return absl::OkStatus();
        });
  }

  absl::StatusOr<std::vector<AliasHistoryRecord>> ListAliasHistory(
      const std::string& app) override {
    std::vector<AliasHistoryRecord> moves;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db,
                      "SELECT app, seq, alias, from_version, to_version, at, "
                      "actor FROM alias_history WHERE app = ? ORDER BY seq");
          s.Bind(app);
          while (true) {
            ASSIGN_OR_RETURN(bool row, s.Step());
            if (!row) break;
            AliasHistoryRecord r;
            r.app = s.Text(0);
            r.seq = s.Int(1);
            r.alias = s.Text(2);
            r.from_version = static_cast<int>(s.Int(3));
            r.to_version = static_cast<int>(s.Int(4));
            r.at = s.Int(5);
            r.actor = s.Text(6);
            moves.push_back(std::move(r));
          }
          return absl::OkStatus();
        }));
    return moves;
  }

  absl::StatusOr<std::optional<AliasRecord>> GetAlias(
      const std::string& app, const std::string& alias) override {
    std::optional<AliasRecord> record;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db,
                      "SELECT app, alias, version, updated_at FROM aliases "
                      "WHERE app = ? AND alias = ?");
          s.Bind(app).Bind(alias);
          ASSIGN_OR_RETURN(bool row, s.Step());
          if (row) record = ReadAlias(s);
          return absl::OkStatus();
        }));
    return record;
  }

  absl::StatusOr<std::vector<AliasRecord>> ListAliases(
      const std::string& app) override {
    std::vector<AliasRecord> aliases;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db,
                      "SELECT app, alias, version, updated_at FROM aliases "
                      "WHERE app = ? ORDER BY alias");
          s.Bind(app);
          return ReadAll(s, ReadAlias, &aliases);
        }));
    return aliases;
  }

  absl::StatusOr<std::optional<int64_t>> GetLastScheduledFire(
      const std::string& app, const std::string& pipeline) override {
    std::optional<int64_t> fire;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db,
                      "SELECT last_fire_micros FROM schedule_state "
                      "WHERE app = ? AND pipeline = ?");
          s.Bind(app).Bind(pipeline);
          ASSIGN_OR_RETURN(bool row, s.Step());
          if (row) fire = s.Int(0);
          return absl::OkStatus();
        }));
    return fire;
  }

  absl::Status SetLastScheduledFire(const std::string& app,
                                    const std::string& pipeline,
                                    int64_t fire_micros) override {
    absl::MutexLock lock(&mu_);
    return Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement upsert(db,
                           "INSERT INTO schedule_state (app, pipeline, "
                           "last_fire_micros) VALUES (?, ?, ?) "
                           "ON CONFLICT (app, pipeline) DO UPDATE SET "
                           "last_fire_micros = excluded.last_fire_micros");
          upsert.Bind(app).Bind(pipeline).Bind(fire_micros);
          return upsert.Run();
        });
  }

  absl::Status AddToken(const TokenRecord& token) override {
    if (!IsSha256Hex(token.secret_sha256)) {
      return absl::InvalidArgumentError(
          "token " + Quote(token.id) +
          ": secret_sha256 must be 64 lowercase hex digits");
    }
    absl::MutexLock lock(&mu_);
    return Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          Statement insert(
              db, ("INSERT INTO tokens (" + std::string(kTokenColumns) +
                   ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                      .c_str());
          insert.Bind(token.id)
              .Bind(token.name)
              .Bind(token.role)
              .Bind(token.secret_sha256)
              .Bind(token.created_at)
              .Bind(token.expires_at)
              .Bind(token.revoked_at)
              .Bind(token.created_by);
          return insert.Run();
        });
  }

  absl::StatusOr<std::vector<TokenRecord>> ListTokens() override {
    std::vector<TokenRecord> tokens;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          Statement s(db, ("SELECT " + std::string(kTokenColumns) +
                           " FROM tokens ORDER BY created_at, id")
                              .c_str());
          return ReadAll(s, ReadToken, &tokens);
        }));
    return tokens;
  }

  absl::StatusOr<TokenRecord> RevokeToken(const std::string& id,
                                          int64_t revoked_at) override {
    TokenRecord token;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          Statement find(db, ("SELECT " + std::string(kTokenColumns) +
                              " FROM tokens WHERE id = ?")
                                 .c_str());
          find.Bind(id);
          ASSIGN_OR_RETURN(bool row, find.Step());
          if (!row) {
            return absl::NotFoundError("token " + Quote(id) +
                                       " not found (slipway tokens list "
                                       "lists the tokens)");
          }
          token = ReadToken(find);
          if (token.revoked_at != 0) {
            return absl::FailedPreconditionError("token " + Quote(id) +
                                                 " is already revoked");
          }
          Statement update(db, "UPDATE tokens SET revoked_at = ? WHERE id = ?");
          update.Bind(revoked_at).Bind(id);
          RETURN_IF_ERROR(update.Run());
          token.revoked_at = revoked_at;
          return absl::OkStatus();
        }));
    return token;
  }

  absl::StatusOr<AuditRecord> AppendAudit(const AuditEntry& entry) override {
    if (entry.actor.empty() || entry.action.empty() || entry.object.empty()) {
      return absl::InvalidArgumentError(
          "audit entry " + Quote(entry.action) +
          ": actor, action and object are required");
    }
    AuditRecord record;
    record.actor = entry.actor;
    record.action = entry.action;
    record.app = entry.app;
    record.object = entry.object;
    record.before_json = entry.before_json;
    record.after_json = entry.after_json;
    record.at = clock_->NowMicros();
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          Statement last(db,
                         "SELECT seq, hash FROM audit_log ORDER BY seq DESC "
                         "LIMIT 1");
          ASSIGN_OR_RETURN(bool row, last.Step());
          record.seq = row ? last.Int(0) + 1 : 1;
          record.prev_hash = row ? last.Text(1) : kAuditGenesisHash;
          record.hash = AuditRecordHash(record);
          Statement insert(
              db, ("INSERT INTO audit_log (" + std::string(kAuditColumns) +
                   ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                      .c_str());
          insert.Bind(record.seq)
              .Bind(record.at)
              .Bind(record.actor)
              .Bind(record.action)
              .Bind(record.app)
              .Bind(record.object)
              .Bind(record.before_json)
              .Bind(record.after_json)
              .Bind(record.prev_hash)
              .Bind(record.hash);
          return insert.Run();
        }));
    return record;
  }

  absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      const AuditFilter& filter) override {
    std::string sql = "SELECT " + std::string(kAuditColumns) +
                      " FROM audit_log WHERE seq > ?";
    if (!filter.app.empty()) sql += " AND app = ?";
    if (!filter.actor.empty()) sql += " AND actor = ?";
    if (!filter.action.empty()) sql += " AND action = ?";
    if (!filter.object_prefix.empty()) sql += " AND substr(object, 1, ?) = ?";
    sql += " ORDER BY seq";
    if (filter.limit > 0) sql += " LIMIT ?";
    std::vector<AuditRecord> records;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          Statement s(db, sql.c_str());
          s.Bind(filter.after_seq);
          if (!filter.app.empty()) s.Bind(filter.app);
          if (!filter.actor.empty()) s.Bind(filter.actor);
          if (!filter.action.empty()) s.Bind(filter.action);
          if (!filter.object_prefix.empty()) {
            s.Bind(static_cast<int64_t>(filter.object_prefix.size()))
                .Bind(filter.object_prefix);
          }
          if (filter.limit > 0) s.Bind(static_cast<int64_t>(filter.limit));
          return ReadAll(s, ReadAudit, &records);
        }));
    return records;
  }

  absl::StatusOr<ApprovalRecord> AddApproval(
      const ApprovalRecord& approval) override {
    if (approval.kind != "promote" && approval.kind != "apply") {
      return absl::InvalidArgumentError("approval kind " +
                                        Quote(approval.kind) +
                                        " is not one of: promote, apply");
    }
    ApprovalRecord stored = approval;
    stored.state = "pending";
    stored.decided_by.clear();
    stored.decided_by_token.clear();
    stored.decision_comment.clear();
    stored.decided_at = 0;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, approval.app));
          Statement next(db, "SELECT COALESCE(MAX(id), 0) + 1 FROM approvals");
          RETURN_IF_ERROR(next.Step().status());
          stored.id = next.Int(0);
          Statement insert(
              db, ("INSERT INTO approvals (" + std::string(kApprovalColumns) +
                   ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                      .c_str());
          insert.Bind(stored.id)
              .Bind(stored.app)
              .Bind(stored.kind)
              .Bind(stored.change_json)
              .Bind(stored.state)
              .Bind(stored.requested_by)
              .Bind(stored.requested_by_token)
              .Bind(stored.request_comment)
              .Bind(stored.requested_at)
              .Bind(stored.expires_at)
              .Bind(stored.decided_by)
              .Bind(stored.decided_by_token)
              .Bind(stored.decision_comment)
              .Bind(stored.decided_at);
          return insert.Run();
        }));
    return stored;
  }

  absl::StatusOr<ApprovalRecord> GetApproval(int64_t id) override {
    ApprovalRecord record;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          ASSIGN_OR_RETURN(record, FindApproval(db, id));
          return absl::OkStatus();
        }));
    return record;
  }

  absl::StatusOr<std::vector<ApprovalRecord>> ListApprovals(
      const std::string& app, const std::string& state) override {
    std::string sql = "SELECT " + std::string(kApprovalColumns) +
                      " FROM approvals WHERE 1 = 1";
    if (!app.empty()) sql += " AND app = ?";
    if (!state.empty()) sql += " AND state = ?";
    sql += " ORDER BY id DESC";
    std::vector<ApprovalRecord> approvals;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          if (!app.empty()) RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db, sql.c_str());
          if (!app.empty()) s.Bind(app);
          if (!state.empty()) s.Bind(state);
          return ReadAll(s, ReadApproval, &approvals);
        }));
    return approvals;
  }

  absl::StatusOr<ApprovalRecord> DecideApproval(
      const ApprovalRecord& decision) override {
    if (decision.state != "approved" && decision.state != "rejected" &&
        decision.state != "expired") {
      return absl::InvalidArgumentError("approval " +
                                        std::to_string(decision.id) +
                                        ": decision " + Quote(decision.state) +
                                        " is not one of: approved, rejected, "
                                        "expired");
    }
    ApprovalRecord stored;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          ASSIGN_OR_RETURN(stored, FindApproval(db, decision.id));
          if (stored.state != "pending") {
            return absl::FailedPreconditionError(
                "approval " + std::to_string(stored.id) + " of app " +
                Quote(stored.app) + " was already " + stored.state + " by " +
                stored.decided_by + " at " +
                FormatTimestamp(stored.decided_at) +
                "; only a pending approval can be decided (slipway "
                "approvals list --state pending)");
          }
          Statement update(db,
                           "UPDATE approvals SET state = ?, decided_by = ?, "
                           "decided_by_token = ?, decision_comment = ?, "
                           "decided_at = ? WHERE id = ?");
          update.Bind(decision.state)
              .Bind(decision.decided_by)
              .Bind(decision.decided_by_token)
              .Bind(decision.decision_comment)
              .Bind(decision.decided_at)
              .Bind(stored.id);
          RETURN_IF_ERROR(update.Run());
          stored.state = decision.state;
          stored.decided_by = decision.decided_by;
          stored.decided_by_token = decision.decided_by_token;
          stored.decision_comment = decision.decision_comment;
          stored.decided_at = decision.decided_at;
          return absl::OkStatus();
        }));
    return stored;
  }

  absl::StatusOr<std::vector<DeliveryRecord>> AddDeliveries(
      const std::vector<DeliveryRecord>& deliveries) override {
    std::vector<DeliveryRecord> stored = deliveries;
    const int64_t now = clock_->NowMicros();
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          Statement next(db,
                         "SELECT COALESCE(MAX(id), 0) FROM webhook_deliveries");
          RETURN_IF_ERROR(next.Step().status());
          int64_t id = next.Int(0);
          for (DeliveryRecord& d : stored) {
            d.id = ++id;
            d.created_at = now;
            Statement insert(
                db, ("INSERT INTO webhook_deliveries (" +
                     std::string(kDeliveryColumns) +
                     ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                        .c_str());
            insert.Bind(d.id)
                .Bind(d.app)
                .Bind(d.audit_seq)
                .Bind(d.event)
                .Bind(d.url)
                .Bind(d.payload_json)
                .Bind(d.signature)
                .Bind(d.state)
                .Bind(static_cast<int64_t>(d.attempts))
                .Bind(d.next_attempt_at)
                .Bind(static_cast<int64_t>(d.last_status))
                .Bind(d.last_error)
                .Bind(d.created_at)
                .Bind(d.delivered_at);
            RETURN_IF_ERROR(insert.Run());
          }
          return absl::OkStatus();
        }));
    return stored;
  }

  absl::StatusOr<std::vector<DeliveryRecord>> DueDeliveries(
      int64_t now, int limit) override {
    std::vector<DeliveryRecord> due;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          Statement s(db, ("SELECT " + std::string(kDeliveryColumns) +
                           " FROM webhook_deliveries WHERE state = 'pending' "
                           "AND next_attempt_at <= ? ORDER BY "
                           "next_attempt_at, id LIMIT ?")
                              .c_str());
          s.Bind(now).Bind(static_cast<int64_t>(limit));
          return ReadAll(s, ReadDelivery, &due);
        }));
    return due;
  }

  absl::Status UpdateDelivery(const DeliveryRecord& delivery) override {
    absl::MutexLock lock(&mu_);
    return Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          Statement update(db,
                           "UPDATE webhook_deliveries SET state = ?, "
                           "attempts = ?, next_attempt_at = ?, "
                           "last_status = ?, last_error = ?, "
                           "delivered_at = ? WHERE id = ?");
          update.Bind(delivery.state)
              .Bind(static_cast<int64_t>(delivery.attempts))
              .Bind(delivery.next_attempt_at)
              .Bind(static_cast<int64_t>(delivery.last_status))
              .Bind(delivery.last_error)
              .Bind(delivery.delivered_at)
              .Bind(delivery.id);
          RETURN_IF_ERROR(update.Run());
          if (sqlite3_changes(db) == 0) {
            return absl::NotFoundError("webhook delivery " +
                                       std::to_string(delivery.id) +
                                       " not found");
          }
          return absl::OkStatus();
        });
  }

  absl::StatusOr<std::vector<DeliveryRecord>> ListDeliveries(
      const std::string& app, int limit) override {
    std::string sql =
        "SELECT " + std::string(kDeliveryColumns) + " FROM webhook_deliveries";
    if (!app.empty()) sql += " WHERE app = ?";
    sql += " ORDER BY id DESC LIMIT ?";
    std::vector<DeliveryRecord> deliveries;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          Statement s(db, sql.c_str());
          if (!app.empty()) s.Bind(app);
          s.Bind(static_cast<int64_t>(limit > 0 ? limit : -1));
          return ReadAll(s, ReadDelivery, &deliveries);
        }));
    return deliveries;
  }

  absl::StatusOr<int64_t> AddPredictions(
      const std::vector<PredictionRecord>& predictions) override {
    if (predictions.empty()) return 0;
    for (const PredictionRecord& p : predictions) {
      RETURN_IF_ERROR(CheckLoggable(p));
    }
    std::vector<PredictionChunk> chunks = MakeChunks(predictions);
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          Statement insert(db,
                           "INSERT INTO prediction_chunks (app, first_ms, "
                           "last_ms, first_at, last_at, rows, records) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)");
          for (const PredictionChunk& c : chunks) {
            insert.Reset();
            insert.Bind(c.app)
                .Bind(c.first_ms)
                .Bind(c.last_ms)
                .Bind(c.first_at)
                .Bind(c.last_at)
                .Bind(c.rows)
                .Bind(c.records);
            RETURN_IF_ERROR(insert.Run());
          }
          return absl::OkStatus();
        }));
    return static_cast<int64_t>(predictions.size());
  }

  absl::StatusOr<std::vector<FeedbackOutcome>> AddFeedback(
      const std::vector<FeedbackRecord>& feedback) override {
    std::vector<FeedbackOutcome> outcomes;
    if (feedback.empty()) return outcomes;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          outcomes.clear();
          ChunkReader chunks(db);
          Statement labeled(db, "SELECT 1 FROM feedback WHERE request_id = ?");
          Statement insert(db,
                           "INSERT INTO feedback (request_id, app, version, "
                           "predicted_at, prediction_json, label, kpis_json, "
                           "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
          for (const FeedbackRecord& f : feedback) {
            ASSIGN_OR_RETURN(std::optional<LoggedPrediction> p,
                             chunks.Find(f.request_id));
            if (!p.has_value()) {
              outcomes.push_back(FeedbackOutcome::kUnknownRequest);
              continue;
            }
            if (p->app != f.app) {
              outcomes.push_back(FeedbackOutcome::kWrongApp);
              continue;
            }
            labeled.Reset();
            labeled.Bind(f.request_id);
            ASSIGN_OR_RETURN(bool duplicate, labeled.Step());
            if (duplicate) {
              outcomes.push_back(FeedbackOutcome::kDuplicate);
              continue;
            }
            insert.Reset();
            insert.Bind(f.request_id)
                .Bind(f.app)
                .Bind(p->version)
                .Bind(p->at)
                .Bind(p->prediction_json)
                .Bind(f.label)
                .Bind(f.kpis_json)
                .Bind(f.received_at);
            RETURN_IF_ERROR(insert.Run());
            outcomes.push_back(FeedbackOutcome::kAccepted);
          }
          return absl::OkStatus();
        }));
    return outcomes;
  }

  absl::StatusOr<std::vector<LabeledRecord>> ListLabeled(const std::string& app,
                                                         int64_t from,
                                                         int64_t to) override {
    std::vector<LabeledRecord> labeled;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db, ("SELECT " + std::string(kLabeledColumns) +
                           " FROM feedback "
                           "WHERE app = ? AND received_at >= ? "
                           "AND received_at < ? "
                           "ORDER BY received_at, request_id")
                              .c_str());
          s.Bind(app).Bind(from).Bind(to);
          return ReadAll(s, ReadLabeled, &labeled);
        }));
    return labeled;
  }

  absl::StatusOr<int64_t> DeletePredictionsBefore(const std::string& app,
                                                  int64_t before) override {
    int64_t deleted = 0;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          // Whole chunks: a chunk is deleted once its newest prediction is
          // due, and the feedback of the predictions before the oldest one
          // kept goes with them.
          Statement kept(db,
                         "SELECT min(first_at) FROM prediction_chunks "
                         "WHERE app = ? AND last_at >= ? AND first_at < ?");
          kept.Bind(app).Bind(before).Bind(before);
          ASSIGN_OR_RETURN(bool straddles, kept.Step());
          const int64_t cutoff =
              straddles && !kept.IsNull(0) ? kept.Int(0) : before;
          Statement labels(
              db, "DELETE FROM feedback WHERE app = ? AND predicted_at < ?");
          labels.Bind(app).Bind(cutoff);
          RETURN_IF_ERROR(labels.Run());
          Statement count(db,
                          "SELECT coalesce(sum(rows), 0) FROM "
                          "prediction_chunks WHERE app = ? AND last_at < ?");
          count.Bind(app).Bind(before);
          ASSIGN_OR_RETURN(bool found, count.Step());
          deleted = found ? count.Int(0) : 0;
          Statement chunks(
              db, "DELETE FROM prediction_chunks WHERE app = ? AND last_at < ?");
          chunks.Bind(app).Bind(before);
          return chunks.Run();
        }));
    return deleted;
  }

  absl::Status PutMonitorWindow(const MonitorWindowRecord& window) override {
    if (window.end_at <= window.start_at) {
      return absl::InvalidArgumentError(
          "monitoring window of " + ModelName(window.app, window.version) +
          " ends at " + FormatTimestamp(window.end_at) +
          ", not after its start " + FormatTimestamp(window.start_at));
    }
    absl::MutexLock lock(&mu_);
    return Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, window.app));
          Statement insert(db, ("INSERT OR REPLACE INTO monitor_windows (" +
                                std::string(kMonitorWindowColumns) +
                                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                                   .c_str());
          insert.Bind(window.app)
              .Bind(window.version)
              .Bind(window.start_at)
              .Bind(window.end_at)
              .Bind(window.rows)
              .Bind(window.profile_json)
              .Bind(window.drift_json)
              .Bind(window.kpis_json);
          return insert.Run();
        });
  }

  absl::StatusOr<std::vector<MonitorWindowRecord>> ListMonitorWindows(
      const std::string& app, int64_t from, int64_t to) override {
    std::vector<MonitorWindowRecord> windows;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db, ("SELECT " + std::string(kMonitorWindowColumns) +
                           " FROM monitor_windows WHERE app = ? "
                           "AND start_at < ? AND end_at > ? "
                           "ORDER BY start_at, version")
                              .c_str());
          s.Bind(app).Bind(to).Bind(from);
          return ReadAll(s, ReadMonitorWindow, &windows);
        }));
    return windows;
  }

  absl::Status PutAlert(const AlertRecord& alert) override {
    if (alert.state != "pending" && alert.state != "firing" &&
        alert.state != "resolved") {
      return absl::InvalidArgumentError(
          "alert " + Quote(alert.rule) + " of app " + Quote(alert.app) +
          ": state " + Quote(alert.state) +
          " is not one of: pending, firing, resolved");
    }
    absl::MutexLock lock(&mu_);
    return Transact(db_, TransactionMode::kWrite,
                    [&](sqlite3* db) -> absl::Status {
                      RETURN_IF_ERROR(RequireApp(db, alert.app));
                      Statement insert(db, ("INSERT OR REPLACE INTO alerts (" +
                                            std::string(kAlertColumns) +
                                            ") VALUES (?, ?, ?, ?, ?, ?, ?)")
                                               .c_str());
                      insert.Bind(alert.app)
                          .Bind(alert.rule)
                          .Bind(alert.state)
                          .Bind(alert.since)
                          .Bind(alert.updated_at)
                          .BindDouble(alert.value)
                          .Bind(alert.alert_json);
                      return insert.Run();
                    });
  }

  absl::StatusOr<std::vector<AlertRecord>> ListAlerts(
      const std::string& app) override {
    std::string sql = "SELECT " + std::string(kAlertColumns) + " FROM alerts";
    if (!app.empty()) sql += " WHERE app = ?";
    sql += " ORDER BY app, rule";
    std::vector<AlertRecord> alerts;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          if (!app.empty()) RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db, sql.c_str());
          if (!app.empty()) s.Bind(app);
          return ReadAll(s, ReadAlert, &alerts);
        }));
    return alerts;
  }

  absl::StatusOr<std::optional<AlertEngineStateRecord>> GetAlertEngineState(
      const std::string& app) override {
    std::optional<AlertEngineStateRecord> state;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, app));
          Statement s(db,
                      "SELECT app, state_json, updated_at FROM alert_engines "
                      "WHERE app = ?");
          s.Bind(app);
          ASSIGN_OR_RETURN(bool row, s.Step());
          if (row) {
            state = AlertEngineStateRecord{s.Text(0), s.Text(1), s.Int(2)};
          }
          return absl::OkStatus();
        }));
    return state;
  }

  absl::Status PutAlertEngineState(
      const AlertEngineStateRecord& state) override {
    absl::MutexLock lock(&mu_);
    return Transact(
        db_, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          RETURN_IF_ERROR(RequireApp(db, state.app));
          Statement insert(db,
                           "INSERT OR REPLACE INTO alert_engines (app, "
                           "state_json, updated_at) VALUES (?, ?, ?)");
          insert.Bind(state.app).Bind(state.state_json).Bind(state.updated_at);
          return insert.Run();
        });
  }

  absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> CountRows()
      override {
    std::vector<std::pair<std::string, int64_t>> counts;
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(
        Transact(db_, TransactionMode::kRead, [&](sqlite3* db) -> absl::Status {
          for (const char* table : kTables) {
            Statement s(db,
                        ("SELECT COUNT(*) FROM " + std::string(table)).c_str());
            RETURN_IF_ERROR(s.Step().status());
            counts.emplace_back(table, s.Int(0));
          }
          return absl::OkStatus();
        }));
    return counts;
  }

 private:
  Clock* const clock_;
  absl::Mutex mu_;
  sqlite3* const db_ ABSL_GUARDED_BY(mu_);
};

// Applies the migrations the database lacks, each in its own transaction
// together with the user_version bump, so a crash leaves the database at
// some whole version.
absl::Status Migrate(sqlite3* connection, const std::string& data_dir) {
  for (int target = 1; target <= kFormatVersion; ++target) {
    RETURN_IF_ERROR(Transact(
        connection, TransactionMode::kWrite, [&](sqlite3* db) -> absl::Status {
          // Read inside the write lock: another process may have migrated
          // since we looked.
          ASSIGN_OR_RETURN(int version, UserVersion(db));
          if (version > kFormatVersion) {
            return NewerFormatError(data_dir, version);
          }
          if (version >= target) return absl::OkStatus();
          RETURN_IF_ERROR(Exec(db, kMigrations[target - 1],
                               "applying migration " + std::to_string(target)));
          // PRAGMA takes no parameters; `target` is a number from code.
          return Exec(
              db, ("PRAGMA user_version = " + std::to_string(target)).c_str(),
              "recording format version " + std::to_string(target));
        }));
  }
  return absl::OkStatus();
}

absl::Status Configure(sqlite3* db, const SqliteStoreOptions& options) {
  sqlite3_extended_result_codes(db, 1);
  int rc = sqlite3_busy_timeout(db, options.busy_timeout_ms);
  if (rc != SQLITE_OK) return SqliteError(db, rc, "setting the busy timeout");
  {
    Statement wal(db, "PRAGMA journal_mode = WAL");
    ASSIGN_OR_RETURN(bool row, wal.Step());
    if (!row || wal.Text(0) != "wal") {
      return absl::FailedPreconditionError(
          "metadata store: cannot switch the database to WAL mode (journal "
          "mode is '" +
          (row ? wal.Text(0) : std::string()) +
          "'); put the data directory on a local filesystem");
    }
  }
  RETURN_IF_ERROR(Exec(db, "PRAGMA synchronous = FULL", "setting synchronous"));
  RETURN_IF_ERROR(
      Exec(db, "PRAGMA foreign_keys = ON", "enabling foreign keys"));
  return absl::OkStatus();
}

}  // namespace

int SqliteStoreFormatVersion() { return kFormatVersion; }

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& data_dir, Clock* clock,
    const SqliteStoreOptions& options) {
  if (data_dir.empty()) {
    return absl::InvalidArgumentError("data directory must not be empty");
  }
  RETURN_IF_ERROR(LocalFilesystem()->CreateDirs(data_dir),
                  "creating data directory");
  const std::string path = JoinPath(data_dir, kDatabaseFile);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(db, rc, "opening '" + path + "'");
    sqlite3_close_v2(db);
    return status;
  }
  absl::Status status = Configure(db, options);
  if (status.ok()) {
    // Refuse a newer directory before touching its schema.
    absl::StatusOr<int> version = UserVersion(db);
    status = version.status();
    if (status.ok() && *version > kFormatVersion) {
      sqlite3_close_v2(db);
      return NewerFormatError(data_dir, *version);
    }
  }
  if (status.ok()) status = Migrate(db, data_dir);
  if (!status.ok()) {
    sqlite3_close_v2(db);
    if (absl::IsDataLoss(status)) {
      return absl::DataLossError(
          "'" + path + "' is not a readable Slipway metadata database (" +
          std::string(status.message()) +
          "); restore it from a backup or point --data-dir elsewhere");
    }
    return Annotate(status, "opening '" + path + "'");
  }
  return std::unique_ptr<Store>(std::make_unique<SqliteStore>(db, clock));
}

}  // namespace slipway
