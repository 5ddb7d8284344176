#include "models/loader.h"

#include <cstdlib>
#include <map>
#include <string>
#include <utility>

#include "core/filesystem.h"
#include "core/status.h"
#include "models/model_bundle.h"
#include "models/transform.h"
#include "models/xgboost_model.h"
#include "yaml-cpp/yaml.h"

namespace slipway {
namespace {

// A backend model behind its fitted transform: takes rows encoded with the
// request signature, predicts with the backend on the transformed rows.
class TransformedModel : public Model {
 public:
  TransformedModel(FeatureTransform transform, std::unique_ptr<Model> inner)
      : Model(RequestSignature(transform, inner->signature())),
        transform_(std::move(transform)),
        inner_(std::move(inner)) {}

  std::string_view format() const override { return inner_->format(); }

  absl::Status Predict(const float* rows, size_t num_rows,
                       std::vector<float>* out) const override {
    // One buffer per serving thread, grown to its largest batch.
    thread_local std::vector<float> model_rows;
    transform_.Apply(rows, num_rows, &model_rows);
    return inner_->Predict(model_rows.data(), num_rows, out);
  }
  int max_concurrency() const override { return inner_->max_concurrency(); }
  bool blocking() const override { return inner_->blocking(); }
  std::vector<ModelWorker> Workers() const override {
    return inner_->Workers();
  }

 private:
  const FeatureTransform transform_;
  const std::unique_ptr<Model> inner_;
};

// What a bundle's model.yaml says the backend needs: the model file and,
// for TorchScript, whether the module gives logits. The folder was checked
// when it was registered (pipeline/model_dir.h), so only these keys are
// read here.
struct BundleYaml {
  std::string file;  // python: empty when model.py is the model
  bool logits = false;
};

absl::StatusOr<BundleYaml> ReadBundleYaml(std::string_view format,
                                          const std::string& text) {
  BundleYaml yaml;
  if (format == kTorchScriptFormat) yaml.file = "model.pt";
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(
          "the model bundle's model.yaml is not a map");
    }
    if (root["file"]) yaml.file = root["file"].as<std::string>();
    if (root["output"]) yaml.logits = root["output"].as<std::string>() == "logits";
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        "the model bundle's model.yaml is malformed: " + e.msg);
  }
  return yaml;
}

std::string WorkDir(const ModelLoadOptions& options) {
  if (!options.work_dir.empty()) return options.work_dir;
  const char* tmp = std::getenv("TMPDIR");
  return JoinPath(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                  "slipway-models");
}

absl::StatusOr<std::unique_ptr<Model>> LoadBackend(
    std::string_view format, std::string_view bytes, Signature signature,
    const ModelLoadOptions& options) {
  if (format == kXgboostJsonFormat) {
    return LoadXgboostJsonModel(bytes, std::move(signature));
  }
  if (format == kPythonFormat) {
    ASSIGN_OR_RETURN(std::string dir,
                     UnpackedBundleDir(bytes, WorkDir(options)));
    ASSIGN_OR_RETURN(std::string yaml_text,
                     LocalFilesystem()->ReadFile(JoinPath(dir, "model.yaml")),
                     "the python model bundle");
    ASSIGN_OR_RETURN(BundleYaml yaml, ReadBundleYaml(format, yaml_text));
    PythonPoolOptions python = options.python;
    if (!options.runtime.empty()) python.expected_versions = options.runtime;
    return LoadPythonModel(dir, yaml.file, std::move(signature), python);
  }
  if (format == kTorchScriptFormat) {
    using Files = std::map<std::string, std::string>;
    ASSIGN_OR_RETURN(Files files, ReadModelBundle(bytes));
    auto yaml_file = files.find("model.yaml");
    if (yaml_file == files.end()) {
      return absl::InvalidArgumentError(
          "the torchscript model bundle holds no model.yaml");
    }
    ASSIGN_OR_RETURN(BundleYaml yaml, ReadBundleYaml(format, yaml_file->second));
    auto module = files.find(yaml.file);
    if (module == files.end()) {
      return absl::InvalidArgumentError(
          "the torchscript model bundle holds no '" + yaml.file +
          "', the file its model.yaml names");
    }
    TorchOptions torch = options.torch;
    torch.outputs_are_logits = yaml.logits;
    return LoadTorchScriptModel(module->second, std::move(signature), torch);
  }
  return absl::InvalidArgumentError(
      "unknown model format '" + std::string(format) + "' (supported: " +
      std::string(kXgboostJsonFormat) + ", " + std::string(kPythonFormat) +
      ", " + std::string(kTorchScriptFormat) + ")");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadModel(
    std::string_view format, std::string_view bytes, Signature signature,
    std::string_view transform_json, const ModelLoadOptions& options) {
  if (transform_json.empty()) {
    return LoadBackend(format, bytes, std::move(signature), options);
  }
  ASSIGN_OR_RETURN(FeatureTransform transform,
                   FeatureTransform::Parse(transform_json));
  RETURN_IF_ERROR(transform.CheckModelSignature(signature),
                  "the model's transform");
  ASSIGN_OR_RETURN(std::unique_ptr<Model> inner,
                   LoadBackend(format, bytes, std::move(signature), options));
  return std::unique_ptr<Model>(
      new TransformedModel(std::move(transform), std::move(inner)));
}

absl::StatusOr<std::unique_ptr<Model>> LoadRegisteredModel(
    std::string_view format, std::string_view bytes,
    Signature request_signature, std::string_view transform_json,
    const ModelLoadOptions& options) {
  if (transform_json.empty()) {
    return LoadModel(format, bytes, std::move(request_signature), {}, options);
  }
  ASSIGN_OR_RETURN(FeatureTransform transform,
                   FeatureTransform::Parse(transform_json));
  Signature model_signature(
      request_signature.task(), transform.model_features(),
      request_signature.target(), request_signature.label_type(),
      request_signature.class_labels());
  return LoadModel(format, bytes, std::move(model_signature), transform_json,
                   options);
}

absl::StatusOr<std::unique_ptr<Model>> LoadModel(
    std::string_view format, std::string_view bytes, Signature signature,
    std::string_view transform_json) {
  return LoadModel(format, bytes, std::move(signature), transform_json,
                   ModelLoadOptions());
}

absl::StatusOr<std::unique_ptr<Model>> LoadRegisteredModel(
    std::string_view format, std::string_view bytes,
    Signature request_signature, std::string_view transform_json) {
  return LoadRegisteredModel(format, bytes, std::move(request_signature),
                             transform_json, ModelLoadOptions());
}

}  // namespace slipway
