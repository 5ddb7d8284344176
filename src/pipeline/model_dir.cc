#include "pipeline/model_dir.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "core/status.h"
#include "models/features.h"
#include "models/import.h"
#include "models/loader.h"
#include "models/model.h"
#include "models/model_bundle.h"
#include "models/python_model.h"
#include "models/torchscript_model.h"
#include "models/transform.h"
#include "models/xgboost_api.h"
#include "yaml-cpp/yaml.h"

namespace slipway {
namespace {

using nlohmann::json;

constexpr std::string_view kModelYaml = "model.yaml";
constexpr std::string_view kSignatureJson = "signature.json";
constexpr std::string_view kTransformJson = "transform.json";
constexpr std::string_view kParamsJson = "params.json";
constexpr std::string_view kDefaultModelFile = "model.json";
constexpr std::string_view kDefaultTorchFile = "model.pt";
constexpr std::string_view kPythonModule = "model.py";
constexpr std::string_view kDefaultTarget = "target";

// One entry of model.yaml `features`.
struct FeatureHint {
  std::string name;
  std::optional<DataType> type;
  std::optional<std::vector<std::string>> categories;
};

struct ModelYaml {
  std::string format;  // a models/model.h format name
  // Empty until given; see ModelFile for the default.
  std::string file;
  std::optional<Task> task;
  std::string target;
  std::optional<std::vector<std::string>> classes;
  std::vector<FeatureHint> features;
  // The versions the folder says it was trained with.
  json runtime = json::object();
};

bool IsFolderFormat(std::string_view format) {
  return format == kPythonFormat || format == kTorchScriptFormat;
}

// The file holding the model: `file`, else the format's default (a python
// folder without `file` is served by its model.py).
std::string ModelFile(const ModelYaml& yaml) {
  if (!yaml.file.empty()) return yaml.file;
  if (yaml.format == kTorchScriptFormat) return std::string(kDefaultTorchFile);
  if (yaml.format == kPythonFormat) return std::string(kPythonModule);
  return std::string(kDefaultModelFile);
}

// What model.json says about itself.
absl::Status FileError(const std::string& path, const std::string& message) {
  return absl::InvalidArgumentError(path + ": " + message);
}

absl::Status YamlError(const std::string& path, const YAML::Mark& mark,
                       const std::string& message) {
  if (mark.line < 0) return FileError(path, message);
  return FileError(path + ":" + std::to_string(mark.line + 1) + ":" +
                       std::to_string(mark.column + 1),
                   message);
}

absl::StatusOr<std::string> Scalar(const YAML::Node& node,
                                   const std::string& path,
                                   const std::string& key) {
  if (!node.IsScalar()) {
    return YamlError(path, node.Mark(), "'" + key + "' must be a single value");
  }
  return node.Scalar();
}

absl::StatusOr<std::vector<std::string>> ScalarList(const YAML::Node& node,
                                                    const std::string& path,
                                                    const std::string& key) {
  if (!node.IsSequence()) {
    return YamlError(path, node.Mark(),
                     "'" + key + "' must be a list, e.g. [a, b]");
  }
  std::vector<std::string> values;
  for (const YAML::Node& item : node) {
    ASSIGN_OR_RETURN(std::string value, Scalar(item, path, key + " entry"));
    values.push_back(std::move(value));
  }
  return values;
}

absl::StatusOr<std::string> ParseFormat(const std::string& name,
                                        const std::string& path,
                                        const YAML::Mark& mark) {
  if (name == "xgboost" || name == kXgboostJsonFormat) {
    return std::string(kXgboostJsonFormat);
  }
  if (name == kPythonFormat || name == kTorchScriptFormat) return name;
  return YamlError(path, mark,
                   "format '" + name +
                       "' is not supported; use `format: xgboost` (the model "
                       "saved by Booster.save_model(\"model.json\")), "
                       "`format: python` (a joblib/pickle file or model.py) or "
                       "`format: torchscript` (a torch.jit.save file)");
}

// A file name inside the model directory: relative, without "..".
absl::Status CheckModelFileName(const std::string& file,
                                const std::string& path,
                                const YAML::Mark& mark) {
  bool escapes = file.empty() || file.front() == '/';
  size_t start = 0;
  while (!escapes && start <= file.size()) {
    size_t end = file.find('/', start);
    if (end == std::string::npos) end = file.size();
    escapes = file.compare(start, end - start, "..") == 0;
    start = end + 1;
  }
  if (!escapes) return absl::OkStatus();
  return YamlError(path, mark,
                   "file '" + file +
                       "' must name a file inside the model directory, e.g. "
                       "`file: model.json`");
}

absl::StatusOr<FeatureHint> ParseFeatureHint(const YAML::Node& node,
                                             const std::string& path) {
  if (!node.IsMap() || !node["name"]) {
    return YamlError(path, node.Mark(),
                     "each 'features' entry must be a map with a name, e.g. "
                     "{name: color, categories: [red, blue]}");
  }
  FeatureHint hint;
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    if (key == "name") {
      ASSIGN_OR_RETURN(hint.name, Scalar(entry.second, path, "name"));
    } else if (key == "type") {
      ASSIGN_OR_RETURN(std::string type, Scalar(entry.second, path, "type"));
      absl::StatusOr<DataType> parsed = ParseDataType(type);
      if (!parsed.ok()) {
        return YamlError(path, entry.second.Mark(),
                         std::string(parsed.status().message()));
      }
      hint.type = *parsed;
    } else if (key == "categories") {
      ASSIGN_OR_RETURN(hint.categories,
                       ScalarList(entry.second, path, "categories"));
    } else {
      return YamlError(path, entry.first.Mark(),
                       "unknown key '" + key +
                           "' in a features entry; expected name, type, "
                           "categories");
    }
  }
  return hint;
}

absl::StatusOr<ModelYaml> ParseModelYamlNode(const YAML::Node& root,
                                             const std::string& path) {
  if (!root.IsMap()) {
    return YamlError(path, root.Mark(),
                     "expected a map such as `format: xgboost`");
  }
  ModelYaml yaml;
  std::optional<YAML::Mark> output_mark;
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    if (key == "format") {
      ASSIGN_OR_RETURN(std::string name, Scalar(value, path, key));
      ASSIGN_OR_RETURN(yaml.format, ParseFormat(name, path, value.Mark()));
    } else if (key == "file") {
      ASSIGN_OR_RETURN(yaml.file, Scalar(value, path, key));
      RETURN_IF_ERROR(CheckModelFileName(yaml.file, path, value.Mark()));
    } else if (key == "task") {
      ASSIGN_OR_RETURN(std::string name, Scalar(value, path, key));
      absl::StatusOr<Task> task = ParseTask(name);
      if (!task.ok()) {
        return YamlError(path, value.Mark(),
                         std::string(task.status().message()));
      }
      yaml.task = *task;
    } else if (key == "target") {
      ASSIGN_OR_RETURN(yaml.target, Scalar(value, path, key));
    } else if (key == "classes") {
      ASSIGN_OR_RETURN(yaml.classes, ScalarList(value, path, key));
    } else if (key == "features") {
      if (!value.IsSequence()) {
        return YamlError(path, value.Mark(),
                         "'features' must be a list of {name, type, "
                         "categories} maps");
      }
      for (const YAML::Node& item : value) {
        ASSIGN_OR_RETURN(FeatureHint hint, ParseFeatureHint(item, path));
        yaml.features.push_back(std::move(hint));
      }
    } else if (key == "output") {
      ASSIGN_OR_RETURN(std::string output, Scalar(value, path, key));
      if (output != "logits" && output != "probabilities") {
        return YamlError(path, value.Mark(),
                         "output '" + output +
                             "' is not known; use `output: logits` (the "
                             "module returns scores) or `output: "
                             "probabilities`");
      }
      // The loader reads it from the bundle (models/loader.h).
      output_mark = entry.first.Mark();
    } else if (key == "runtime") {
      if (!value.IsMap()) {
        return YamlError(path, value.Mark(),
                         "'runtime' must map packages to versions, e.g. "
                         "{python: \"3.11.2\", scikit-learn: \"1.2.1\"}");
      }
      for (const auto& package : value) {
        ASSIGN_OR_RETURN(
            std::string version,
            Scalar(package.second, path, "runtime." + package.first.Scalar()));
        yaml.runtime[package.first.Scalar()] = version;
      }
    } else {
      return YamlError(path, entry.first.Mark(),
                       "unknown key '" + key +
                           "'; expected format, file, task, target, classes, "
                           "features, output, runtime");
    }
  }
  if (yaml.format.empty()) {
    return FileError(path,
                     "missing 'format'; add `format: xgboost`, `format: "
                     "python` or `format: torchscript`");
  }
  if (yaml.format == kPythonFormat && yaml.file == kPythonModule) {
    return FileError(path,
                     "`file: model.py`: omit `file` when model.py is "
                     "the model (`file` names a joblib/pickle file)");
  }
  if (output_mark && yaml.format != kTorchScriptFormat) {
    return YamlError(path, *output_mark,
                     "'output' applies to torchscript models only; remove "
                     "it");
  }
  return yaml;
}

absl::StatusOr<ModelYaml> ParseModelYaml(const std::string& text,
                                         const std::string& path) {
  try {
    return ParseModelYamlNode(YAML::Load(text), path);
  } catch (const YAML::Exception& e) {
    return YamlError(path, e.mark, "malformed YAML: " + e.msg);
  }
}

// Asks XGBoost itself: its JSON holds NaN split conditions for categorical
// splits, which a strict JSON parser refuses.
// Loads the model file's bytes into a booster and reads its facts.
absl::StatusOr<XgboostFacts> LoadXgboostFacts(const std::string& bytes,
                                              const std::string& path) {
  RouteXgboostLogs();
  const std::string hint =
      "save it with Booster.save_model(\"model.json\") (the .json suffix "
      "selects the JSON format)";
  const size_t first = bytes.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || bytes[first] != '{') {
    return FileError(path, "not an XGBoost JSON model; " + hint);
  }
  void* handle = nullptr;
  RETURN_IF_ERROR(XgbCheck(XGBoosterCreate(nullptr, 0, &handle),
                           "creating an XGBoost booster"));
  XgbBooster booster(handle);
  absl::Status loaded = XgbCheck(
      XGBoosterLoadModelFromBuffer(booster.get(), bytes.data(), bytes.size()),
      "XGBoost cannot load it", absl::StatusCode::kInvalidArgument);
  if (!loaded.ok()) {
    return FileError(path, std::string(loaded.message()) + "; " + hint);
  }
  ASSIGN_OR_RETURN(XgboostFacts facts, ReadXgboostFacts(booster.get()), path);
  return facts;
}

absl::Status MissingCategories(const std::string& model_path,
                               const std::string& name) {
  return FileError(
      model_path,
      "categorical feature '" + name +
          "' needs its categories in code order: list them in model.yaml as "
          "`features: [{name: " +
          name + ", categories: [...]}]` (pandas: df[\"" + name +
          "\"].cat.categories), or give the step an input table with a '" +
          name + "' column");
}

// The features of the signature, in model order.
absl::StatusOr<std::vector<FeatureSpec>> DeriveFeatures(
    const XgboostFacts& facts, const ModelYaml& yaml, const Table* input,
    const std::string& model_path, const std::string& yaml_path) {
  std::vector<std::string> names = facts.feature_names;
  if (names.empty()) {
    if (yaml.features.empty() ||
        static_cast<int64_t>(yaml.features.size()) != facts.num_feature) {
      return FileError(
          model_path,
          "records no feature names, so the model's " +
              std::to_string(facts.num_feature) +
              " features cannot be named; train on a pandas DataFrame (or "
              "xgb.DMatrix(X, feature_names=[...])), or list every feature "
              "in model order in model.yaml `features: [{name: ...}]`");
    }
    for (const FeatureHint& hint : yaml.features) names.push_back(hint.name);
  }
  std::map<std::string, const FeatureHint*> hints;
  for (const FeatureHint& hint : yaml.features) hints[hint.name] = &hint;
  for (const auto& [name, hint] : hints) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return FileError(yaml_path, "features names '" + name +
                                      "', which the model does not take");
    }
  }

  std::vector<FeatureSpec> features;
  for (size_t i = 0; i < names.size(); ++i) {
    FeatureSpec spec;
    spec.name = names[i];
    auto hint_it = hints.find(spec.name);
    const FeatureHint* hint =
        hint_it == hints.end() ? nullptr : hint_it->second;
    const Column* column =
        input == nullptr ? nullptr : input->FindColumn(spec.name);
    bool categorical;
    if (i < facts.feature_types.size()) {
      categorical = facts.feature_types[i] == "c";
      const bool hint_categorical =
          hint != nullptr &&
          ((hint->type && *hint->type == DataType::kString) ||
           (!hint->type && hint->categories));
      if (hint != nullptr && hint_categorical != categorical) {
        return FileError(yaml_path,
                         "feature '" + spec.name + "' is " +
                             (categorical ? "categorical" : "numeric") +
                             " in the model (feature_types '" +
                             facts.feature_types[i] +
                             "'); fix its type or categories in model.yaml");
      }
    } else {
      categorical = hint != nullptr &&
                    ((hint->type && *hint->type == DataType::kString) ||
                     hint->categories.has_value());
    }
    if (categorical) {
      spec.type = DataType::kString;
      if (hint != nullptr && hint->categories) {
        spec.categories = *hint->categories;
      } else if (column != nullptr) {
        spec.categories = CategoryTexts(*column);
      } else {
        return MissingCategories(model_path, spec.name);
      }
    } else if (hint != nullptr && hint->type) {
      spec.type = *hint->type;
    } else if (column != nullptr && column->type() != DataType::kString) {
      spec.type = column->type();
    }
    features.push_back(std::move(spec));
  }
  return features;
}

absl::StatusOr<std::vector<std::string>> DeriveClasses(
    Task task, const XgboostFacts& facts, const ModelYaml& yaml,
    const std::string& yaml_path) {
  if (task == Task::kRegression) {
    if (yaml.classes) {
      return FileError(yaml_path,
                       "classes are given but the model is a regression "
                       "(objective '" +
                           facts.objective + "'); remove them or set the task");
    }
    return std::vector<std::string>();
  }
  const int64_t count =
      task == Task::kBinaryClassification ? 2 : facts.num_class;
  if (yaml.classes) {
    if (count > 0 && static_cast<int64_t>(yaml.classes->size()) != count) {
      return FileError(
          yaml_path, "lists " + std::to_string(yaml.classes->size()) +
                         " classes but the model has " + std::to_string(count) +
                         "; list one label per class, in class "
                         "index order");
    }
    return *yaml.classes;
  }
  if (count < 2) {
    return FileError(yaml_path,
                     "cannot tell how many classes the model has (objective '" +
                         facts.objective +
                         "'); list them in model.yaml `classes: [...]`");
  }
  std::vector<std::string> classes;
  for (int64_t i = 0; i < count; ++i) classes.push_back(std::to_string(i));
  return classes;
}

absl::StatusOr<Signature> DeriveSignature(const std::string& model_bytes,
                                          const ModelYaml& yaml,
                                          const Table* input,
                                          std::string_view fallback_target,
                                          const std::string& dir) {
  const std::string model_path = JoinPath(dir, ModelFile(yaml));
  const std::string yaml_path = JoinPath(dir, kModelYaml);
  ASSIGN_OR_RETURN(XgboostFacts facts,
                   LoadXgboostFacts(model_bytes, model_path));
  ASSIGN_OR_RETURN(std::vector<FeatureSpec> features,
                   DeriveFeatures(facts, yaml, input, model_path, yaml_path));
  const Task task = yaml.task.value_or(TaskOfObjective(facts.objective));
  ASSIGN_OR_RETURN(std::vector<std::string> classes,
                   DeriveClasses(task, facts, yaml, yaml_path));
  DataType label_type = DataType::kFloat64;
  if (task != Task::kRegression) {
    label_type = LabelTypeOf(classes);
  }
  std::string target = yaml.target;
  if (target.empty()) target = std::string(fallback_target);
  if (target.empty()) target = std::string(kDefaultTarget);
  // The JSON round trip runs Signature's own validation (distinct names and
  // labels, label counts for the task, target not a feature).
  const Signature derived(task, std::move(features), std::move(target),
                          label_type, std::move(classes));
  absl::StatusOr<Signature> checked = Signature::FromJson(derived.ToJson());
  if (!checked.ok()) {
    return FileError(yaml_path, "the signature derived from it and " +
                                    ModelFile(yaml) + " is invalid: " +
                                    std::string(checked.status().message()));
  }
  return checked;
}

// A python or torchscript model file records no signature: model.yaml
// gives the task and the features; the classes come from model.yaml, else
// "0", "1" for a binary model (a python model may replace them with its
// classes_ once loaded, see ReadModelDir).
struct FolderSignature {
  Signature signature;
  // The features are the input table's columns: only a loaded model that
  // records feature_names_in_ (and so checked them) confirms them.
  bool features_from_input = false;
};

absl::StatusOr<FeatureSpec> HintedFeature(const FeatureHint& hint,
                                          const Table* input,
                                          const std::string& yaml_path) {
  FeatureSpec spec;
  spec.name = hint.name;
  const Column* column =
      input == nullptr ? nullptr : input->FindColumn(hint.name);
  // Untyped: categorical when it has categories or its input column holds
  // text.
  const bool categorical =
      hint.type
          ? *hint.type == DataType::kString
          : hint.categories.has_value() ||
                (column != nullptr && column->type() == DataType::kString);
  if (categorical) {
    spec.type = DataType::kString;
    if (hint.categories) {
      spec.categories = *hint.categories;
    } else if (column != nullptr) {
      spec.categories = CategoryTexts(*column);
    } else {
      return MissingCategories(yaml_path, hint.name);
    }
  } else if (hint.type) {
    spec.type = *hint.type;
  } else if (column != nullptr && column->type() != DataType::kString) {
    spec.type = column->type();
  }
  return spec;
}

absl::StatusOr<FolderSignature> DeriveFolderSignature(
    const ModelYaml& yaml, const Table* input, std::string_view fallback_target,
    const std::string& dir) {
  const std::string yaml_path = JoinPath(dir, kModelYaml);
  if (!yaml.task) {
    return FileError(yaml_path,
                     "missing 'task'; a " + yaml.format +
                         " model does not record what it predicts: add "
                         "`task: binary_classification`, "
                         "`task: multiclass_classification` or `task: "
                         "regression` (or write signature.json)");
  }
  std::string target = yaml.target;
  if (target.empty()) target = std::string(fallback_target);
  if (target.empty()) target = std::string(kDefaultTarget);

  FolderSignature derived;
  std::vector<FeatureSpec> features;
  for (const FeatureHint& hint : yaml.features) {
    ASSIGN_OR_RETURN(FeatureSpec spec, HintedFeature(hint, input, yaml_path));
    features.push_back(std::move(spec));
  }
  if (features.empty() && yaml.format == kPythonFormat && input != nullptr) {
    for (const Column& column : input->columns()) {
      if (column.name() == target) continue;
      FeatureSpec spec;
      spec.name = column.name();
      spec.type = column.type();
      if (column.type() == DataType::kString) {
        spec.categories = CategoryTexts(column);
      }
      features.push_back(std::move(spec));
    }
    derived.features_from_input = true;
  }
  if (features.empty()) {
    return FileError(
        yaml_path,
        "lists no 'features'; a " + yaml.format +
            " model file does not name its inputs, so list them in model "
            "order: `features: [{name: a}, {name: b, categories: [x, y]}]`" +
            (yaml.format == kPythonFormat
                 ? " (a pickled estimator fitted on a pandas DataFrame can "
                   "instead take the step's input table's columns, checked "
                   "against its feature_names_in_)"
                 : ""));
  }

  std::vector<std::string> classes;
  if (*yaml.task == Task::kRegression) {
    if (yaml.classes) {
      return FileError(yaml_path,
                       "classes are given but the task is regression; remove "
                       "them or set the task");
    }
  } else if (yaml.classes) {
    classes = *yaml.classes;
  } else if (*yaml.task == Task::kBinaryClassification) {
    classes = {"0", "1"};
  } else {
    return FileError(yaml_path,
                     "a multiclass model needs its classes: list them in "
                     "class index order, `classes: [a, b, c]`");
  }
  const DataType label_type = *yaml.task == Task::kRegression
                                  ? DataType::kFloat64
                                  : LabelTypeOf(classes);
  // The JSON round trip runs Signature's own validation.
  const Signature built(*yaml.task, std::move(features), std::move(target),
                        label_type, std::move(classes));
  absl::StatusOr<Signature> checked = Signature::FromJson(built.ToJson());
  if (!checked.ok()) {
    return FileError(yaml_path, "the signature derived from it is invalid: " +
                                    std::string(checked.status().message()));
  }
  derived.signature = *std::move(checked);
  return derived;
}

absl::StatusOr<json> ReadJsonObject(Filesystem* fs, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path));
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) {
    return FileError(path, "expected a JSON object");
  }
  return value;
}

absl::StatusOr<Signature> ReadSignature(Filesystem* fs,
                                        const std::string& path) {
  ASSIGN_OR_RETURN(json value, ReadJsonObject(fs, path));
  absl::StatusOr<Signature> signature = Signature::FromJson(value);
  if (!signature.ok()) {
    return FileError(path, std::string(signature.status().message()) +
                               "; rewrite it or delete it to derive the "
                               "signature from the model");
  }
  return signature;
}

// Writes the files of `bundle` into `dir` except model.yaml, which it
// returns.
absl::StatusOr<std::string> WriteBundleFiles(Filesystem* fs,
                                             const std::string& dir,
                                             std::string_view bundle) {
  using Files = std::map<std::string, std::string>;
  ASSIGN_OR_RETURN(Files files, ReadModelBundle(bundle),
                   "model directory " + dir);
  auto yaml = files.find(std::string(kModelYaml));
  if (yaml == files.end()) {
    return absl::InvalidArgumentError(
        "model directory " + dir +
        ": the model bundle holds no model.yaml; import the model again");
  }
  for (const auto& [path, content] : files) {
    if (path == kModelYaml) continue;
    const std::string file = JoinPath(dir, path);
    RETURN_IF_ERROR(fs->CreateDirs(DirName(file)));
    RETURN_IF_ERROR(fs->WriteFileAtomic(file, content));
  }
  return yaml->second;
}

}  // namespace

absl::Status WriteModelDir(Filesystem* fs, const std::string& dir,
                           std::string_view format,
                           std::string_view model_bytes,
                           const Signature& signature, const json& params,
                           std::string_view transform_json) {
  const bool folder = IsFolderFormat(format);
  if (format != kXgboostJsonFormat && !folder) {
    return absl::InvalidArgumentError(
        "model directory " + dir + ": format '" + std::string(format) +
        "' cannot be written; the formats are " +
        std::string(kXgboostJsonFormat) + ", " + std::string(kPythonFormat) +
        " and " + std::string(kTorchScriptFormat));
  }
  if (!params.is_object()) {
    return absl::InvalidArgumentError("model directory " + dir +
                                      ": params must be a JSON object");
  }
  RETURN_IF_ERROR(fs->CreateDirs(dir));
  std::string model_yaml;
  if (folder) {
    // The bundle's own signature.json, if any, is replaced below.
    ASSIGN_OR_RETURN(model_yaml, WriteBundleFiles(fs, dir, model_bytes));
  } else {
    RETURN_IF_ERROR(
        fs->WriteFileAtomic(JoinPath(dir, kDefaultModelFile), model_bytes));
    model_yaml = ModelYamlText("xgboost", std::string(kDefaultModelFile),
                               /*logits=*/false, signature, json::object(),
                               /*with_features=*/false);
  }
  RETURN_IF_ERROR(fs->WriteFileAtomic(JoinPath(dir, kSignatureJson),
                                      signature.ToJson().dump(2) + "\n"));
  RETURN_IF_ERROR(
      fs->WriteFileAtomic(JoinPath(dir, kParamsJson), params.dump(2) + "\n"));
  if (!transform_json.empty()) {
    RETURN_IF_ERROR(
        fs->WriteFileAtomic(JoinPath(dir, kTransformJson), transform_json));
  }
  // model.yaml last: a directory with it is complete.
  return fs->WriteFileAtomic(JoinPath(dir, kModelYaml), model_yaml);
}

absl::StatusOr<ModelDir> ReadModelDir(Filesystem* fs, const std::string& dir,
                                      const Table* input,
                                      std::string_view fallback_target,
                                      const ModelLoadOptions& loading) {
  const std::string yaml_path = JoinPath(dir, kModelYaml);
  if (!fs->Exists(yaml_path)) {
    return FileError(yaml_path,
                     "missing; a model directory needs model.yaml with at "
                     "least `format: xgboost` beside the model file");
  }
  ASSIGN_OR_RETURN(std::string yaml_text, fs->ReadFile(yaml_path));
  ASSIGN_OR_RETURN(ModelYaml yaml, ParseModelYaml(yaml_text, yaml_path));
  const bool folder = IsFolderFormat(yaml.format);

  ModelDir model;
  model.format = yaml.format;
  const std::string model_file = ModelFile(yaml);
  const std::string model_path = JoinPath(dir, model_file);
  if (!fs->Exists(model_path)) {
    std::string how = "Booster.save_model(\"" + model_file + "\")";
    if (yaml.format == kTorchScriptFormat) {
      how = "torch.jit.save(torch.jit.script(model), \"" + model_file + "\")";
    } else if (yaml.format == kPythonFormat) {
      how = yaml.file.empty()
                ? "a model.py defining load(path) and predict(rows), or name "
                  "a joblib/pickle file with `file:`"
                : "joblib.dump(model, \"" + model_file + "\")";
    }
    return FileError(model_path,
                     "missing; model.yaml names it as the model file (save "
                     "the model there with " +
                         how + ", or fix `file:`)");
  }
  if (folder) {
    // The whole folder: a python model may import helper modules or read
    // data files beside it.
    ASSIGN_OR_RETURN(model.model_bytes, PackModelFolder(dir));
  } else {
    ASSIGN_OR_RETURN(model.model_bytes, fs->ReadFile(model_path));
  }

  const std::string signature_path = JoinPath(dir, kSignatureJson);
  const bool has_signature_json = fs->Exists(signature_path);
  bool features_from_input = false;
  if (has_signature_json) {
    ASSIGN_OR_RETURN(model.signature, ReadSignature(fs, signature_path));
  } else if (folder) {
    ASSIGN_OR_RETURN(FolderSignature derived,
                     DeriveFolderSignature(yaml, input, fallback_target, dir));
    model.signature = std::move(derived.signature);
    features_from_input = derived.features_from_input;
  } else {
    ASSIGN_OR_RETURN(
        model.signature,
        DeriveSignature(model.model_bytes, yaml, input, fallback_target, dir));
  }
  const std::string transform_path = JoinPath(dir, kTransformJson);
  if (fs->Exists(transform_path)) {
    ASSIGN_OR_RETURN(model.transform_json, fs->ReadFile(transform_path));
  }
  const std::string params_path = JoinPath(dir, kParamsJson);
  if (fs->Exists(params_path)) {
    ASSIGN_OR_RETURN(model.params, ReadJsonObject(fs, params_path));
  }

  // The one load of the model: a folder format's backend is loaded without
  // the transform (checked on its own, as LoadModel would) so that its
  // runtime is at hand.
  ModelLoadOptions options = loading;
  options.python.workers = 1;
  if (!yaml.runtime.empty()) options.runtime = yaml.runtime;
  absl::Status transform_checked = absl::OkStatus();
  if (folder && !model.transform_json.empty()) {
    absl::StatusOr<FeatureTransform> transform =
        FeatureTransform::Parse(model.transform_json);
    transform_checked =
        transform.ok()
            ? Annotate(transform->CheckModelSignature(model.signature),
                       "the model's transform")
            : transform.status();
  }
  absl::StatusOr<std::unique_ptr<Model>> loaded =
      transform_checked.ok()
          ? LoadModel(model.format, model.model_bytes, model.signature,
                      folder ? std::string_view() : model.transform_json,
                      options)
          : absl::StatusOr<std::unique_ptr<Model>>(transform_checked);
  if (!loaded.ok()) {
    return FileError(
        model_path,
        std::string("does not load with its signature") +
            (model.transform_json.empty()
                 ? ""
                 : " and " + std::string(kTransformJson)) +
            ": " + std::string(loaded.status().message()) +
            (features_from_input
                 ? "; its features were taken from the step's input table: "
                   "list the model's inputs in model order in model.yaml "
                   "`features: [{name: ...}]`"
                 : ""));
  }

  if (yaml.format == kPythonFormat) {
    const auto* python = dynamic_cast<const PythonModel*>(loaded->get());
    const json& info = python->info();
    model.runtime = info.value("versions", json::object());
    if (features_from_input && !info.contains("feature_names_in")) {
      return FileError(
          yaml_path,
          "lists no 'features' and " + model_file +
              " records no feature_names_in_ to confirm the input table's "
              "columns; list the model's inputs in model order: `features: "
              "[{name: a}, {name: b}]`");
    }
    // A pickled classifier names its classes; model.yaml's win.
    if (!yaml.classes && !has_signature_json &&
        model.signature.is_classification() && info.contains("classes") &&
        info["classes"].is_array()) {
      std::vector<std::string> classes = PythonClassLabels(info["classes"]);
      const DataType label_type = LabelTypeOf(classes);
      model.signature =
          Signature(model.signature.task(), model.signature.features(),
                    model.signature.target(), label_type, std::move(classes));
    }
  } else if (yaml.format == kTorchScriptFormat) {
    ASSIGN_OR_RETURN(model.runtime, TorchRuntimeVersions(options.torch),
                     model_path);
  }
  return model;
}

}  // namespace slipway
