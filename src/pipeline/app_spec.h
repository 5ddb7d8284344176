// AppSpec: the typed form of an app's `slipway.yaml` (use case, data
// sources, schema, pipelines, endpoint, monitor, policy, notifiers), and the
// parser that validates it.
//
// ParseAppSpec checks everything it can without reading data: key names,
// value types and ranges, cross references (an ingest step names a data
// source, a train pipeline has a target), the order of the steps of a
// pipeline, cron schedules (pipeline/cron.h) and durations. Every error is
// InvalidArgument and begins with "<file>:<line>:<column>: " (1-based) at the
// offending node, so a user can jump straight to it. Steps, pipelines, data
// sources, alert rules and notifiers keep their SourceLocation so that later
// stages (a run that fails at a step) can point back into the file too.
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

// How a data source is read. CSV files are the connector of this release.
enum class Connector { kCsv };
std::string_view ConnectorName(Connector connector);

// A column name with its declared type (data.<source>.types,
// schema.features).
struct ColumnType {
  std::string column;
  DataType type = DataType::kString;
};

struct DataSourceSpec {
  std::string name;
  Connector connector = Connector::kCsv;
  std::string path;  // as written in the file
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

// The order of the alternatives is the order of StepKind.
enum class StepKind {
  kIngest,
  kValidate,
  kSplit,
  kTrain,
  kEvaluate,
  kRegister
};
std::string_view StepKindName(StepKind kind);

using StepParams =
    std::variant<IngestStepSpec, ValidateStepSpec, SplitStepSpec, TrainStepSpec,
                 EvaluateStepSpec, RegisterStepSpec>;

struct StepSpec {
  std::string name;  // unique in its pipeline; the kind unless renamed
  StepParams params;
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
  std::vector<StepSpec> steps;  // run in this order
  SourceLocation location;      // of the pipeline's name

  // The step named `name`, or nullptr.
  const StepSpec* FindStep(std::string_view name) const;
};

struct BatchingSpec {
  bool enabled = true;       // false: each request is its own call
  int64_t max_batch = 64;    // rows per backend call
  int64_t max_delay_us = 0;  // longest wait to fill a batch (serving/batcher.h)
  int64_t max_queue = 8192;  // queued rows before requests are refused
};

struct EndpointSpec {
  std::string model = "champion";  // the alias served
  BatchingSpec batching;
};

struct DriftSpec {
  std::string method = "psi";  // "psi" or "ks"
  double warn = 0.1;
  double alert = 0.25;
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
  DriftSpec drift;
  std::vector<AlertRuleSpec> rules;
};

struct PromotePolicySpec {
  std::string metric;  // an evaluation metric name
  double min_gain = 0;
  bool requires_approval = false;
};

struct RollbackPolicySpec {
  double kpi_drop = 0;
};

struct PolicySpec {
  std::optional<PromotePolicySpec> promote;
  std::optional<RollbackPolicySpec> rollback;
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
