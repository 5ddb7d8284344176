// Import of models trained elsewhere, and the runtime a model version
// records in its lineage.
//
// ImportXgboostModel takes an XGBoost model file (native JSON, or UBJSON as
// Booster.save_model("m.ubj") writes it) and the signature to serve it
// with, either given (Signature JSON) or derived:
//   features  the model's feature_names in order (required); a feature
//             whose feature_types entry is "c" is categorical, its
//             categories the distinct values of the sample's column in
//             pandas' category order (bytewise for strings, numerically for
//             numbers); a numeric feature takes the sample column's type
//             (float64 without one)
//   task      from the objective (binary:* binary, multi:* multiclass,
//             anything else regression)
//   target    the one sample column that is not a feature ("target" when
//             there is none or several)
//   classes   the target column's distinct values (sorted as categories
//             are) when their count matches the model's, else "0", "1", ...
// Either way the model is loaded with the signature (model.h LoadModel), so
// a signature the model does not accept fails with LoadModel's reason. A
// UBJSON model is stored as native JSON (the same trees; the format Slipway
// serves).
//
// MlflowXgboostDataPath reads an MLflow `MLmodel` file (YAML) and returns
// flavors.xgboost.data, the model file's path relative to the MLflow model
// directory (MLflow's xgboost flavor: `flavors: {xgboost: {data:
// model.xgb, model_format: xgb, xgb_version: ...}, python_function:
// {...}}`).
//
// Every error is InvalidArgument naming what was wrong and the fix.
// Thread safety: the functions are safe to call concurrently.
#ifndef SLIPWAY_MODELS_IMPORT_H_
#define SLIPWAY_MODELS_IMPORT_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "data/table.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"

namespace slipway {

// {"xgboost": XGBoostVersionText(), "slipway": "<this binary's version>"}.
nlohmann::json RuntimeVersions();

struct ImportedModel {
  std::string format;       // kXgboostJsonFormat
  std::string model_bytes;  // native XGBoost JSON
  Signature signature;
  // What the model file says about its training: {"objective": ...,
  // "num_feature": n, "num_class": k}.
  nlohmann::json params = nlohmann::json::object();
};

// `source` names the file in messages ("model.ubj"). `signature_json`: the
// signature to use, or nullopt to derive one with `sample` (may be null).
absl::StatusOr<ImportedModel> ImportXgboostModel(
    std::string_view model_bytes, const std::string& source,
    const std::optional<nlohmann::json>& signature_json, const Table* sample);

// `mlmodel_yaml` is the text of the MLmodel file at `path` (for messages).
absl::StatusOr<std::string> MlflowXgboostDataPath(
    const std::string& mlmodel_yaml, const std::string& path);

}  // namespace slipway

#endif  // SLIPWAY_MODELS_IMPORT_H_
