#include "models/import.h"

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "core/status.h"
#include "models/features.h"
#include "models/model.h"
#include "models/xgboost_api.h"
#include "yaml-cpp/yaml.h"

#ifndef SLIPWAY_VERSION
#error "SLIPWAY_VERSION must be defined by the build"
#endif

namespace slipway {
namespace {

using nlohmann::json;

absl::Status FileError(const std::string& source, const std::string& what) {
  return absl::InvalidArgumentError("model file '" + source + "': " + what);
}

// What the model file says about itself.
// Loads `bytes` (JSON or UBJSON; both start with '{') into a booster and
// returns it with the model as native JSON.
absl::StatusOr<std::pair<XgbBooster, std::string>> LoadBooster(
    std::string_view bytes, const std::string& source) {
  const std::string hint =
      "give a file written by Booster.save_model(\"model.json\") or "
      "save_model(\"model.ubj\")";
  if (bytes.empty()) return FileError(source, "is empty; " + hint);
  if (bytes[0] != '{') {
    return FileError(source,
                     "is neither XGBoost JSON nor UBJSON (it does not start "
                     "with '{'; XGBoost's old binary format, also what "
                     "MLflow's model_format 'xgb' writes with XGBoost 1.x, "
                     "is not taken); " +
                         hint + " (MLflow: model_format=\"json\" or \"ubj\")");
  }
  RouteXgboostLogs();
  void* handle = nullptr;
  RETURN_IF_ERROR(XgbCheck(XGBoosterCreate(nullptr, 0, &handle),
                           "creating an XGBoost booster"));
  XgbBooster booster(handle);
  absl::Status loaded = XgbCheck(
      XGBoosterLoadModelFromBuffer(booster.get(), bytes.data(), bytes.size()),
      "XGBoost cannot load it", absl::StatusCode::kInvalidArgument);
  if (!loaded.ok()) {
    return FileError(source, std::string(loaded.message()) + "; " + hint);
  }
  const bool is_json = bytes.size() > 1 && (bytes[1] == '"' ||
                                            bytes[1] == ' ' ||
                                            bytes[1] == '\n' ||
                                            bytes[1] == '\r' ||
                                            bytes[1] == '\t' || bytes[1] == '}');
  if (is_json) return std::make_pair(std::move(booster), std::string(bytes));
  bst_ulong length = 0;
  const char* out = nullptr;
  RETURN_IF_ERROR(XgbCheck(XGBoosterSaveModelToBuffer(
                               booster.get(), R"({"format": "json"})", &length,
                               &out),
                           "converting the model to XGBoost JSON",
                           absl::StatusCode::kInvalidArgument),
                  "model file '" + source + "'");
  std::string json_bytes(out, length);
  return std::make_pair(std::move(booster), std::move(json_bytes));
}

absl::StatusOr<json> DeriveSignatureJson(const XgboostFacts& facts,
                                         const Table* sample,
                                         const std::string& source) {
  if (facts.feature_names.empty()) {
    return FileError(
        source,
        "records no feature names, so its " +
            std::to_string(facts.num_feature) +
            " features cannot be named; train on a pandas DataFrame (or "
            "xgb.DMatrix(X, feature_names=[...])), or give --signature");
  }
  json features = json::array();
  std::set<std::string> names;
  for (size_t i = 0; i < facts.feature_names.size(); ++i) {
    const std::string& name = facts.feature_names[i];
    names.insert(name);
    const Column* column =
        sample == nullptr ? nullptr : sample->FindColumn(name);
    const bool categorical =
        i < facts.feature_types.size() && facts.feature_types[i] == "c";
    if (categorical) {
      if (column == nullptr) {
        return FileError(source,
                         "categorical feature '" + name +
                             "' needs its categories: give --sample with a '" +
                             name + "' column, or --signature");
      }
      features.push_back({{"name", name},
                          {"type", "string"},
                          {"categories", CategoryTexts(*column)}});
      continue;
    }
    DataType type = DataType::kFloat64;
    if (column != nullptr && column->type() != DataType::kString) {
      type = column->type();
    }
    features.push_back(
        {{"name", name}, {"type", std::string(DataTypeName(type))}});
  }
  const Column* target = nullptr;
  if (sample != nullptr) {
    for (const Column& column : sample->columns()) {
      if (names.count(column.name()) != 0) continue;
      if (target != nullptr) {
        target = nullptr;
        break;
      }
      target = &column;
    }
  }
  const Task task = TaskOfObjective(facts.objective);
  std::vector<std::string> classes;
  if (task != Task::kRegression) {
    const int64_t count =
        task == Task::kBinaryClassification ? 2 : facts.num_class;
    if (target != nullptr) classes = CategoryTexts(*target);
    if (static_cast<int64_t>(classes.size()) != count) {
      if (count < 2) {
        return FileError(source, "cannot tell how many classes it has "
                                 "(objective '" +
                                     facts.objective + "'); give --signature");
      }
      classes.clear();
      for (int64_t i = 0; i < count; ++i) classes.push_back(std::to_string(i));
    }
  }
  DataType label_type = DataType::kFloat64;
  if (task != Task::kRegression) {
    label_type = LabelTypeOf(classes);
  }
  return json{{"task", std::string(TaskName(task))},
              {"target", target != nullptr ? target->name() : "target"},
              {"label_type", std::string(DataTypeName(label_type))},
              {"class_labels", classes},
              {"features", features}};
}

}  // namespace

json RuntimeVersions() {
  return {{"xgboost", XGBoostVersionText()}, {"slipway", SLIPWAY_VERSION}};
}

absl::StatusOr<ImportedModel> ImportXgboostModel(
    std::string_view model_bytes, const std::string& source,
    const std::optional<json>& signature_json, const Table* sample) {
  ASSIGN_OR_RETURN(auto loaded, LoadBooster(model_bytes, source));
  ASSIGN_OR_RETURN(XgboostFacts facts, ReadXgboostFacts(loaded.first.get()),
                   "model file '" + source + "'");
  json wanted;
  if (signature_json.has_value()) {
    wanted = *signature_json;
  } else {
    ASSIGN_OR_RETURN(wanted, DeriveSignatureJson(facts, sample, source));
  }
  ASSIGN_OR_RETURN(Signature signature, Signature::FromJson(wanted));
  ImportedModel imported;
  imported.format = std::string(kXgboostJsonFormat);
  imported.model_bytes = std::move(loaded.second);
  RETURN_IF_ERROR(
      LoadModel(imported.format, imported.model_bytes, signature).status(),
      "model file '" + source + "' does not accept the signature");
  imported.signature = std::move(signature);
  imported.params = {{"objective", facts.objective},
                     {"num_feature", facts.num_feature},
                     {"num_class", facts.num_class}};
  return imported;
}

namespace {

absl::StatusOr<std::string> XgboostDataPath(const YAML::Node& root,
                                            const std::string& path) {
  const std::string not_mlflow =
      "MLmodel '" + path +
      "' is not an MLflow model file (a YAML mapping with `flavors`)";
  if (!root.IsMap() || !root["flavors"] || !root["flavors"].IsMap()) {
    return absl::InvalidArgumentError(not_mlflow);
  }
  const YAML::Node flavors = root["flavors"];
  const YAML::Node xgboost = flavors["xgboost"];
  if (!xgboost || !xgboost.IsMap()) {
    std::string names;
    for (const auto& entry : flavors) {
      names += (names.empty() ? "" : ", ") + entry.first.as<std::string>("?");
    }
    return absl::InvalidArgumentError(
        "MLmodel '" + path + "' has no xgboost flavor (its flavors: " +
        (names.empty() ? std::string("none") : names) +
        "); import takes models logged with mlflow.xgboost.log_model");
  }
  const YAML::Node data = xgboost["data"];
  if (!data || !data.IsScalar() || data.Scalar().empty()) {
    return absl::InvalidArgumentError(
        "MLmodel '" + path +
        "': flavors.xgboost.data is missing; it names the model file");
  }
  const std::string file = data.Scalar();
  if (file[0] == '/' || file == ".." || file.rfind("../", 0) == 0 ||
      file.find("/../") != std::string::npos ||
      (file.size() >= 3 && file.compare(file.size() - 3, 3, "/..") == 0)) {
    return absl::InvalidArgumentError(
        "MLmodel '" + path + "': flavors.xgboost.data '" + file +
        "' must be a path inside the model directory");
  }
  return file;
}

}  // namespace

absl::StatusOr<std::string> MlflowXgboostDataPath(
    const std::string& mlmodel_yaml, const std::string& path) {
  try {
    return XgboostDataPath(YAML::Load(mlmodel_yaml), path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        "MLmodel '" + path +
        "' is not an MLflow model file (a YAML mapping with `flavors`): " +
        e.what());
  }
}

}  // namespace slipway
