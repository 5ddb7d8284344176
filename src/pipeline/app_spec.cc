#include "pipeline/app_spec.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <map>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/status.h"
#include "pipeline/cron.h"
#include "yaml-cpp/yaml.h"

namespace slipway {

std::string FormatLocation(std::string_view file_name,
                           SourceLocation location) {
  std::string out(file_name);
  if (location.line > 0) {
    out += ":" + std::to_string(location.line) + ":" +
           std::to_string(location.column);
  }
  return out;
}

std::string_view ConnectorName(Connector connector) {
  switch (connector) {
    case Connector::kCsv:
      return "csv";
    case Connector::kJsonl:
      return "jsonl";
    case Connector::kSqlite:
      return "sqlite";
    case Connector::kPostgres:
      return "postgres";
  }
  return "unknown";
}

std::string_view TrainEngineName(TrainEngine engine) {
  switch (engine) {
    case TrainEngine::kXgboost:
      return "xgboost";
  }
  return "unknown";
}

std::string_view StepKindName(StepKind kind) {
  switch (kind) {
    case StepKind::kIngest:
      return "ingest";
    case StepKind::kValidate:
      return "validate";
    case StepKind::kSplit:
      return "split";
    case StepKind::kTrain:
      return "train";
    case StepKind::kEvaluate:
      return "evaluate";
    case StepKind::kRegister:
      return "register";
    case StepKind::kTransform:
      return "transform";
    case StepKind::kScore:
      return "score";
    case StepKind::kSink:
      return "sink";
    case StepKind::kCommand:
      return "command";
    case StepKind::kNotebook:
      return "notebook";
  }
  return "unknown";
}

std::string_view PipelineKindName(PipelineKind kind) {
  switch (kind) {
    case PipelineKind::kTrain:
      return "train";
    case PipelineKind::kScore:
      return "score";
    case PipelineKind::kCheck:
      return "check";
  }
  return "unknown";
}

std::string_view TriggerEventName(TriggerEvent event) {
  switch (event) {
    case TriggerEvent::kDrift:
      return "drift";
    case TriggerEvent::kKpiDecay:
      return "kpi_decay";
    case TriggerEvent::kNewData:
      return "new_data";
  }
  return "unknown";
}

CsvOptions CsvOptionsFor(const DataSourceSpec& source) {
  CsvOptions options;
  options.delimiter = source.delimiter;
  options.header = source.header;
  options.skip_lines = static_cast<int>(source.skip_lines);
  options.column_names = source.columns;
  for (const ColumnType& c : source.types) {
    options.column_types[c.column] = c.type;
  }
  options.missing_values = source.missing_values;
  return options;
}

const StepSpec* PipelineSpec::FindStep(std::string_view name) const {
  for (const StepSpec& step : steps) {
    if (step.name == name) return &step;
  }
  return nullptr;
}

const DataSourceSpec* AppSpec::FindDataSource(std::string_view name) const {
  for (const DataSourceSpec& source : data) {
    if (source.name == name) return &source;
  }
  return nullptr;
}

const PipelineSpec* AppSpec::FindPipeline(std::string_view name) const {
  for (const PipelineSpec& pipeline : pipelines) {
    if (pipeline.name == name) return &pipeline;
  }
  return nullptr;
}

std::vector<std::string> BuiltinOutputs(StepKind kind) {
  switch (kind) {
    case StepKind::kIngest:
    case StepKind::kValidate:
      return {"data"};
    case StepKind::kSplit:
      return {"train", "test"};
    case StepKind::kTransform:
      return {"train", "test", "transform"};
    case StepKind::kTrain:
      return {"model"};
    case StepKind::kEvaluate:
      return {"metrics"};
    case StepKind::kRegister:
    case StepKind::kScore:
    case StepKind::kSink:
    case StepKind::kCommand:
    case StepKind::kNotebook:
      return {};
  }
  return {};
}

std::vector<std::string> StepOutputNames(const StepSpec& step) {
  StepKind kind = step.kind();
  if (kind != StepKind::kCommand && kind != StepKind::kNotebook) {
    return BuiltinOutputs(kind);
  }
  std::vector<std::string> outputs = step.outputs;
  for (const char* implicit : {"model", "metrics"}) {
    if (std::find(outputs.begin(), outputs.end(), implicit) == outputs.end()) {
      outputs.push_back(implicit);
    }
  }
  return outputs;
}

StepInput ResolveStepInput(std::string_view input) {
  size_t dot = input.find('.');
  if (dot == std::string_view::npos) return StepInput{std::string(input), ""};
  return StepInput{std::string(input.substr(0, dot)),
                   std::string(input.substr(dot + 1))};
}

std::vector<const StepSpec*> StepDependencies(const PipelineSpec& pipeline,
                                              const StepSpec& step) {
  const std::vector<StepSpec>& steps = pipeline.steps;
  std::vector<bool> wanted(steps.size(), false);
  auto want = [&](std::string_view name) {
    for (size_t i = 0; i < steps.size(); ++i) {
      if (steps[i].name == name) wanted[i] = true;
    }
  };
  if (step.inputs.empty() && step.after.empty()) {
    for (size_t i = 1; i < steps.size(); ++i) {
      if (steps[i].name == step.name) wanted[i - 1] = true;
    }
  }
  for (const std::string& input : step.inputs) {
    want(ResolveStepInput(input).step);
  }
  for (const std::string& name : step.after) want(name);
  std::vector<const StepSpec*> out;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (wanted[i]) out.push_back(&steps[i]);
  }
  return out;
}

namespace {

// A fixed list of words; an empty list of allowed keys means "any key".
using Names = std::span<const std::string_view>;

// Keys each section accepts, in the order the documentation lists them.
constexpr std::string_view kTopLevelKeys[] = {
    "app",       "description", "use_case", "data",   "schema",
    "pipelines", "endpoint",    "monitor",  "policy", "notify"};
constexpr std::string_view kUseCaseKeys[] = {"problem", "integration", "owner",
                                             "business_kpi"};
// The keys of a data entry, per connector (Connector order).
constexpr std::string_view kCsvKeys[] = {
    "connector", "path",  "header",         "skip_lines", "delimiter",
    "columns",   "types", "missing_values", "chunk_rows"};
constexpr std::string_view kJsonlKeys[] = {"connector", "path", "types",
                                           "chunk_rows"};
constexpr std::string_view kSqliteKeys[] = {
    "connector", "path", "query", "table", "chunk_rows", "batch_rows"};
constexpr std::string_view kPostgresKeys[] = {
    "connector", "url",    "password",   "query",
    "table",     "schema", "chunk_rows", "batch_rows"};
constexpr std::string_view kSchemaKeys[] = {"target", "id", "features",
                                            "exclude", "task"};
constexpr std::string_view kPipelineKeys[] = {"kind", "trigger", "concurrency",
                                              "retry_interrupted", "steps"};
constexpr std::string_view kTriggerKeys[] = {"schedule", "on"};
constexpr std::string_view kIngestKeys[] = {"source", "name", "last_rows"};
constexpr std::string_view kValidateKeys[] = {"max_null_fraction", "min_rows",
                                              "ranges", "allowed", "name"};
constexpr std::string_view kSplitKeys[] = {"test_fraction", "seed", "stratify",
                                           "name"};
// The parameters people tune first come first.
constexpr std::string_view kTrainKeys[] = {
    "rounds",           "max_depth", "eta",   "subsample", "colsample_bytree",
    "min_child_weight", "lambda",    "alpha", "seed",      "threads",
    "objective",        "engine",    "name"};
constexpr std::string_view kEvaluateKeys[] = {"metrics", "name"};
constexpr std::string_view kRegisterKeys[] = {"alias", "name"};
constexpr std::string_view kTransformKeys[] = {
    "impute",         "fill_value",  "fill_category", "encode",
    "max_categories", "standardize", "columns",       "name"};
constexpr std::string_view kImputeKeys[] = {"numeric", "categorical"};
constexpr std::string_view kScoreKeys[] = {
    "source", "sink", "model", "keep", "chunk_rows", "threads", "name"};
constexpr std::string_view kSinkKeys[] = {"to", "name"};
constexpr std::string_view kCommandKeys[] = {"run", "params", "env",
                                             "working_dir", "name"};
constexpr std::string_view kNotebookKeys[] = {"path", "params", "kernel",
                                              "name"};
// Keys a step takes beside its kind key (`name` may also sit among the
// kind's parameters, as Step-1 files write it).
constexpr std::string_view kStepCommonKeys[] = {
    "name",          "inputs",  "outputs", "after", "retries",
    "retry_backoff", "timeout", "memory",  "cache"};
constexpr std::string_view kEndpointKeys[] = {
    "model", "batching", "fields", "auth", "canary", "shadow", "runtime"};
constexpr std::string_view kRuntimeKeys[] = {"workers", "recycle_after",
                                             "timeout", "threads"};
constexpr std::string_view kCanaryKeys[] = {"model", "percent", "min_rows"};
constexpr std::string_view kShadowKeys[] = {"model"};
constexpr std::string_view kBatchingKeys[] = {"enabled", "max_batch",
                                              "max_delay_us", "max_queue"};
constexpr std::string_view kMonitorKeys[] = {"window",     "enabled", "log_inputs",
                                             "retention", "drift",   "rules"};
constexpr std::string_view kDriftKeys[] = {"method", "threshold", "warn",
                                           "alert", "features"};
constexpr std::string_view kDriftRuleKeys[] = {"method", "threshold"};
constexpr std::string_view kRuleKeys[] = {"name",  "metric", "below",
                                          "above", "for",    "fire"};
constexpr std::string_view kPolicyKeys[] = {"promote", "rollback", "apply",
                                            "approvals"};
constexpr std::string_view kApplyKeys[] = {"approval"};
constexpr std::string_view kApprovalsKeys[] = {"expire_after", "self_approval"};
constexpr std::string_view kSelfApproval[] = {"forbidden", "allowed"};
constexpr std::string_view kPromoteKeys[] = {"metric", "min_gain", "confidence",
                                             "approval"};
constexpr std::string_view kRollbackKeys[] = {
    "kpi_drop", "metric", "windows", "min_rows", "error_rate_rise"};
constexpr std::string_view kNotifierKeys[] = {"webhook", "secret"};

constexpr std::string_view kConnectors[] = {"csv", "jsonl", "sqlite",
                                            "postgres"};
constexpr std::string_view kTasks[] = {
    "binary_classification", "multiclass_classification", "regression"};
constexpr std::string_view kPipelineKinds[] = {"train", "score", "check"};
// In StepKind order.
constexpr std::string_view kStepKinds[] = {
    "ingest",    "validate", "split", "train",   "evaluate", "register",
    "transform", "score",    "sink",  "command", "notebook"};
constexpr std::string_view kNumericImputes[] = {"none", "mean", "median",
                                                "constant"};
constexpr std::string_view kCategoricalImputes[] = {"none", "most_frequent",
                                                    "constant"};
constexpr std::string_view kEncodings[] = {"native", "onehot", "ordinal"};
constexpr std::string_view kTriggerEvents[] = {"drift", "kpi_decay",
                                               "new_data"};
constexpr std::string_view kIntegrations[] = {"rest", "batch"};
constexpr std::string_view kEngines[] = {"xgboost"};
constexpr std::string_view kMetrics[] = {"auc",  "logloss", "accuracy",
                                         "rmse", "mae",     "r2"};
constexpr std::string_view kDriftMethods[] = {"auto",        "psi",  "ks",
                                              "wasserstein", "chi2", "js"};
constexpr std::string_view kApprovals[] = {"required", "none"};
constexpr std::string_view kEndpointAuth[] = {"none", "token"};
constexpr std::string_view kDataTypes[] = {"float64", "int64", "bool",
                                           "string"};

// XGBoost objectives whose output fits a model signature: a probability
// for classification, a value for regression. binary:hinge and
// multi:softmax are left out because they output labels, not probabilities.
const std::map<std::string_view, Task>& Objectives() {
  static const auto* objectives = new std::map<std::string_view, Task>{
      {"binary:logistic", Task::kBinaryClassification},
      {"multi:softprob", Task::kMulticlassClassification},
      {"reg:squarederror", Task::kRegression},
      {"reg:squaredlogerror", Task::kRegression},
      {"reg:absoluteerror", Task::kRegression},
      {"reg:pseudohubererror", Task::kRegression},
      {"count:poisson", Task::kRegression},
      {"reg:gamma", Task::kRegression},
      {"reg:tweedie", Task::kRegression},
  };
  return *objectives;
}

bool IsClassificationMetric(std::string_view metric) {
  return metric == "auc" || metric == "logloss" || metric == "accuracy";
}

template <typename Container>
std::string Join(const Container& names) {
  std::string out;
  for (std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

template <typename Container>
bool Contains(const Container& names, std::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

Names ConnectorKeys(Connector connector) {
  switch (connector) {
    case Connector::kCsv:
      return kCsvKeys;
    case Connector::kJsonl:
      return kJsonlKeys;
    case Connector::kSqlite:
      return kSqliteKeys;
    case Connector::kPostgres:
      return kPostgresKeys;
  }
  return {};
}

bool IsAnyConnectorKey(std::string_view key) {
  return Contains(kCsvKeys, key) || Contains(kJsonlKeys, key) ||
         Contains(kSqliteKeys, key) || Contains(kPostgresKeys, key);
}

Names StepKeys(StepKind kind) {
  switch (kind) {
    case StepKind::kIngest:
      return kIngestKeys;
    case StepKind::kValidate:
      return kValidateKeys;
    case StepKind::kSplit:
      return kSplitKeys;
    case StepKind::kTrain:
      return kTrainKeys;
    case StepKind::kEvaluate:
      return kEvaluateKeys;
    case StepKind::kRegister:
      return kRegisterKeys;
    case StepKind::kTransform:
      return kTransformKeys;
    case StepKind::kScore:
      return kScoreKeys;
    case StepKind::kSink:
      return kSinkKeys;
    case StepKind::kCommand:
      return kCommandKeys;
    case StepKind::kNotebook:
      return kNotebookKeys;
  }
  return {};
}

bool IsProgramStep(StepKind kind) {
  return kind == StepKind::kCommand || kind == StepKind::kNotebook;
}

// Steps that read or write outside the run and so always run again.
bool TouchesTheWorld(StepKind kind) {
  return kind == StepKind::kIngest || kind == StepKind::kScore ||
         kind == StepKind::kSink || kind == StepKind::kRegister;
}

// What a step can hand to the steps after it. Command and notebook steps
// may write anything, so they count as producing each.
bool MayProduceTable(StepKind kind) {
  return kind == StepKind::kIngest || kind == StepKind::kValidate ||
         kind == StepKind::kSplit || kind == StepKind::kTransform ||
         IsProgramStep(kind);
}

bool MayProduceModel(StepKind kind) {
  return kind == StepKind::kTrain || IsProgramStep(kind);
}

bool MayProduceTestSet(StepKind kind) {
  return kind == StepKind::kSplit || IsProgramStep(kind);
}

// An environment variable name: letters, digits and '_', not starting with
// a digit.
bool IsEnvName(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_';
  });
}

// A table or schema name that needs no quoting in SQL: 1 to 63 letters,
// digits and '_', not starting with a digit.
bool IsSqlIdentifier(std::string_view name) {
  return name.size() <= 63 && IsEnvName(name);
}

// An output name of a command or notebook step, which becomes a file or
// directory name: 1 to 63 letters, digits, '_' or '-', starting with a
// letter or digit (no '.', which separates step and output in `inputs`).
bool IsOutputName(std::string_view name) {
  return IsValidName(name) && name.find('.') == std::string_view::npos;
}

std::string Quote(std::string_view text) {
  constexpr size_t kMaxShown = 60;
  if (text.size() > kMaxShown) {
    return "'" + std::string(text.substr(0, kMaxShown)) + "...'";
  }
  return "'" + std::string(text) + "'";
}

// What a node holds, for the "got ..." part of a message.
std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return Quote(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

std::string FormatNumber(double value) { return absl::StrCat(value); }

SourceLocation ToLocation(const YAML::Mark& mark) {
  return SourceLocation{std::max(mark.line, 0) + 1,
                        std::max(mark.column, 0) + 1};
}

// A value to check, with the words that name it in messages ("'eta'",
// "each entry of 'metrics'") and the position errors point at.
struct Value {
  std::string label;
  YAML::Node node;
  YAML::Mark mark;
};

// One key of a map and its value.
struct Field {
  std::string key;
  YAML::Node node;
  YAML::Mark key_mark;

  // yaml-cpp places an empty value at the next token, which may be lines
  // below; errors about an empty value point at its key instead.
  Value value() const {
    return Value{"'" + key + "'", node, node.IsNull() ? key_mark : node.Mark()};
  }
};

// The keys of one map, in file order, known to be unique (and allowed,
// where the section fixes its keys).
struct Fields {
  std::string where;  // "in train step", for messages
  YAML::Mark mark;    // of the map, for "missing key" errors
  std::vector<Field> fields;

  const Field* Find(std::string_view key) const {
    for (const Field& f : fields) {
      if (f.key == key) return &f;
    }
    return nullptr;
  }
};

bool ParseDouble(std::string_view text, double* out) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end && !text.empty() &&
         std::isfinite(*out);
}

bool ParseInt(std::string_view text, int64_t* out) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end && !text.empty();
}

// "30s", "5m", "2h" as seconds; nullopt when malformed or under 1s.
std::optional<int64_t> ParseDurationSeconds(std::string_view text) {
  if (text.size() < 2 || text.size() > 10) return std::nullopt;
  int64_t unit;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return std::nullopt;
  }
  std::string_view digits = text.substr(0, text.size() - 1);
  int64_t count;
  if (!ParseInt(digits, &count) || digits.front() == '+' ||
      digits.front() == '-' || count < 1) {
    return std::nullopt;
  }
  return count * unit;
}

// YAML 1.2's spellings of infinity and not-a-number.
bool IsYamlInfinityOrNan(std::string_view text) {
  if (text == ".nan" || text == ".NaN" || text == ".NAN") return true;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    text.remove_prefix(1);
  }
  return text == ".inf" || text == ".Inf" || text == ".INF";
}

// A whole number of at most 9 digits followed by one of `units` (tried in
// order, so longer suffixes come first), times that unit's factor.
struct Unit {
  std::string_view suffix;
  int64_t factor;
};

std::optional<int64_t> ParseQuantity(std::string_view text,
                                     std::span<const Unit> units) {
  for (const Unit& unit : units) {
    if (text.size() <= unit.suffix.size() || !text.ends_with(unit.suffix)) {
      continue;
    }
    std::string_view digits = text.substr(0, text.size() - unit.suffix.size());
    if (digits.size() > 9 ||
        !std::all_of(digits.begin(), digits.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    int64_t count = 0;
    ParseInt(digits, &count);
    return count * unit.factor;
  }
  return std::nullopt;
}

// "500ms", "30s", "10m", "2h" as milliseconds.
std::optional<int64_t> ParseDurationMillis(std::string_view text) {
  static constexpr Unit kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}};
  return ParseQuantity(text, kUnits);
}

// "512MiB", "2GiB", "1500MB" as bytes.
std::optional<int64_t> ParseSizeBytes(std::string_view text) {
  static constexpr Unit kUnits[] = {{"KiB", int64_t{1} << 10},
                                    {"MiB", int64_t{1} << 20},
                                    {"GiB", int64_t{1} << 30},
                                    {"KB", 1000},
                                    {"MB", 1000 * 1000},
                                    {"GB", 1000 * 1000 * 1000},
                                    {"B", 1}};
  return ParseQuantity(text, kUnits);
}

// The positions of one step that the pipeline's graph checks point at.
struct StepNodes {
  YAML::Mark kind_mark;
  YAML::Mark name_mark;  // of the name's value; the kind key when unnamed
  YAML::Node params;     // the kind key's value
  std::vector<YAML::Mark> inputs;  // one per StepSpec::inputs entry
  std::vector<YAML::Mark> after;   // one per StepSpec::after entry
};

// Reads one slipway.yaml. Each method checks one section and returns the
// first problem as an InvalidArgument located in the file.
class SpecParser {
 public:
  explicit SpecParser(std::string_view file_name) : file_name_(file_name) {}

  absl::StatusOr<AppSpec> Parse(std::string_view text) const {
    std::vector<YAML::Node> documents;
    try {
      documents = YAML::LoadAll(std::string(text));
    } catch (const YAML::Exception& e) {  // ParserException, DeepRecursion
      return Error(e.mark, "malformed YAML: " + e.msg);
    }
    if (documents.empty()) {
      return Error(YAML::Mark(),
                   "the file is empty; expected a map of app settings that "
                   "starts with 'app: <name>'");
    }
    for (size_t i = 1; i < documents.size(); ++i) {
      if (documents[i].IsNull()) continue;  // a trailing "---"
      return Error(documents[i].Mark(),
                   "found a second YAML document; an app spec is one "
                   "document (remove the '---' separator)");
    }
    // Reading a parsed tree is not expected to throw; the guard keeps any
    // yaml-cpp exception inside this module all the same.
    try {
      return ParseApp(documents[0]);
    } catch (const YAML::Exception& e) {
      return Error(e.mark, "could not read YAML: " + e.msg);
    }
  }

 private:
  absl::Status Error(const YAML::Mark& mark, std::string message) const {
    return absl::InvalidArgumentError(
        FormatLocation(file_name_, ToLocation(mark)) + ": " + message);
  }

  // A duration (ParseDurationSeconds) in seconds; `expected` describes a
  // valid one in the error.
  absl::StatusOr<int64_t> Duration(const Field& f,
                                   std::string_view expected) const {
    Value v = f.value();
    std::optional<int64_t> seconds =
        v.node.IsScalar() ? ParseDurationSeconds(v.node.Scalar())
                          : std::nullopt;
    if (!seconds.has_value()) return Expected(v, expected);
    return *seconds;
  }

  absl::Status Expected(const Value& v, std::string_view expected) const {
    return Error(v.mark, v.label + " must be " + std::string(expected) +
                             ", got " + Describe(v.node));
  }

  // ---- Typed values ------------------------------------------------------

  // Reads a map; an empty value counts as an empty map. With `allowed`,
  // any other key is an error listing the allowed ones.
  absl::StatusOr<Fields> Map(const Value& v, std::string where, Names allowed,
                             std::string_view expected = "a map") const {
    Fields out;
    out.where = std::move(where);
    out.mark = v.mark;
    if (v.node.IsNull()) return out;
    if (!v.node.IsMap()) return Expected(v, expected);
    for (auto it = v.node.begin(); it != v.node.end(); ++it) {
      const YAML::Node& key = it->first;
      if (!key.IsScalar()) {
        return Error(key.Mark(), "keys " + out.where + " must be names, got " +
                                     Describe(key));
      }
      std::string name = key.Scalar();
      if (!allowed.empty() &&
          std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        return Error(key.Mark(), "unknown key " + Quote(name) + " " +
                                     out.where +
                                     "; expected one of: " + Join(allowed));
      }
      if (const Field* first = out.Find(name)) {
        return Error(key.Mark(),
                     "duplicate key " + Quote(name) + " " + out.where +
                         " (first at line " +
                         std::to_string(ToLocation(first->key_mark).line) +
                         ")");
      }
      out.fields.push_back(Field{name, it->second, key.Mark()});
    }
    return out;
  }

  absl::StatusOr<Fields> Map(const Field& f, std::string where,
                             Names allowed) const {
    return Map(f.value(), std::move(where), allowed);
  }

  absl::Status MissingKey(const Fields& map, std::string_view key,
                          std::string_view why = "") const {
    std::string message =
        "missing required key '" + std::string(key) + "' " + map.where;
    if (!why.empty()) message += "; " + std::string(why);
    return Error(map.mark, message);
  }

  absl::StatusOr<const Field*> Require(const Fields& map,
                                       std::string_view key) const {
    const Field* f = map.Find(key);
    if (f == nullptr) return MissingKey(map, key);
    return f;
  }

  // A list; an empty value counts as an empty list. Entries are labelled
  // "each entry of '<key>'".
  absl::StatusOr<std::vector<Value>> List(const Value& v) const {
    std::vector<Value> items;
    if (v.node.IsNull()) return items;
    if (!v.node.IsSequence()) return Expected(v, "a list");
    for (const YAML::Node& item : v.node) {
      items.push_back(Value{"each entry of " + v.label, item,
                            item.IsNull() ? v.mark : item.Mark()});
    }
    return items;
  }

  absl::StatusOr<std::string> String(const Value& v) const {
    if (!v.node.IsScalar()) return Expected(v, "a string");
    return v.node.Scalar();
  }

  absl::StatusOr<std::string> NonEmptyString(const Value& v) const {
    if (!v.node.IsScalar() || v.node.Scalar().empty()) {
      return Expected(v, "a non-empty string");
    }
    return v.node.Scalar();
  }

  absl::StatusOr<std::string> Name(const Value& v) const {
    if (!v.node.IsScalar() || !IsValidName(v.node.Scalar())) {
      return Expected(v,
                      "a name of 1 to 63 letters, digits, '_', '-' or '.' "
                      "that starts with a letter or digit");
    }
    return v.node.Scalar();
  }

  absl::StatusOr<double> Number(
      const Value& v, std::string_view expected,
      const std::function<bool(double)>& in_range) const {
    double value;
    if (!v.node.IsScalar() || !ParseDouble(v.node.Scalar(), &value) ||
        !in_range(value)) {
      return Expected(v, expected);
    }
    return value;
  }

  absl::StatusOr<int64_t> Integer(const Value& v, int64_t min, int64_t max,
                                  std::string_view expected) const {
    int64_t value;
    if (!v.node.IsScalar() || !ParseInt(v.node.Scalar(), &value) ||
        value < min || value > max) {
      return Expected(v, expected);
    }
    return value;
  }

  absl::StatusOr<bool> Bool(const Value& v) const {
    if (v.node.IsScalar()) {
      const std::string& s = v.node.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    return Expected(v, "true or false");
  }

  // Index of the value in `options`.
  absl::StatusOr<size_t> Choice(const Value& v, const Names& options) const {
    if (v.node.IsScalar()) {
      auto it = std::find(options.begin(), options.end(), v.node.Scalar());
      if (it != options.end()) return static_cast<size_t>(it - options.begin());
    }
    return Expected(v, "one of: " + Join(options));
  }

  absl::StatusOr<DataType> Type(const Value& v) const {
    if (v.node.IsScalar()) {
      absl::StatusOr<DataType> type = ParseDataType(v.node.Scalar());
      if (type.ok()) return *type;
    }
    return Expected(v, "a data type (" + Join(kDataTypes) + ")");
  }

  // A list of non-empty, distinct strings.
  absl::StatusOr<std::vector<std::string>> StringList(const Value& v,
                                                      bool allow_empty) const {
    ASSIGN_OR_RETURN(std::vector<Value> items, List(v));
    std::vector<std::string> out;
    for (const Value& item : items) {
      std::string s;
      if (allow_empty) {
        ASSIGN_OR_RETURN(s, String(item));
      } else {
        ASSIGN_OR_RETURN(s, NonEmptyString(item));
      }
      if (std::find(out.begin(), out.end(), s) != out.end()) {
        return Error(item.mark, Quote(s) + " appears twice in " + v.label);
      }
      out.push_back(std::move(s));
    }
    return out;
  }

  // A map from column names to data types, in file order.
  absl::StatusOr<std::vector<ColumnType>> ColumnTypes(const Field& f,
                                                      std::string where) const {
    ASSIGN_OR_RETURN(Fields map, Map(f, std::move(where), {}));
    std::vector<ColumnType> out;
    for (const Field& column : map.fields) {
      if (column.key.empty()) {
        return Error(column.key_mark,
                     "column names " + map.where + " must not be empty");
      }
      Value v = column.value();
      v.label = Quote(column.key) + " in '" + f.key + "'";
      ASSIGN_OR_RETURN(DataType type, Type(v));
      out.push_back(ColumnType{column.key, type});
    }
    return out;
  }

  // A duration in milliseconds, at least `min_ms`.
  absl::StatusOr<int64_t> DurationMillis(const Value& v, int64_t min_ms,
                                         std::string_view expected) const {
    std::optional<int64_t> ms =
        v.node.IsScalar() ? ParseDurationMillis(v.node.Scalar()) : std::nullopt;
    if (!ms.has_value() || *ms < min_ms) return Expected(v, expected);
    return *ms;
  }

  // A size in bytes, at least `min_bytes`.
  absl::StatusOr<int64_t> SizeBytes(const Value& v, int64_t min_bytes,
                                    std::string_view expected) const {
    std::optional<int64_t> bytes =
        v.node.IsScalar() ? ParseSizeBytes(v.node.Scalar()) : std::nullopt;
    if (!bytes.has_value() || *bytes < min_bytes) return Expected(v, expected);
    return *bytes;
  }

  // A literal, or env:NAME naming an environment variable of the server.
  absl::StatusOr<std::string> LiteralOrEnv(const Value& v,
                                           bool allow_empty) const {
    std::string text;
    if (allow_empty) {
      ASSIGN_OR_RETURN(text, String(v));
    } else {
      ASSIGN_OR_RETURN(text, NonEmptyString(v));
    }
    if (text.rfind("env:", 0) == 0 && !IsEnvName(text.substr(4))) {
      return Expected(v,
                      "a literal value or env:NAME, where NAME is an "
                      "environment variable (letters, digits and '_', not "
                      "starting with a digit)");
    }
    return text;
  }

  // `params` of a command or notebook step: any YAML map, as the JSON
  // object the program reads from SLIPWAY_PARAMS.
  absl::StatusOr<std::string> ParamsJson(const Field& f) const {
    Value v = f.value();
    if (v.node.IsNull()) return std::string("{}");
    if (!v.node.IsMap()) {
      return Expected(v, "a map such as {rounds: 50, features: [a, b]}");
    }
    std::string json;
    RETURN_IF_ERROR(AppendJson(v.node, v.mark, &json));
    return json;
  }

  // Maps become objects (keys in file order), lists arrays; a plain
  // (unquoted) scalar that reads as a YAML boolean, null, whole number or
  // number becomes that, every other scalar a string.
  absl::Status AppendJson(const YAML::Node& node, const YAML::Mark& mark,
                          std::string* out) const {
    switch (node.Type()) {
      case YAML::NodeType::Sequence: {
        out->push_back('[');
        bool first = true;
        for (const YAML::Node& item : node) {
          if (!first) out->push_back(',');
          first = false;
          RETURN_IF_ERROR(
              AppendJson(item, item.IsNull() ? mark : item.Mark(), out));
        }
        out->push_back(']');
        return absl::OkStatus();
      }
      case YAML::NodeType::Map: {
        out->push_back('{');
        std::vector<std::string> keys;
        for (auto it = node.begin(); it != node.end(); ++it) {
          const YAML::Node& key = it->first;
          if (!key.IsScalar()) {
            return Error(key.Mark(), "keys in 'params' must be strings, got " +
                                         Describe(key));
          }
          if (Contains(keys, key.Scalar())) {
            return Error(key.Mark(), "duplicate key " + Quote(key.Scalar()) +
                                         " in 'params'");
          }
          keys.push_back(key.Scalar());
          if (keys.size() > 1) out->push_back(',');
          AppendJsonString(key.Scalar(), out);
          out->push_back(':');
          RETURN_IF_ERROR(AppendJson(
              it->second, it->second.IsNull() ? key.Mark() : it->second.Mark(),
              out));
        }
        out->push_back('}');
        return absl::OkStatus();
      }
      case YAML::NodeType::Scalar:
        return AppendJsonScalar(node, out);
      default:
        out->append("null");
        return absl::OkStatus();
    }
  }

  absl::Status AppendJsonScalar(const YAML::Node& node,
                                std::string* out) const {
    const std::string& text = node.Scalar();
    if (node.Tag() != "?") {  // quoted or tagged: a string
      AppendJsonString(text, out);
      return absl::OkStatus();
    }
    if (text == "true" || text == "True" || text == "TRUE") {
      out->append("true");
    } else if (text == "false" || text == "False" || text == "FALSE") {
      out->append("false");
    } else if (text == "~" || text == "null" || text == "Null" ||
               text == "NULL") {
      out->append("null");
    } else if (int64_t i; ParseInt(text, &i)) {
      out->append(std::to_string(i));
    } else if (double d; ParseDouble(text, &d)) {
      char buffer[32];
      auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), d);
      out->append(buffer, end);
    } else if (IsYamlInfinityOrNan(text)) {
      return Error(node.Mark(), "'params' cannot hold " + Quote(text) +
                                    ", which JSON has no number for; quote "
                                    "it to pass it as a string");
    } else {
      AppendJsonString(text, out);
    }
    return absl::OkStatus();
  }

  // ---- Sections ----------------------------------------------------------

  absl::StatusOr<AppSpec> ParseApp(const YAML::Node& root) const {
    AppSpec spec;
    spec.file_name = file_name_;
    Value root_value{"the app spec", root,
                     root.IsNull() ? YAML::Mark() : root.Mark()};
    constexpr std::string_view kExpected =
        "a map of app settings that starts with 'app: <name>'";
    if (root.IsNull()) return Expected(root_value, kExpected);
    ASSIGN_OR_RETURN(Fields top, Map(root_value, "at the top level",
                                     kTopLevelKeys, kExpected));

    ASSIGN_OR_RETURN(const Field* app, Require(top, "app"));
    ASSIGN_OR_RETURN(spec.app, Name(app->value()));
    if (const Field* f = top.Find("description")) {
      ASSIGN_OR_RETURN(spec.description, String(f->value()));
    }
    if (const Field* f = top.Find("use_case")) {
      ASSIGN_OR_RETURN(spec.use_case, ParseUseCase(*f));
    }
    if (const Field* f = top.Find("data")) {
      ASSIGN_OR_RETURN(spec.data, ParseData(*f));
    }
    if (const Field* f = top.Find("schema")) {
      ASSIGN_OR_RETURN(spec.schema, ParseSchema(*f));
    }
    if (const Field* f = top.Find("pipelines")) {
      ASSIGN_OR_RETURN(Fields pipelines, Map(*f, "in pipelines", {}));
      for (const Field& p : pipelines.fields) {
        ASSIGN_OR_RETURN(PipelineSpec pipeline, ParsePipeline(p, spec));
        spec.pipelines.push_back(std::move(pipeline));
      }
    }
    for (const PipelineSpec& pipeline : spec.pipelines) {
      if (!spec.schema.target.empty() || !NeedsTarget(pipeline)) continue;
      std::string why = "train pipeline '" + pipeline.name +
                        "' needs the name of the column to predict";
      const Field* schema = top.Find("schema");
      if (schema == nullptr) {
        return MissingKey(top, "schema", why + " (schema.target)");
      }
      ASSIGN_OR_RETURN(Fields schema_map, Map(*schema, "in schema", {}));
      return MissingKey(schema_map, "target", why);
    }
    if (const Field* f = top.Find("endpoint")) {
      ASSIGN_OR_RETURN(spec.endpoint, ParseEndpoint(*f));
    }
    if (const Field* f = top.Find("monitor")) {
      ASSIGN_OR_RETURN(spec.monitor, ParseMonitor(*f));
    }
    if (const Field* f = top.Find("policy")) {
      ASSIGN_OR_RETURN(spec.policy, ParsePolicy(*f));
      RETURN_IF_ERROR(CheckPromoteMetricComputed(spec));
    }
    if (const Field* f = top.Find("notify")) {
      ASSIGN_OR_RETURN(std::vector<Value> items, List(f->value()));
      for (const Value& item : items) {
        ASSIGN_OR_RETURN(NotifierSpec notifier, ParseNotifier(item));
        spec.notify.push_back(std::move(notifier));
      }
    }
    return spec;
  }

  // policy.promote.metric must be one a train pipeline computes: an
  // evaluate step that lists it or computes its task's standard metrics,
  // or a command or notebook step, whose metrics the spec cannot know.
  absl::Status CheckPromoteMetricComputed(const AppSpec& spec) const {
    if (!spec.policy.promote.has_value() ||
        spec.policy.promote->metric.empty()) {
      return absl::OkStatus();
    }
    const std::string& metric = spec.policy.promote->metric;
    std::vector<std::string> listed;
    for (const PipelineSpec& pipeline : spec.pipelines) {
      if (pipeline.kind != PipelineKind::kTrain) continue;
      for (const StepSpec& step : pipeline.steps) {
        if (step.kind() == StepKind::kCommand ||
            step.kind() == StepKind::kNotebook) {
          return absl::OkStatus();
        }
        if (step.kind() != StepKind::kEvaluate) continue;
        const auto& metrics = std::get<EvaluateStepSpec>(step.params).metrics;
        if (metrics.empty() ||
            std::find(metrics.begin(), metrics.end(), metric) !=
                metrics.end()) {
          return absl::OkStatus();
        }
        listed.insert(listed.end(), metrics.begin(), metrics.end());
      }
    }
    std::string message = "policy.promote.metric '" + metric +
                          "' is computed by no evaluate step of a train "
                          "pipeline";
    if (!listed.empty()) {
      std::sort(listed.begin(), listed.end());
      listed.erase(std::unique(listed.begin(), listed.end()), listed.end());
      std::string names;
      for (const std::string& m : listed) {
        names += (names.empty() ? "" : ", ") + m;
      }
      message += " (they compute " + names + ")";
    }
    message += "; add it to an evaluate step's metrics, or promote on one "
               "they compute";
    return absl::InvalidArgumentError(
        FormatLocation(file_name_, spec.policy.promote->location) + ": " +
        message);
  }

  // A train pipeline whose built-in steps learn or score against the
  // target. One that trains only in a command or notebook step may leave
  // the target to that code.
  static bool NeedsTarget(const PipelineSpec& pipeline) {
    if (pipeline.kind != PipelineKind::kTrain) return false;
    return std::any_of(pipeline.steps.begin(), pipeline.steps.end(),
                       [](const StepSpec& s) {
                         switch (s.kind()) {
                           case StepKind::kTrain:
                           case StepKind::kEvaluate:
                           case StepKind::kTransform:
                             return true;
                           case StepKind::kSplit:
                             return std::get<SplitStepSpec>(s.params).stratify;
                           default:
                             return false;
                         }
                       });
  }

  absl::StatusOr<UseCaseSpec> ParseUseCase(const Field& f) const {
    ASSIGN_OR_RETURN(Fields map, Map(f, "in use_case", kUseCaseKeys));
    UseCaseSpec use_case;
    if (const Field* g = map.Find("problem")) {
      ASSIGN_OR_RETURN(use_case.problem, String(g->value()));
    }
    if (const Field* g = map.Find("integration")) {
      ASSIGN_OR_RETURN(std::vector<Value> items, List(g->value()));
      for (const Value& item : items) {
        ASSIGN_OR_RETURN(size_t i, Choice(item, kIntegrations));
        std::string name(kIntegrations[i]);
        if (std::find(use_case.integration.begin(), use_case.integration.end(),
                      name) != use_case.integration.end()) {
          return Error(item.mark,
                       Quote(name) + " appears twice in 'integration'");
        }
        use_case.integration.push_back(std::move(name));
      }
    }
    if (const Field* g = map.Find("owner")) {
      ASSIGN_OR_RETURN(use_case.owner, String(g->value()));
    }
    if (const Field* g = map.Find("business_kpi")) {
      ASSIGN_OR_RETURN(use_case.business_kpi, String(g->value()));
    }
    return use_case;
  }

  absl::StatusOr<std::vector<DataSourceSpec>> ParseData(const Field& f) const {
    ASSIGN_OR_RETURN(Fields sources, Map(f, "in data", {}));
    std::vector<DataSourceSpec> out;
    for (const Field& s : sources.fields) {
      ASSIGN_OR_RETURN(DataSourceSpec source, ParseDataSource(s));
      out.push_back(std::move(source));
    }
    return out;
  }

  absl::StatusOr<DataSourceSpec> ParseDataSource(const Field& s) const {
    Value name_value{"data source name", YAML::Node(s.key), s.key_mark};
    DataSourceSpec source;
    ASSIGN_OR_RETURN(source.name, Name(name_value));
    source.location = ToLocation(s.key_mark);
    ASSIGN_OR_RETURN(Fields map,
                     Map(s, "in data source '" + source.name + "'", {}));
    if (const Field* g = map.Find("connector")) {
      ASSIGN_OR_RETURN(size_t i, Choice(g->value(), kConnectors));
      source.connector = static_cast<Connector>(i);
    }
    std::string connector(ConnectorName(source.connector));
    Names keys = ConnectorKeys(source.connector);
    for (const Field& g : map.fields) {
      if (Contains(keys, g.key)) continue;
      std::string what = IsAnyConnectorKey(g.key)
                             ? "key " + Quote(g.key) +
                                   " does not apply to connector " + connector
                             : "unknown key " + Quote(g.key);
      return Error(g.key_mark, what + " " + map.where + "; a " + connector +
                                   " source takes: " + Join(keys));
    }
    if (source.connector == Connector::kPostgres) {
      ASSIGN_OR_RETURN(const Field* url, Require(map, "url"));
      Value v = url->value();
      ASSIGN_OR_RETURN(source.url, LiteralOrEnv(v, false));
      if (source.url.rfind("env:", 0) != 0 &&
          source.url.rfind("postgresql://", 0) != 0 &&
          source.url.rfind("postgres://", 0) != 0 &&
          source.url.find('=') == std::string::npos) {
        return Expected(v,
                        "a PostgreSQL URL such as "
                        "postgresql://app@127.0.0.1:5432/shop, a key/value "
                        "string such as \"host=127.0.0.1 dbname=shop\", or "
                        "env:NAME naming an environment variable that holds "
                        "one");
      }
    } else {
      ASSIGN_OR_RETURN(const Field* path, Require(map, "path"));
      ASSIGN_OR_RETURN(source.path, NonEmptyString(path->value()));
    }
    if (const Field* g = map.Find("password")) {
      ASSIGN_OR_RETURN(source.password, LiteralOrEnv(g->value(), false));
    }
    if (const Field* g = map.Find("query")) {
      ASSIGN_OR_RETURN(source.query, NonEmptyString(g->value()));
    }
    constexpr std::string_view kIdentifier =
        "a name of 1 to 63 letters, digits and '_' that does not start with "
        "a digit";
    if (const Field* g = map.Find("table")) {
      Value v = g->value();
      if (!v.node.IsScalar() || !IsSqlIdentifier(v.node.Scalar())) {
        return Expected(v, kIdentifier);
      }
      source.table = v.node.Scalar();
    }
    if (const Field* g = map.Find("schema")) {
      Value v = g->value();
      if (!v.node.IsScalar() || !IsSqlIdentifier(v.node.Scalar())) {
        return Expected(v, kIdentifier);
      }
      source.db_schema = v.node.Scalar();
    }
    if ((source.connector == Connector::kSqlite ||
         source.connector == Connector::kPostgres) &&
        source.query.empty() && source.table.empty()) {
      return MissingKey(map, "query",
                        "a " + connector +
                            " source needs 'query' (what a read returns) or "
                            "'table' (what a write appends to; read as "
                            "SELECT * when there is no query), or both");
    }
    if (const Field* g = map.Find("chunk_rows")) {
      ASSIGN_OR_RETURN(source.chunk_rows,
                       Integer(g->value(), 1, 10000000,
                               "a whole number from 1 to 10000000"));
    }
    if (const Field* g = map.Find("batch_rows")) {
      ASSIGN_OR_RETURN(
          source.batch_rows,
          Integer(g->value(), 1, 1000000, "a whole number from 1 to 1000000"));
    }
    RETURN_IF_ERROR(ParseCsvKeys(map, &source));
    if (const Field* g = map.Find("types")) {
      ASSIGN_OR_RETURN(source.types, ColumnTypes(*g, map.where + " types"));
    }
    return source;
  }

  // The keys only CSV files take (the connector check refused them for
  // other connectors).
  absl::Status ParseCsvKeys(const Fields& map, DataSourceSpec* source) const {
    if (const Field* g = map.Find("header")) {
      ASSIGN_OR_RETURN(source->header, Bool(g->value()));
    }
    if (const Field* g = map.Find("skip_lines")) {
      ASSIGN_OR_RETURN(source->skip_lines, Integer(g->value(), 0, 1000000000,
                                                   "a whole number >= 0"));
    }
    if (const Field* g = map.Find("delimiter")) {
      Value v = g->value();
      const std::string& d = v.node.Scalar();
      if (!v.node.IsScalar() || d.size() != 1 || d[0] == '"' || d[0] == '\n' ||
          d[0] == '\r') {
        return Expected(v,
                        "a single character other than a quote or a line "
                        "break (for example \",\", \";\" or \"\\t\")");
      }
      source->delimiter = d[0];
    }
    const Field* columns = map.Find("columns");
    if (columns != nullptr) {
      ASSIGN_OR_RETURN(source->columns, StringList(columns->value(), false));
      if (source->header) {
        return Error(columns->key_mark,
                     "'columns' applies only when 'header' is false; with a "
                     "header row the file names its columns");
      }
    }
    if (!source->header && source->columns.empty()) {
      return MissingKey(map, "columns",
                        "'header' is false, so the columns need names, in "
                        "file order");
    }
    if (const Field* g = map.Find("missing_values")) {
      ASSIGN_OR_RETURN(source->missing_values, StringList(g->value(), true));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<SchemaSpec> ParseSchema(const Field& f) const {
    ASSIGN_OR_RETURN(Fields map, Map(f, "in schema", kSchemaKeys));
    SchemaSpec schema;
    schema.location = ToLocation(map.mark);
    if (const Field* g = map.Find("target")) {
      ASSIGN_OR_RETURN(schema.target, NonEmptyString(g->value()));
    }
    if (const Field* g = map.Find("id")) {
      ASSIGN_OR_RETURN(schema.id, NonEmptyString(g->value()));
      if (schema.id == schema.target) {
        return Error(
            g->value().mark,
            "'id' and 'target' name the same column " + Quote(schema.id));
      }
    }
    if (const Field* g = map.Find("features")) {
      ASSIGN_OR_RETURN(schema.features, ColumnTypes(*g, "in schema.features"));
      ASSIGN_OR_RETURN(Fields features, Map(*g, "in schema.features", {}));
      for (const Field& feature : features.fields) {
        if (feature.key == schema.target || feature.key == schema.id) {
          return Error(feature.key_mark,
                       "feature " + Quote(feature.key) + " is the schema's " +
                           (feature.key == schema.target ? "target" : "id") +
                           "; a model cannot take it as input");
        }
      }
    }
    if (const Field* g = map.Find("exclude")) {
      ASSIGN_OR_RETURN(schema.exclude, StringList(g->value(), false));
      ASSIGN_OR_RETURN(std::vector<Value> items, List(g->value()));
      for (const Value& item : items) {
        const std::string& column = item.node.Scalar();
        if (column == schema.target) {
          return Error(item.mark, "'exclude' lists the target " +
                                      Quote(column) +
                                      ", which is never a feature; remove it "
                                      "from 'exclude'");
        }
        for (const ColumnType& feature : schema.features) {
          if (feature.column == column) {
            return Error(item.mark, "'exclude' lists " + Quote(column) +
                                        ", which 'features' declares");
          }
        }
      }
    }
    if (const Field* g = map.Find("task")) {
      ASSIGN_OR_RETURN(size_t i, Choice(g->value(), kTasks));
      schema.task = static_cast<Task>(i);
    }
    return schema;
  }

  absl::StatusOr<PipelineSpec> ParsePipeline(const Field& p,
                                             const AppSpec& spec) const {
    Value name_value{"pipeline name", YAML::Node(p.key), p.key_mark};
    PipelineSpec pipeline;
    ASSIGN_OR_RETURN(pipeline.name, Name(name_value));
    pipeline.location = ToLocation(p.key_mark);
    std::string label = "pipeline '" + pipeline.name + "'";
    ASSIGN_OR_RETURN(Fields map, Map(p, "in " + label, kPipelineKeys));

    if (const Field* g = map.Find("kind")) {
      ASSIGN_OR_RETURN(size_t i, Choice(g->value(), kPipelineKinds));
      pipeline.kind = static_cast<PipelineKind>(i);
    } else if (pipeline.name != "train") {
      return MissingKey(map, "kind",
                        "say train, score or check (only a pipeline named "
                        "'train' is a train pipeline by default)");
    }
    if (const Field* g = map.Find("trigger")) {
      ASSIGN_OR_RETURN(pipeline.trigger, ParseTrigger(*g, label));
    }
    if (const Field* g = map.Find("concurrency")) {
      ASSIGN_OR_RETURN(
          pipeline.concurrency,
          Integer(g->value(), 1, 100, "a whole number from 1 to 100"));
    }
    if (const Field* g = map.Find("retry_interrupted")) {
      ASSIGN_OR_RETURN(pipeline.retry_interrupted, Bool(g->value()));
    }
    ASSIGN_OR_RETURN(const Field* steps_field, Require(map, "steps"));
    ASSIGN_OR_RETURN(std::vector<Value> items, List(steps_field->value()));
    if (items.empty()) {
      return Error(steps_field->key_mark,
                   label +
                       " has no steps; list them under 'steps', for "
                       "example '- ingest: {source: train}'");
    }
    std::vector<StepNodes> nodes;
    for (const Value& item : items) {
      StepNodes step_nodes;
      ASSIGN_OR_RETURN(StepSpec step, ParseStep(item, spec, &step_nodes));
      if (const StepSpec* first = pipeline.FindStep(step.name)) {
        return Error(step_nodes.name_mark,
                     "duplicate step name " + Quote(step.name) + " in " +
                         label + " (first at line " +
                         std::to_string(first->location.line) +
                         "); give one of them a different 'name:'");
      }
      pipeline.steps.push_back(std::move(step));
      nodes.push_back(std::move(step_nodes));
    }
    ASSIGN_OR_RETURN(std::vector<std::vector<size_t>> deps,
                     CheckGraph(pipeline, nodes));
    RETURN_IF_ERROR(CheckPipelineKind(pipeline, nodes, *steps_field));
    RETURN_IF_ERROR(CheckStepNeeds(pipeline, nodes, deps, spec.schema));
    return pipeline;
  }

  absl::StatusOr<TriggerSpec> ParseTrigger(const Field& f,
                                           const std::string& label) const {
    ASSIGN_OR_RETURN(Fields map,
                     Map(f, "in trigger of " + label, kTriggerKeys));
    TriggerSpec trigger;
    if (const Field* g = map.Find("schedule")) {
      Value v = g->value();
      ASSIGN_OR_RETURN(trigger.schedule, NonEmptyString(v));
      absl::StatusOr<CronSchedule> cron = CronSchedule::Parse(trigger.schedule);
      if (!cron.ok()) {
        return Error(v.mark,
                     "'schedule' must be a cron expression of 5 fields "
                     "(minute hour day-of-month month day-of-week), got " +
                         Quote(trigger.schedule) + ": " +
                         std::string(cron.status().message()));
      }
    }
    if (const Field* g = map.Find("on")) {
      ASSIGN_OR_RETURN(std::vector<Value> items, List(g->value()));
      for (const Value& item : items) {
        ASSIGN_OR_RETURN(size_t i, Choice(item, kTriggerEvents));
        TriggerEvent event = static_cast<TriggerEvent>(i);
        if (std::find(trigger.on.begin(), trigger.on.end(), event) !=
            trigger.on.end()) {
          return Error(item.mark,
                       Quote(kTriggerEvents[i]) + " appears twice in 'on'");
        }
        trigger.on.push_back(event);
      }
    }
    return trigger;
  }

  // A step: a map with one kind key, whose value holds the kind's
  // parameters, beside the common keys (kStepCommonKeys).
  absl::StatusOr<StepSpec> ParseStep(const Value& item, const AppSpec& spec,
                                     StepNodes* nodes) const {
    constexpr std::string_view kShape =
        "a map whose one step-kind key holds the step's parameters, like "
        "'- ingest: {source: train}'";
    if (!item.node.IsMap()) {
      return Error(item.mark, "each step must be " + std::string(kShape) +
                                  "; got " + Describe(item.node));
    }
    ASSIGN_OR_RETURN(Fields all, Map(item, "in step", {}));
    const Field* kind_field = nullptr;
    for (const Field& f : all.fields) {
      if (!Contains(kStepKinds, f.key)) continue;
      if (kind_field != nullptr) {
        return Error(f.key_mark, "a step has one kind, but this one has " +
                                     Quote(kind_field->key) + " and " +
                                     Quote(f.key) +
                                     "; start each step with its own '- '");
      }
      kind_field = &f;
    }
    for (const Field& f : all.fields) {
      if (&f == kind_field || Contains(kStepCommonKeys, f.key)) continue;
      if (kind_field == nullptr) {
        return Error(f.key_mark, "unknown step kind " + Quote(f.key) +
                                     "; expected one of: " + Join(kStepKinds));
      }
      return Error(
          f.key_mark,
          "unknown key " + Quote(f.key) + " in " + kind_field->key +
              " step; beside its kind a step takes: " + Join(kStepCommonKeys) +
              " (indent the step's parameters under '" + kind_field->key +
              ":', or write them as {key: value, ...})");
    }
    if (kind_field == nullptr) {
      return Error(item.mark,
                   "the step has no kind; add one key of: " + Join(kStepKinds) +
                       ", like '- ingest: " + "{source: train}'");
    }
    const std::string& kind_name = kind_field->key;
    StepKind kind = static_cast<StepKind>(
        std::find(std::begin(kStepKinds), std::end(kStepKinds), kind_name) -
        std::begin(kStepKinds));
    StepSpec step;
    step.name = kind_name;
    step.location = ToLocation(kind_field->key_mark);
    nodes->kind_mark = kind_field->key_mark;
    nodes->name_mark = kind_field->key_mark;
    nodes->params = kind_field->node;
    ASSIGN_OR_RETURN(
        Fields map,
        Map(kind_field->value(), "in " + kind_name + " step", StepKeys(kind),
            "a map of parameters (write {} for none)"));

    const Field* inner_name = map.Find("name");
    const Field* outer_name = all.Find("name");
    if (inner_name != nullptr && outer_name != nullptr) {
      return Error(inner_name->key_mark,
                   "the step's name is given twice, beside its kind and "
                   "among its parameters; keep one");
    }
    if (const Field* g = outer_name != nullptr ? outer_name : inner_name) {
      ASSIGN_OR_RETURN(step.name, Name(g->value()));
      nodes->name_mark = g->value().mark;
    }
    ASSIGN_OR_RETURN(step.params, ParseStepParams(kind, map, spec));
    RETURN_IF_ERROR(ParseStepLinks(all, kind, &step, nodes));
    ASSIGN_OR_RETURN(step.policy, ParseStepPolicy(all, kind));
    return step;
  }

  absl::StatusOr<StepParams> ParseStepParams(StepKind kind, const Fields& map,
                                             const AppSpec& spec) const {
    switch (kind) {
      case StepKind::kIngest:
        return ParseIngest(map, spec);
      case StepKind::kValidate:
        return ParseValidate(map);
      case StepKind::kSplit:
        return ParseSplit(map, spec.schema);
      case StepKind::kTrain:
        return ParseTrain(map, spec.schema);
      case StepKind::kEvaluate:
        return ParseEvaluate(map);
      case StepKind::kRegister:
        return ParseRegister(map);
      case StepKind::kTransform:
        return ParseTransform(map, spec.schema);
      case StepKind::kScore:
        return ParseScore(map, spec);
      case StepKind::kSink:
        return ParseSink(map, spec);
      case StepKind::kCommand:
        return ParseCommand(map);
      case StepKind::kNotebook:
        return ParseNotebook(map);
    }
    return absl::InternalError("unhandled step kind");
  }

  // `inputs`, `outputs` and `after`: what the step reads and waits for,
  // checked against the other steps by CheckGraph.
  absl::Status ParseStepLinks(const Fields& all, StepKind kind, StepSpec* step,
                              StepNodes* nodes) const {
    if (const Field* g = all.Find("inputs")) {
      ASSIGN_OR_RETURN(std::vector<Value> items, List(g->value()));
      for (const Value& item : items) {
        ASSIGN_OR_RETURN(std::string input, NonEmptyString(item));
        if (Contains(step->inputs, input)) {
          return Error(item.mark, Quote(input) + " appears twice in 'inputs'");
        }
        step->inputs.push_back(std::move(input));
        nodes->inputs.push_back(item.mark);
      }
    }
    if (const Field* g = all.Find("after")) {
      ASSIGN_OR_RETURN(std::vector<Value> items, List(g->value()));
      for (const Value& item : items) {
        ASSIGN_OR_RETURN(std::string name, Name(item));
        if (Contains(step->after, name)) {
          return Error(item.mark, Quote(name) + " appears twice in 'after'");
        }
        step->after.push_back(std::move(name));
        nodes->after.push_back(item.mark);
      }
    }
    if (const Field* g = all.Find("outputs")) {
      if (!IsProgramStep(kind)) {
        std::vector<std::string> fixed = BuiltinOutputs(kind);
        return Error(
            g->key_mark,
            "'outputs' applies only to command and notebook steps; "
            "the outputs of " +
                std::string(StepKindName(kind)) + " steps are fixed: " +
                (fixed.empty() ? std::string("they have none") : Join(fixed)));
      }
      ASSIGN_OR_RETURN(std::vector<Value> items, List(g->value()));
      for (const Value& item : items) {
        if (!item.node.IsScalar() || !IsOutputName(item.node.Scalar())) {
          return Expected(item,
                          "an output name of 1 to 63 letters, digits, '_' or "
                          "'-' that starts with a letter or digit (the "
                          "program writes <name>.csv or a directory <name>)");
        }
        const std::string& output = item.node.Scalar();
        if (Contains(step->outputs, output)) {
          return Error(item.mark,
                       Quote(output) + " appears twice in 'outputs'");
        }
        step->outputs.push_back(output);
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<StepPolicySpec> ParseStepPolicy(const Fields& all,
                                                 StepKind kind) const {
    StepPolicySpec policy;
    if (const Field* g = all.Find("retries")) {
      ASSIGN_OR_RETURN(policy.retries, Integer(g->value(), 0, 100,
                                               "a whole number from 0 to 100"));
    }
    if (const Field* g = all.Find("retry_backoff")) {
      ASSIGN_OR_RETURN(
          policy.retry_backoff_ms,
          DurationMillis(g->value(), 0,
                         "a duration such as 500ms, 5s, 1m or 1h (a whole "
                         "number and a unit: ms, s, m, h)"));
    }
    if (const Field* g = all.Find("timeout")) {
      ASSIGN_OR_RETURN(
          policy.timeout_ms,
          DurationMillis(g->value(), 1,
                         "a duration of at least 1ms such as 30s, 10m or 2h "
                         "(a whole number and a unit: ms, s, m, h); leave "
                         "'timeout' out for no limit"));
    }
    if (const Field* g = all.Find("memory")) {
      if (!IsProgramStep(kind)) {
        return Error(g->key_mark,
                     "'memory' applies only to command and notebook steps, "
                     "which run as processes of their own; " +
                         std::string(StepKindName(kind)) +
                         " steps run inside the server");
      }
      ASSIGN_OR_RETURN(
          policy.memory_bytes,
          SizeBytes(g->value(), int64_t{1} << 20,
                    "a size of at least 1MiB such as 512MiB or 2GiB (a whole "
                    "number and a unit: B, KiB, MiB, GiB, KB, MB, GB)"));
    }
    if (const Field* g = all.Find("cache")) {
      ASSIGN_OR_RETURN(policy.cache, Bool(g->value()));
      if (policy.cache && TouchesTheWorld(kind)) {
        return Error(g->value().mark,
                     std::string(StepKindName(kind)) +
                         " steps never reuse an earlier run's outputs, since "
                         "they read or write outside the run; remove "
                         "'cache: true'");
      }
    }
    return policy;
  }

  // A data entry named by a step ("ingest step reads", "sink step writes
  // to").
  absl::StatusOr<const DataSourceSpec*> DataEntry(const Value& v,
                                                  const AppSpec& spec,
                                                  std::string_view what) const {
    ASSIGN_OR_RETURN(std::string name, NonEmptyString(v));
    const DataSourceSpec* entry = spec.FindDataSource(name);
    if (entry == nullptr) {
      std::vector<std::string_view> defined;
      for (const DataSourceSpec& s : spec.data) defined.push_back(s.name);
      return Error(v.mark,
                   std::string(what) + " data source " + Quote(name) +
                       ", which 'data' does not define; " +
                       (defined.empty() ? std::string("add it under 'data'")
                                        : "defined sources: " + Join(defined)));
    }
    return entry;
  }

  // A data entry a step writes to: a database entry needs its table.
  absl::StatusOr<const DataSourceSpec*> WritableEntry(
      const Value& v, const AppSpec& spec, std::string_view what) const {
    ASSIGN_OR_RETURN(const DataSourceSpec* entry, DataEntry(v, spec, what));
    if ((entry->connector == Connector::kSqlite ||
         entry->connector == Connector::kPostgres) &&
        entry->table.empty()) {
      return Error(v.mark, std::string(what) + " data source " +
                               Quote(entry->name) + ", which has no 'table'; " +
                               "add 'table: <name>' to it (a " +
                               std::string(ConnectorName(entry->connector)) +
                               " entry is written to a table)");
    }
    return entry;
  }

  absl::StatusOr<IngestStepSpec> ParseIngest(const Fields& map,
                                             const AppSpec& spec) const {
    IngestStepSpec ingest;
    ASSIGN_OR_RETURN(const Field* source, Require(map, "source"));
    ASSIGN_OR_RETURN(const DataSourceSpec* entry,
                     DataEntry(source->value(), spec, "ingest step reads"));
    ingest.source = entry->name;
    if (const Field* g = map.Find("last_rows")) {
      ASSIGN_OR_RETURN(ingest.last_rows,
                       Integer(g->value(), 1, int64_t{1} << 40,
                               "a whole number of rows >= 1"));
    }
    return ingest;
  }

  absl::StatusOr<ValidateStepSpec> ParseValidate(const Fields& map) const {
    ValidateStepSpec validate;
    if (const Field* g = map.Find("max_null_fraction")) {
      ASSIGN_OR_RETURN(validate.max_null_fraction,
                       Number(g->value(), "a number between 0 and 1",
                              [](double x) { return x >= 0 && x <= 1; }));
    }
    if (const Field* g = map.Find("min_rows")) {
      ASSIGN_OR_RETURN(
          validate.min_rows,
          Integer(g->value(), 0, std::numeric_limits<int64_t>::max(),
                  "a whole number >= 0"));
    }
    if (const Field* g = map.Find("ranges")) {
      ASSIGN_OR_RETURN(Fields ranges, Map(*g, "in validate ranges", {}));
      for (const Field& r : ranges.fields) {
        Value v = r.value();
        v.label = Quote(r.key) + " in 'ranges'";
        const char* kExpected =
            "a list [min, max] of two numbers with min <= max";
        if (!v.node.IsSequence() || v.node.size() != 2) {
          return Expected(v, kExpected);
        }
        ValueRange range;
        range.column = r.key;
        if (!v.node[0].IsScalar() || !v.node[1].IsScalar() ||
            !ParseDouble(v.node[0].Scalar(), &range.min) ||
            !ParseDouble(v.node[1].Scalar(), &range.max) ||
            range.min > range.max) {
          return Error(v.mark, v.label + " must be " + kExpected + ", got [" +
                                   Describe(v.node[0]) + ", " +
                                   Describe(v.node[1]) + "]");
        }
        validate.ranges.push_back(std::move(range));
      }
    }
    if (const Field* g = map.Find("allowed")) {
      ASSIGN_OR_RETURN(Fields allowed, Map(*g, "in validate allowed", {}));
      for (const Field& a : allowed.fields) {
        Value v = a.value();
        v.label = Quote(a.key) + " in 'allowed'";
        AllowedValues values;
        values.column = a.key;
        ASSIGN_OR_RETURN(values.values, StringList(v, true));
        if (values.values.empty()) {
          return Expected(v, "a non-empty list of values");
        }
        validate.allowed.push_back(std::move(values));
      }
    }
    return validate;
  }

  absl::StatusOr<SplitStepSpec> ParseSplit(const Fields& map,
                                           const SchemaSpec& schema) const {
    SplitStepSpec split;
    if (const Field* g = map.Find("test_fraction")) {
      ASSIGN_OR_RETURN(split.test_fraction,
                       Number(g->value(), "a number between 0 and 1",
                              [](double x) { return x > 0 && x < 1; }));
    }
    if (const Field* g = map.Find("seed")) {
      ASSIGN_OR_RETURN(split.seed,
                       Integer(g->value(), 0, 2147483647,
                               "a whole number from 0 to 2147483647"));
    }
    if (const Field* g = map.Find("stratify")) {
      ASSIGN_OR_RETURN(split.stratify, Bool(g->value()));
      if (split.stratify && schema.task == Task::kRegression) {
        return Error(g->value().mark,
                     "'stratify' keeps class proportions, but schema.task is "
                     "regression; remove it or set it to false");
      }
    }
    return split;
  }

  absl::StatusOr<TrainStepSpec> ParseTrain(const Fields& map,
                                           const SchemaSpec& schema) const {
    TrainStepSpec train;
    auto positive_at_most_one = [](double x) { return x > 0 && x <= 1; };
    auto non_negative = [](double x) { return x >= 0; };
    if (const Field* g = map.Find("rounds")) {
      ASSIGN_OR_RETURN(
          train.rounds,
          Integer(g->value(), 1, 100000, "a whole number from 1 to 100000"));
    }
    if (const Field* g = map.Find("max_depth")) {
      ASSIGN_OR_RETURN(train.max_depth, Integer(g->value(), 1, 64,
                                                "a whole number from 1 to 64"));
    }
    if (const Field* g = map.Find("eta")) {
      ASSIGN_OR_RETURN(train.eta, Number(g->value(), "a number > 0 and <= 1",
                                         positive_at_most_one));
    }
    if (const Field* g = map.Find("subsample")) {
      ASSIGN_OR_RETURN(
          train.subsample,
          Number(g->value(), "a number > 0 and <= 1", positive_at_most_one));
    }
    if (const Field* g = map.Find("colsample_bytree")) {
      ASSIGN_OR_RETURN(
          train.colsample_bytree,
          Number(g->value(), "a number > 0 and <= 1", positive_at_most_one));
    }
    if (const Field* g = map.Find("min_child_weight")) {
      ASSIGN_OR_RETURN(train.min_child_weight,
                       Number(g->value(), "a number >= 0", non_negative));
    }
    if (const Field* g = map.Find("lambda")) {
      ASSIGN_OR_RETURN(train.lambda,
                       Number(g->value(), "a number >= 0", non_negative));
    }
    if (const Field* g = map.Find("alpha")) {
      ASSIGN_OR_RETURN(train.alpha,
                       Number(g->value(), "a number >= 0", non_negative));
    }
    if (const Field* g = map.Find("seed")) {
      ASSIGN_OR_RETURN(train.seed,
                       Integer(g->value(), 0, 2147483647,
                               "a whole number from 0 to 2147483647"));
    }
    if (const Field* g = map.Find("threads")) {
      ASSIGN_OR_RETURN(train.threads, Integer(g->value(), 0, 1024,
                                              "a whole number from 0 to 1024"));
    }
    if (const Field* g = map.Find("objective")) {
      Value v = g->value();
      auto it = v.node.IsScalar() ? Objectives().find(v.node.Scalar())
                                  : Objectives().end();
      if (it == Objectives().end()) {
        std::vector<std::string_view> names;
        for (const auto& [name, task] : Objectives()) names.push_back(name);
        return Expected(v, "one of: " + Join(names));
      }
      if (schema.task.has_value() && *schema.task != it->second) {
        return Error(v.mark, "objective " + Quote(it->first) + " is for " +
                                 std::string(TaskName(it->second)) +
                                 ", but schema.task is " +
                                 std::string(TaskName(*schema.task)));
      }
      train.objective = std::string(it->first);
    }
    if (const Field* g = map.Find("engine")) {
      ASSIGN_OR_RETURN(size_t i, Choice(g->value(), kEngines));
      train.engine = static_cast<TrainEngine>(i);
    }
    return train;
  }

  absl::StatusOr<EvaluateStepSpec> ParseEvaluate(const Fields& map) const {
    EvaluateStepSpec evaluate;
    if (const Field* g = map.Find("metrics")) {
      ASSIGN_OR_RETURN(std::vector<Value> items, List(g->value()));
      for (const Value& item : items) {
        ASSIGN_OR_RETURN(size_t i, Choice(item, kMetrics));
        std::string metric(kMetrics[i]);
        if (std::find(evaluate.metrics.begin(), evaluate.metrics.end(),
                      metric) != evaluate.metrics.end()) {
          return Error(item.mark,
                       Quote(metric) + " appears twice in 'metrics'");
        }
        evaluate.metrics.push_back(std::move(metric));
      }
    }
    return evaluate;
  }

  absl::StatusOr<RegisterStepSpec> ParseRegister(const Fields& map) const {
    RegisterStepSpec reg;
    if (const Field* g = map.Find("alias")) {
      ASSIGN_OR_RETURN(reg.alias, Name(g->value()));
    }
    return reg;
  }

  absl::StatusOr<TransformStepSpec> ParseTransform(
      const Fields& map, const SchemaSpec& schema) const {
    TransformStepSpec transform;
    if (const Field* g = map.Find("impute")) {
      ASSIGN_OR_RETURN(Fields impute,
                       Map(*g, "in transform impute", kImputeKeys));
      if (const Field* h = impute.Find("numeric")) {
        ASSIGN_OR_RETURN(size_t i, Choice(h->value(), kNumericImputes));
        transform.impute_numeric = static_cast<NumericImpute>(i);
      }
      if (const Field* h = impute.Find("categorical")) {
        ASSIGN_OR_RETURN(size_t i, Choice(h->value(), kCategoricalImputes));
        transform.impute_categorical = static_cast<CategoricalImpute>(i);
      }
    }
    if (const Field* g = map.Find("fill_value")) {
      if (transform.impute_numeric != NumericImpute::kConstant) {
        return Error(g->key_mark,
                     "'fill_value' is what 'impute: {numeric: constant}' "
                     "writes for a missing number; set that, or remove "
                     "'fill_value'");
      }
      ASSIGN_OR_RETURN(
          transform.fill_value,
          Number(g->value(), "a number", [](double) { return true; }));
    }
    if (const Field* g = map.Find("fill_category")) {
      if (transform.impute_categorical != CategoricalImpute::kConstant) {
        return Error(g->key_mark,
                     "'fill_category' is what 'impute: {categorical: "
                     "constant}' writes for a missing category; set that, or "
                     "remove 'fill_category'");
      }
      ASSIGN_OR_RETURN(transform.fill_category, NonEmptyString(g->value()));
    }
    if (const Field* g = map.Find("encode")) {
      ASSIGN_OR_RETURN(size_t i, Choice(g->value(), kEncodings));
      transform.encode = static_cast<CategoricalEncoding>(i);
    }
    if (const Field* g = map.Find("max_categories")) {
      if (transform.encode != CategoricalEncoding::kOneHot) {
        return Error(g->key_mark,
                     "'max_categories' limits the indicator columns of "
                     "'encode: onehot'; set that, or remove "
                     "'max_categories'");
      }
      ASSIGN_OR_RETURN(
          transform.max_categories,
          Integer(g->value(), 1, 10000, "a whole number from 1 to 10000"));
    }
    if (const Field* g = map.Find("standardize")) {
      ASSIGN_OR_RETURN(transform.standardize, Bool(g->value()));
    }
    if (const Field* g = map.Find("columns")) {
      ASSIGN_OR_RETURN(transform.columns, StringList(g->value(), false));
      ASSIGN_OR_RETURN(std::vector<Value> items, List(g->value()));
      for (const Value& item : items) {
        const std::string& column = item.node.Scalar();
        if (column == schema.target || column == schema.id) {
          return Error(item.mark,
                       "'columns' lists " + Quote(column) + ", the schema's " +
                           (column == schema.target ? "target" : "id") +
                           ", which is never a feature; remove it");
        }
        if (Contains(schema.exclude, column)) {
          return Error(item.mark, "'columns' lists " + Quote(column) +
                                      ", which schema.exclude leaves out of "
                                      "the features");
        }
        bool declared = std::any_of(
            schema.features.begin(), schema.features.end(),
            [&](const ColumnType& f) { return f.column == column; });
        if (!schema.features.empty() && !declared) {
          std::vector<std::string_view> features;
          for (const ColumnType& f : schema.features) {
            features.push_back(f.column);
          }
          return Error(item.mark, "'columns' lists " + Quote(column) +
                                      ", which is not a feature; "
                                      "schema.features declares: " +
                                      Join(features));
        }
      }
    }
    return transform;
  }

  absl::StatusOr<ScoreStepSpec> ParseScore(const Fields& map,
                                           const AppSpec& spec) const {
    ScoreStepSpec score;
    ASSIGN_OR_RETURN(const Field* source, Require(map, "source"));
    ASSIGN_OR_RETURN(const DataSourceSpec* from,
                     DataEntry(source->value(), spec, "score step reads"));
    score.source = from->name;
    ASSIGN_OR_RETURN(const Field* sink, Require(map, "sink"));
    ASSIGN_OR_RETURN(
        const DataSourceSpec* to,
        WritableEntry(sink->value(), spec, "score step writes to"));
    score.sink = to->name;
    if (score.sink == score.source) {
      return Error(sink->value().mark,
                   "score step reads and writes data source " +
                       Quote(score.sink) +
                       "; write the scores to another entry of 'data'");
    }
    if (const Field* g = map.Find("model")) {
      Value v = g->value();
      v.label = "'model' (an alias or a version number)";
      ASSIGN_OR_RETURN(score.model, Name(v));
    }
    if (const Field* g = map.Find("keep")) {
      ASSIGN_OR_RETURN(score.keep, StringList(g->value(), false));
    }
    if (const Field* g = map.Find("chunk_rows")) {
      ASSIGN_OR_RETURN(score.chunk_rows,
                       Integer(g->value(), 0, 10000000,
                               "a whole number from 0 to 10000000 (0: the "
                               "source's chunk_rows)"));
    }
    if (const Field* g = map.Find("threads")) {
      ASSIGN_OR_RETURN(score.threads, Integer(g->value(), 0, 1024,
                                              "a whole number from 0 to 1024"));
    }
    return score;
  }

  absl::StatusOr<SinkStepSpec> ParseSink(const Fields& map,
                                         const AppSpec& spec) const {
    SinkStepSpec sink;
    ASSIGN_OR_RETURN(const Field* to, Require(map, "to"));
    ASSIGN_OR_RETURN(const DataSourceSpec* entry,
                     WritableEntry(to->value(), spec, "sink step writes to"));
    sink.to = entry->name;
    return sink;
  }

  absl::StatusOr<CommandStepSpec> ParseCommand(const Fields& map) const {
    CommandStepSpec command;
    ASSIGN_OR_RETURN(const Field* run, Require(map, "run"));
    Value v = run->value();
    constexpr std::string_view kRun =
        "a command line such as \"python3 train.py\" (run by /bin/sh) or a "
        "non-empty list of arguments such as [python3, train.py]";
    if (v.node.IsScalar()) {
      ASSIGN_OR_RETURN(std::string line, NonEmptyString(v));
      command.argv = {"/bin/sh", "-c", std::move(line)};
      command.shell = true;
    } else if (v.node.IsSequence() && v.node.size() > 0) {
      ASSIGN_OR_RETURN(std::vector<Value> items, List(v));
      for (const Value& item : items) {
        std::string arg;
        if (command.argv.empty()) {
          ASSIGN_OR_RETURN(arg, NonEmptyString(item));
        } else {
          ASSIGN_OR_RETURN(arg, String(item));
        }
        command.argv.push_back(std::move(arg));
      }
    } else {
      return Expected(v, kRun);
    }
    if (const Field* g = map.Find("params")) {
      ASSIGN_OR_RETURN(command.params_json, ParamsJson(*g));
    }
    if (const Field* g = map.Find("env")) {
      ASSIGN_OR_RETURN(Fields env, Map(*g, "in command env", {}));
      for (const Field& e : env.fields) {
        if (!IsEnvName(e.key)) {
          return Error(e.key_mark,
                       "environment variable name " + Quote(e.key) +
                           " must be letters, digits and '_', not starting "
                           "with a digit");
        }
        if (e.key.rfind("SLIPWAY_", 0) == 0) {
          return Error(e.key_mark,
                       Quote(e.key) +
                           " is set by Slipway for every step (SLIPWAY_* "
                           "variables are reserved); choose another name");
        }
        Value value = e.value();
        ASSIGN_OR_RETURN(std::string text, LiteralOrEnv(value, true));
        command.env.emplace_back(e.key, std::move(text));
      }
    }
    if (const Field* g = map.Find("working_dir")) {
      ASSIGN_OR_RETURN(command.working_dir, NonEmptyString(g->value()));
    }
    return command;
  }

  absl::StatusOr<NotebookStepSpec> ParseNotebook(const Fields& map) const {
    NotebookStepSpec notebook;
    ASSIGN_OR_RETURN(const Field* path, Require(map, "path"));
    Value v = path->value();
    ASSIGN_OR_RETURN(notebook.path, NonEmptyString(v));
    if (!std::string_view(notebook.path).ends_with(".ipynb")) {
      return Expected(v, "a Jupyter notebook file (.ipynb)");
    }
    if (const Field* g = map.Find("params")) {
      ASSIGN_OR_RETURN(notebook.params_json, ParamsJson(*g));
    }
    if (const Field* g = map.Find("kernel")) {
      ASSIGN_OR_RETURN(notebook.kernel, Name(g->value()));
    }
    return notebook;
  }

  // Resolves every `inputs` and `after` entry and refuses cycles. Returns
  // each step's dependencies (indices, ascending), as StepDependencies
  // defines them.
  absl::StatusOr<std::vector<std::vector<size_t>>> CheckGraph(
      const PipelineSpec& pipeline, const std::vector<StepNodes>& nodes) const {
    const std::vector<StepSpec>& steps = pipeline.steps;
    std::string in = " in pipeline '" + pipeline.name + "'";
    auto index_of = [&](std::string_view name) -> std::optional<size_t> {
      for (size_t i = 0; i < steps.size(); ++i) {
        if (steps[i].name == name) return i;
      }
      return std::nullopt;
    };
    auto no_such_step = [&](const YAML::Mark& mark, const StepSpec& step,
                            std::string_view key, std::string_view entry,
                            std::string_view name) {
      std::vector<std::string_view> names;
      for (const StepSpec& s : steps) names.push_back(s.name);
      return Error(mark, "step " + Quote(step.name) + " lists " + Quote(entry) +
                             " in '" + std::string(key) + "', but" + in +
                             " there is no step " + Quote(name) +
                             "; its steps: " + Join(names));
    };
    std::vector<std::vector<size_t>> deps(steps.size());
    // The entry behind each explicit dependency, for errors about it.
    std::vector<std::map<size_t, YAML::Mark>> edge_marks(steps.size());
    for (size_t i = 0; i < steps.size(); ++i) {
      const StepSpec& step = steps[i];
      for (size_t k = 0; k < step.inputs.size(); ++k) {
        const YAML::Mark& mark = nodes[i].inputs[k];
        if (const StepSpec* dotted = DottedStepRead(steps, step.inputs[k])) {
          return Error(mark, "step " + Quote(dotted->name) +
                                 " cannot be read through 'inputs', since "
                                 "'.' in its name would separate step and "
                                 "output; rename it with letters, digits, "
                                 "'_' or '-' (or wait for it with 'after')");
        }
        StepInput input = ResolveStepInput(step.inputs[k]);
        std::optional<size_t> producer = index_of(input.step);
        if (!producer.has_value()) {
          return no_such_step(mark, step, "inputs", step.inputs[k], input.step);
        }
        if (*producer == i) {
          return Error(mark, "step " + Quote(step.name) +
                                 " cannot read its own outputs; name the "
                                 "step that produces " +
                                 Quote(step.inputs[k]));
        }
        const StepSpec& from = steps[*producer];
        std::vector<std::string> outputs = StepOutputNames(from);
        std::string from_label = std::string(StepKindName(from.kind())) +
                                 " step " + Quote(from.name);
        if (input.output.empty() && outputs.empty()) {
          return Error(mark, from_label +
                                 " produces no outputs (register, score "
                                 "and sink steps write outside the run); "
                                 "to run after it, list it under 'after'");
        }
        if (!input.output.empty() && !Contains(outputs, input.output)) {
          return Error(mark,
                       "step " + Quote(step.name) + " reads " +
                           Quote(step.inputs[k]) + ", but " + from_label +
                           " has no output " + Quote(input.output) + "; " +
                           (outputs.empty() ? std::string("it produces none")
                                            : "its outputs: " + Join(outputs)));
        }
        edge_marks[i].emplace(*producer, mark);
      }
      for (size_t k = 0; k < step.after.size(); ++k) {
        const YAML::Mark& mark = nodes[i].after[k];
        std::optional<size_t> before = index_of(step.after[k]);
        if (!before.has_value()) {
          return no_such_step(mark, step, "after", step.after[k],
                              step.after[k]);
        }
        if (*before == i) {
          return Error(mark, "step " + Quote(step.name) +
                                 " cannot run after itself; remove it from "
                                 "its 'after'");
        }
        edge_marks[i].emplace(*before, mark);
      }
      if (step.inputs.empty() && step.after.empty()) {
        if (i > 0) deps[i].push_back(i - 1);
      } else {
        for (const auto& [dep, mark] : edge_marks[i]) deps[i].push_back(dep);
      }
    }
    RETURN_IF_ERROR(CheckAcyclic(pipeline, deps, edge_marks));
    return deps;
  }

  // The step with a '.' in its name (Step-1 names allow it) that the
  // `inputs` entry means, if any: such a step cannot be read, since
  // ResolveStepInput splits at the first '.'.
  static const StepSpec* DottedStepRead(const std::vector<StepSpec>& steps,
                                        std::string_view entry) {
    for (const StepSpec& s : steps) {
      if (s.name.find('.') != std::string::npos &&
          (entry == s.name || entry.starts_with(s.name + "."))) {
        return &s;
      }
    }
    return nullptr;
  }

  // A cycle always holds an explicit dependency on a later step (the
  // implicit ones point back); the error points at that entry.
  absl::Status CheckAcyclic(
      const PipelineSpec& pipeline,
      const std::vector<std::vector<size_t>>& deps,
      const std::vector<std::map<size_t, YAML::Mark>>& edge_marks) const {
    enum class State { kNew, kOnPath, kDone };
    std::vector<State> state(deps.size(), State::kNew);
    std::vector<size_t> path;
    // cycle[j] depends on cycle[j + 1], and the last on the first.
    std::vector<size_t> cycle;
    std::function<bool(size_t)> visit = [&](size_t u) {
      state[u] = State::kOnPath;
      path.push_back(u);
      for (size_t v : deps[u]) {
        if (state[v] == State::kOnPath) {
          cycle.assign(std::find(path.begin(), path.end(), v), path.end());
          return true;
        }
        if (state[v] == State::kNew && visit(v)) return true;
      }
      path.pop_back();
      state[u] = State::kDone;
      return false;
    };
    for (size_t i = 0; i < deps.size() && cycle.empty(); ++i) {
      if (state[i] == State::kNew) visit(i);
    }
    if (cycle.empty()) return absl::OkStatus();
    size_t k = cycle.size();
    size_t at = 0;
    while (cycle[(at + 1) % k] < cycle[at]) ++at;
    size_t step = cycle[at];
    size_t dep = cycle[(at + 1) % k];
    // Listed the way work flows: each step runs after the one before it.
    std::string flow = pipeline.steps[step].name;
    for (size_t j = 1; j <= k; ++j) {
      flow += " -> " + pipeline.steps[cycle[(at + k - j) % k]].name;
    }
    return Error(edge_marks[step].at(dep),
                 "the steps of pipeline '" + pipeline.name +
                     "' form a cycle: " + flow +
                     " (each waits for the one before it); remove " +
                     Quote(pipeline.steps[dep].name) +
                     " from the inputs or after of step " +
                     Quote(pipeline.steps[step].name));
  }

  // What each built-in step needs from the steps before it (its
  // dependencies, theirs, and so on): a table, a model, a test set.
  absl::Status CheckStepNeeds(const PipelineSpec& pipeline,
                              const std::vector<StepNodes>& nodes,
                              const std::vector<std::vector<size_t>>& deps,
                              const SchemaSpec& schema) const {
    const std::vector<StepSpec>& steps = pipeline.steps;
    std::string in = " in pipeline '" + pipeline.name + "'";
    for (size_t i = 0; i < steps.size(); ++i) {
      const StepSpec& step = steps[i];
      std::vector<size_t> before = Ancestors(deps, i);
      auto any_before = [&](bool (*test)(StepKind)) {
        return std::any_of(before.begin(), before.end(),
                           [&](size_t j) { return test(steps[j].kind()); });
      };
      const YAML::Mark& mark = nodes[i].kind_mark;
      std::string label =
          std::string(StepKindName(step.kind())) + " step " + Quote(step.name);
      auto need_table = [&]() -> absl::Status {
        if (any_before(MayProduceTable)) return absl::OkStatus();
        return Error(mark, label + " reads a table, but no step before it" +
                               in +
                               " produces one; start the pipeline with '- "
                               "ingest: {source: <data source>}', or name "
                               "the step that makes the table in 'inputs'");
      };
      auto need_model = [&]() -> absl::Status {
        if (any_before(MayProduceModel)) return absl::OkStatus();
        return Error(mark, label +
                               " needs a trained model, but no step before "
                               "it" +
                               in +
                               " produces one (a train step, or a command "
                               "or notebook step that writes model/)");
      };
      switch (step.kind()) {
        case StepKind::kValidate:
        case StepKind::kTransform:
        case StepKind::kSink:
          RETURN_IF_ERROR(need_table());
          break;
        case StepKind::kSplit:
          RETURN_IF_ERROR(need_table());
          if (any_before([](StepKind k) { return k == StepKind::kTrain; })) {
            return Error(mark, label + " comes after a train step" + in +
                                   "; move it before the train step, or the "
                                   "model trains on the test rows");
          }
          break;
        case StepKind::kTrain:
          RETURN_IF_ERROR(need_table());
          break;
        case StepKind::kEvaluate:
          RETURN_IF_ERROR(need_model());
          if (!any_before(MayProduceTestSet)) {
            return Error(mark, label +
                                   " needs a test set, but no split step "
                                   "comes before it" +
                                   in +
                                   "; add '- split: {test_fraction: 0.2}' "
                                   "before the train step");
          }
          RETURN_IF_ERROR(
              CheckMetricsFitTask(steps, before, step, nodes[i], schema));
          break;
        case StepKind::kRegister:
          RETURN_IF_ERROR(need_model());
          break;
        case StepKind::kIngest:
        case StepKind::kScore:
        case StepKind::kCommand:
        case StepKind::kNotebook:
          break;
      }
    }
    return absl::OkStatus();
  }

  // The steps `i` runs after, directly or not, ascending.
  static std::vector<size_t> Ancestors(
      const std::vector<std::vector<size_t>>& deps, size_t i) {
    std::vector<bool> seen(deps.size(), false);
    std::vector<size_t> stack = deps[i];
    while (!stack.empty()) {
      size_t j = stack.back();
      stack.pop_back();
      if (seen[j]) continue;
      seen[j] = true;
      stack.insert(stack.end(), deps[j].begin(), deps[j].end());
    }
    std::vector<size_t> out;
    for (size_t j = 0; j < seen.size(); ++j) {
      if (seen[j]) out.push_back(j);
    }
    return out;
  }

  // An evaluate step's metrics against the task of the model it scores:
  // the objective of the last train step before it, else schema.task.
  absl::Status CheckMetricsFitTask(const std::vector<StepSpec>& steps,
                                   const std::vector<size_t>& before,
                                   const StepSpec& step, const StepNodes& nodes,
                                   const SchemaSpec& schema) const {
    std::optional<Task> task = schema.task;
    for (auto it = before.rbegin(); it != before.rend(); ++it) {
      if (steps[*it].kind() != StepKind::kTrain) continue;
      const auto& train = std::get<TrainStepSpec>(steps[*it].params);
      if (!train.objective.empty()) task = Objectives().at(train.objective);
      break;
    }
    if (!task.has_value()) return absl::OkStatus();
    const auto& evaluate = std::get<EvaluateStepSpec>(step.params);
    bool regression = *task == Task::kRegression;
    for (size_t m = 0; m < evaluate.metrics.size(); ++m) {
      const std::string& metric = evaluate.metrics[m];
      if (IsClassificationMetric(metric) != regression) continue;
      const YAML::Node params = nodes.params;
      const YAML::Node metrics_node = params["metrics"];
      return Error(
          metrics_node[m].Mark(),
          "metric " + Quote(metric) + " does not apply to " +
              std::string(TaskName(*task)) + "; use " +
              (regression ? "rmse, mae or r2" : "auc, logloss or accuracy"));
    }
    return absl::OkStatus();
  }

  // The rules of the pipeline's kind: a train pipeline produces a model, a
  // score pipeline scores or writes data, a check pipeline produces no
  // model.
  absl::Status CheckPipelineKind(const PipelineSpec& pipeline,
                                 const std::vector<StepNodes>& nodes,
                                 const Field& steps_field) const {
    const std::vector<StepSpec>& steps = pipeline.steps;
    auto any_step = [&](bool (*test)(StepKind)) {
      return std::any_of(steps.begin(), steps.end(),
                         [&](const StepSpec& s) { return test(s.kind()); });
    };
    switch (pipeline.kind) {
      case PipelineKind::kTrain:
        if (!any_step(MayProduceModel)) {
          return Error(steps_field.key_mark,
                       "train pipeline '" + pipeline.name +
                           "' has no step that produces a model; add one "
                           "such as '- train: {engine: xgboost}' after the "
                           "ingest step, or a command or notebook step that "
                           "writes model/");
        }
        break;
      case PipelineKind::kScore:
        if (!any_step([](StepKind k) {
              return k == StepKind::kScore || k == StepKind::kSink;
            })) {
          return Error(steps_field.key_mark,
                       "score pipeline '" + pipeline.name +
                           "' has no score or sink step; add one such as '- "
                           "score: {source: <data entry>, sink: <data "
                           "entry>}'");
        }
        break;
      case PipelineKind::kCheck:
        for (size_t i = 0; i < steps.size(); ++i) {
          StepKind kind = steps[i].kind();
          if (kind != StepKind::kTrain && kind != StepKind::kRegister) {
            continue;
          }
          return Error(nodes[i].kind_mark,
                       "check pipeline '" + pipeline.name + "' cannot have a " +
                           std::string(StepKindName(kind)) +
                           " step: a check pipeline reports on data and "
                           "produces no model; train and register in a "
                           "pipeline of kind train");
        }
        break;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<EndpointSpec> ParseEndpoint(const Field& f) const {
    ASSIGN_OR_RETURN(Fields map, Map(f, "in endpoint", kEndpointKeys));
    EndpointSpec endpoint;
    if (const Field* g = map.Find("model")) {
      ASSIGN_OR_RETURN(endpoint.model, Name(g->value()));
    }
    if (const Field* g = map.Find("fields")) {
      ASSIGN_OR_RETURN(endpoint.fields, StringList(g->value(), false));
    }
    if (const Field* g = map.Find("auth")) {
      ASSIGN_OR_RETURN(size_t a, Choice(g->value(), kEndpointAuth));
      endpoint.require_token = kEndpointAuth[a] == "token";
    }
    if (const Field* g = map.Find("canary")) {
      ASSIGN_OR_RETURN(Fields canary, Map(*g, "in endpoint.canary", kCanaryKeys));
      CanarySpec c;
      c.location = ToLocation(g->value().mark);
      ASSIGN_OR_RETURN(const Field* model, Require(canary, "model"));
      ASSIGN_OR_RETURN(c.model, Name(model->value()));
      if (c.model == endpoint.model) {
        return Error(model->value().mark,
                     "endpoint.canary names '" + c.model +
                         "', the alias the endpoint serves; a canary sends "
                         "traffic to another alias (for example model: "
                         "challenger)");
      }
      if (const Field* h = canary.Find("percent")) {
        ASSIGN_OR_RETURN(c.percent,
                         Integer(h->value(), 1, 99,
                                 "a whole percentage of requests from 1 to "
                                 "99"));
      }
      if (const Field* h = canary.Find("min_rows")) {
        ASSIGN_OR_RETURN(c.min_rows,
                         Integer(h->value(), 10, 100000000,
                                 "a whole number of labelled predictions "
                                 "from 10 to 100000000"));
      }
      endpoint.canary = std::move(c);
    }
    if (const Field* g = map.Find("shadow")) {
      ASSIGN_OR_RETURN(Fields shadow, Map(*g, "in endpoint.shadow", kShadowKeys));
      ShadowSpec sh;
      sh.location = ToLocation(g->value().mark);
      ASSIGN_OR_RETURN(const Field* model, Require(shadow, "model"));
      ASSIGN_OR_RETURN(sh.model, Name(model->value()));
      if (sh.model == endpoint.model) {
        return Error(model->value().mark,
                     "endpoint.shadow names '" + sh.model +
                         "', the alias the endpoint serves; a shadow copies "
                         "traffic to another alias (for example model: "
                         "challenger)");
      }
      if (endpoint.canary.has_value() && endpoint.canary->model == sh.model) {
        return Error(model->value().mark,
                     "endpoint.shadow names '" + sh.model +
                         "', which endpoint.canary already sends live "
                         "traffic to; shadow another alias or remove one "
                         "of the two");
      }
      endpoint.shadow = std::move(sh);
    }
    if (const Field* g = map.Find("runtime")) {
      ASSIGN_OR_RETURN(Fields runtime,
                       Map(*g, "in endpoint.runtime", kRuntimeKeys));
      RuntimeSpec& r = endpoint.runtime;
      if (const Field* h = runtime.Find("workers")) {
        ASSIGN_OR_RETURN(
            r.workers,
            Integer(h->value(), 1, 256, "a whole number from 1 to 256"));
      }
      if (const Field* h = runtime.Find("recycle_after")) {
        ASSIGN_OR_RETURN(r.recycle_after,
                         Integer(h->value(), 0, int64_t{1} << 40,
                                 "a whole number of requests (0: never)"));
      }
      if (const Field* h = runtime.Find("timeout")) {
        ASSIGN_OR_RETURN(
            r.timeout_seconds,
            Duration(*h, "a duration such as 30s or 2m (at least 1s)"));
      }
      if (const Field* h = runtime.Find("threads")) {
        ASSIGN_OR_RETURN(
            r.threads,
            Integer(h->value(), 1, 256, "a whole number from 1 to 256"));
      }
    }
    if (const Field* g = map.Find("batching")) {
      ASSIGN_OR_RETURN(Fields batching,
                       Map(*g, "in endpoint.batching", kBatchingKeys));
      BatchingSpec& b = endpoint.batching;
      if (const Field* h = batching.Find("enabled")) {
        ASSIGN_OR_RETURN(b.enabled, Bool(h->value()));
      }
      if (const Field* h = batching.Find("max_batch")) {
        ASSIGN_OR_RETURN(
            b.max_batch,
            Integer(h->value(), 1, 65536, "a whole number from 1 to 65536"));
      }
      if (const Field* h = batching.Find("max_delay_us")) {
        ASSIGN_OR_RETURN(b.max_delay_us,
                         Integer(h->value(), 0, 10000000,
                                 "a whole number of microseconds from 0 to "
                                 "10000000"));
      }
      if (const Field* h = batching.Find("max_queue")) {
        ASSIGN_OR_RETURN(b.max_queue,
                         Integer(h->value(), 1, 10000000,
                                 "a whole number from 1 to 10000000"));
      }
      if (b.max_queue < b.max_batch) {
        const Field* at = batching.Find("max_queue");
        if (at == nullptr) at = batching.Find("max_batch");
        return Error(at->value().mark,
                     "'max_queue' (" + std::to_string(b.max_queue) +
                         ") must be at least 'max_batch' (" +
                         std::to_string(b.max_batch) +
                         "), or a full batch could never form");
      }
    }
    return endpoint;
  }

  absl::StatusOr<MonitorSpec> ParseMonitor(const Field& f) const {
    ASSIGN_OR_RETURN(Fields map, Map(f, "in monitor", kMonitorKeys));
    MonitorSpec monitor;
    if (const Field* g = map.Find("window")) {
      ASSIGN_OR_RETURN(
          monitor.window_seconds,
          Duration(*g, "a duration such as 30s, 5m or 1h (at least 1s)"));
    }
    if (const Field* g = map.Find("enabled")) {
      ASSIGN_OR_RETURN(monitor.enabled, Bool(g->value()));
    }
    if (const Field* g = map.Find("log_inputs")) {
      ASSIGN_OR_RETURN(
          monitor.log_inputs,
          Number(g->value(), "a fraction of requests from 0 to 1",
                 [](double x) { return x >= 0 && x <= 1; }));
    }
    if (const Field* g = map.Find("retention")) {
      ASSIGN_OR_RETURN(monitor.retention_seconds,
                       Duration(*g, "a duration such as 12h, 30d or 90d"));
    }
    if (const Field* g = map.Find("drift")) {
      ASSIGN_OR_RETURN(Fields drift, Map(*g, "in monitor.drift", kDriftKeys));
      ASSIGN_OR_RETURN(monitor.drift.rule, ParseDriftRule(drift));
      if (const Field* h = drift.Find("features")) {
        ASSIGN_OR_RETURN(Fields features,
                         Map(*h, "in monitor.drift.features", {}));
        for (const Field& feature : features.fields) {
          ASSIGN_OR_RETURN(
              Fields rule,
              Map(feature.value(), "in monitor.drift.features." + feature.key,
                  kDriftRuleKeys,
                  "a map such as {method: wasserstein, threshold: 0.2}"));
          ASSIGN_OR_RETURN(DriftRuleSpec parsed, ParseDriftRule(rule));
          parsed.location = ToLocation(feature.value().mark);
          monitor.drift.features.emplace_back(feature.key, std::move(parsed));
        }
      }
      auto non_negative = [](double x) { return x >= 0; };
      if (const Field* h = drift.Find("warn")) {
        ASSIGN_OR_RETURN(monitor.drift.warn,
                         Number(h->value(), "a number >= 0", non_negative));
      }
      if (const Field* h = drift.Find("alert")) {
        ASSIGN_OR_RETURN(monitor.drift.alert,
                         Number(h->value(), "a number >= 0", non_negative));
      }
      if (monitor.drift.alert < monitor.drift.warn) {
        const Field* at = drift.Find("alert");
        if (at == nullptr) at = drift.Find("warn");
        return Error(at->value().mark,
                     "'alert' (" + FormatNumber(monitor.drift.alert) +
                         ") must be at least 'warn' (" +
                         FormatNumber(monitor.drift.warn) + ")");
      }
    }
    if (const Field* g = map.Find("rules")) {
      ASSIGN_OR_RETURN(std::vector<Value> items, List(g->value()));
      for (const Value& item : items) {
        ASSIGN_OR_RETURN(AlertRuleSpec rule, ParseRule(item));
        for (const AlertRuleSpec& other : monitor.rules) {
          if (other.name == rule.name) {
            return Error(item.mark, "duplicate alert rule name " +
                                        Quote(rule.name) + " (first at line " +
                                        std::to_string(other.location.line) +
                                        ")");
          }
        }
        monitor.rules.push_back(std::move(rule));
      }
    }
    return monitor;
  }

  absl::StatusOr<AlertRuleSpec> ParseRule(const Value& item) const {
    Value v = item;
    v.label = "each entry of 'rules'";
    ASSIGN_OR_RETURN(Fields map,
                     Map(v, "in alert rule", kRuleKeys,
                         "a map such as {name: auc-low, metric: kpi.auc, "
                         "below: 0.8, for: 3}"));
    AlertRuleSpec rule;
    rule.location = ToLocation(item.mark);
    ASSIGN_OR_RETURN(const Field* name, Require(map, "name"));
    ASSIGN_OR_RETURN(rule.name, Name(name->value()));
    map.where = "in alert rule '" + rule.name + "'";
    ASSIGN_OR_RETURN(const Field* metric, Require(map, "metric"));
    ASSIGN_OR_RETURN(rule.metric, NonEmptyString(metric->value()));
    const Field* below = map.Find("below");
    const Field* above = map.Find("above");
    if (below == nullptr && above == nullptr) {
      return MissingKey(map, "below",
                        "a rule needs 'below' or 'above', the threshold");
    }
    if (below != nullptr && above != nullptr) {
      const Field* later =
          below->key_mark.pos > above->key_mark.pos ? below : above;
      return Error(later->key_mark, "alert rule '" + rule.name +
                                        "' has both 'below' and 'above'; keep "
                                        "one, or write two rules");
    }
    const Field* threshold = below != nullptr ? below : above;
    rule.comparison =
        below != nullptr ? Comparison::kBelow : Comparison::kAbove;
    ASSIGN_OR_RETURN(rule.threshold, Number(threshold->value(), "a number",
                                            [](double) { return true; }));
    if (const Field* g = map.Find("for")) {
      ASSIGN_OR_RETURN(rule.for_windows,
                       Integer(g->value(), 1, 10000,
                               "a whole number of windows from 1 to 10000"));
    }
    if (const Field* g = map.Find("fire")) {
      ASSIGN_OR_RETURN(size_t i, Choice(g->value(), kTriggerEvents));
      rule.fire = static_cast<TriggerEvent>(i);
    }
    return rule;
  }

  // monitor.drift's (or a feature's) method and threshold.
  absl::StatusOr<DriftRuleSpec> ParseDriftRule(const Fields& map) const {
    DriftRuleSpec rule;
    rule.location = ToLocation(map.mark);
    if (const Field* h = map.Find("method")) {
      ASSIGN_OR_RETURN(size_t i, Choice(h->value(), kDriftMethods));
      rule.method = std::string(kDriftMethods[i]);
    }
    if (const Field* h = map.Find("threshold")) {
      const bool pvalue = rule.method == "ks" || rule.method == "chi2";
      ASSIGN_OR_RETURN(
          double threshold,
          Number(h->value(), pvalue ? "a p-value > 0 and < 1" : "a number > 0",
                 [pvalue](double x) { return x > 0 && (!pvalue || x < 1); }));
      rule.threshold = threshold;
    }
    return rule;
  }

  absl::StatusOr<PolicySpec> ParsePolicy(const Field& f) const {
    ASSIGN_OR_RETURN(Fields map, Map(f, "in policy", kPolicyKeys));
    PolicySpec policy;
    if (const Field* g = map.Find("promote")) {
      ASSIGN_OR_RETURN(Fields promote,
                       Map(*g, "in policy.promote", kPromoteKeys));
      PromotePolicySpec p;
      if (const Field* metric = promote.Find("metric")) {
        ASSIGN_OR_RETURN(size_t i, Choice(metric->value(), kMetrics));
        p.metric = std::string(kMetrics[i]);
        p.location = ToLocation(metric->value().mark);
      }
      if (const Field* h = promote.Find("confidence")) {
        if (p.metric.empty()) {
          return Error(h->value().mark,
                       "confidence in policy.promote needs a metric to "
                       "compare (add metric: auc, or drop confidence)");
        }
        ASSIGN_OR_RETURN(p.confidence,
                         Number(h->value(), "a number > 0 and < 1",
                                [](double x) { return x > 0 && x < 1; }));
      }
      if (const Field* h = promote.Find("min_gain")) {
        if (p.metric.empty()) {
          return Error(h->value().mark,
                       "min_gain in policy.promote needs a metric to "
                       "compare (add metric: auc, or drop min_gain)");
        }
        ASSIGN_OR_RETURN(p.min_gain, Number(h->value(), "a number >= 0",
                                            [](double x) { return x >= 0; }));
      }
      if (const Field* h = promote.Find("approval")) {
        ASSIGN_OR_RETURN(size_t a, Choice(h->value(), kApprovals));
        p.requires_approval = kApprovals[a] == "required";
      }
      policy.promote = std::move(p);
    }
    if (const Field* g = map.Find("rollback")) {
      ASSIGN_OR_RETURN(Fields rollback,
                       Map(*g, "in policy.rollback", kRollbackKeys));
      RollbackPolicySpec r;
      r.location = ToLocation(g->value().mark);
      ASSIGN_OR_RETURN(const Field* drop, Require(rollback, "kpi_drop"));
      ASSIGN_OR_RETURN(r.kpi_drop,
                       Number(drop->value(), "a number > 0 and <= 1",
                              [](double x) { return x > 0 && x <= 1; }));
      if (const Field* h = rollback.Find("metric")) {
        ASSIGN_OR_RETURN(size_t i, Choice(h->value(), kMetrics));
        r.metric = std::string(kMetrics[i]);
      } else if (policy.promote.has_value() && !policy.promote->metric.empty()) {
        r.metric = policy.promote->metric;
      } else {
        return Error(g->value().mark,
                     "policy.rollback needs a KPI to compare: add metric "
                     "(auc, logloss, accuracy, rmse, mae or r2) here or in "
                     "policy.promote");
      }
      if (const Field* h = rollback.Find("windows")) {
        ASSIGN_OR_RETURN(r.windows,
                         Integer(h->value(), 1, 1000,
                                 "a whole number of windows from 1 to 1000"));
      }
      if (const Field* h = rollback.Find("error_rate_rise")) {
        ASSIGN_OR_RETURN(r.error_rate_rise,
                         Number(h->value(), "a number > 0 and <= 1",
                                [](double x) { return x > 0 && x <= 1; }));
      }
      if (const Field* h = rollback.Find("min_rows")) {
        ASSIGN_OR_RETURN(r.min_rows,
                         Integer(h->value(), 10, 100000000,
                                 "a whole number of labelled predictions "
                                 "from 10 to 100000000"));
      }
      policy.rollback = r;
    }
    if (const Field* g = map.Find("apply")) {
      ASSIGN_OR_RETURN(Fields apply, Map(*g, "in policy.apply", kApplyKeys));
      if (const Field* h = apply.Find("approval")) {
        ASSIGN_OR_RETURN(size_t a, Choice(h->value(), kApprovals));
        policy.apply.requires_approval = kApprovals[a] == "required";
      }
    }
    if (const Field* g = map.Find("approvals")) {
      ASSIGN_OR_RETURN(Fields approvals,
                       Map(*g, "in policy.approvals", kApprovalsKeys));
      if (const Field* h = approvals.Find("expire_after")) {
        ASSIGN_OR_RETURN(policy.approvals.expire_after_seconds,
                         Duration(*h, "a duration such as 30m, 72h or 7d"));
      }
      if (const Field* h = approvals.Find("self_approval")) {
        ASSIGN_OR_RETURN(size_t a, Choice(h->value(), kSelfApproval));
        policy.approvals.forbid_self_approval = kSelfApproval[a] == "forbidden";
      }
    }
    return policy;
  }

  absl::StatusOr<NotifierSpec> ParseNotifier(const Value& item) const {
    Value v = item;
    v.label = "each entry of 'notify'";
    ASSIGN_OR_RETURN(Fields map, Map(v, "in notifier", kNotifierKeys,
                                     "a map such as {webhook: http://...}"));
    NotifierSpec notifier;
    notifier.location = ToLocation(item.mark);
    ASSIGN_OR_RETURN(const Field* webhook, Require(map, "webhook"));
    Value w = webhook->value();
    ASSIGN_OR_RETURN(notifier.webhook, String(w));
    std::string_view url = notifier.webhook;
    bool http = url.rfind("http://", 0) == 0 && url.size() > 7;
    bool https = url.rfind("https://", 0) == 0 && url.size() > 8;
    if (!http && !https) {
      return Expected(w, "an http:// or https:// URL");
    }
    if (const Field* g = map.Find("secret")) {
      ASSIGN_OR_RETURN(notifier.secret, String(g->value()));
    }
    return notifier;
  }

  std::string file_name_;
};

// ---- Diff ------------------------------------------------------------------

struct Line {
  std::string_view text;
  bool newline = true;  // false only for a last line without '\n'

  bool operator==(const Line& other) const {
    return text == other.text && newline == other.newline;
  }
};

std::vector<Line> SplitLines(std::string_view text) {
  std::vector<Line> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      lines.push_back(Line{text.substr(start), false});
      break;
    }
    lines.push_back(Line{text.substr(start, end - start), true});
    start = end + 1;
  }
  return lines;
}

enum class Edit { kKeep, kDelete, kInsert };

// The shortest edit script from `a` to `b`, by longest common subsequence
// over the part between the common prefix and suffix. A middle part too
// large for the quadratic table (far beyond any app spec) is replaced
// wholesale: still a correct diff, just not a minimal one.
std::vector<Edit> EditScript(const std::vector<Line>& a,
                             const std::vector<Line>& b) {
  size_t prefix = 0;
  while (prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix])
    ++prefix;
  size_t suffix = 0;
  while (suffix < a.size() - prefix && suffix < b.size() - prefix &&
         a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix]) {
    ++suffix;
  }
  size_t n = a.size() - prefix - suffix;
  size_t m = b.size() - prefix - suffix;
  std::vector<Edit> script(prefix, Edit::kKeep);
  constexpr size_t kMaxCells = size_t{16} << 20;
  if ((n + 1) * (m + 1) > kMaxCells) {
    script.insert(script.end(), n, Edit::kDelete);
    script.insert(script.end(), m, Edit::kInsert);
  } else {
    // lcs[i][j]: length of the LCS of a[prefix+i..] and b[prefix+j..].
    std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
    auto at = [&](size_t i, size_t j) -> uint32_t& {
      return lcs[i * (m + 1) + j];
    };
    for (size_t i = n; i-- > 0;) {
      for (size_t j = m; j-- > 0;) {
        at(i, j) = a[prefix + i] == b[prefix + j]
                       ? at(i + 1, j + 1) + 1
                       : std::max(at(i + 1, j), at(i, j + 1));
      }
    }
    size_t i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[prefix + i] == b[prefix + j]) {
        script.push_back(Edit::kKeep);
        ++i;
        ++j;
      } else if (j == m || (i < n && at(i + 1, j) >= at(i, j + 1))) {
        script.push_back(Edit::kDelete);
        ++i;
      } else {
        script.push_back(Edit::kInsert);
        ++j;
      }
    }
  }
  script.insert(script.end(), suffix, Edit::kKeep);
  return script;
}

// "start,count" as unified diffs write it: "start" alone for one line, and
// the line before the hunk for an empty range.
std::string HunkRange(size_t first, size_t count) {
  if (count == 1) return std::to_string(first + 1);
  return std::to_string(count == 0 ? first : first + 1) + "," +
         std::to_string(count);
}

}  // namespace

absl::StatusOr<AppSpec> ParseAppSpec(std::string_view yaml_text,
                                     std::string_view file_name) {
  return SpecParser(file_name).Parse(yaml_text);
}

std::string DiffSpecs(std::string_view old_yaml, std::string_view new_yaml) {
  constexpr size_t kContext = 3;
  std::vector<Line> a = SplitLines(old_yaml);
  std::vector<Line> b = SplitLines(new_yaml);
  std::vector<Edit> script = EditScript(a, b);

  // Old and new line numbers reached before each script entry.
  std::vector<size_t> a_pos(script.size() + 1), b_pos(script.size() + 1);
  for (size_t k = 0; k < script.size(); ++k) {
    a_pos[k + 1] = a_pos[k] + (script[k] != Edit::kInsert ? 1 : 0);
    b_pos[k + 1] = b_pos[k] + (script[k] != Edit::kDelete ? 1 : 0);
  }

  std::string out;
  auto emit = [&out](char prefix, const Line& line) {
    out += prefix;
    out += line.text;
    out += '\n';
    if (!line.newline) out += "\\ No newline at end of file\n";
  };
  size_t k = 0;
  while (k < script.size()) {
    if (script[k] == Edit::kKeep) {
      ++k;
      continue;
    }
    // A hunk runs from kContext lines before this change to kContext lines
    // after the last change that is at most 2 * kContext kept lines from
    // the previous one.
    size_t begin = k >= kContext ? k - kContext : 0;
    size_t end = k;
    size_t last_change = k;
    while (end < script.size()) {
      if (script[end] != Edit::kKeep) {
        last_change = end;
      } else if (end - last_change > 2 * kContext) {
        break;
      }
      ++end;
    }
    end = std::min(script.size(), last_change + 1 + kContext);
    out += "@@ -" + HunkRange(a_pos[begin], a_pos[end] - a_pos[begin]) + " +" +
           HunkRange(b_pos[begin], b_pos[end] - b_pos[begin]) + " @@\n";
    for (size_t e = begin; e < end; ++e) {
      switch (script[e]) {
        case Edit::kKeep:
          emit(' ', a[a_pos[e]]);
          break;
        case Edit::kDelete:
          emit('-', a[a_pos[e]]);
          break;
        case Edit::kInsert:
          emit('+', b[b_pos[e]]);
          break;
      }
    }
    k = end;
  }
  return out;
}

}  // namespace slipway
