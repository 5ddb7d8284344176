// AppSpec: the typed form of an app's `slipway.yaml` (use case, data
// sources, schema, pipelines, endpoint, monitor, policy, notifiers), and the
// parser that validates it.
//
// ParseAppSpec checks everything it can without reading data: key names,
// value types and ranges, the keys each connector takes, cross references
// (an ingest step names a data source, a train pipeline has a target), each
// pipeline's step graph (references, outputs, cycles, what each step needs
// before it, the rules of its kind), cron schedules (pipeline/cron.h),
// durations and sizes. Every error is InvalidArgument and begins with
// "<file>:<line>:<column>: " (1-based) at the offending node, so a user can
// jump straight to it. Steps, pipelines, data sources, alert rules and
// notifiers keep their SourceLocation so that later stages (a run that fails at
// a step) can point back into the file too.
//
// DiffSpecs compares two revisions of the file line by line, for
// `slipway apply` to show what changed.
//
// Thread safety: the functions are pure and may be called concurrently; an
// AppSpec is a plain value.
#ifndef SLIPWAY_PIPELINE_APP_SPEC_H_
#define SLIPWAY_PIPELINE_APP_SPEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "data/csv.h"
#include "data/table.h"
#include "models/signature.h"

namespace slipway {

// A position in the spec file, 1-based; {0, 0} for values that were not
// written in the file (defaults).
struct SourceLocation {
  int line = 0;
  int column = 0;
};

// "slipway.yaml:7:5" (just the file name when the location is unknown).
std::string FormatLocation(std::string_view file_name, SourceLocation location);

struct UseCaseSpec {
  std::string problem;
  std::vector<std::string> integration;  // "rest", "batch"
  std::string owner;
  std::string business_kpi;
};

// How a data entry is read (as a source) or written (as a sink).
enum class Connector { kCsv, kJsonl, kSqlite, kPostgres };
std::string_view ConnectorName(Connector connector);

// A column name with its declared type (data.<source>.types,
// schema.features).
struct ColumnType {
  std::string column;
  DataType type = DataType::kString;
};

// One entry of `data:`. Any entry can be read (ingest, score) or written
// (score, sink); which keys apply depends on the connector (others are
// refused, so a field that does not apply keeps its default):
// - csv: path, header, skip_lines, delimiter, columns, types,
//   missing_values, chunk_rows
// - jsonl: path, types, chunk_rows
// - sqlite: path, query (read) and/or table (write; read as SELECT * when
//   there is no query), chunk_rows, batch_rows
// - postgres: url, password (literal or env:NAME), query and/or table,
//   schema, chunk_rows, batch_rows
// A sqlite or postgres entry has a query or a table; one that a score or
// sink step writes has a table.
struct DataSourceSpec {
  std::string name;
  Connector connector = Connector::kCsv;
  std::string path;       // csv, jsonl, sqlite: as written in the file
  std::string url;        // postgres: libpq URL, literal or env:NAME
  std::string password;   // postgres: optional, literal or env:NAME
  std::string query;      // sqlite, postgres: what a read returns
  std::string table;      // sqlite, postgres: what a write appends to
  std::string db_schema;  // postgres: the table's schema; empty: search path
  int64_t chunk_rows = 65536;  // rows per chunk when streamed
  int64_t batch_rows = 1000;   // sqlite, postgres: rows per INSERT
  bool header = true;
  int64_t skip_lines = 0;  // lines skipped before the header (or first row)
  char delimiter = ',';
  // Column names in file order: required when `header` is false, refused
  // when it is true (the header names the columns then).
  std::vector<std::string> columns;
  std::vector<ColumnType> types;  // overrides type inference, file order
  std::vector<std::string> missing_values = {"",    "NA",   "N/A",  "NaN",
                                             "nan", "null", "NULL", "None"};
  SourceLocation location;  // of the source's name
};

// The reader options for a CSV source (connector kCsv).
CsvOptions CsvOptionsFor(const DataSourceSpec& source);

struct SchemaSpec {
  std::string target;  // empty: none (required by train pipelines)
  std::string id;      // empty: none; never used as a feature
  // Pinned features in model order; empty means "every column but the
  // target, the id and `exclude`, with inferred types".
  std::vector<ColumnType> features;
  std::vector<std::string> exclude;
  std::optional<Task> task;  // unset: inferred from the target column
  SourceLocation location;   // of the schema map
};

// Step parameters, one struct per built-in step kind, defaults filled.
struct IngestStepSpec {
  std::string source;  // names an entry of AppSpec::data
  // > 0: only the source's last `last_rows` rows (its most recent, for a
  // source that appends), the window a retraining learns from; 0: all.
  int64_t last_rows = 0;
};

struct ValueRange {
  std::string column;
  double min = 0;
  double max = 0;
};

struct AllowedValues {
  std::string column;
  std::vector<std::string> values;
};

struct ValidateStepSpec {
  double max_null_fraction = 1.0;  // per column; 1 allows any
  int64_t min_rows = 1;
  std::vector<ValueRange> ranges;      // file order
  std::vector<AllowedValues> allowed;  // file order
};

struct SplitStepSpec {
  double test_fraction = 0.2;  // strictly between 0 and 1
  int64_t seed = 0;
  bool stratify = false;  // keep class proportions (classification only)
};

enum class TrainEngine { kXgboost };
std::string_view TrainEngineName(TrainEngine engine);

struct TrainStepSpec {
  TrainEngine engine = TrainEngine::kXgboost;
  // XGBoost objective; empty: chosen from the task (binary:logistic,
  // multi:softprob, reg:squarederror).
  std::string objective;
  int64_t rounds = 100;
  int64_t max_depth = 6;
  double eta = 0.3;
  double subsample = 1.0;
  double colsample_bytree = 1.0;
  double min_child_weight = 1.0;
  double lambda = 1.0;
  double alpha = 0.0;
  int64_t seed = 0;
  int64_t threads = 0;  // 0: XGBoost's default (all cores)
};

struct EvaluateStepSpec {
  // Metric names (auc, logloss, accuracy, rmse, mae, r2) in file order;
  // empty: the task's standard metrics.
  std::vector<std::string> metrics;
};

struct RegisterStepSpec {
  std::string alias;  // empty: register without moving an alias
};

// transform: fitted on the training rows, stored with the registered
// version and applied by serving and batch scoring before the model.
enum class NumericImpute { kNone, kMean, kMedian, kConstant };
enum class CategoricalImpute { kNone, kMostFrequent, kConstant };
enum class CategoricalEncoding { kNative, kOneHot, kOrdinal };

struct TransformStepSpec {
  NumericImpute impute_numeric = NumericImpute::kNone;
  CategoricalImpute impute_categorical = CategoricalImpute::kNone;
  double fill_value = 0;                  // impute_numeric: constant
  std::string fill_category = "missing";  // impute_categorical: constant
  CategoricalEncoding encode = CategoricalEncoding::kNative;
  // onehot: the most frequent categories kept per column; rarer ones and
  // unseen ones set no indicator.
  int64_t max_categories = 50;
  bool standardize = false;  // numeric features -> (x - mean) / stddev
  // Features the transform applies to; empty: every feature.
  std::vector<std::string> columns;
};

// score: streams `source` through the model behind `model` into `sink`,
// chunk by chunk, in bounded memory.
struct ScoreStepSpec {
  std::string source;  // names an entry of AppSpec::data
  std::string sink;    // names an entry of AppSpec::data
  // An alias ("champion") or a version number ("3").
  std::string model = "champion";
  // Input columns copied to each output row, in this order; empty: every
  // input column.
  std::vector<std::string> keep;
  int64_t chunk_rows = 0;  // 0: the source's chunk_rows
  int64_t threads = 0;     // XGBoost threads; 0: every core
};

// sink: writes the table the step takes as input to a data entry.
struct SinkStepSpec {
  std::string to;  // names an entry of AppSpec::data
};

// command: any program, run with the step contract of DESIGN.md
// (SLIPWAY_RUN_ID, SLIPWAY_STEP, SLIPWAY_INPUT_DIR, SLIPWAY_OUTPUT_DIR,
// SLIPWAY_PARAMS, SLIPWAY_EVENTS).
struct CommandStepSpec {
  // `run: "python3 train.py --rounds 50"` runs through /bin/sh -c;
  // `run: [python3, train.py]` runs that argv directly.
  std::vector<std::string> argv;
  bool shell = false;  // argv is {"/bin/sh", "-c", <the string>}
  // Relative to the applied spec's directory; empty: that directory.
  std::string working_dir;
  // SLIPWAY_PARAMS: `params` as a JSON object, keys in file order; plain
  // YAML scalars that read as numbers, booleans or null keep that type.
  std::string params_json = "{}";
  // Extra environment variables in file order; values may be env:NAME.
  std::vector<std::pair<std::string, std::string>> env;
};

// notebook: a Jupyter notebook executed with injected parameters.
struct NotebookStepSpec {
  std::string path;                // relative to the applied spec's directory
  std::string params_json = "{}";  // as for CommandStepSpec
  std::string kernel = "python3";
};

// The order of the alternatives is the order of StepKind.
enum class StepKind {
  kIngest,
  kValidate,
  kSplit,
  kTrain,
  kEvaluate,
  kRegister,
  kTransform,
  kScore,
  kSink,
  kCommand,
  kNotebook
};
std::string_view StepKindName(StepKind kind);

using StepParams =
    std::variant<IngestStepSpec, ValidateStepSpec, SplitStepSpec, TrainStepSpec,
                 EvaluateStepSpec, RegisterStepSpec, TransformStepSpec,
                 ScoreStepSpec, SinkStepSpec, CommandStepSpec,
                 NotebookStepSpec>;

// Keys every step may carry beside its kind.
struct StepPolicySpec {
  int64_t retries = 0;               // further attempts after a failure
  int64_t retry_backoff_ms = 10000;  // wait before retry 1; doubles after
  int64_t timeout_ms = 0;            // per attempt; 0: none
  // Address-space limit of a command or notebook step's processes (the
  // parser refuses it on built-in steps); 0: none.
  int64_t memory_bytes = 0;
  // Reuse the outputs of an earlier run whose step had the same inputs,
  // params and code. Steps that read or write the outside world (ingest,
  // score, sink, register) never reuse.
  bool cache = true;
};

struct StepSpec {
  std::string name;  // unique in its pipeline; the kind unless renamed
  StepParams params;
  // The outputs this step reads, each "<step>" (all of that step's outputs)
  // or "<step>.<output>". Empty and `after` empty: the step follows the
  // previous step of the list (the first step follows nothing).
  std::vector<std::string> inputs;
  // Names of the outputs a command or notebook step writes into
  // SLIPWAY_OUTPUT_DIR (a file "<name>.csv" is a table, a directory
  // "model" a model). Built-in steps have fixed outputs (pipeline/README.md).
  std::vector<std::string> outputs;
  std::vector<std::string> after;  // steps that must finish first, no data
  StepPolicySpec policy;
  SourceLocation location;  // of the step's kind key

  StepKind kind() const { return static_cast<StepKind>(params.index()); }
};

enum class PipelineKind { kTrain, kScore, kCheck };
std::string_view PipelineKindName(PipelineKind kind);

// Events that can start a pipeline (and that alert rules can fire).
enum class TriggerEvent { kDrift, kKpiDecay, kNewData };
std::string_view TriggerEventName(TriggerEvent event);

struct TriggerSpec {
  // 5-field cron expression in UTC (pipeline/cron.h), empty: none.
  std::string schedule;
  std::vector<TriggerEvent> on;
};

struct PipelineSpec {
  std::string name;
  PipelineKind kind = PipelineKind::kTrain;
  TriggerSpec trigger;
  // Runs of this pipeline that may be unfinished at once; a start beyond it
  // is refused (run_executor.h).
  int64_t concurrency = 1;
  // A run cut off by a crash (failed, reason "interrupted") is started
  // again once when the server comes back.
  bool retry_interrupted = false;
  // Steps in file order; they run as their inputs and `after` allow.
  std::vector<StepSpec> steps;
  SourceLocation location;  // of the pipeline's name

  // The step named `name`, or nullptr.
  const StepSpec* FindStep(std::string_view name) const;
};

// The fixed output names of a built-in step kind (step3 contract):
// ingest, validate -> data; split -> train, test; transform -> train, test,
// transform; train -> model; evaluate -> metrics; register, score, sink ->
// none. Command and notebook steps have no fixed outputs: {}.
std::vector<std::string> BuiltinOutputs(StepKind kind);

// The outputs other steps may read from `step`: BuiltinOutputs for a
// built-in step; for a command or notebook step its declared `outputs`
// followed by "model" and "metrics" (written when the program writes
// model/ or metrics.json) unless declared already.
std::vector<std::string> StepOutputNames(const StepSpec& step);

// An entry of StepSpec::inputs, resolved: the producing step and the output
// read ("" when the entry names the whole step, meaning all its outputs).
struct StepInput {
  std::string step;
  std::string output;
};

// Splits an entry of `inputs` ("<step>" or "<step>.<output>") at its first
// '.'. ParseAppSpec refuses entries that would read a step whose name holds
// a '.', so the split is never ambiguous.
StepInput ResolveStepInput(std::string_view input);

// The steps `step` waits for, in file order without repeats: with no
// `inputs` and no `after`, the previous step of the list (none for the
// first); otherwise exactly the producers of its inputs plus its `after`
// steps. REQUIRES: `step` is one of `pipeline.steps` and `pipeline` came
// from ParseAppSpec (which refuses unknown references and cycles).
std::vector<const StepSpec*> StepDependencies(const PipelineSpec& pipeline,
                                              const StepSpec& step);

struct BatchingSpec {
  bool enabled = true;       // false: each request is its own call
  int64_t max_batch = 64;    // rows per backend call
  int64_t max_delay_us = 0;  // longest wait to fill a batch (serving/batcher.h)
  int64_t max_queue = 8192;  // queued rows before requests are refused
};

// endpoint.canary: a share of live traffic goes to another alias's version
// while that alias points elsewhere than the served one.
struct CanarySpec {
  std::string model;  // the alias, e.g. "challenger"; never endpoint.model
  int64_t percent = 10;  // of requests, 1..99; sticky per X-Routing-Key
  // Labelled predictions each side needs before the canary is judged on
  // policy.promote (metric, min_gain, confidence) from feedback.
  int64_t min_rows = 100;
  SourceLocation location;  // of the canary map
};

// endpoint.shadow: another alias's version gets a copy of every request
// off the response path; its answers are logged and compared, never sent.
struct ShadowSpec {
  std::string model;  // the alias; never endpoint.model nor the canary's
  SourceLocation location;
};

// endpoint.runtime: how the backends that run outside the server's own
// threads serve this app's versions (models/loader.h).
struct RuntimeSpec {
  // Python models: worker processes per version, Predict calls before a
  // worker is replaced (0: never), and the longest a call may take before
  // its worker is killed and replaced.
  int64_t workers = 2;
  int64_t recycle_after = 10000;
  int64_t timeout_seconds = 30;
  // TorchScript models: LibTorch's intra-op threads (process-wide: the
  // first TorchScript version loaded sets it).
  int64_t threads = 1;
};

struct EndpointSpec {
  std::string model = "champion";  // the alias served
  std::optional<CanarySpec> canary;
  std::optional<ShadowSpec> shadow;
  BatchingSpec batching;
  RuntimeSpec runtime;
  // The fields callers send, for the feature gap check; empty: not declared.
  std::vector<std::string> fields;
  // `auth: token`: predict and infer need a valid API token (any role);
  // `auth: none` (the default): they are open.
  bool require_token = false;
};

// How one feature's drift is decided (docs/monitoring.md): "auto" (KS
// p-value or chi-square p-value for small baselines, normalized
// Wasserstein or Jensen-Shannon otherwise), "psi", "ks", "wasserstein",
// "chi2" or "js"; `threshold` overrides the method's decision level (a
// p-value for ks and chi2, a distance for wasserstein and js, the PSI
// level for psi).
struct DriftRuleSpec {
  std::string method = "auto";
  std::optional<double> threshold;
  SourceLocation location;
};

struct DriftSpec {
  DriftRuleSpec rule;   // every feature's, unless `features` names it
  double warn = 0.1;    // PSI level reported as a warning
  double alert = 0.25;  // PSI level that is drift for method psi
  // Per-feature overrides by feature name ("prediction" for the model's
  // output), in file order.
  std::vector<std::pair<std::string, DriftRuleSpec>> features;
};

enum class Comparison { kBelow, kAbove };

struct AlertRuleSpec {
  std::string name;
  std::string metric;  // e.g. "kpi.auc", "drift.age"
  Comparison comparison = Comparison::kBelow;
  double threshold = 0;
  int64_t for_windows = 1;           // consecutive windows before it fires
  std::optional<TriggerEvent> fire;  // event raised for pipeline triggers
  SourceLocation location;
};

struct MonitorSpec {
  int64_t window_seconds = 300;
  // false: serving neither profiles nor logs the app's predictions.
  bool enabled = true;
  // Fraction of requests whose inputs the prediction log keeps.
  double log_inputs = 0;
  // Predictions (and their feedback) older than this are deleted.
  int64_t retention_seconds = 30 * 86400;
  DriftSpec drift;
  std::vector<AlertRuleSpec> rules;
};

struct PromotePolicySpec {
  // An evaluation metric name; empty: promotions are by hand (the policy
  // only says whether they need approval). With one, a register step
  // compares the version it registers with the champion on its run's test
  // rows and promotes it when the gain's confidence interval lies above
  // min_gain (stats/bootstrap.h).
  std::string metric;
  double min_gain = 0;
  double confidence = 0.95;  // of the gain's two-sided interval
  bool requires_approval = false;
  SourceLocation location;  // of `metric`
};

// policy.apply: whether a new revision of the app's spec needs approval
// once the app serves a champion.
struct ApplyPolicySpec {
  bool requires_approval = false;
};

// policy.approvals: how approval requests behave.
struct ApprovalsPolicySpec {
  int64_t expire_after_seconds = 72 * 3600;  // a pending request expires
  bool forbid_self_approval = true;          // the requester may not approve it
};

// policy.rollback: after a promotion, the new champion's KPI from feedback
// is compared with the previous champion's; a drop of more than kpi_drop
// (with the promotion policy's confidence) moves the alias back.
struct RollbackPolicySpec {
  double kpi_drop = 0;  // in the metric's units, > 0
  // The KPI compared ("auc", "accuracy", ...); empty: policy.promote's.
  std::string metric;
  // Monitoring windows after a promotion during which it is watched.
  int64_t windows = 3;
  // Labelled predictions of the new champion needed before it is judged,
  // and requests before its error rate is.
  int64_t min_rows = 100;
  // Roll back, too, when the share of requests the new champion fails
  // exceeds the previous champion's by more than this (with confidence).
  double error_rate_rise = 0.01;
  SourceLocation location;  // of the rollback map
};

struct PolicySpec {
  std::optional<PromotePolicySpec> promote;
  std::optional<RollbackPolicySpec> rollback;
  ApplyPolicySpec apply;
  ApprovalsPolicySpec approvals;
};

struct NotifierSpec {
  std::string webhook;  // http:// or https:// URL
  std::string secret;   // empty: unsigned
  SourceLocation location;
};

struct AppSpec {
  std::string file_name;  // as given to ParseAppSpec, for FormatLocation
  std::string app;
  std::string description;
  std::optional<UseCaseSpec> use_case;
  std::vector<DataSourceSpec> data;  // file order
  SchemaSpec schema;
  std::vector<PipelineSpec> pipelines;  // file order
  EndpointSpec endpoint;
  MonitorSpec monitor;
  PolicySpec policy;
  std::vector<NotifierSpec> notify;

  // The entry named `name`, or nullptr.
  const DataSourceSpec* FindDataSource(std::string_view name) const;
  const PipelineSpec* FindPipeline(std::string_view name) const;
};

// Parses and validates the text of a slipway.yaml. `file_name` only labels
// error messages ("slipway.yaml:7:5: unknown key 'epochs' in train step;
// expected one of: ..."). Errors are InvalidArgument.
absl::StatusOr<AppSpec> ParseAppSpec(std::string_view yaml_text,
                                     std::string_view file_name);

// A unified-style line diff from `old_yaml` to `new_yaml`: hunks headed
// "@@ -a,b +c,d @@" whose lines start with ' ' (context, 3 lines around each
// change), '-' (removed) or '+' (added). Empty when the texts are equal.
std::string DiffSpecs(std::string_view old_yaml, std::string_view new_yaml);

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_APP_SPEC_H_
