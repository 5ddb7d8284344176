// Model directories: how a model travels between steps of a run and out of
// user code. A train step (built-in, command or notebook) leaves `model/` in
// its output directory; a register or evaluate step reads it back.
//
//   model/model.yaml      format: xgboost           (required; or python,
//                                                    torchscript)
//                         file: model.json          (default; torchscript:
//                           model.pt; python: the joblib/pickle file, or
//                           omitted when model.py is the model)
//                         task: regression          (optional; or
//                           binary_classification, multiclass_classification)
//                         target: diagnosis         (optional)
//                         classes: [0, 1]           (optional)
//                         features: [{name: color, categories: [red, blue]}]
//                                                   (optional)
//                         output: logits            (torchscript only; or
//                           probabilities, the default)
//                         runtime: {python: "3.11.2"}  (optional; versions
//                           a python model's workers are compared with)
//   model/model.json      native XGBoost JSON (Booster.save_model)
//   model/signature.json  Signature::ToJson() (optional for user code)
//   model/transform.json  the fitted transform (optional)
//   model/params.json     hyperparameters as a JSON object (optional)
//
// A python or torchscript directory travels whole, as a model bundle
// (models/model_bundle.h) of every file in it, model.yaml included: a
// python model may import helper modules or read data beside model.py.
// Such a model file records no signature, so without signature.json
// model.yaml must give the `task` and the `features` in model order, and a
// multiclass model its `classes` (binary: "0", "1" unless given; a pickled
// classifier's classes_ replace them). The one exception: a python model
// without `features` takes the step's input table's columns but the
// target, in table order, and is accepted only when the pickled object's
// feature_names_in_ confirms them.
//
// Without signature.json the signature is derived from the model file:
// feature names and types from model.json's `feature_names` /
// `feature_types` ("c" is categorical, anything else numeric; without names,
// model.yaml `features` must list every feature in model order); the task
// from model.yaml, else from the objective (binary:* binary, multi:*
// multiclass, anything else regression); class labels from model.yaml
// `classes`, else "0", "1", ... in class index order (int64 when every label
// is an integer); the target from model.yaml, else the caller's fallback.
// A categorical feature's categories, in code order, come from model.yaml
// `features`, else from the step's input table (its distinct values,
// sorted as pandas orders `astype("category")`: bytewise for strings,
// numerically for numbers), else the directory is refused naming the
// feature.
//
// The signature (read or derived) is always checked by loading the model
// with it and transform.json (models/loader.h LoadModel; a python model with
// one worker), so a broken model or transform fails where it is read, with
// the reason. Every error is InvalidArgument naming the file and the fix.
//
// Thread safety: the functions are safe to call concurrently on different
// directories.
#ifndef SLIPWAY_PIPELINE_MODEL_DIR_H_
#define SLIPWAY_PIPELINE_MODEL_DIR_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/filesystem.h"
#include "data/table.h"
#include "models/loader.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"

namespace slipway {

// What a model directory holds, ready to register or load.
struct ModelDir {
  std::string format;  // models/model.h format name, e.g. "xgboost-json"
  std::string model_bytes;
  // The model's own signature: the features model.json takes (with a
  // transform, the transform's outputs, not the raw request fields).
  Signature signature;
  std::string transform_json;  // empty: no transform.json
  nlohmann::json params = nlohmann::json::object();
  // What the model ran on when it was loaded: a python model's
  // info()["versions"], TorchRuntimeVersions() for torchscript; empty for
  // xgboost-json (import.h RuntimeVersions() describes it).
  nlohmann::json runtime = nlohmann::json::object();
};

// Writes model.yaml, the model file, signature.json, params.json and (when
// `transform_json` is not empty) transform.json into `dir`, created with its
// parents. `format` is a models/model.h format name; for python and
// torchscript `model_bytes` is a model bundle, whose files (its model.yaml
// included) are unpacked into `dir`, signature.json replacing the bundle's.
// `params` is a JSON object. Each file is written atomically, model.yaml
// last.
absl::Status WriteModelDir(Filesystem* fs, const std::string& dir,
                           std::string_view format,
                           std::string_view model_bytes,
                           const Signature& signature,
                           const nlohmann::json& params,
                           std::string_view transform_json);

// Reads the model directory `dir` (see above); a python or torchscript
// directory is packed from the local disk whatever `fs` is. `input` is the table the
// step that wrote it read, used for the categories of categorical features;
// may be null. `fallback_target` names the target when neither
// signature.json nor model.yaml does (the app schema's target); empty means
// "target". The check-load runs with `loading` (one Python worker).
absl::StatusOr<ModelDir> ReadModelDir(Filesystem* fs, const std::string& dir,
                                      const Table* input,
                                      std::string_view fallback_target = "",
                                      const ModelLoadOptions& loading = {});

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_MODEL_DIR_H_
