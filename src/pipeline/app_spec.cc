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

namespace {

// A fixed list of words; an empty list of allowed keys means "any key".
using Names = std::span<const std::string_view>;

// Keys each section accepts, in the order the documentation lists them.
constexpr std::string_view kTopLevelKeys[] = {
    "app",       "description", "use_case", "data",   "schema",
    "pipelines", "endpoint",    "monitor",  "policy", "notify"};
constexpr std::string_view kUseCaseKeys[] = {"problem", "integration", "owner",
                                             "business_kpi"};
constexpr std::string_view kDataSourceKeys[] = {
    "connector", "path",    "header", "skip_lines",
    "delimiter", "columns", "types",  "missing_values"};
constexpr std::string_view kSchemaKeys[] = {"target", "id", "features",
                                            "exclude", "task"};
constexpr std::string_view kPipelineKeys[] = {"kind", "trigger", "concurrency",
                                              "steps"};
constexpr std::string_view kTriggerKeys[] = {"schedule", "on"};
constexpr std::string_view kIngestKeys[] = {"source", "name"};
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
constexpr std::string_view kEndpointKeys[] = {"model", "batching"};
constexpr std::string_view kBatchingKeys[] = {"enabled", "max_batch",
                                              "max_delay_us", "max_queue"};
constexpr std::string_view kMonitorKeys[] = {"window", "drift", "rules"};
constexpr std::string_view kDriftKeys[] = {"method", "warn", "alert"};
constexpr std::string_view kRuleKeys[] = {"name",  "metric", "below",
                                          "above", "for",    "fire"};
constexpr std::string_view kPolicyKeys[] = {"promote", "rollback"};
constexpr std::string_view kPromoteKeys[] = {"metric", "min_gain", "approval"};
constexpr std::string_view kRollbackKeys[] = {"kpi_drop"};
constexpr std::string_view kNotifierKeys[] = {"webhook", "secret"};

constexpr std::string_view kConnectors[] = {"csv"};
constexpr std::string_view kTasks[] = {
    "binary_classification", "multiclass_classification", "regression"};
constexpr std::string_view kPipelineKinds[] = {"train", "score", "check"};
constexpr std::string_view kStepKinds[] = {"ingest", "validate", "split",
                                           "train",  "evaluate", "register"};
constexpr std::string_view kTriggerEvents[] = {"drift", "kpi_decay",
                                               "new_data"};
constexpr std::string_view kIntegrations[] = {"rest", "batch"};
constexpr std::string_view kEngines[] = {"xgboost"};
constexpr std::string_view kMetrics[] = {"auc",  "logloss", "accuracy",
                                         "rmse", "mae",     "r2"};
constexpr std::string_view kDriftMethods[] = {"psi", "ks"};
constexpr std::string_view kApprovals[] = {"required", "none"};
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

std::string Join(const Names& names) {
  std::string out;
  for (std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
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
      if (pipeline.kind != PipelineKind::kTrain ||
          !spec.schema.target.empty()) {
        continue;
      }
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
      Value name_value{"data source name", YAML::Node(s.key), s.key_mark};
      ASSIGN_OR_RETURN(std::string name, Name(name_value));
      ASSIGN_OR_RETURN(
          Fields map, Map(s, "in data source '" + name + "'", kDataSourceKeys));
      DataSourceSpec source;
      source.name = name;
      source.location = ToLocation(s.key_mark);
      if (const Field* g = map.Find("connector")) {
        ASSIGN_OR_RETURN(size_t i, Choice(g->value(), kConnectors));
        source.connector = static_cast<Connector>(i);
      }
      ASSIGN_OR_RETURN(const Field* path, Require(map, "path"));
      ASSIGN_OR_RETURN(source.path, NonEmptyString(path->value()));
      if (const Field* g = map.Find("header")) {
        ASSIGN_OR_RETURN(source.header, Bool(g->value()));
      }
      if (const Field* g = map.Find("skip_lines")) {
        ASSIGN_OR_RETURN(source.skip_lines, Integer(g->value(), 0, 1000000000,
                                                    "a whole number >= 0"));
      }
      if (const Field* g = map.Find("delimiter")) {
        Value v = g->value();
        const std::string& d = v.node.Scalar();
        if (!v.node.IsScalar() || d.size() != 1 || d[0] == '"' ||
            d[0] == '\n' || d[0] == '\r') {
          return Expected(v,
                          "a single character other than a quote or a line "
                          "break (for example \",\", \";\" or \"\\t\")");
        }
        source.delimiter = d[0];
      }
      const Field* columns = map.Find("columns");
      if (columns != nullptr) {
        ASSIGN_OR_RETURN(source.columns, StringList(columns->value(), false));
        if (source.header) {
          return Error(columns->key_mark,
                       "'columns' applies only when 'header' is false; with a "
                       "header row the file names its columns");
        }
      }
      if (!source.header && source.columns.empty()) {
        return MissingKey(map, "columns",
                          "'header' is false, so the columns need names, in "
                          "file order");
      }
      if (const Field* g = map.Find("types")) {
        ASSIGN_OR_RETURN(source.types, ColumnTypes(*g, "in data source '" +
                                                           name + "' types"));
      }
      if (const Field* g = map.Find("missing_values")) {
        ASSIGN_OR_RETURN(source.missing_values, StringList(g->value(), true));
      }
      out.push_back(std::move(source));
    }
    return out;
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
    ASSIGN_OR_RETURN(const Field* steps_field, Require(map, "steps"));
    ASSIGN_OR_RETURN(std::vector<Value> items, List(steps_field->value()));
    if (items.empty()) {
      return Error(steps_field->key_mark,
                   label +
                       " has no steps; list them under 'steps', for "
                       "example '- ingest: {source: train}'");
    }
    for (const Value& item : items) {
      ASSIGN_OR_RETURN(StepSpec step, ParseStep(item, spec));
      if (const StepSpec* first = pipeline.FindStep(step.name)) {
        // Point at the `name:` that repeats, or at the kind when unnamed.
        const YAML::Node params = item.node.begin()->second;
        YAML::Mark mark = item.node.begin()->first.Mark();
        if (params.IsMap() && params["name"]) mark = params["name"].Mark();
        return Error(mark, "duplicate step name " + Quote(step.name) + " in " +
                               label + " (first at line " +
                               std::to_string(first->location.line) +
                               "); give one of them a different 'name:'");
      }
      pipeline.steps.push_back(std::move(step));
    }
    RETURN_IF_ERROR(CheckStepOrder(pipeline, items, spec.schema));
    if (pipeline.kind == PipelineKind::kTrain &&
        std::none_of(
            pipeline.steps.begin(), pipeline.steps.end(),
            [](const StepSpec& s) { return s.kind() == StepKind::kTrain; })) {
      return Error(steps_field->key_mark,
                   "train " + label +
                       " has no train step; add one such as "
                       "'- train: {engine: xgboost}' after the ingest step");
    }
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

  absl::StatusOr<StepSpec> ParseStep(const Value& item,
                                     const AppSpec& spec) const {
    if (!item.node.IsMap() || item.node.size() != 1) {
      std::string found = Describe(item.node);
      if (item.node.IsMap()) {
        std::string keys;
        for (auto it = item.node.begin(); it != item.node.end(); ++it) {
          keys += (keys.empty() ? "" : ", ") + Describe(it->first);
        }
        found = "a map with keys " + keys +
                " (indent a step's parameters under its kind, or write them "
                "as {key: value, ...})";
      }
      return Error(item.mark,
                   "each step must be a map with one key, the step kind, "
                   "like '- ingest: {source: train}'; got " +
                       found);
    }
    auto entry = item.node.begin();
    const YAML::Node& kind_node = entry->first;
    std::string kind_name = kind_node.IsScalar() ? kind_node.Scalar() : "";
    auto kind_it =
        std::find(std::begin(kStepKinds), std::end(kStepKinds), kind_name);
    if (!kind_node.IsScalar() || kind_it == std::end(kStepKinds)) {
      return Error(kind_node.Mark(),
                   "unknown step kind " + Describe(kind_node) +
                       "; expected one of: " + Join(kStepKinds));
    }
    StepKind kind = static_cast<StepKind>(kind_it - std::begin(kStepKinds));
    Field params_field{kind_name, entry->second, kind_node.Mark()};
    std::string where = "in " + kind_name + " step";

    StepSpec step;
    step.name = kind_name;
    step.location = ToLocation(kind_node.Mark());
    Names keys;
    switch (kind) {
      case StepKind::kIngest:
        keys = kIngestKeys;
        break;
      case StepKind::kValidate:
        keys = kValidateKeys;
        break;
      case StepKind::kSplit:
        keys = kSplitKeys;
        break;
      case StepKind::kTrain:
        keys = kTrainKeys;
        break;
      case StepKind::kEvaluate:
        keys = kEvaluateKeys;
        break;
      case StepKind::kRegister:
        keys = kRegisterKeys;
        break;
    }
    ASSIGN_OR_RETURN(Fields map,
                     Map(params_field.value(), where, keys,
                         "a map of parameters (write {} for none)"));
    if (const Field* g = map.Find("name")) {
      ASSIGN_OR_RETURN(step.name, Name(g->value()));
    }
    switch (kind) {
      case StepKind::kIngest: {
        ASSIGN_OR_RETURN(step.params, ParseIngest(map, spec));
        break;
      }
      case StepKind::kValidate: {
        ASSIGN_OR_RETURN(step.params, ParseValidate(map));
        break;
      }
      case StepKind::kSplit: {
        ASSIGN_OR_RETURN(step.params, ParseSplit(map, spec.schema));
        break;
      }
      case StepKind::kTrain: {
        ASSIGN_OR_RETURN(step.params, ParseTrain(map, spec.schema));
        break;
      }
      case StepKind::kEvaluate: {
        ASSIGN_OR_RETURN(step.params, ParseEvaluate(map));
        break;
      }
      case StepKind::kRegister: {
        ASSIGN_OR_RETURN(step.params, ParseRegister(map));
        break;
      }
    }
    return step;
  }

  absl::StatusOr<IngestStepSpec> ParseIngest(const Fields& map,
                                             const AppSpec& spec) const {
    IngestStepSpec ingest;
    ASSIGN_OR_RETURN(const Field* source, Require(map, "source"));
    Value v = source->value();
    ASSIGN_OR_RETURN(ingest.source, NonEmptyString(v));
    if (spec.FindDataSource(ingest.source) == nullptr) {
      std::vector<std::string_view> defined;
      for (const DataSourceSpec& s : spec.data) defined.push_back(s.name);
      return Error(v.mark,
                   "ingest step reads data source " + Quote(ingest.source) +
                       ", which 'data' does not define; " +
                       (defined.empty() ? std::string("add it under 'data'")
                                        : "defined sources: " + Join(defined)));
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

  // Steps run in file order, each reading what earlier steps produced: a
  // table (ingest), a train/test split (split), a model (train). A step
  // whose input no earlier step provides could never run.
  absl::Status CheckStepOrder(const PipelineSpec& pipeline,
                              const std::vector<Value>& items,
                              const SchemaSpec& schema) const {
    bool has_table = false;
    bool has_split = false;
    bool has_model = false;
    std::optional<Task> model_task = schema.task;
    std::string in = " in pipeline '" + pipeline.name + "'";
    for (size_t i = 0; i < pipeline.steps.size(); ++i) {
      const StepSpec& step = pipeline.steps[i];
      YAML::Mark mark = items[i].node.begin()->first.Mark();
      std::string label =
          std::string(StepKindName(step.kind())) + " step " + Quote(step.name);
      auto need_table = [&]() -> absl::Status {
        if (has_table) return absl::OkStatus();
        return Error(mark, label +
                               " reads a table, but no ingest step comes "
                               "before it" +
                               in +
                               "; start the pipeline with '- ingest: {source: "
                               "<data source>}'");
      };
      switch (step.kind()) {
        case StepKind::kIngest:
          has_table = true;
          break;
        case StepKind::kValidate:
          RETURN_IF_ERROR(need_table());
          break;
        case StepKind::kSplit:
          RETURN_IF_ERROR(need_table());
          if (has_model) {
            return Error(mark, label + " comes after a train step" + in +
                                   "; move it before the train step, or the "
                                   "model trains on the test rows");
          }
          has_split = true;
          break;
        case StepKind::kTrain: {
          RETURN_IF_ERROR(need_table());
          has_model = true;
          const auto& train = std::get<TrainStepSpec>(step.params);
          if (!train.objective.empty()) {
            model_task = Objectives().at(train.objective);
          }
          break;
        }
        case StepKind::kEvaluate: {
          if (!has_model) {
            return Error(mark, label +
                                   " needs a trained model, but no train "
                                   "step comes before it" +
                                   in);
          }
          if (!has_split) {
            return Error(mark, label +
                                   " needs a test set, but no split step "
                                   "comes before it" +
                                   in +
                                   "; add '- split: {test_fraction: 0.2}' "
                                   "before the train step");
          }
          if (!model_task.has_value()) break;
          const auto& evaluate = std::get<EvaluateStepSpec>(step.params);
          bool regression = *model_task == Task::kRegression;
          for (size_t m = 0; m < evaluate.metrics.size(); ++m) {
            const std::string& metric = evaluate.metrics[m];
            if (IsClassificationMetric(metric) == regression) {
              const YAML::Node params = items[i].node.begin()->second;
              const YAML::Node metrics_node = params["metrics"];
              return Error(metrics_node[m].Mark(),
                           "metric " + Quote(metric) + " does not apply to " +
                               std::string(TaskName(*model_task)) + "; use " +
                               (regression ? "rmse, mae or r2"
                                           : "auc, logloss or accuracy"));
            }
          }
          break;
        }
        case StepKind::kRegister:
          if (!has_model) {
            return Error(mark, label +
                                   " needs a trained model, but no train "
                                   "step comes before it" +
                                   in);
          }
          break;
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<EndpointSpec> ParseEndpoint(const Field& f) const {
    ASSIGN_OR_RETURN(Fields map, Map(f, "in endpoint", kEndpointKeys));
    EndpointSpec endpoint;
    if (const Field* g = map.Find("model")) {
      ASSIGN_OR_RETURN(endpoint.model, Name(g->value()));
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
      Value v = g->value();
      std::optional<int64_t> seconds =
          v.node.IsScalar() ? ParseDurationSeconds(v.node.Scalar())
                            : std::nullopt;
      if (!seconds.has_value()) {
        return Expected(v, "a duration such as 30s, 5m or 1h (at least 1s)");
      }
      monitor.window_seconds = *seconds;
    }
    if (const Field* g = map.Find("drift")) {
      ASSIGN_OR_RETURN(Fields drift, Map(*g, "in monitor.drift", kDriftKeys));
      if (const Field* h = drift.Find("method")) {
        ASSIGN_OR_RETURN(size_t i, Choice(h->value(), kDriftMethods));
        monitor.drift.method = std::string(kDriftMethods[i]);
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

  absl::StatusOr<PolicySpec> ParsePolicy(const Field& f) const {
    ASSIGN_OR_RETURN(Fields map, Map(f, "in policy", kPolicyKeys));
    PolicySpec policy;
    if (const Field* g = map.Find("promote")) {
      ASSIGN_OR_RETURN(Fields promote,
                       Map(*g, "in policy.promote", kPromoteKeys));
      PromotePolicySpec p;
      ASSIGN_OR_RETURN(const Field* metric, Require(promote, "metric"));
      ASSIGN_OR_RETURN(size_t i, Choice(metric->value(), kMetrics));
      p.metric = std::string(kMetrics[i]);
      if (const Field* h = promote.Find("min_gain")) {
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
      ASSIGN_OR_RETURN(const Field* drop, Require(rollback, "kpi_drop"));
      ASSIGN_OR_RETURN(r.kpi_drop,
                       Number(drop->value(), "a number > 0 and <= 1",
                              [](double x) { return x > 0 && x <= 1; }));
      policy.rollback = r;
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
