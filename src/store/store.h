// Store: Slipway's metadata (apps and their revisions, runs with their steps
// and events, the step cache, model versions and aliases, schedule state,
// API tokens, the audit log, approvals, webhook deliveries) and what
// monitoring keeps (the prediction log and its feedback, monitoring windows,
// alerts), behind an interface so a
// PostgreSQL implementation can join the embedded SQLite one.
//
// Every method is one transaction: it either happens completely or not at
// all, and it is durable when it returns OK. Methods that check a
// precondition (a revision number that must be next, a run that must be in
// a given state) do so inside the same transaction.
//
// Errors: NotFound names the missing object ("app 'churn'"); AlreadyExists
// and FailedPrecondition say what conflicted; Unavailable when the database
// is busy beyond the busy timeout (retry).
// Thread safety: implementations are safe for concurrent use.
#ifndef SLIPWAY_STORE_STORE_H_
#define SLIPWAY_STORE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/clock.h"

namespace slipway {

struct AppRecord {
  std::string name;
  int64_t created_at = 0;    // unix micros
  int current_revision = 0;  // 0: none yet
};

struct AppRevisionRecord {
  std::string app;
  int revision = 0;         // 1, 2, ... per app
  std::string spec_yaml;    // the file as applied
  std::string spec_sha256;  // of spec_yaml
  std::string source_dir;   // absolute directory of the applied file;
                            // relative paths in the spec start here
  int64_t created_at = 0;
};

// Run and step states: "queued", "running", "succeeded", "failed",
// "cancelled" (DESIGN.md). A step may also be "pending" (not started) or
// "skipped" (a step it depends on failed or was cancelled).
struct RunRecord {
  std::string id;
  std::string app;
  std::string pipeline;
  int revision = 0;  // app revision the run executes
  std::string state;
  std::string reason;  // why it failed or was cancelled
  int64_t created_at = 0;
  int64_t started_at = 0;   // 0: not yet
  int64_t finished_at = 0;  // 0: not yet
  // The interrupted run this one retries (retry_interrupted); empty
  // otherwise. Set at creation.
  std::string retry_of;
};

struct StepRecord {
  std::string run_id;
  std::string name;
  int ordinal = 0;   // position in the pipeline
  std::string kind;  // "ingest", "train", "command", ... (set at creation)
  std::string state;
  std::string message;       // progress or failure text
  std::string outputs_json;  // step results ("{}" when none)
  int64_t started_at = 0;
  int64_t finished_at = 0;
  int attempts = 0;  // attempts started (retries included)
  // Resources of the step's programs (command and notebook steps), summed
  // over attempts; peak_rss_kb is the largest attempt's.
  int64_t cpu_user_micros = 0;
  int64_t cpu_system_micros = 0;
  int64_t peak_rss_kb = 0;
  // What the step's results depend on (pipeline/README.md "Step caching");
  // empty for steps that are never reused.
  std::string cache_key;
  // The run whose outputs this step reused; empty when it ran.
  std::string cached_from_run;
  // How far a running step got ({"rows": 120000}, {"round": 40,
  // "rounds": 200}); "{}" when it reports nothing.
  std::string progress_json = "{}";
};

// A step's reusable outputs: the run that produced them for `cache_key`.
struct StepCacheRecord {
  std::string app;
  std::string pipeline;
  std::string step;
  std::string cache_key;
  std::string run_id;
  int64_t created_at = 0;  // set by the store
};

// A line a step's program appended to $SLIPWAY_EVENTS (a metric, a
// statistic, an alert), or "invalid" for a line that could not be read.
struct RunEventRecord {
  std::string run_id;
  std::string step;
  int64_t seq = 0;   // 1, 2, ... per run, assigned by the store
  int64_t at = 0;    // unix micros
  std::string type;  // "metric", "stat", "alert", "invalid", ...
  std::string name;
  std::string value_json;  // the event's value as JSON; "null" when none
  std::string message;
};

struct ModelVersionRecord {
  std::string app;
  int version = 0;              // 1, 2, ... per app, assigned by the store
  std::string artifact_sha256;  // the model file in the artifact store
  std::string format;           // "xgboost-json"
  // The request signature: the raw features a caller sends (with a
  // transform, the model itself sees the transform's outputs).
  std::string signature_json;
  // The fitted transform applied before the model (models/transform.h);
  // empty: none.
  std::string transform_json;
  std::string params_json;
  std::string metrics_json;
  std::string data_fingerprint;  // SHA-256 of the training input as read
  int64_t row_count = 0;
  std::string run_id;
  int revision = 0;  // app revision it was trained under
  int64_t created_at = 0;
  // Lineage beyond the run: the SHA-256 of the command or notebook step
  // that produced the model (empty for built-in training); the champion
  // when the version was registered (0: none); {"xgboost": "1.7.4",
  // "slipway": "0.1.0", "python": {"version", "executable", "packages":
  // {"numpy": "1.24.2", ...}}} ("python" only for a model a Python program
  // produced; "{}" when unknown); who
  // registered it ("run <id>", "import"); every ingested input as
  // [{"name", "fingerprint", "rows"}] ("[]" when unknown).
  std::string code_sha256;
  int parent_version = 0;
  std::string runtime_json = "{}";
  std::string created_by;
  std::string data_sources_json = "[]";
  // The training baseline profile (stats/profile.h ProfileSet JSON) in the
  // artifact store, which monitoring compares live traffic with; empty
  // when none was computed (an import, a model without training rows).
  std::string baseline_sha256;
};

struct AliasRecord {
  std::string app;
  std::string alias;
  int version = 0;
  int64_t updated_at = 0;
};

// One alias to point at a version (Store::SetAliases).
struct AliasMove {
  std::string alias;
  int version = 0;
};

// One recorded alias move.
struct AliasHistoryRecord {
  std::string app;
  int64_t seq = 0;  // 1, 2, ... per app, assigned by the store
  std::string alias;
  int from_version = 0;  // 0: the alias was not set
  int to_version = 0;
  int64_t at = 0;     // unix micros
  std::string actor;  // "cli:<token name>", "api:<token name>", "run <id>"
};

// An API token (auth/tokens.h). Only the SHA-256 of its secret is stored.
struct TokenRecord {
  std::string id;             // "tok-..."
  std::string name;           // what it is for ("ci", "alice")
  std::string role;           // "viewer", "operator", "approver", "admin"
  std::string secret_sha256;  // 64 lowercase hex digits
  int64_t created_at = 0;     // unix micros
  int64_t expires_at = 0;     // 0: never
  int64_t revoked_at = 0;     // 0: not revoked
  std::string created_by;     // "server" (the first admin token), "token <id>"
};

// One change to record in the audit log (Store::AppendAudit).
struct AuditEntry {
  // Who made it: "api:<token name>", "cli:<token name>", "run <id>",
  // "server", "scheduler", "expiry".
  std::string actor;
  // What happened: "app.apply", "alias.move", ... (audit/README.md).
  std::string action;
  std::string app;     // the app it concerns; "" for server-wide objects
  std::string object;  // what changed: "model churn v3", "token tok-..."
  std::string before_json = "null";  // the object before; null: created
  std::string after_json = "null";   // the object after; null: deleted
};

// An audit entry as stored: numbered and chained to the one before it.
struct AuditRecord {
  int64_t seq = 0;  // 1, 2, ... over the whole log, assigned by the store
  int64_t at = 0;   // unix micros, set by the store
  std::string actor;
  std::string action;
  std::string app;
  std::string object;
  std::string before_json;
  std::string after_json;
  std::string prev_hash;  // the previous record's hash; 64 '0' for seq 1
  std::string hash;       // AuditRecordHash(*this)
};

// The SHA-256 (64 lowercase hex digits) of every field of `record` but
// `hash`, each length-prefixed, so no two different records hash alike.
std::string AuditRecordHash(const AuditRecord& record);

// The prev_hash of the first audit record.
inline constexpr char kAuditGenesisHash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Which audit records Store::ListAudit returns; empty fields match all.
struct AuditFilter {
  std::string app;            // exactly
  std::string actor;          // exactly
  std::string action;         // exactly
  std::string object_prefix;  // object starts with it
  int64_t after_seq = 0;      // only records with a larger seq
  int limit = 0;              // at most this many (oldest first); 0: all
};

// A change waiting for an approver (registry/approvals.h).
// States: "pending", then "approved", "rejected" or "expired".
struct ApprovalRecord {
  int64_t id = 0;  // 1, 2, ... over all apps, assigned by the store
  std::string app;
  std::string kind;  // "promote" (alias moves) or "apply" (a spec revision)
  // What approval carries out: promote {"moves": [{"alias", "version"}]};
  // apply {"spec_yaml", "spec_sha256", "source_dir"}.
  std::string change_json;
  std::string state;
  std::string requested_by;        // actor, as in the audit log
  std::string requested_by_token;  // token id; "" when a run asked
  std::string request_comment;
  int64_t requested_at = 0;
  int64_t expires_at = 0;  // 0: never
  std::string decided_by;  // actor; "expiry" when it expired
  std::string decided_by_token;
  std::string decision_comment;
  int64_t decided_at = 0;  // 0: pending
};

// One POST of a registry event to a webhook (notify/).
// States: "pending" (to be tried at next_attempt_at), "delivered",
// "failed" (gave up after the last retry).
struct DeliveryRecord {
  int64_t id = 0;  // assigned by the store
  std::string app;
  int64_t audit_seq = 0;  // the audit record the event reports
  std::string event;      // "model.registered", "alias.moved", ...
  std::string url;
  std::string payload_json;  // the exact body sent on every attempt
  std::string signature;     // the signature header's value; "" unsigned
  std::string state;
  int attempts = 0;
  int64_t next_attempt_at = 0;
  int last_status = 0;  // HTTP status of the last attempt; 0: none
  std::string last_error;
  int64_t created_at = 0;
  int64_t delivered_at = 0;  // 0: not delivered
};

// One served prediction (monitor/prediction_log.h writes them in batches).
struct PredictionRecord {
  // The request id serving answered with; unique over all apps, so the
  // feedback for it needs only the id.
  std::string request_id;
  std::string app;
  int version = 0;  // the model version that answered
  int64_t at = 0;   // unix micros
  // What the model answered, as JSON: [0.83] (binary), one probability per
  // class (multiclass), [12.5] (regression).
  std::string prediction_json;
  // The request's inputs as JSON when the request was sampled
  // (monitor/prediction_log.h SampleInputs); "" otherwise.
  std::string inputs_json;
};

// Ground truth for one logged prediction (POST /v1/apps/{app}/feedback).
struct FeedbackRecord {
  std::string request_id;
  std::string app;    // the app the feedback was sent to
  std::string label;  // a class label, or a number as text for regression
  // Business values sent with the label: {"revenue": 12.5}; "{}" when none.
  std::string kpis_json = "{}";
  int64_t received_at = 0;  // unix micros
};

// What became of one feedback item (Store::AddFeedback).
enum class FeedbackOutcome {
  kAccepted,        // stored
  kDuplicate,       // the prediction already had feedback; the first stays
  kUnknownRequest,  // no prediction was logged with that request id
  kWrongApp,        // the request id is another app's prediction
};

// "accepted", "duplicate", "unknown_request", "wrong_app".
inline const char* FeedbackOutcomeName(FeedbackOutcome outcome) {
  switch (outcome) {
    case FeedbackOutcome::kAccepted:
      return "accepted";
    case FeedbackOutcome::kDuplicate:
      return "duplicate";
    case FeedbackOutcome::kUnknownRequest:
      return "unknown_request";
    case FeedbackOutcome::kWrongApp:
      return "wrong_app";
  }
  return "unknown_request";
}

// A feedback joined with the prediction it labels (Store::ListLabeled), what
// the KPIs of a window are computed from.
struct LabeledRecord {
  std::string request_id;
  int version = 0;           // the model version that predicted
  int64_t predicted_at = 0;  // unix micros
  std::string prediction_json;
  std::string label;
  std::string kpis_json;
  int64_t received_at = 0;  // when the feedback arrived
};

// One monitoring window of one model version of an app.
struct MonitorWindowRecord {
  std::string app;
  int version = 0;
  int64_t start_at = 0;      // unix micros, inclusive
  int64_t end_at = 0;        // unix micros, exclusive
  int64_t rows = 0;          // predictions observed in the window
  std::string profile_json;  // the window's profiles (stats/profile.h)
  std::string drift_json;    // drift against the baseline; "{}" when none
  std::string kpis_json;     // monitor/kpis.h ComputeKpis; "{}" when none
};

// The latest state of one alert rule of an app (monitor/alerts.h).
struct AlertRecord {
  std::string app;
  std::string rule;
  std::string state;  // "pending", "firing", "resolved"
  int64_t since = 0;  // unix micros: when the alert entered `state`
  int64_t updated_at = 0;
  double value = 0;        // the metric's last value; NaN is kept as NaN
  std::string alert_json;  // monitor/alerts.h Alert::ToJson
};

// An app's alert engine state (monitor/alerts.h AlertEngine::SaveState), so
// a restart continues pending runs of windows instead of starting over.
struct AlertEngineStateRecord {
  std::string app;
  std::string state_json;
  int64_t updated_at = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Apps and revisions.
  // Stores `revision` (its app, spec_yaml, spec_sha256, source_dir) as the
  // app's next revision, creating the app on its first revision, and makes
  // it current; returns the record as stored (number, created_at).
  virtual absl::StatusOr<AppRevisionRecord> AddAppRevision(
      const AppRevisionRecord& revision) = 0;
  virtual absl::StatusOr<AppRecord> GetApp(const std::string& app) = 0;
  virtual absl::StatusOr<std::vector<AppRecord>> ListApps() = 0;
  virtual absl::StatusOr<AppRevisionRecord> GetAppRevision(
      const std::string& app, int revision) = 0;
  virtual absl::StatusOr<std::vector<AppRevisionRecord>> ListAppRevisions(
      const std::string& app) = 0;

  // Runs and steps.
  // Creates the run in state "queued" with its steps in state "pending"
  // (their kinds as given).
  virtual absl::Status CreateRun(const RunRecord& run,
                                 const std::vector<StepRecord>& steps) = 0;
  // Replaces the run's mutable fields (state, reason, started_at,
  // finished_at). FailedPrecondition when the stored run is already in a
  // final state (succeeded, failed, cancelled).
  virtual absl::Status UpdateRun(const RunRecord& run) = 0;
  // Replaces the step's mutable fields (everything but run_id, name,
  // ordinal and kind).
  virtual absl::Status UpdateStep(const StepRecord& step) = 0;
  // Replaces only the step's progress_json, so a progress report never
  // undoes a concurrent UpdateStep.
  virtual absl::Status UpdateStepProgress(const std::string& run_id,
                                          const std::string& step,
                                          const std::string& progress_json) = 0;
  virtual absl::StatusOr<RunRecord> GetRun(const std::string& run_id) = 0;
  virtual absl::StatusOr<std::vector<StepRecord>> ListSteps(
      const std::string& run_id) = 0;
  // Newest first; an empty `app` lists every app's runs.
  virtual absl::StatusOr<std::vector<RunRecord>> ListRuns(
      const std::string& app, int limit) = 0;
  // Marks every queued or running run, and its running or pending steps,
  // failed with `reason` (used at start-up after a crash: "interrupted").
  // Returns the ids of the runs it changed.
  virtual absl::StatusOr<std::vector<std::string>> FailUnfinishedRuns(
      const std::string& reason, int64_t now) = 0;

  // Step caching. Records (or replaces) the run whose outputs answer
  // `record.cache_key`; the run must exist.
  virtual absl::Status PutStepCache(const StepCacheRecord& record) = 0;
  // The entry for the key, or nullopt.
  virtual absl::StatusOr<std::optional<StepCacheRecord>> FindStepCache(
      const std::string& app, const std::string& pipeline,
      const std::string& step, const std::string& cache_key) = 0;

  // Run events, appended in order; `seq` is assigned (continuing the run's
  // numbering) and the stored records are returned. The run must exist.
  virtual absl::StatusOr<std::vector<RunEventRecord>> AddRunEvents(
      const std::vector<RunEventRecord>& events) = 0;
  // Every event of the run in seq order (NotFound for an unknown run).
  virtual absl::StatusOr<std::vector<RunEventRecord>> ListRunEvents(
      const std::string& run_id) = 0;

  // Model versions and aliases.
  // Assigns the next version number of `record.app`, stores the immutable
  // version and returns it as stored.
  virtual absl::StatusOr<ModelVersionRecord> AddModelVersion(
      const ModelVersionRecord& record) = 0;
  virtual absl::StatusOr<ModelVersionRecord> GetModelVersion(
      const std::string& app, int version) = 0;
  // Oldest first.
  virtual absl::StatusOr<std::vector<ModelVersionRecord>> ListModelVersions(
      const std::string& app) = 0;
  // Points every alias of `moves` at its version (each must exist) in one
  // transaction, recording one alias history row per move with `actor`.
  // InvalidArgument for a bad alias name, an empty list or an alias named
  // twice; NotFound for an unknown app or version. Nothing changes on error.
  virtual absl::Status SetAliases(const std::string& app,
                                  const std::vector<AliasMove>& moves,
                                  const std::string& actor) = 0;
  // SetAliases with one move.
  absl::Status SetAlias(const std::string& app, const std::string& alias,
                        int version, const std::string& actor) {
    return SetAliases(app, {AliasMove{alias, version}}, actor);
  }
  // Every recorded alias move of `app`, oldest first (NotFound for an
  // unknown app).
  virtual absl::StatusOr<std::vector<AliasHistoryRecord>> ListAliasHistory(
      const std::string& app) = 0;
  virtual absl::StatusOr<std::optional<AliasRecord>> GetAlias(
      const std::string& app, const std::string& alias) = 0;
  virtual absl::StatusOr<std::vector<AliasRecord>> ListAliases(
      const std::string& app) = 0;

  // Schedules. The time of the latest cron fire the scheduler acted on for
  // a pipeline (unix micros), so fires are neither repeated nor lost across
  // restarts. nullopt: the pipeline's schedule never fired. NotFound for an
  // unknown app.
  virtual absl::StatusOr<std::optional<int64_t>> GetLastScheduledFire(
      const std::string& app, const std::string& pipeline) = 0;
  virtual absl::Status SetLastScheduledFire(const std::string& app,
                                            const std::string& pipeline,
                                            int64_t fire_micros) = 0;

  // API tokens. AddToken stores a new token (AlreadyExists for a taken id
  // or secret hash). ListTokens returns every token, revoked and expired
  // ones too, oldest first. RevokeToken sets revoked_at and returns the
  // token as stored: NotFound for an unknown id, FailedPrecondition when it
  // was already revoked.
  virtual absl::Status AddToken(const TokenRecord& token) = 0;
  virtual absl::StatusOr<std::vector<TokenRecord>> ListTokens() = 0;
  virtual absl::StatusOr<TokenRecord> RevokeToken(const std::string& id,
                                                  int64_t revoked_at) = 0;

  // Audit log (audit/audit_log.h keeps its head outside the store).
  // Appends `entry` as the next record (seq, at, prev_hash and hash set
  // here, in one transaction with reading the previous record) and returns
  // it as stored.
  virtual absl::StatusOr<AuditRecord> AppendAudit(const AuditEntry& entry) = 0;
  // Matching records, oldest first.
  virtual absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      const AuditFilter& filter) = 0;

  // Approvals. AddApproval stores `approval` as pending with the next id
  // and returns it as stored. DecideApproval sets state, decided_by,
  // decided_by_token, decision_comment and decided_at of a pending
  // approval and returns it as stored: NotFound for an unknown id,
  // FailedPrecondition naming its state, decider and time when it is no
  // longer pending. ListApprovals: newest first; empty `app` or `state`
  // match all.
  virtual absl::StatusOr<ApprovalRecord> AddApproval(
      const ApprovalRecord& approval) = 0;
  virtual absl::StatusOr<ApprovalRecord> GetApproval(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<ApprovalRecord>> ListApprovals(
      const std::string& app, const std::string& state) = 0;
  virtual absl::StatusOr<ApprovalRecord> DecideApproval(
      const ApprovalRecord& decision) = 0;

  // Webhook deliveries. AddDeliveries stores new ones (ids and created_at
  // assigned) and returns them as stored. DueDeliveries: pending ones with
  // next_attempt_at <= now, oldest first, at most `limit`. UpdateDelivery
  // replaces state, attempts, next_attempt_at, last_status, last_error and
  // delivered_at. ListDeliveries: newest first, at most `limit`; empty
  // `app` lists all.
  virtual absl::StatusOr<std::vector<DeliveryRecord>> AddDeliveries(
      const std::vector<DeliveryRecord>& deliveries) = 0;
  virtual absl::StatusOr<std::vector<DeliveryRecord>> DueDeliveries(
      int64_t now, int limit) = 0;
  virtual absl::Status UpdateDelivery(const DeliveryRecord& delivery) = 0;
  virtual absl::StatusOr<std::vector<DeliveryRecord>> ListDeliveries(
      const std::string& app, int limit) = 0;

  // Prediction log and feedback. Writes do not look the app up (the server
  // logs only the apps it serves, and feedback is answered per item).
  //
  // AddPredictions stores the predictions in one transaction, as chunks of
  // the prediction log (one per app and minute of request-id time), and
  // returns how many it stored: all of them. Request ids are unique by
  // construction (core/ids.h); when one repeats, feedback labels the first.
  // InvalidArgument (nothing stored) for an empty request id, or a tab or
  // line break in a request id, prediction or inputs.
  virtual absl::StatusOr<int64_t> AddPredictions(
      const std::vector<PredictionRecord>& predictions) = 0;
  // Stores the feedback in one transaction, each item with the prediction
  // it labels (version, time, prediction), and returns each item's outcome,
  // in order: kUnknownRequest when no prediction has the request id,
  // kWrongApp when it is another app's prediction, kDuplicate when the
  // prediction already has feedback (stored before, or earlier in the
  // batch: the first wins), else kAccepted. Only kAccepted items are
  // stored; the other outcomes are not errors. Durable when it returns OK.
  virtual absl::StatusOr<std::vector<FeedbackOutcome>> AddFeedback(
      const std::vector<FeedbackRecord>& feedback) = 0;
  // The feedback of `app` received in [from, to) (unix micros) joined with
  // its prediction, oldest first (by received_at, then request id).
  // NotFound for an unknown app.
  virtual absl::StatusOr<std::vector<LabeledRecord>> ListLabeled(
      const std::string& app, int64_t from, int64_t to) = 0;
  // Retention: deletes the feedback of `app` on predictions made before
  // `before` (unix micros), and the log chunks whose every prediction was
  // made before it; returns how many predictions it deleted. A chunk that
  // straddles `before` stays until its newest prediction is due.
  virtual absl::StatusOr<int64_t> DeletePredictionsBefore(
      const std::string& app, int64_t before) = 0;

  // Monitoring windows. PutMonitorWindow stores the window, replacing the
  // one with the same app, version and start_at. ListMonitorWindows: the
  // windows of `app` (every version) that overlap [from, to), by start_at,
  // then version. NotFound for an unknown app; InvalidArgument when the
  // window does not end after it starts.
  virtual absl::Status PutMonitorWindow(const MonitorWindowRecord& window) = 0;
  virtual absl::StatusOr<std::vector<MonitorWindowRecord>> ListMonitorWindows(
      const std::string& app, int64_t from, int64_t to) = 0;

  // Alerts. PutAlert stores the alert, replacing the app's alert of the same
  // rule (InvalidArgument for a state other than pending, firing,
  // resolved). ListAlerts: by app, then rule; an empty `app` lists every
  // app's. NotFound for an unknown app.
  virtual absl::Status PutAlert(const AlertRecord& alert) = 0;
  virtual absl::StatusOr<std::vector<AlertRecord>> ListAlerts(
      const std::string& app) = 0;
  // The app's saved alert engine state; nullopt when none was saved.
  // PutAlertEngineState replaces it. NotFound for an unknown app.
  virtual absl::StatusOr<std::optional<AlertEngineStateRecord>>
  GetAlertEngineState(const std::string& app) = 0;
  virtual absl::Status PutAlertEngineState(
      const AlertEngineStateRecord& state) = 0;

  // Rows in each table, for tests and operations ("apps" -> 3, ...).
  virtual absl::StatusOr<std::vector<std::pair<std::string, int64_t>>>
  CountRows() = 0;
};

}  // namespace slipway

#endif  // SLIPWAY_STORE_STORE_H_
