#include "pipeline/steps.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "core/hash.h"
#include "core/status.h"
#include "models/import.h"
#include "models/model.h"
#include "models/transform.h"
#include "pipeline/data_io.h"
#include "pipeline/score.h"
#include "stats/bootstrap.h"
#include "train/baseline.h"
#include "train/evaluate.h"
#include "train/split.h"
#include "train/trainer.h"

namespace slipway {
namespace {

using nlohmann::json;

std::string FormatNumber(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.4g", value);
  return buffer;
}

Filesystem* Fs(const StepContext& c) { return c.env->fs; }
const SchemaSpec& Schema(const StepContext& c) { return c.env->spec->schema; }

bool Stopped(const StepContext& c) {
  return c.stop != nullptr && c.stop->load();
}

void Progress(const StepContext& c, const json& progress) {
  if (c.progress) c.progress(progress);
}

// The nearest input of `kind` named like the first of `names` that any
// input has; with no such name, the nearest input of `kind` (when
// `any_name`).
const StepOutput* FindInput(const StepContext& c, OutputKind kind,
                            std::initializer_list<std::string_view> names,
                            bool any_name = true) {
  for (std::string_view name : names) {
    for (const std::shared_ptr<StepOutput>& in : c.inputs) {
      if (in->kind() == kind && in->name() == name) return in.get();
    }
  }
  if (!any_name) return nullptr;
  for (const std::shared_ptr<StepOutput>& in : c.inputs) {
    if (in->kind() == kind) return in.get();
  }
  return nullptr;
}

std::string InputNames(const StepContext& c) {
  std::string names;
  for (const std::shared_ptr<StepOutput>& in : c.inputs) {
    names += (names.empty() ? "" : ", ") + in->step() + "." + in->name() +
             " (" + std::string(OutputKindName(in->kind())) + ")";
  }
  return names.empty() ? "none" : names;
}

absl::Status MissingInput(const StepContext& c, const std::string& what) {
  return absl::FailedPreconditionError(
      "step '" + c.step->name + "' needs " + what +
      " among its inputs, and has: " + InputNames(c) +
      "; add a step that produces it before this one, or list it in "
      "`inputs:`");
}

absl::StatusOr<const StepOutput*> RequireTable(
    const StepContext& c, std::initializer_list<std::string_view> names,
    const std::string& what) {
  const StepOutput* table = FindInput(c, OutputKind::kTable, names);
  if (table == nullptr) return MissingInput(c, what);
  return table;
}

std::shared_ptr<const Table> Share(Table table) {
  return std::make_shared<const Table>(std::move(table));
}

absl::StatusOr<StepResult> Ingest(const IngestStepSpec& params,
                                  const StepContext& c) {
  const DataSourceSpec* source = c.env->spec->FindDataSource(params.source);
  if (source == nullptr) {
    return absl::NotFoundError("data source '" + params.source +
                               "' is not declared under `data:`");
  }
  const std::string& source_dir = c.env->revision.source_dir;
  std::shared_ptr<const Table> table;
  std::string fingerprint;
  std::string from;
  if (source->connector == Connector::kCsv) {
    ASSIGN_OR_RETURN(CsvData input, ReadDataSource(*source, source_dir, Fs(c)));
    fingerprint = input.sha256;
    from = ResolvePath(source_dir, source->path);
    table = Share(std::move(input.table));
  } else {
    ASSIGN_OR_RETURN(std::unique_ptr<DataSource> reader,
                     OpenSpecSource(*source, source_dir, Fs(c)));
    std::optional<Table> all;
    while (true) {
      if (Stopped(c)) {
        return absl::CancelledError("ingest stopped after " +
                                    std::to_string(all ? all->num_rows() : 0) +
                                    " rows of " + reader->Describe());
      }
      ASSIGN_OR_RETURN(std::optional<Table> chunk, reader->NextChunk());
      if (!chunk.has_value()) break;
      if (!all.has_value()) {
        all = std::move(*chunk);
      } else {
        RETURN_IF_ERROR(all->AppendRows(*chunk), reader->Describe());
      }
      Progress(c, {{"rows", all->num_rows()}});
    }
    fingerprint = reader->Fingerprint();
    from = reader->Describe();
    table = Share(all.has_value() ? std::move(*all) : Table());
  }
  const int64_t read = static_cast<int64_t>(table->num_rows());
  if (params.last_rows > 0 && read > params.last_rows) {
    std::vector<size_t> last(static_cast<size_t>(params.last_rows));
    for (size_t i = 0; i < last.size(); ++i) {
      last[i] = static_cast<size_t>(read - params.last_rows) + i;
    }
    table = Share(table->Take(last));
    // The window is part of what the run learnt from.
    fingerprint = Sha256Hex(fingerprint + " last_rows " +
                            std::to_string(params.last_rows));
  }
  const int64_t rows = static_cast<int64_t>(table->num_rows());
  Progress(c, {{"rows", rows}});
  StepResult result;
  result.message = std::to_string(rows) + " rows, " +
                   std::to_string(table->num_columns()) + " columns from " +
                   from;
  if (rows < read) {
    result.message += " (the last " + std::to_string(rows) + " of " +
                      std::to_string(read) + ")";
  }
  json columns = json::array();
  for (const Column& column : table->columns()) {
    columns.push_back({{"name", column.name()},
                       {"type", std::string(DataTypeName(column.type()))},
                       {"missing", column.missing_count()}});
  }
  result.outputs = {
      {"source", source->name},
      {source->connector == Connector::kCsv ? "path" : "from", from},
      {"rows", rows},
      {"rows_read", read},
      {"sha256", fingerprint},
      {"columns", columns}};
  ASSIGN_OR_RETURN(
      std::shared_ptr<StepOutput> data,
      WriteTableOutput(Fs(c), c.step->name, c.output_dir, "data", table,
                       Lineage{fingerprint, rows}, fingerprint));
  result.produced.push_back(std::move(data));
  return result;
}

std::vector<std::string> Violations(const ValidateStepSpec& params,
                                    const SchemaSpec& schema,
                                    const Table& table) {
  std::vector<std::string> violations;
  size_t rows = table.num_rows();
  if (static_cast<int64_t>(rows) < params.min_rows) {
    violations.push_back("the data has " + std::to_string(rows) +
                         " rows; min_rows is " +
                         std::to_string(params.min_rows));
  }
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
  return violations;
}

absl::StatusOr<StepResult> Validate(const ValidateStepSpec& params,
                                    const StepContext& c, StepReport* report) {
  ASSIGN_OR_RETURN(const StepOutput* input,
                   RequireTable(c, {"data"}, "a table (ingest)"));
  ASSIGN_OR_RETURN(std::shared_ptr<const Table> table, input->LoadTable(Fs(c)));
  std::vector<std::string> violations = Violations(params, Schema(c), *table);
  const size_t rows = table->num_rows();
  if (!violations.empty()) {
    report->failure_outputs = {{"rows", rows}, {"violations", violations}};
    std::string text =
        std::to_string(violations.size()) + " data check(s) failed: ";
    for (size_t i = 0; i < violations.size(); ++i) {
      text += (i ? "; " : "") + violations[i];
    }
    return absl::FailedPreconditionError(text);
  }
  StepResult result;
  result.message = "all checks passed on " + std::to_string(rows) + " rows";
  result.outputs = {{"rows", rows}, {"violations", json::array()}};
  ASSIGN_OR_RETURN(
      std::shared_ptr<StepOutput> data,
      PassThroughOutput(*input, c.step->name, c.output_dir, "data"));
  result.produced.push_back(std::move(data));
  return result;
}

absl::StatusOr<StepResult> SplitStep(const SplitStepSpec& params,
                                     const StepContext& c) {
  ASSIGN_OR_RETURN(const StepOutput* input,
                   RequireTable(c, {"data"}, "a table (ingest)"));
  ASSIGN_OR_RETURN(std::shared_ptr<const Table> table, input->LoadTable(Fs(c)));
  ASSIGN_OR_RETURN(
      Split split,
      SplitIndices(*table, Schema(c).target, params.test_fraction,
                   static_cast<uint64_t>(params.seed), params.stratify));
  StepResult result;
  result.message = std::to_string(split.train_rows.size()) + " train rows, " +
                   std::to_string(split.test_rows.size()) + " test rows";
  result.outputs = {{"train_rows", split.train_rows.size()},
                    {"test_rows", split.test_rows.size()},
                    {"seed", params.seed},
                    {"stratify", params.stratify}};
  for (auto [name, rows] : {std::pair{"train", &split.train_rows},
                            std::pair{"test", &split.test_rows}}) {
    ASSIGN_OR_RETURN(
        std::shared_ptr<StepOutput> output,
        WriteTableOutput(Fs(c), c.step->name, c.output_dir, name,
                         Share(table->Take(*rows)), input->lineage()));
    result.produced.push_back(std::move(output));
  }
  return result;
}

// The raw feature columns of `table` in model order: the pinned schema
// features, else every column but the target, the id and `exclude`.
std::vector<std::string> RawFeatures(const SchemaSpec& schema,
                                     const Table& table) {
  std::vector<std::string> features;
  if (!schema.features.empty()) {
    for (const ColumnType& f : schema.features) features.push_back(f.column);
    return features;
  }
  std::set<std::string> skip(schema.exclude.begin(), schema.exclude.end());
  skip.insert(schema.target);
  skip.insert(schema.id);
  for (const Column& column : table.columns()) {
    if (!skip.count(column.name())) features.push_back(column.name());
  }
  return features;
}

TransformOptions::NumericImpute ToOption(NumericImpute impute) {
  switch (impute) {
    case NumericImpute::kNone:
      return TransformOptions::NumericImpute::kNone;
    case NumericImpute::kMean:
      return TransformOptions::NumericImpute::kMean;
    case NumericImpute::kMedian:
      return TransformOptions::NumericImpute::kMedian;
    case NumericImpute::kConstant:
      return TransformOptions::NumericImpute::kConstant;
  }
  return TransformOptions::NumericImpute::kNone;
}

TransformOptions::CategoricalImpute ToOption(CategoricalImpute impute) {
  switch (impute) {
    case CategoricalImpute::kNone:
      return TransformOptions::CategoricalImpute::kNone;
    case CategoricalImpute::kMostFrequent:
      return TransformOptions::CategoricalImpute::kMostFrequent;
    case CategoricalImpute::kConstant:
      return TransformOptions::CategoricalImpute::kConstant;
  }
  return TransformOptions::CategoricalImpute::kNone;
}

TransformOptions::CategoricalEncoding ToOption(CategoricalEncoding encoding) {
  switch (encoding) {
    case CategoricalEncoding::kNative:
      return TransformOptions::CategoricalEncoding::kNative;
    case CategoricalEncoding::kOneHot:
      return TransformOptions::CategoricalEncoding::kOneHot;
    case CategoricalEncoding::kOrdinal:
      return TransformOptions::CategoricalEncoding::kOrdinal;
  }
  return TransformOptions::CategoricalEncoding::kNative;
}

TransformOptions ToTransformOptions(const TransformStepSpec& spec) {
  TransformOptions options;
  options.impute_numeric = ToOption(spec.impute_numeric);
  options.impute_categorical = ToOption(spec.impute_categorical);
  options.fill_value = spec.fill_value;
  options.fill_category = spec.fill_category;
  options.encode = ToOption(spec.encode);
  options.max_categories = spec.max_categories;
  options.standardize = spec.standardize;
  options.columns = spec.columns;
  return options;
}

absl::StatusOr<StepResult> TransformStep(const TransformStepSpec& params,
                                         const StepContext& c) {
  ASSIGN_OR_RETURN(
      const StepOutput* train_input,
      RequireTable(c, {"train", "data"}, "training rows (split or ingest)"));
  const StepOutput* test_input =
      FindInput(c, OutputKind::kTable, {"test"}, /*any_name=*/false);
  ASSIGN_OR_RETURN(std::shared_ptr<const Table> train,
                   train_input->LoadTable(Fs(c)));
  const std::vector<std::string> features = RawFeatures(Schema(c), *train);
  ASSIGN_OR_RETURN(
      FeatureTransform transform,
      FeatureTransform::Fit(*train, features, ToTransformOptions(params)),
      "step '" + c.step->name + "'");
  StepResult result;
  result.message = std::to_string(features.size()) + " features -> " +
                   std::to_string(transform.model_features().size()) +
                   " model features, fitted on " +
                   std::to_string(train->num_rows()) + " rows";
  result.outputs = {{"features", features},
                    {"model_features", transform.ModelFeatureNames()}};
  std::vector<std::pair<const char*, const StepOutput*>> tables = {
      {"train", train_input}};
  if (test_input != nullptr) tables.emplace_back("test", test_input);
  for (auto [name, input] : tables) {
    ASSIGN_OR_RETURN(std::shared_ptr<const Table> raw, input->LoadTable(Fs(c)));
    ASSIGN_OR_RETURN(Table applied, transform.ApplyToTable(*raw),
                     "step '" + c.step->name + "' on " + input->step() + "." +
                         input->name());
    ASSIGN_OR_RETURN(
        std::shared_ptr<StepOutput> output,
        WriteTableOutput(Fs(c), c.step->name, c.output_dir, name,
                         Share(std::move(applied)), input->lineage()));
    output->set_transformed(true);
    result.produced.push_back(std::move(output));
  }
  ASSIGN_OR_RETURN(
      std::shared_ptr<StepOutput> fitted,
      WriteTransformOutput(Fs(c), c.step->name, c.output_dir,
                           transform.ToJson().dump(), train_input->lineage()));
  result.produced.push_back(std::move(fitted));
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
                                     const StepContext& c) {
  const SchemaSpec& schema = Schema(c);
  ASSIGN_OR_RETURN(const StepOutput* input,
                   RequireTable(c, {"train", "data"},
                                "training rows (split, transform or ingest)"));
  ASSIGN_OR_RETURN(std::shared_ptr<const Table> table, input->LoadTable(Fs(c)));
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
  options.threads = params.threads > 0 ? static_cast<int>(params.threads)
                                       : c.env->train_threads;
  for (const ColumnType& feature : schema.features) {
    options.features.push_back(feature.column);
  }
  options.exclude = schema.exclude;
  if (!schema.id.empty()) options.exclude.push_back(schema.id);
  options.cancel = c.stop;
  options.on_round = [&c](int done, int rounds) {
    Progress(c, {{"round", done}, {"rounds", rounds}});
  };
  std::string transform_json;
  std::optional<FeatureTransform> transform;
  if (input->transformed()) {
    const StepOutput* fitted =
        FindInput(c, OutputKind::kTransform, {"transform"});
    if (fitted == nullptr) {
      return MissingInput(
          c, "the transform that wrote " + input->step() + "." + input->name());
    }
    ASSIGN_OR_RETURN(transform_json, fitted->LoadTransform(Fs(c)));
    ASSIGN_OR_RETURN(transform, FeatureTransform::Parse(transform_json),
                     "transform of step '" + fitted->step() + "'");
    options.features = transform->ModelFeatureNames();
  }
  ASSIGN_OR_RETURN(TrainedModel trained,
                   TrainXgboost(*table, schema.target, options));
  if (transform.has_value()) {
    RETURN_IF_ERROR(transform->CheckModelSignature(trained.signature),
                    "step '" + c.step->name + "'");
  }
  StepResult result;
  result.message = std::to_string(trained.rows) + " rows, " +
                   std::to_string(trained.signature.features().size()) +
                   " features, " +
                   std::string(TaskName(trained.signature.task()));
  result.outputs = {{"rows", trained.rows},
                    {"features", trained.signature.features().size()},
                    {"task", std::string(TaskName(trained.signature.task()))},
                    {"params", trained.params}};
  auto model = std::make_shared<ModelDir>();
  model->format = trained.format;
  model->model_bytes = std::move(trained.model_bytes);
  model->signature = std::move(trained.signature);
  model->transform_json = std::move(transform_json);
  model->params = std::move(trained.params);
  ASSIGN_OR_RETURN(std::shared_ptr<StepOutput> output,
                   WriteModelOutput(Fs(c), c.step->name, c.output_dir,
                                    std::move(model), input->lineage()));
  result.produced.push_back(std::move(output));
  return result;
}

// The model among the inputs, loaded; `input` helps a model directory
// written by user code find its categories.
absl::StatusOr<std::pair<const StepOutput*, std::shared_ptr<const ModelDir>>>
RequireModel(const StepContext& c, const Table* input) {
  const StepOutput* output = FindInput(c, OutputKind::kModel, {"model"});
  if (output == nullptr) {
    return absl::FailedPreconditionError(
        "step '" + c.step->name +
        "' expects a model, and none of its inputs "
        "is one (it has: " +
        InputNames(c) +
        "); put a train step, or a command or notebook step that writes "
        "model/ into $SLIPWAY_OUTPUT_DIR, before it");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const ModelDir> model,
                   output->LoadModel(Fs(c), input, Schema(c).target,
                                     c.env->loading));
  return std::make_pair(output, std::move(model));
}

absl::StatusOr<StepResult> EvaluateStep(const EvaluateStepSpec& params,
                                        const StepContext& c) {
  ASSIGN_OR_RETURN(const StepOutput* test_output,
                   RequireTable(c, {"test"}, "test rows (split)"));
  ASSIGN_OR_RETURN(std::shared_ptr<const Table> test,
                   test_output->LoadTable(Fs(c)));
  ASSIGN_OR_RETURN(auto found, RequireModel(c, test.get()));
  const ModelDir& trained = *found.second;
  // Raw test rows go through the model's transform; transformed ones
  // straight to the model.
  std::string_view transform =
      test_output->transformed() ? std::string_view() : trained.transform_json;
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                   LoadModel(trained.format, trained.model_bytes,
                             trained.signature, transform, c.env->loading));
  ASSIGN_OR_RETURN(json all, Evaluate(*model, *test));
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
  StepResult result;
  result.message = message;
  result.outputs = {{"metrics", metrics}};
  ASSIGN_OR_RETURN(std::shared_ptr<StepOutput> output,
                   WriteMetricsOutput(Fs(c), c.step->name, c.output_dir,
                                      metrics, found.first->lineage()));
  result.produced.push_back(std::move(output));
  return result;
}

// The spec of step `name` of the pipeline the running step belongs to, or
// null.
const StepSpec* SiblingStep(const StepContext& c, const std::string& name) {
  for (const PipelineSpec& p : c.env->spec->pipelines) {
    for (const StepSpec& step : p.steps) {
      if (&step == c.step) return p.FindStep(name);
    }
  }
  return nullptr;
}

// The inputs a run ingested, as a model version's data_sources_json:
// [{"name": source, "step", "fingerprint", "rows"}], one per ingest step
// among the register step's inputs; without one, the model's own lineage.
json RegisterDataSources(const StepContext& c, const StepOutput& model) {
  json sources = json::array();
  std::set<std::string> seen;
  for (const std::shared_ptr<StepOutput>& in : c.inputs) {
    const StepSpec* producer = SiblingStep(c, in->step());
    if (producer == nullptr || producer->kind() != StepKind::kIngest ||
        !seen.insert(in->step()).second) {
      continue;
    }
    sources.push_back(
        {{"name", std::get<IngestStepSpec>(producer->params).source},
         {"step", in->step()},
         {"fingerprint", in->lineage().data_fingerprint},
         {"rows", in->lineage().data_rows}});
  }
  if (sources.empty() && !model.lineage().data_fingerprint.empty()) {
    sources.push_back({{"name", nullptr},
                       {"step", model.step()},
                       {"fingerprint", model.lineage().data_fingerprint},
                       {"rows", model.lineage().data_rows}});
  }
  return sources;
}

// The baseline profile (train/baseline.h) of `rows` for the model in
// `model`, as JSON text. `request_signature_json` is what callers send
// (the transform's inputs when the model has one).
absl::StatusOr<std::string> BaselineJson(
    const ModelDir& model, const std::string& request_signature_json,
    const Table& rows, const ModelLoadOptions& loading) {
  ASSIGN_OR_RETURN(Signature request, Signature::FromJson(json::parse(
                                          request_signature_json, nullptr,
                                          /*allow_exceptions=*/false)));
  ASSIGN_OR_RETURN(
      std::unique_ptr<Model> loaded,
      LoadRegisteredModel(model.format, model.model_bytes, std::move(request),
                          model.transform_json, loading));
  ASSIGN_OR_RETURN(ProfileSet profile, BaselineProfile(*loaded, rows));
  return profile.ToJson().dump();
}

// Loads a registered version (its stored signature is the request
// signature; models/model.h LoadRegisteredModel).
absl::StatusOr<std::unique_ptr<Model>> LoadVersion(
    const StepContext& c, const ModelVersionRecord& version) {
  ASSIGN_OR_RETURN(std::string bytes, c.env->registry->ReadModelBytes(version));
  json signature_json =
      json::parse(version.signature_json, nullptr, /*allow_exceptions=*/false);
  ASSIGN_OR_RETURN(
      Signature request, Signature::FromJson(signature_json),
      "model " + version.app + " v" + std::to_string(version.version));
  return LoadRegisteredModel(version.format, bytes, std::move(request),
                             version.transform_json, c.env->loading);
}

// policy.promote with a metric: compares the version just registered with
// the champion on the run's test rows (stats/bootstrap.h), records the
// evaluation in the audit log and, when the policy says so, promotes it
// (or files the approval request the policy requires). Adds what happened
// to `result`. A comparison that cannot be made keeps the champion and
// says why; the registration stands either way.
// The alias a version that passes its evaluation is moved to: the canary's,
// else the shadow's, else champion.
std::string GovernedAlias(const EndpointSpec& endpoint) {
  if (endpoint.canary.has_value()) return endpoint.canary->model;
  if (endpoint.shadow.has_value()) return endpoint.shadow->model;
  return "champion";
}

absl::Status EvaluateAgainstChampion(const StepContext& c,
                                     const PromotePolicySpec& policy,
                                     const ModelVersionRecord& challenger,
                                     StepResult* result) {
  const std::string& app = challenger.app;
  ASSIGN_OR_RETURN(std::optional<int> champion_version,
                   c.env->registry->ResolveAlias(app, "champion"));
  if (!champion_version.has_value() ||
      *champion_version == challenger.version) {
    return absl::OkStatus();
  }
  const std::string actor = "run " + c.env->run_id;
  json evaluation = {{"champion", *champion_version},
                     {"challenger", challenger.version},
                     {"metric", policy.metric},
                     {"min_gain", policy.min_gain}};
  PromotionVerdict verdict;
  absl::StatusOr<MetricComparison> comparison = [&]()
      -> absl::StatusOr<MetricComparison> {
    const StepOutput* holdout = FindInput(c, OutputKind::kTable, {"test"});
    if (holdout == nullptr) {
      return absl::FailedPreconditionError(
          "no test rows among the register step's inputs (add a split step "
          "before it)");
    }
    ASSIGN_OR_RETURN(std::shared_ptr<const Table> rows,
                     holdout->LoadTable(Fs(c)));
    ASSIGN_OR_RETURN(ModelVersionRecord champion_record,
                     c.env->registry->GetVersion(app, *champion_version));
    ASSIGN_OR_RETURN(std::unique_ptr<Model> champion,
                     LoadVersion(c, champion_record));
    ASSIGN_OR_RETURN(std::unique_ptr<Model> candidate,
                     LoadVersion(c, challenger));
    BootstrapOptions options;
    options.confidence = policy.confidence;
    return CompareOnHoldout(*champion, *candidate, *rows, policy.metric,
                            options);
  }();
  if (comparison.ok()) {
    verdict = DecidePromotion(*comparison, policy.min_gain);
    evaluation["comparison"] = ToJson(*comparison);
  } else {
    verdict.decision = PromotionDecision::kKeepChampion;
    verdict.reason = "not compared with the champion: " +
                     std::string(comparison.status().message());
  }
  evaluation["decision"] = std::string(PromotionDecisionName(verdict.decision));
  evaluation["reason"] = verdict.reason;
  RETURN_IF_ERROR(c.env->registry->RecordEvaluation(app, challenger.version,
                                                    evaluation, actor));
  const std::string champion_name = "v" + std::to_string(*champion_version);
  // With endpoint.canary, a version that passes goes to live traffic as the
  // canary first, and the canary's own judgement promotes it; with
  // endpoint.shadow (and no canary) it shadows the champion, for someone to
  // promote after watching it.
  const EndpointSpec& endpoint = c.env->spec->endpoint;
  const std::optional<CanarySpec>& canary = endpoint.canary;
  const std::string target = GovernedAlias(endpoint);
  if (verdict.decision == PromotionDecision::kPromote) {
    ASSIGN_OR_RETURN(int64_t approval,
                     c.env->move_alias(app, target, challenger.version, actor),
                     "moving alias '" + target + "' to the challenger");
    std::string what = "promoted to champion over " + champion_name;
    if (canary.has_value()) {
      what = "sent to " + std::to_string(canary->percent) +
             "% of traffic as the canary (" + target + ") beside " +
             champion_name;
    } else if (endpoint.shadow.has_value()) {
      what = "shadowing " + champion_name + " (" + target + ")";
    }
    if (approval == 0) {
      result->message += "; " + what;
      evaluation["promoted"] = true;
    } else {
      result->message += "; moving " + target + " to it awaits approval " +
                         std::to_string(approval);
      evaluation["approval"] = approval;
    }
    evaluation["alias"] = target;
  } else {
    result->message += "; champion " + champion_name + " kept";
  }
  result->message += " (" + verdict.reason + ")";
  result->outputs["evaluation"] = std::move(evaluation);
  return absl::OkStatus();
}

absl::StatusOr<StepResult> RegisterStep(const RegisterStepSpec& params,
                                        const StepContext& c) {
  const StepOutput* table = FindInput(c, OutputKind::kTable, {"train", "data"});
  std::shared_ptr<const Table> rows;
  if (table != nullptr) {
    ASSIGN_OR_RETURN(rows, table->LoadTable(Fs(c)));
  }
  ASSIGN_OR_RETURN(auto found, RequireModel(c, rows.get()));
  const ModelDir& model = *found.second;
  json metrics = json::object();
  if (const StepOutput* m = FindInput(c, OutputKind::kMetrics, {"metrics"})) {
    ASSIGN_OR_RETURN(metrics, m->LoadMetrics(Fs(c)));
  } else {
    // A program that trained the model may have evaluated it too: its
    // metrics.json sits beside its model/ directory.
    const std::string beside =
        JoinPath(DirName(found.first->path()), "metrics.json");
    if (Fs(c)->Exists(beside)) {
      ASSIGN_OR_RETURN(std::string text, Fs(c)->ReadFile(beside));
      json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_object()) metrics = std::move(parsed);
    }
  }
  NewModelVersion version;
  version.app = c.env->spec->app;
  version.format = model.format;
  version.model_bytes = model.model_bytes;
  version.signature_json = model.signature.ToJson().dump();
  if (!model.transform_json.empty()) {
    ASSIGN_OR_RETURN(
        FeatureTransform transform,
        FeatureTransform::Parse(model.transform_json),
        "transform of the model of step '" + found.first->step() + "'");
    version.signature_json =
        RequestSignature(transform, model.signature).ToJson().dump();
    version.transform_json = model.transform_json;
  }
  version.params_json = model.params.dump();
  version.metrics_json = metrics.dump();
  version.data_fingerprint = found.first->lineage().data_fingerprint;
  version.row_count = found.first->lineage().data_rows;
  version.run_id = c.env->run_id;
  version.revision = c.env->revision.revision;
  version.created_by = std::string("run ") + c.env->run_id;
  // A Python program that produced the model recorded its interpreter
  // beside model/ (command_step.h).
  json runtime = RuntimeVersions();
  json python = ReadPythonRuntime(Fs(c), DirName(found.first->path()));
  if (!model.runtime.empty()) {
    // Python and TorchScript models: the versions the model loaded with,
    // flat ({"python": "3.11.2", "scikit-learn": ...}), which serving
    // compares with its workers'; the training program's interpreter is
    // kept apart.
    runtime.erase("xgboost");
    if (!python.is_null()) runtime["training_program"] = std::move(python);
    runtime.update(model.runtime);
  } else if (!python.is_null()) {
    runtime["python"] = std::move(python);
  }
  version.runtime_json = runtime.dump();
  version.data_sources_json = RegisterDataSources(c, *found.first).dump();
  // The training baseline monitoring compares traffic with: the training
  // rows as callers send them, and the model's predictions on them. A
  // model whose rows the step cannot see (or cannot profile) is
  // registered without one, and the step says why.
  std::string no_baseline;
  if (rows == nullptr) {
    no_baseline = "no training rows among the register step's inputs";
  } else {
    absl::StatusOr<std::string> baseline =
        BaselineJson(model, version.signature_json, *rows, c.env->loading);
    if (baseline.ok()) {
      version.baseline_json = *std::move(baseline);
    } else {
      no_baseline = std::string(baseline.status().message());
    }
  }
  // The code hash a command or notebook step recorded for what it ran.
  const StepSpec* producer = SiblingStep(c, found.first->step());
  if (producer != nullptr && (producer->kind() == StepKind::kCommand ||
                              producer->kind() == StepKind::kNotebook)) {
    ASSIGN_OR_RETURN(
        version.code_sha256,
        c.env->registry->StepCodeSha256(c.env->run_id, found.first->step()),
        "reading the code hash of step '" + found.first->step() + "'");
  }
  ASSIGN_OR_RETURN(ModelVersionRecord record,
                   c.env->registry->Register(version));
  StepResult result;
  result.message =
      "registered " + record.app + " v" + std::to_string(record.version);
  result.outputs = {{"version", record.version},
                    {"artifact_sha256", record.artifact_sha256},
                    {"model_from", found.first->step()},
                    {"baseline_sha256", record.baseline_sha256}};
  if (!no_baseline.empty()) result.outputs["no_baseline"] = no_baseline;
  // With a promotion metric the comparison, not the step, decides whether
  // a version that is not the first becomes champion.
  const std::optional<PromotePolicySpec>& promote = c.env->spec->policy.promote;
  const bool compared = promote.has_value() && !promote->metric.empty();
  if (compared) {
    RETURN_IF_ERROR(EvaluateAgainstChampion(c, *promote, record, &result));
  }
  // When the comparison decided, it alone moves the aliases it governs:
  // champion, and the alias it sends a passing version to.
  const bool champion_decided =
      compared && result.outputs.contains("evaluation");
  const bool governed = params.alias == "champion" ||
                        params.alias == GovernedAlias(c.env->spec->endpoint);
  if (!params.alias.empty() && !(governed && champion_decided)) {
    ASSIGN_OR_RETURN(int64_t approval,
                     c.env->move_alias(record.app, params.alias, record.version,
                                       "run " + c.env->run_id),
                     "moving alias '" + params.alias + "'");
    if (approval == 0) {
      result.message += " as " + params.alias;
      result.outputs["alias"] = params.alias;
    } else {
      result.message += "; moving " + params.alias + " to it awaits approval " +
                        std::to_string(approval) +
                        " (slipway approvals approve " +
                        std::to_string(approval) + ")";
      result.outputs["approval"] = approval;
    }
  }
  return result;
}

absl::StatusOr<const DataSourceSpec*> RequireDataEntry(const StepContext& c,
                                                       const std::string& name,
                                                       const char* role) {
  const DataSourceSpec* entry = c.env->spec->FindDataSource(name);
  if (entry == nullptr) {
    return absl::NotFoundError("step '" + c.step->name + "': " + role + " '" +
                               name + "' is not declared under `data:`");
  }
  return entry;
}

// The model version a score step names: a version number or an alias.
absl::StatusOr<ModelVersionRecord> ResolveScoreModel(const StepContext& c,
                                                     const std::string& model) {
  const std::string& app = c.env->spec->app;
  const bool is_number =
      !model.empty() &&
      model.find_first_not_of("0123456789") == std::string::npos;
  if (is_number) return c.env->registry->GetVersion(app, std::stoi(model));
  ASSIGN_OR_RETURN(std::optional<int> version,
                   c.env->registry->ResolveAlias(app, model));
  if (!version.has_value()) {
    return absl::FailedPreconditionError(
        "step '" + c.step->name + "': alias '" + model + "' of app '" + app +
        "' points at no model version yet; promote one (slipway models "
        "promote " +
        app + " VERSION --alias " + model + ") or name a version number");
  }
  return c.env->registry->GetVersion(app, *version);
}

absl::StatusOr<StepResult> ScoreStep(const ScoreStepSpec& params,
                                     const StepContext& c) {
  ASSIGN_OR_RETURN(const DataSourceSpec* source_entry,
                   RequireDataEntry(c, params.source, "source"));
  ASSIGN_OR_RETURN(const DataSourceSpec* sink_entry,
                   RequireDataEntry(c, params.sink, "sink"));
  ASSIGN_OR_RETURN(ModelVersionRecord version,
                   ResolveScoreModel(c, params.model));
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadVersion(c, version));
  DataSourceSpec source_spec = *source_entry;
  if (params.chunk_rows > 0) source_spec.chunk_rows = params.chunk_rows;
  const std::string& source_dir = c.env->revision.source_dir;
  ASSIGN_OR_RETURN(std::unique_ptr<DataSource> source,
                   OpenSpecSource(source_spec, source_dir, Fs(c)));
  ASSIGN_OR_RETURN(std::unique_ptr<DataSink> sink,
                   OpenSpecSink(*sink_entry, source_dir, Fs(c)));
  ScoreOptions options;
  options.threads = params.threads > 0 ? static_cast<int>(params.threads)
                                       : c.env->score_threads;
  options.cancel = c.stop;
  options.progress = [&c](int64_t rows) { Progress(c, {{"rows", rows}}); };
  ASSIGN_OR_RETURN(ScoreReport report,
                   ScoreStream(source.get(), *model, version.version,
                               params.keep, sink.get(), options));
  StepResult result;
  result.message = std::to_string(report.rows) + " rows scored with " +
                   version.app + " v" + std::to_string(version.version) +
                   " into " + sink->Describe();
  result.outputs = {{"model_version", version.version},
                    {"rows", report.rows},
                    {"seconds", report.seconds},
                    {"source", source->Describe()},
                    {"source_sha256", report.source_fingerprint},
                    {"sink", sink->Describe()}};
  return result;
}

absl::StatusOr<StepResult> SinkStep(const SinkStepSpec& params,
                                    const StepContext& c) {
  ASSIGN_OR_RETURN(const DataSourceSpec* entry,
                   RequireDataEntry(c, params.to, "sink"));
  ASSIGN_OR_RETURN(const StepOutput* input,
                   RequireTable(c, {}, "a table to write"));
  ASSIGN_OR_RETURN(std::shared_ptr<const Table> table, input->LoadTable(Fs(c)));
  ASSIGN_OR_RETURN(std::unique_ptr<DataSink> sink,
                   OpenSpecSink(*entry, c.env->revision.source_dir, Fs(c)));
  RETURN_IF_ERROR(sink->Write(*table), sink->Describe());
  RETURN_IF_ERROR(sink->Finish(), sink->Describe());
  StepResult result;
  result.message = std::to_string(table->num_rows()) + " rows of " +
                   input->step() + "." + input->name() + " written to " +
                   sink->Describe();
  result.outputs = {{"rows", table->num_rows()},
                    {"from", input->step() + "." + input->name()},
                    {"sink", sink->Describe()}};
  return result;
}

// The lineage a program's outputs inherit: the nearest input's that has
// one.
Lineage InputLineage(const StepContext& c) {
  for (const std::shared_ptr<StepOutput>& in : c.inputs) {
    if (!in->lineage().data_fingerprint.empty()) return in->lineage();
  }
  return {};
}

absl::StatusOr<StepResult> ProgramStep(
    std::variant<CommandStepSpec, NotebookStepSpec> program,
    const StepContext& c, StepReport* report) {
  RETURN_IF_ERROR(LinkInputs(c.input_dir, c.inputs));
  ProgramStepRequest request;
  request.run_id = c.env->run_id;
  request.step = c.step->name;
  request.program = std::move(program);
  request.source_dir = c.env->revision.source_dir;
  request.input_dir = c.input_dir;
  request.output_dir = c.output_dir;
  request.log_path = c.log_path;
  request.events_path = c.events_path;
  request.timeout_ms = c.step->policy.timeout_ms;
  request.memory_bytes = c.step->policy.memory_bytes;
  request.cancel = c.stop;
  request.python = c.env->python;
  request.base_env = c.env->base_env;
  ProgramStepResult ran = RunProgramStep(request, c.env->launcher, Fs(c));
  report->cpu_user_micros += ran.process.cpu_user_micros;
  report->cpu_system_micros += ran.process.cpu_system_micros;
  report->peak_rss_kb = std::max(report->peak_rss_kb, ran.process.peak_rss_kb);
  report->events.insert(report->events.end(), ran.events.begin(),
                        ran.events.end());
  RETURN_IF_ERROR(ran.status);
  ASSIGN_OR_RETURN(StepOutputs outputs,
                   FindProgramOutputs(Fs(c), c.step->name, c.output_dir,
                                      c.step->outputs, InputLineage(c)));
  StepResult result;
  const double seconds = ran.process.wall_micros / 1e6;
  result.message = "exited with status 0 after " + FormatNumber(seconds) + " s";
  json written = json::array();
  for (const std::shared_ptr<StepOutput>& output : outputs) {
    written.push_back(output->name());
  }
  if (!written.empty()) result.message += "; wrote " + written.dump();
  result.outputs = {{"wall_seconds", seconds},
                    {"code_sha256", ran.code_sha256},
                    {"events", ran.events.size()}};
  if (ran.metrics.has_value()) result.outputs["metrics"] = *ran.metrics;
  if (!ran.python.is_null()) result.outputs["python"] = ran.python;
  result.produced = std::move(outputs);
  return result;
}

}  // namespace

absl::StatusOr<CsvData> ReadDataSource(const DataSourceSpec& source,
                                       const std::string& source_dir,
                                       Filesystem* fs) {
  std::string path = ResolvePath(source_dir, source.path);
  return ReadCsv(fs, path, CsvOptionsFor(source));
}

absl::StatusOr<StepResult> RunStep(const StepContext& c, StepReport* report) {
  const StepParams& params = c.step->params;
  switch (c.step->kind()) {
    case StepKind::kIngest:
      return Ingest(std::get<IngestStepSpec>(params), c);
    case StepKind::kValidate:
      return Validate(std::get<ValidateStepSpec>(params), c, report);
    case StepKind::kSplit:
      return SplitStep(std::get<SplitStepSpec>(params), c);
    case StepKind::kTransform:
      return TransformStep(std::get<TransformStepSpec>(params), c);
    case StepKind::kTrain:
      return TrainStep(std::get<TrainStepSpec>(params), c);
    case StepKind::kEvaluate:
      return EvaluateStep(std::get<EvaluateStepSpec>(params), c);
    case StepKind::kRegister:
      return RegisterStep(std::get<RegisterStepSpec>(params), c);
    case StepKind::kScore:
      return ScoreStep(std::get<ScoreStepSpec>(params), c);
    case StepKind::kSink:
      return SinkStep(std::get<SinkStepSpec>(params), c);
    case StepKind::kCommand:
      return ProgramStep(std::get<CommandStepSpec>(params), c, report);
    case StepKind::kNotebook:
      return ProgramStep(std::get<NotebookStepSpec>(params), c, report);
  }
  return absl::InternalError("unknown step kind");
}

}  // namespace slipway
