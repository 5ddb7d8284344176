// Loading model versions of every format, with the settings of the backends
// that run outside the XGBoost library: the Python worker pool and the
// LibTorch plugin. model.h's LoadModel / LoadRegisteredModel are these with
// the default settings.
//
// Formats and what their bytes hold:
//   xgboost-json  native XGBoost JSON
//   python        a model bundle (model_bundle.h) of the model folder:
//                 model.yaml, the joblib/pickle file it names or model.py,
//                 and whatever else the folder held
//   torchscript   a model bundle with model.yaml and the torch.jit.save
//                 file it names
// A bundle is unpacked once per content (its SHA-256) under
// `work_dir/bundles/`, where Python workers read it.
//
// Thread safety: the functions are safe to call concurrently.
#ifndef SLIPWAY_MODELS_LOADER_H_
#define SLIPWAY_MODELS_LOADER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "models/model.h"
#include "models/python_model.h"
#include "models/signature.h"
#include "models/torchscript_model.h"
#include "nlohmann/json.hpp"

namespace slipway {

struct ModelLoadOptions {
  // Where bundles are unpacked; empty: $TMPDIR (else /tmp)/slipway-models.
  std::string work_dir;
  PythonPoolOptions python;
  TorchOptions torch;
  // The runtime the version recorded (registry lineage, e.g. {"python":
  // "3.11.2", "scikit-learn": "1.2.1"}); a Python model warns when its
  // workers run other versions. Overrides python.expected_versions.
  nlohmann::json runtime = nlohmann::json::object();
};

// As model.h's LoadModel, with `options`.
absl::StatusOr<std::unique_ptr<Model>> LoadModel(
    std::string_view format, std::string_view bytes, Signature signature,
    std::string_view transform_json, const ModelLoadOptions& options);

// As model.h's LoadRegisteredModel, with `options`.
absl::StatusOr<std::unique_ptr<Model>> LoadRegisteredModel(
    std::string_view format, std::string_view bytes,
    Signature request_signature, std::string_view transform_json,
    const ModelLoadOptions& options);

}  // namespace slipway

#endif  // SLIPWAY_MODELS_LOADER_H_
