// The TorchScript backend of Model: a torch.jit.save file run by LibTorch
// inside the LibTorch plugin (libslipway_torch.so, torch_plugin_api.h). This
// library never links LibTorch: the first TorchScript model dlopen()s the
// plugin, which then stays loaded for the life of the process (LibTorch
// cannot be unloaded safely).
//
// The module's forward takes one float32 tensor [rows, features] (NaN for
// missing values, passed through) and returns one tensor, read by the
// signature's task:
//   regression                 [rows] or [rows, 1]: the value
//   binary_classification      [rows] or [rows, 1]: P(class 1), or
//                              [rows, 2]: both class probabilities
//   multiclass_classification  [rows, K], K = the signature's class count
// With outputs_are_logits the module gives scores instead of probabilities,
// and Predict applies the sigmoid (one column) or the softmax (several).
//
// Thread safety: Predict runs concurrently without a lock (TorchScript's
// forward is re-entrant in eval mode; torchscript_model_test checks 4
// threads against one). Loading is safe from any thread.
#ifndef SLIPWAY_MODELS_TORCHSCRIPT_MODEL_H_
#define SLIPWAY_MODELS_TORCHSCRIPT_MODEL_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "models/model.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"

namespace slipway {

struct TorchOptions {
  // The plugin to load. Empty: libslipway_torch.so in the directory of the
  // running binary (/proc/self/exe), then the file SLIPWAY_TORCH_PLUGIN
  // names. Each plugin file is opened once per process.
  std::string plugin_path;
  // LibTorch's intra-op thread count. It is process-wide, so the first
  // TorchScript model loaded in the process sets it for all of them.
  int intra_op_threads = 1;
  // model.yaml `output: logits`: the module returns scores, and Predict
  // applies the sigmoid (one output column) or the softmax (several).
  // Classification only.
  bool outputs_are_logits = false;
};

// Loads the TorchScript module in `bytes` (a torch.jit.save file) through
// the plugin, and checks it against `signature` with one prediction on a row
// of zeros: the module must take signature().features().size() inputs and
// give the output shape the task needs (see above).
//
// FailedPrecondition when no plugin can be loaded (the message lists the
// paths tried and their reasons); InvalidArgument when the bytes are not
// TorchScript (with LibTorch's reason), when the test prediction fails, or
// when the output shape does not fit the signature (naming both).
absl::StatusOr<std::unique_ptr<Model>> LoadTorchScriptModel(
    std::string_view bytes, Signature signature, const TorchOptions& options);

// {"torch": "<LibTorch version the plugin was built against>"}, loading the
// plugin as LoadTorchScriptModel does (same errors).
absl::StatusOr<nlohmann::json> TorchRuntimeVersions(
    const TorchOptions& options);

}  // namespace slipway

#endif  // SLIPWAY_MODELS_TORCHSCRIPT_MODEL_H_
