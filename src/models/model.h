// Model: a loaded model version ready to predict, whatever its backend
// (XGBoost in process, TorchScript through the LibTorch plugin, Python in
// worker processes). Callers encode inputs with features.h and read outputs by
// the signature's task.
//
// Ownership: LoadModel copies the bytes it needs; the caller owns the
// returned Model. Thread safety: every method is safe to call concurrently
// (serving shares one Model between request threads).
#ifndef SLIPWAY_MODELS_MODEL_H_
#define SLIPWAY_MODELS_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "models/signature.h"

namespace slipway {

// Native XGBoost JSON model (Booster.save_model("m.json")).
inline constexpr std::string_view kXgboostJsonFormat = "xgboost-json";
// A Python model folder (a joblib/pickle file or a model.py), served by a
// pool of worker processes (python_model.h).
inline constexpr std::string_view kPythonFormat = "python";
// A TorchScript module (torch.jit.save), run by the LibTorch plugin
// (torchscript_model.h).
inline constexpr std::string_view kTorchScriptFormat = "torchscript";

// One process or engine instance a backend predicts with, as metrics and
// the API report it (Python workers; empty for in-process backends).
struct ModelWorker {
  int64_t pid = 0;
  int64_t rss_bytes = 0;   // resident memory, from /proc/PID/status VmRSS
  int64_t requests = 0;    // Predict calls this process answered
  int64_t restarts = 0;    // times this worker slot was replaced
};

class Model {
 public:
  explicit Model(Signature signature) : signature_(std::move(signature)) {}
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const Signature& signature() const { return signature_; }
  // The format LoadModel was given, e.g. kXgboostJsonFormat.
  virtual std::string_view format() const = 0;

  // Predicts `num_rows` rows of signature().features().size() floats each
  // (row-major, NaN = missing) into `out`, resized to
  // num_rows * signature().output_width(): for binary classification
  // P(class 1), for multiclass the class probabilities of each row in class
  // index order, for regression the predicted value.
  virtual absl::Status Predict(const float* rows, size_t num_rows,
                               std::vector<float>* out) const = 0;

  // How many Predict calls the backend runs at once to good effect: the
  // batcher keeps that many batches in flight (1: one at a time).
  virtual int max_concurrency() const { return 1; }
  // True when Predict waits on another process, so it must never run on an
  // HTTP I/O thread.
  virtual bool blocking() const { return false; }
  // The backend's processes (Python workers); empty for in-process ones.
  virtual std::vector<ModelWorker> Workers() const { return {}; }

 private:
  const Signature signature_;
};

// Loads a model of `format` from its serialized `bytes`, checking it against
// `signature` (feature count, output width, objective vs task).
//
// With a non-empty `transform_json` (FeatureTransform::ToJson text, see
// transform.h), `signature` is the model's own (the transform's model
// features) and the returned Model takes raw rows: its signature() is
// RequestSignature(transform, signature), and Predict applies the transform
// to request-encoded rows before the backend predicts (no allocation once a
// thread has predicted a batch that large).
//
// InvalidArgument for an unknown format, a model that does not match, or a
// transform that is malformed or does not give the model's features; the
// message names the mismatch.
absl::StatusOr<std::unique_ptr<Model>> LoadModel(
    std::string_view format, std::string_view bytes, Signature signature,
    std::string_view transform_json = {});

// Loads a model as the registry stores it: `request_signature` is what
// callers send (with a transform, the model's own features come from the
// transform; without one the two are the same). Errors as LoadModel's.
absl::StatusOr<std::unique_ptr<Model>> LoadRegisteredModel(
    std::string_view format, std::string_view bytes,
    Signature request_signature, std::string_view transform_json);

}  // namespace slipway

#endif  // SLIPWAY_MODELS_MODEL_H_
