#include "models/import.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/filesystem.h"
#include "core/process.h"
#include "core/status.h"
#include "models/features.h"
#include "models/loader.h"
#include "models/model.h"
#include "models/model_bundle.h"
#include "models/python_model.h"
#include "models/torchscript_model.h"
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
  const bool is_json =
      bytes.size() > 1 &&
      (bytes[1] == '"' || bytes[1] == ' ' || bytes[1] == '\n' ||
       bytes[1] == '\r' || bytes[1] == '\t' || bytes[1] == '}');
  if (is_json) return std::make_pair(std::move(booster), std::string(bytes));
  bst_ulong length = 0;
  const char* out = nullptr;
  RETURN_IF_ERROR(
      XgbCheck(XGBoosterSaveModelToBuffer(
                   booster.get(), R"({"format": "json"})", &length, &out),
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
        return FileError(source,
                         "cannot tell how many classes it has "
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

using BundleFiles = std::map<std::string, std::string>;

constexpr char kModelYaml[] = "model.yaml";
// A target with at most this many distinct integer or string values is a
// class label.
constexpr size_t kMaxDerivedClasses = 20;

absl::Status SourceError(const std::string& source, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("model '", source, "': ", what));
}

bool HasSuffix(const std::string& name, std::string_view suffix) {
  return name.size() > suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// What a bundle's own model.yaml says about serving it.
struct BundleYaml {
  std::string file;
  bool logits = false;
};

absl::StatusOr<BundleYaml> ReadBundleYaml(const std::string& text,
                                          const std::string& source) {
  BundleYaml yaml;
  try {
    const YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) {
      return SourceError(source, "model.yaml is not a map");
    }
    if (root["file"]) yaml.file = root["file"].as<std::string>();
    if (root["output"])
      yaml.logits = root["output"].as<std::string>() == "logits";
  } catch (const YAML::Exception& e) {
    return SourceError(source, "model.yaml is malformed: " + e.msg);
  }
  return yaml;
}

// The model file of a bundle without model.yaml `file` (python: empty for
// model.py).
absl::StatusOr<std::string> FindModelFile(std::string_view format,
                                          const BundleFiles& files,
                                          const std::string& source) {
  const bool python = format == kPythonFormat;
  if (python && files.count("model.py") != 0) return std::string();
  if (!python && files.count("model.pt") != 0) return std::string("model.pt");
  std::vector<std::string> found;
  for (const auto& [path, content] : files) {
    if (path.find('/') != std::string::npos) continue;
    const bool fits =
        python ? HasSuffix(path, ".joblib") || HasSuffix(path, ".pkl") ||
                     HasSuffix(path, ".pickle")
               : HasSuffix(path, ".pt") || HasSuffix(path, ".pth");
    if (fits) found.push_back(path);
  }
  if (found.size() == 1) return found[0];
  const std::string want = python
                               ? "a model.py, or one .joblib/.pkl/.pickle file"
                               : "a model.pt, or one .pt/.pth file";
  std::string names;
  for (const std::string& name : found) {
    absl::StrAppend(&names, names.empty() ? "" : ", ", name);
  }
  return SourceError(
      source, absl::StrCat(
                  "holds ",
                  found.empty() ? std::string("no model file")
                                : "several model files (" + names + ")",
                  "; give ", want, ", or a model.yaml naming it with `file:`"));
}

std::string ModelWorkDir() {
  const char* tmp = std::getenv("TMPDIR");
  return JoinPath(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                  "slipway-models");
}

// A fresh folder under the model work directory, removed with its content
// when the object goes.
class ScratchDir {
 public:
  static absl::StatusOr<std::unique_ptr<ScratchDir>> Create() {
    std::error_code ec;
    const std::string parent = ModelWorkDir();
    std::filesystem::create_directories(parent, ec);
    std::string path = JoinPath(parent, "import-XXXXXX");
    if (ec || ::mkdtemp(path.data()) == nullptr) {
      return absl::InternalError(absl::StrCat(
          "cannot create a folder under '", parent, "' to import a model: ",
          ec ? ec.message() : std::string(std::strerror(errno))));
    }
    return std::unique_ptr<ScratchDir>(new ScratchDir(std::move(path)));
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  const std::string path_;
};

absl::Status WriteFiles(const std::string& dir, const BundleFiles& files) {
  Filesystem* fs = LocalFilesystem();
  for (const auto& [path, content] : files) {
    const std::string file = JoinPath(dir, path);
    RETURN_IF_ERROR(fs->CreateDirs(DirName(file)));
    RETURN_IF_ERROR(fs->WriteFileAtomic(file, content));
  }
  return absl::OkStatus();
}

// Reads a pickled object's feature_names_in_ and classes_ (null when it has
// none) with /usr/bin/python3, before a signature exists to load it with.
constexpr char kProbeScript[] = R"py(
import json, sys
import joblib
obj = joblib.load(sys.argv[1])
def plain(values):
    if values is None:
        return None
    return [v.item() if hasattr(v, "item") else v for v in values]
names = getattr(obj, "feature_names_in_", None)
json.dump({"feature_names_in": None if names is None else [str(n) for n in names],
           "classes": plain(getattr(obj, "classes_", None))},
          open(sys.argv[2], "w"))
)py";

absl::StatusOr<json> ProbePickle(const std::string& dir,
                                 const std::string& file,
                                 const std::string& source) {
  const std::string out = JoinPath(dir, ".probe.json");
  ProcessSpec spec;
  spec.argv = {PythonPoolOptions().python, "-c", kProbeScript,
               JoinPath(dir, file), out};
  spec.env = {{"PATH", "/usr/bin:/bin"}, {"OMP_NUM_THREADS", "1"}};
  spec.log_path = JoinPath(dir, ".probe.log");
  spec.timeout_ms = PythonPoolOptions().load_timeout_ms;
  ASSIGN_OR_RETURN(ProcessResult result,
                   LocalProcessLauncher()->Run(spec, nullptr));
  Filesystem* fs = LocalFilesystem();
  if (!result.ok() || !fs->Exists(out)) {
    absl::StatusOr<std::string> log = fs->ReadFile(spec.log_path);
    std::string last;
    if (log.ok()) {
      const std::string text(absl::StripTrailingAsciiWhitespace(*log));
      last = text.substr(text.rfind('\n') + 1);
    }
    return SourceError(source,
                       absl::StrCat(file, " does not load with joblib (",
                                    result.Describe(), ": ", last,
                                    "); give a file written by "
                                    "joblib.dump or pickle.dump"));
  }
  ASSIGN_OR_RETURN(std::string text, fs->ReadFile(out));
  json probed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!probed.is_object()) {
    return absl::InternalError("reading what " + file + " holds: not JSON");
  }
  return probed;
}

json FeatureJson(const std::string& name, const Column* column) {
  if (column != nullptr && column->type() == DataType::kString) {
    return {{"name", name},
            {"type", "string"},
            {"categories", CategoryTexts(*column)}};
  }
  const DataType type = column != nullptr ? column->type() : DataType::kFloat64;
  return {{"name", name}, {"type", std::string(DataTypeName(type))}};
}

// The signature of a python or torchscript model without a given one (see
// import.h). `probed`: a pickle's feature_names_in_ and classes_, or null.
absl::StatusOr<json> DeriveFolderSignatureJson(std::string_view format,
                                               const json& probed,
                                               const Table* sample,
                                               std::string_view target_name,
                                               const std::string& source) {
  const std::string target =
      target_name.empty() ? std::string("target") : std::string(target_name);
  const Column* target_column = sample == nullptr || target_name.empty()
                                    ? nullptr
                                    : sample->FindColumn(target);
  const json names =
      probed.is_object() ? probed.value("feature_names_in", json()) : json();
  json features = json::array();
  if (names.is_array()) {
    for (const json& name : names) {
      const std::string feature = name.get<std::string>();
      const Column* column =
          sample == nullptr ? nullptr : sample->FindColumn(feature);
      if (sample != nullptr && column == nullptr) {
        return SourceError(source,
                           "was fitted on feature '" + feature +
                               "', which the sample has no column for; give "
                               "a --sample with every feature the model "
                               "takes, or --signature");
      }
      features.push_back(FeatureJson(feature, column));
    }
  } else if (sample != nullptr) {
    for (const Column& column : sample->columns()) {
      if (&column == target_column) continue;
      features.push_back(FeatureJson(column.name(), &column));
    }
  }
  if (features.empty()) {
    return SourceError(source,
                       "a " + std::string(format) +
                           " model does not name its inputs; give --sample "
                           "(a CSV with the model's features, in model "
                           "order, and the target) or --signature");
  }

  const json classes_json =
      probed.is_object() ? probed.value("classes", json()) : json();
  std::vector<std::string> classes;
  bool classification;
  if (target_column != nullptr) {
    std::vector<std::string> distinct = CategoryTexts(*target_column);
    classification = (target_column->type() == DataType::kInt64 ||
                      target_column->type() == DataType::kBool ||
                      target_column->type() == DataType::kString) &&
                     distinct.size() <= kMaxDerivedClasses;
    if (classification) classes = std::move(distinct);
  } else if (probed.is_object()) {
    classification = classes_json.is_array();
  } else {
    return SourceError(
        source,
        "cannot tell what the model predicts: give --sample with the "
        "target column '" +
            target + "', or --signature");
  }
  if (classification && classes_json.is_array()) {
    classes = PythonClassLabels(classes_json);
  }
  Task task = Task::kRegression;
  if (classification) {
    task = classes.size() > 2 ? Task::kMulticlassClassification
                              : Task::kBinaryClassification;
  } else {
    classes.clear();
  }
  const DataType label_type =
      classification ? LabelTypeOf(classes) : DataType::kFloat64;
  return json{{"task", std::string(TaskName(task))},
              {"target", target},
              {"label_type", std::string(DataTypeName(label_type))},
              {"class_labels", classes},
              {"features", features}};
}

}  // namespace

std::string ModelYamlText(std::string_view format, const std::string& file,
                          bool logits, const Signature& signature,
                          const json& runtime, bool with_features) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << std::string(format);
  if (!file.empty()) out << YAML::Key << "file" << YAML::Value << file;
  if (logits) out << YAML::Key << "output" << YAML::Value << "logits";
  out << YAML::Key << "task" << YAML::Value
      << std::string(TaskName(signature.task()));
  out << YAML::Key << "target" << YAML::Value << signature.target();
  if (signature.is_classification()) {
    out << YAML::Key << "classes" << YAML::Value << YAML::Flow
        << signature.class_labels();
  }
  if (with_features) {
    out << YAML::Key << "features" << YAML::Value << YAML::BeginSeq;
    for (const FeatureSpec& feature : signature.features()) {
      out << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "name" << YAML::Value << feature.name;
      out << YAML::Key << "type" << YAML::Value
          << std::string(DataTypeName(feature.type));
      if (feature.is_categorical()) {
        out << YAML::Key << "categories" << YAML::Value << YAML::Flow
            << feature.categories;
      }
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (runtime.is_object() && !runtime.empty()) {
    out << YAML::Key << "runtime" << YAML::Value << YAML::Flow
        << YAML::BeginMap;
    for (const auto& [package, version] : runtime.items()) {
      out << YAML::Key << package << YAML::Value
          << (version.is_string() ? version.get<std::string>()
                                  : version.dump());
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

absl::StatusOr<ImportedModel> ImportFolderModel(
    std::string_view format, std::string_view bundle, const std::string& source,
    const std::optional<json>& signature_json, const Table* sample,
    std::string_view target, const ModelLoadOptions& loading) {
  if (format != kPythonFormat && format != kTorchScriptFormat) {
    return absl::InvalidArgumentError("format '" + std::string(format) +
                                      "' is not a model folder format; "
                                      "use " +
                                      std::string(kPythonFormat) + " or " +
                                      std::string(kTorchScriptFormat));
  }
  ASSIGN_OR_RETURN(BundleFiles files, ReadModelBundle(bundle),
                   "model '" + source + "'");
  BundleYaml yaml;
  auto own_yaml = files.find(kModelYaml);
  if (own_yaml != files.end()) {
    ASSIGN_OR_RETURN(yaml, ReadBundleYaml(own_yaml->second, source));
  }
  if (format == kPythonFormat && yaml.logits) {
    return SourceError(source,
                       "model.yaml says `output: logits`, which only "
                       "torchscript models take; remove it");
  }
  if (yaml.file.empty() ||
      (format == kPythonFormat && yaml.file == "model.py")) {
    ASSIGN_OR_RETURN(yaml.file, FindModelFile(format, files, source));
  }
  const std::string file_name = yaml.file.empty() ? "model.py" : yaml.file;
  if (files.count(file_name) == 0) {
    return SourceError(source, "holds no '" + file_name +
                                   "', the model file its model.yaml names");
  }

  ASSIGN_OR_RETURN(std::unique_ptr<ScratchDir> scratch, ScratchDir::Create());
  const std::string folder = JoinPath(scratch->path(), "model");
  files.erase(kModelYaml);
  RETURN_IF_ERROR(WriteFiles(folder, files));

  json wanted;
  auto own_signature = files.find("signature.json");
  if (signature_json.has_value()) {
    wanted = *signature_json;
  } else if (own_signature != files.end()) {
    // A folder `slipway models export` wrote, or one that brings its own.
    wanted = json::parse(own_signature->second, nullptr, false);
    if (wanted.is_discarded()) {
      return SourceError(source,
                         "holds a signature.json that is not JSON; "
                         "fix it, or remove it and give --sample");
    }
  } else {
    json probed;
    if (format == kPythonFormat && !yaml.file.empty()) {
      ASSIGN_OR_RETURN(probed, ProbePickle(folder, yaml.file, source));
    }
    ASSIGN_OR_RETURN(wanted, DeriveFolderSignatureJson(format, probed, sample,
                                                       target, source));
  }
  ASSIGN_OR_RETURN(Signature signature, Signature::FromJson(wanted));

  // Loaded from the bundle it will be stored as, but for model.yaml's
  // runtime, known once loaded.
  Filesystem* fs = LocalFilesystem();
  const std::string yaml_path = JoinPath(folder, kModelYaml);
  RETURN_IF_ERROR(fs->WriteFileAtomic(
      yaml_path, ModelYamlText(format, yaml.file, yaml.logits, signature,
                               json::object())));
  ASSIGN_OR_RETURN(std::string trial_bundle, PackModelFolder(folder));
  ModelLoadOptions options = loading;
  options.python.workers = 1;
  absl::StatusOr<std::unique_ptr<Model>> trial =
      LoadModel(format, trial_bundle, signature, "", options);
  if (!trial.ok()) {
    // Messages name the model's files as the user gave them, not where the
    // trial unpacked them.
    static const std::regex kUnpacked("/[^ :']*/bundles/[0-9a-f]{64}/");
    return absl::InvalidArgumentError(
        "model '" + source + "' does not load with its signature: " +
        std::regex_replace(std::string(trial.status().message()), kUnpacked,
                           ""));
  }
  std::unique_ptr<Model> loaded = *std::move(trial);
  ImportedModel imported;
  imported.format = std::string(format);
  if (format == kPythonFormat) {
    const auto* python = dynamic_cast<const PythonModel*>(loaded.get());
    imported.runtime = python->info().value("versions", json::object());
  } else {
    ASSIGN_OR_RETURN(imported.runtime, TorchRuntimeVersions(options.torch),
                     "model '" + source + "'");
  }
  RETURN_IF_ERROR(fs->WriteFileAtomic(
      yaml_path, ModelYamlText(format, yaml.file, yaml.logits, signature,
                               imported.runtime)));
  ASSIGN_OR_RETURN(imported.model_bytes, PackModelFolder(folder));
  imported.signature = std::move(signature);
  imported.params = {{"file", file_name}};
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
