#include "pipeline/step_cache.h"

#include <algorithm>
#include <variant>
#include <vector>

#include "core/hash.h"
#include "core/status.h"
#include "pipeline/command_step.h"

namespace slipway {
namespace {

using nlohmann::json;

// Bumped when what a step writes for the same key changes.
constexpr int kCacheKeyVersion = 1;

json ParamsOf(const IngestStepSpec& p) {
  json params = {{"source", p.source}};
  if (p.last_rows > 0) params["last_rows"] = p.last_rows;
  return params;
}

json ParamsOf(const ValidateStepSpec& p) {
  json ranges = json::array();
  for (const ValueRange& r : p.ranges) {
    ranges.push_back({r.column, r.min, r.max});
  }
  json allowed = json::array();
  for (const AllowedValues& a : p.allowed) {
    allowed.push_back({a.column, a.values});
  }
  return {{"max_null_fraction", p.max_null_fraction},
          {"min_rows", p.min_rows},
          {"ranges", ranges},
          {"allowed", allowed}};
}

json ParamsOf(const SplitStepSpec& p) {
  return {{"test_fraction", p.test_fraction},
          {"seed", p.seed},
          {"stratify", p.stratify}};
}

json ParamsOf(const TrainStepSpec& p) {
  return {{"engine", std::string(TrainEngineName(p.engine))},
          {"objective", p.objective},
          {"rounds", p.rounds},
          {"max_depth", p.max_depth},
          {"eta", p.eta},
          {"subsample", p.subsample},
          {"colsample_bytree", p.colsample_bytree},
          {"min_child_weight", p.min_child_weight},
          {"lambda", p.lambda},
          {"alpha", p.alpha},
          {"seed", p.seed}};
}

json ParamsOf(const EvaluateStepSpec& p) { return {{"metrics", p.metrics}}; }

json ParamsOf(const RegisterStepSpec& p) { return {{"alias", p.alias}}; }

json ParamsOf(const TransformStepSpec& p) {
  return {{"impute_numeric", static_cast<int>(p.impute_numeric)},
          {"impute_categorical", static_cast<int>(p.impute_categorical)},
          {"fill_value", p.fill_value},
          {"fill_category", p.fill_category},
          {"encode", static_cast<int>(p.encode)},
          {"max_categories", p.max_categories},
          {"standardize", p.standardize},
          {"columns", p.columns}};
}

json ParamsOf(const ScoreStepSpec& p) {
  return {{"source", p.source}, {"sink", p.sink},
          {"model", p.model},   {"keep", p.keep},
          {"chunk_rows", p.chunk_rows}};
}

json ParamsOf(const SinkStepSpec& p) { return {{"to", p.to}}; }

json ParsedParams(const std::string& params_json) {
  json params = json::parse(params_json, nullptr, /*allow_exceptions=*/false);
  return params.is_discarded() ? json(params_json) : params;
}

json ParamsOf(const CommandStepSpec& p) {
  json env = json::array();
  for (const auto& [name, value] : p.env) env.push_back({name, value});
  return {{"argv", p.argv},
          {"shell", p.shell},
          {"working_dir", p.working_dir},
          {"params", ParsedParams(p.params_json)},
          {"env", env}};
}

json ParamsOf(const NotebookStepSpec& p) {
  return {{"path", p.path},
          {"params", ParsedParams(p.params_json)},
          {"kernel", p.kernel}};
}

json SchemaJson(const SchemaSpec& schema) {
  json features = json::array();
  for (const ColumnType& f : schema.features) {
    features.push_back({f.column, std::string(DataTypeName(f.type))});
  }
  return {{"target", schema.target},
          {"id", schema.id},
          {"features", features},
          {"exclude", schema.exclude},
          {"task", schema.task.has_value()
                       ? json(std::string(TaskName(*schema.task)))
                       : json()}};
}

bool ReadsSchema(StepKind kind) {
  return kind == StepKind::kValidate || kind == StepKind::kSplit ||
         kind == StepKind::kTransform || kind == StepKind::kTrain ||
         kind == StepKind::kEvaluate;
}

// The code hash RunProgramStep reports for the step (command_step.h).
absl::StatusOr<std::string> CodeFingerprint(const StepSpec& step,
                                            const std::string& source_dir,
                                            Filesystem* fs) {
  if (const auto* notebook = std::get_if<NotebookStepSpec>(&step.params)) {
    const std::string path = ResolvePath(source_dir, notebook->path);
    std::string bytes;
    if (fs->Exists(path)) {
      ASSIGN_OR_RETURN(bytes, fs->ReadFile(path));
    }
    return NotebookCodeSha256(*notebook, bytes);
  }
  const auto& command = std::get<CommandStepSpec>(step.params);
  return CommandCodeSha256(fs, command,
                           ResolvePath(source_dir, command.working_dir));
}

}  // namespace

bool MayReuseOutputs(const StepSpec& step) {
  switch (step.kind()) {
    case StepKind::kIngest:
    case StepKind::kScore:
    case StepKind::kSink:
    case StepKind::kRegister:
      return false;
    default:
      return step.policy.cache;
  }
}

json StepParamsJson(const StepSpec& step) {
  return std::visit([](const auto& params) { return ParamsOf(params); },
                    step.params);
}

absl::StatusOr<std::string> StepCacheKey(const StepSpec& step,
                                         const AppSpec& spec,
                                         const std::string& source_dir,
                                         const StepOutputs& inputs,
                                         Filesystem* fs) {
  json key = {{"version", kCacheKeyVersion},
              {"kind", std::string(StepKindName(step.kind()))},
              {"params", StepParamsJson(step)}};
  if (ReadsSchema(step.kind())) key["schema"] = SchemaJson(spec.schema);
  if (step.kind() == StepKind::kCommand || step.kind() == StepKind::kNotebook) {
    key["outputs"] = step.outputs;
    ASSIGN_OR_RETURN(std::string code, CodeFingerprint(step, source_dir, fs));
    key["code"] = code;
  }
  // Sorted: the same inputs in another order are the same inputs.
  std::vector<std::vector<std::string>> consumed;
  for (const std::shared_ptr<StepOutput>& input : inputs) {
    consumed.push_back({input->step(), input->name(), input->fingerprint()});
  }
  std::sort(consumed.begin(), consumed.end());
  key["inputs"] = consumed;
  return Sha256Hex(key.dump());
}

}  // namespace slipway
