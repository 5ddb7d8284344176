#include "pipeline/steps.h"

#include <cmath>
#include <memory>
#include <set>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"
#include "models/model.h"
#include "train/evaluate.h"
#include "train/split.h"

namespace slipway {
namespace {

using nlohmann::json;

std::string FormatNumber(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.4g", value);
  return buffer;
}

absl::StatusOr<StepResult> Ingest(const IngestStepSpec& params,
                                  const StepEnvironment& env, RunData* data) {
  const DataSourceSpec* source = env.spec->FindDataSource(params.source);
  if (source == nullptr) {
    return absl::NotFoundError("data source '" + params.source +
                               "' is not declared under `data:`");
  }
  ASSIGN_OR_RETURN(CsvData input,
                   ReadDataSource(*source, env.revision.source_dir, env.fs));
  StepResult result;
  result.message = std::to_string(input.rows) + " rows, " +
                   std::to_string(input.table.num_columns()) +
                   " columns from " + source->path;
  json columns = json::array();
  for (const Column& c : input.table.columns()) {
    columns.push_back({{"name", c.name()},
                       {"type", std::string(DataTypeName(c.type()))},
                       {"missing", c.missing_count()}});
  }
  result.outputs = {
      {"source", source->name},
      {"path", ResolveDataPath(source->path, env.revision.source_dir)},
      {"rows", input.rows},
      {"sha256", input.sha256},
      {"columns", columns}};
  data->train = input.table;
  data->input = std::move(input);
  return result;
}

absl::StatusOr<StepResult> Validate(const ValidateStepSpec& params,
                                    const StepEnvironment& env, RunData* data) {
  const Table& table = data->input->table;
  std::vector<std::string> violations;
  size_t rows = table.num_rows();
  if (static_cast<int64_t>(rows) < params.min_rows) {
    violations.push_back("the data has " + std::to_string(rows) +
                         " rows; min_rows is " +
                         std::to_string(params.min_rows));
  }
  const SchemaSpec& schema = env.spec->schema;
  if (!schema.target.empty() && table.FindColumn(schema.target) == nullptr) {
    violations.push_back("target column '" + schema.target +
                         "' is not in the data");
  }
  for (const ColumnType& feature : schema.features) {
    if (table.FindColumn(feature.column) == nullptr) {
      violations.push_back("feature column '" + feature.column +
                           "' is not in the data");
    }
  }
  for (const Column& column : table.columns()) {
    if (rows == 0) break;
    double fraction = static_cast<double>(column.missing_count()) / rows;
    if (fraction > params.max_null_fraction) {
      violations.push_back("column '" + column.name() + "' has " +
                           std::to_string(column.missing_count()) +
                           " missing values (" + FormatNumber(fraction) +
                           "), above max_null_fraction " +
                           FormatNumber(params.max_null_fraction));
    }
  }
  for (const ValueRange& range : params.ranges) {
    const Column* column = table.FindColumn(range.column);
    if (column == nullptr) {
      violations.push_back("range check: column '" + range.column +
                           "' is not in the data");
      continue;
    }
    if (column->type() == DataType::kString) {
      violations.push_back("range check: column '" + range.column +
                           "' holds text, not numbers");
      continue;
    }
    size_t outside = 0, first = 0;
    for (size_t r = 0; r < column->size(); ++r) {
      if (column->IsMissing(r)) continue;
      double v = column->NumberAt(r);
      if (v < range.min || v > range.max) {
        if (outside++ == 0) first = r;
      }
    }
    if (outside > 0) {
      violations.push_back("column '" + range.column + "' has " +
                           std::to_string(outside) + " values outside [" +
                           FormatNumber(range.min) + ", " +
                           FormatNumber(range.max) + "], first at data row " +
                           std::to_string(first + 1) + " (" +
                           FormatNumber(column->NumberAt(first)) + ")");
    }
  }
  for (const AllowedValues& allowed : params.allowed) {
    const Column* column = table.FindColumn(allowed.column);
    if (column == nullptr) {
      violations.push_back("allowed check: column '" + allowed.column +
                           "' is not in the data");
      continue;
    }
    std::unordered_set<std::string> ok(allowed.values.begin(),
                                       allowed.values.end());
    std::set<std::string> unexpected;
    for (size_t r = 0; r < column->size(); ++r) {
      if (column->IsMissing(r)) continue;
      std::string value = column->type() == DataType::kString
                              ? std::string(column->StringAt(r))
                              : FormatNumber(column->NumberAt(r));
      if (!ok.count(value)) unexpected.insert(value);
    }
    if (!unexpected.empty()) {
      std::string list;
      for (const std::string& v : unexpected) {
        if (list.size() > 200) {
          list += ", ...";
          break;
        }
        list += (list.empty() ? "'" : ", '") + v + "'";
      }
      violations.push_back("column '" + allowed.column +
                           "' has values not in its allowed list: " + list);
    }
  }
  if (!violations.empty()) {
    std::string report =
        std::to_string(violations.size()) + " data check(s) failed: ";
    for (size_t i = 0; i < violations.size(); ++i) {
      report += (i ? "; " : "") + violations[i];
    }
    return absl::FailedPreconditionError(report);
  }
  StepResult result;
  result.message = "all checks passed on " + std::to_string(rows) + " rows";
  result.outputs = {{"rows", rows}, {"violations", json::array()}};
  return result;
}

absl::StatusOr<StepResult> SplitStep(const SplitStepSpec& params,
                                     const StepEnvironment& env,
                                     RunData* data) {
  const Table& table = data->input->table;
  ASSIGN_OR_RETURN(
      Split split,
      SplitIndices(table, env.spec->schema.target, params.test_fraction,
                   static_cast<uint64_t>(params.seed), params.stratify));
  data->train = table.Take(split.train_rows);
  data->test = table.Take(split.test_rows);
  StepResult result;
  result.message = std::to_string(split.train_rows.size()) + " train rows, " +
                   std::to_string(split.test_rows.size()) + " test rows";
  result.outputs = {{"train_rows", split.train_rows.size()},
                    {"test_rows", split.test_rows.size()},
                    {"seed", params.seed},
                    {"stratify", params.stratify}};
  return result;
}

std::string ObjectiveFor(const TrainStepSpec& params,
                         const SchemaSpec& schema) {
  if (!params.objective.empty() || !schema.task.has_value()) {
    return params.objective;
  }
  switch (*schema.task) {
    case Task::kBinaryClassification:
      return "binary:logistic";
    case Task::kMulticlassClassification:
      return "multi:softprob";
    case Task::kRegression:
      return "reg:squarederror";
  }
  return params.objective;
}

absl::StatusOr<StepResult> TrainStep(const TrainStepSpec& params,
                                     const StepEnvironment& env,
                                     RunData* data) {
  const SchemaSpec& schema = env.spec->schema;
  TrainOptions options;
  options.objective = ObjectiveFor(params, schema);
  options.rounds = static_cast<int>(params.rounds);
  options.max_depth = static_cast<int>(params.max_depth);
  options.eta = params.eta;
  options.subsample = params.subsample;
  options.colsample_bytree = params.colsample_bytree;
  options.min_child_weight = params.min_child_weight;
  options.lambda = params.lambda;
  options.alpha = params.alpha;
  options.seed = static_cast<uint64_t>(params.seed);
  options.threads =
      params.threads > 0 ? static_cast<int>(params.threads) : env.train_threads;
  for (const ColumnType& feature : schema.features) {
    options.features.push_back(feature.column);
  }
  options.exclude = schema.exclude;
  if (!schema.id.empty()) options.exclude.push_back(schema.id);
  options.cancel = env.cancel;
  ASSIGN_OR_RETURN(TrainedModel model,
                   TrainXgboost(*data->train, schema.target, options));
  StepResult result;
  result.message = std::to_string(model.rows) + " rows, " +
                   std::to_string(model.signature.features().size()) +
                   " features, " +
                   std::string(TaskName(model.signature.task()));
  result.outputs = {{"rows", model.rows},
                    {"features", model.signature.features().size()},
                    {"task", std::string(TaskName(model.signature.task()))},
                    {"params", model.params}};
  data->model = std::move(model);
  return result;
}

absl::StatusOr<StepResult> EvaluateStep(const EvaluateStepSpec& params,
                                        const StepEnvironment& env,
                                        RunData* data) {
  const TrainedModel& trained = *data->model;
  ASSIGN_OR_RETURN(
      std::unique_ptr<Model> model,
      LoadModel(trained.format, trained.model_bytes, trained.signature));
  ASSIGN_OR_RETURN(json all, Evaluate(*model, *data->test));
  json metrics = json::object();
  if (params.metrics.empty()) {
    metrics = all;
  } else {
    for (const std::string& name : params.metrics) {
      if (!all.contains(name)) {
        return absl::InvalidArgumentError(
            "metric '" + name + "' does not apply to a " +
            std::string(TaskName(trained.signature.task())) +
            " model; available: " + all.dump());
      }
      metrics[name] = all[name];
    }
    if (all.contains("rows")) metrics["rows"] = all["rows"];
  }
  std::string message;
  for (const auto& [name, value] : metrics.items()) {
    if (name == "rows" || !value.is_number()) continue;
    message += (message.empty() ? "" : " ") + name + "=" +
               FormatNumber(value.get<double>());
  }
  data->metrics = metrics;
  StepResult result;
  result.message = message;
  result.outputs = {{"metrics", metrics}};
  return result;
}

absl::StatusOr<StepResult> RegisterStep(const RegisterStepSpec& params,
                                        const StepEnvironment& env,
                                        RunData* data) {
  const TrainedModel& trained = *data->model;
  NewModelVersion version;
  version.app = env.spec->app;
  version.format = trained.format;
  version.model_bytes = trained.model_bytes;
  version.signature_json = trained.signature.ToJson().dump();
  version.params_json = trained.params.dump();
  version.metrics_json = data->metrics.dump();
  version.data_fingerprint = data->input->sha256;
  version.row_count = data->input->rows;
  version.run_id = env.run_id;
  version.revision = env.revision.revision;
  ASSIGN_OR_RETURN(ModelVersionRecord record, env.registry->Register(version));
  StepResult result;
  result.message =
      "registered " + record.app + " v" + std::to_string(record.version);
  result.outputs = {{"version", record.version},
                    {"artifact_sha256", record.artifact_sha256}};
  if (!params.alias.empty()) {
    RETURN_IF_ERROR(env.move_alias(record.app, params.alias, record.version),
                    "moving alias '" + params.alias + "'");
    result.message += " as " + params.alias;
    result.outputs["alias"] = params.alias;
  }
  data->registered = std::move(record);
  return result;
}

}  // namespace

std::string ResolveDataPath(const std::string& path,
                            const std::string& source_dir) {
  if (path.empty() || path[0] == '/' || source_dir.empty()) return path;
  return JoinPath(source_dir, path);
}

absl::StatusOr<CsvData> ReadDataSource(const DataSourceSpec& source,
                                       const std::string& source_dir,
                                       Filesystem* fs) {
  std::string path = ResolveDataPath(source.path, source_dir);
  return ReadCsv(fs, path, CsvOptionsFor(source));
}

absl::StatusOr<StepResult> RunStep(const StepSpec& step,
                                   const StepEnvironment& env, RunData* data) {
  // The spec parser guarantees the order of the steps, so what a step
  // reads is present; these checks keep a wrong order from crashing.
  auto need = [&](bool present, const char* what) -> absl::Status {
    if (present) return absl::OkStatus();
    return absl::FailedPreconditionError("step '" + step.name + "' needs " +
                                         what + " from an earlier step");
  };
  switch (step.kind()) {
    case StepKind::kIngest:
      return Ingest(std::get<IngestStepSpec>(step.params), env, data);
    case StepKind::kValidate:
      RETURN_IF_ERROR(need(data->input.has_value(), "data (ingest)"));
      return Validate(std::get<ValidateStepSpec>(step.params), env, data);
    case StepKind::kSplit:
      RETURN_IF_ERROR(need(data->input.has_value(), "data (ingest)"));
      return SplitStep(std::get<SplitStepSpec>(step.params), env, data);
    case StepKind::kTrain:
      RETURN_IF_ERROR(need(data->train.has_value(), "data (ingest)"));
      return TrainStep(std::get<TrainStepSpec>(step.params), env, data);
    case StepKind::kEvaluate:
      RETURN_IF_ERROR(need(data->model.has_value(), "a model (train)"));
      RETURN_IF_ERROR(need(data->test.has_value(), "test rows (split)"));
      return EvaluateStep(std::get<EvaluateStepSpec>(step.params), env, data);
    case StepKind::kRegister:
      RETURN_IF_ERROR(need(data->model.has_value(), "a model (train)"));
      return RegisterStep(std::get<RegisterStepSpec>(step.params), env, data);
  }
  return absl::InternalError("unknown step kind");
}

}  // namespace slipway
