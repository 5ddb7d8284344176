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
// ImportFolderModel takes a python or torchscript model as a model bundle
// (model_bundle.h): a packed folder, or one packed file (a joblib/pickle
// file, a .pt file). The model file is model.yaml's `file` when the bundle
// holds a model.yaml, else model.py, else the bundle's one top-level
// .joblib/.pkl/.pickle (python) or model.pt, else its one .pt/.pth
// (torchscript). Its signature is given, or derived:
//   features  a pickled object's feature_names_in_, in that order (the
//             sample must hold each), else the sample's columns but the
//             target, in the sample's order; a string column is
//             categorical, its categories its distinct values in pandas'
//             category order; a numeric feature takes its column's type
//   task      from the sample's target column (integer or string with at
//             most 20 distinct values: classification, else regression),
//             else from the pickled object (classes_: classification,
//             none: regression); model.py and torchscript need the target
//             column
//   classes   the pickled object's classes_, else the target's distinct
//             values
//   target    `target` (empty: "target")
// Either way the model is loaded with the signature (loader.h LoadModel,
// one Python worker), so a signature the model does not accept fails with
// the backend's reason. The returned bundle is the given one with model.yaml
// (re)written: format, file, output (torchscript logits), task, target,
// classes, features and the runtime it loaded with. Nothing is written
// outside the model work directory ($TMPDIR/slipway-models), where the
// bundle is unpacked to load and repack it (and, to read a pickle's
// feature_names_in_ and classes_ for a derived signature, one /usr/bin/python3
// process loads it first).
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
#include "models/loader.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"

namespace slipway {

// {"xgboost": XGBoostVersionText(), "slipway": "<this binary's version>"}.
nlohmann::json RuntimeVersions();

struct ImportedModel {
  std::string format;       // kXgboostJsonFormat, kPythonFormat, ...
  std::string model_bytes;  // native XGBoost JSON, or a model bundle
  Signature signature;
  // What the model file says about its training: {"objective": ...,
  // "num_feature": n, "num_class": k} for XGBoost; {"file": ...} for a
  // model bundle.
  nlohmann::json params = nlohmann::json::object();
  // What the model ran on at import: a python model's package versions,
  // {"torch": ...} for torchscript; empty for XGBoost (see
  // RuntimeVersions()).
  nlohmann::json runtime = nlohmann::json::object();
};

// `source` names the file in messages ("model.ubj"). `signature_json`: the
// signature to use, or nullopt to derive one with `sample` (may be null).
absl::StatusOr<ImportedModel> ImportXgboostModel(
    std::string_view model_bytes, const std::string& source,
    const std::optional<nlohmann::json>& signature_json, const Table* sample);

// `format` is kPythonFormat or kTorchScriptFormat; `bundle` a model bundle;
// `source` names it in messages; `target` is the app schema's target (empty:
// none). `signature_json` and `sample` as for ImportXgboostModel. The trial
// load runs with `loading` (its work_dir holds the unpacked bundle, one
// Python worker).
absl::StatusOr<ImportedModel> ImportFolderModel(
    std::string_view format, std::string_view bundle, const std::string& source,
    const std::optional<nlohmann::json>& signature_json, const Table* sample,
    std::string_view target, const ModelLoadOptions& loading = {});

// The model.yaml of a model folder: `format` (model.yaml's name: xgboost,
// python, torchscript), `file` (left out when empty), `output: logits` when
// `logits`, the signature's task, target and classes, with `with_features`
// its features (name, type, categories), and `runtime` when it is a
// non-empty object.
std::string ModelYamlText(std::string_view format, const std::string& file,
                          bool logits, const Signature& signature,
                          const nlohmann::json& runtime,
                          bool with_features = true);

// `mlmodel_yaml` is the text of the MLmodel file at `path` (for messages).
absl::StatusOr<std::string> MlflowXgboostDataPath(
    const std::string& mlmodel_yaml, const std::string& path);

}  // namespace slipway

#endif  // SLIPWAY_MODELS_IMPORT_H_
