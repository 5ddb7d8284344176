// Model directories: how a model travels between steps of a run and out of
// user code. A train step (built-in, command or notebook) leaves `model/` in
// its output directory; a register or evaluate step reads it back.
//
//   model/model.yaml      format: xgboost           (required)
//                         file: model.json          (default)
//                         task: regression          (optional; or
//                           binary_classification, multiclass_classification)
//                         target: diagnosis         (optional)
//                         classes: [0, 1]           (optional)
//                         features: [{name: color, categories: [red, blue]}]
//                                                   (optional)
//   model/model.json      native XGBoost JSON (Booster.save_model)
//   model/signature.json  Signature::ToJson() (optional for user code)
//   model/transform.json  the fitted transform (optional)
//   model/params.json     hyperparameters as a JSON object (optional)
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
// with it and transform.json (models/model.h LoadModel), so a broken model
// or transform fails where it is read, with the reason. Every error is InvalidArgument naming the file and the
// fix.
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
};

// Writes model.yaml, the model file, signature.json, params.json and (when
// `transform_json` is not empty) transform.json into `dir`, created with its
// parents. `format` is a models/model.h format name (kXgboostJsonFormat);
// `params` is a JSON object. Each file is written atomically.
absl::Status WriteModelDir(Filesystem* fs, const std::string& dir,
                           std::string_view format,
                           std::string_view model_bytes,
                           const Signature& signature,
                           const nlohmann::json& params,
                           std::string_view transform_json);

// Reads the model directory `dir` (see above). `input` is the table the
// step that wrote it read, used for the categories of categorical features;
// may be null. `fallback_target` names the target when neither
// signature.json nor model.yaml does (the app schema's target); empty means
// "target".
absl::StatusOr<ModelDir> ReadModelDir(Filesystem* fs, const std::string& dir,
                                      const Table* input,
                                      std::string_view fallback_target = "");

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_MODEL_DIR_H_
