#include "models/torchscript_model.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "core/status.h"
#include "models/torch_plugin_api.h"

namespace slipway {
namespace {

constexpr char kPluginFileName[] = "libslipway_torch.so";
constexpr char kPluginEnv[] = "SLIPWAY_TORCH_PLUGIN";
constexpr char kSaveAdvice[] =
    "save it with torch.jit.save(torch.jit.script(model) or "
    "torch.jit.trace(model, example), path)";

// The entry points of one opened plugin file.
struct TorchPlugin {
  decltype(&slipway_torch_version) version = nullptr;
  decltype(&slipway_torch_load) load = nullptr;
  decltype(&slipway_torch_predict) predict = nullptr;
  decltype(&slipway_torch_free_module) free_module = nullptr;
  decltype(&slipway_torch_free_error) free_error = nullptr;
};

ABSL_CONST_INIT absl::Mutex plugins_mu(absl::kConstInit);
// Plugins opened so far, by the path they were opened from. Allocated on
// first use and never freed, like the libraries themselves.
std::map<std::string, const TorchPlugin*>* opened_plugins
    ABSL_GUARDED_BY(plugins_mu) = nullptr;

// The plugin files to try, in order.
std::vector<std::string> CandidatePaths(const TorchOptions& options) {
  if (!options.plugin_path.empty()) return {options.plugin_path};
  std::vector<std::string> paths;
  std::string exe(4096, '\0');
  const ssize_t length = readlink("/proc/self/exe", exe.data(), exe.size());
  if (length > 0) {
    exe.resize(static_cast<size_t>(length));
    paths.push_back(absl::StrCat(exe.substr(0, exe.rfind('/') + 1),
                                 std::string(kPluginFileName)));
  }
  const char* env = std::getenv(kPluginEnv);
  if (env != nullptr && *env != '\0') paths.push_back(env);
  return paths;
}

template <typename Function>
absl::Status Resolve(void* library, const char* name, Function* function) {
  *function = reinterpret_cast<Function>(dlsym(library, name));
  if (*function == nullptr) {
    return absl::NotFoundError(absl::StrCat("it has no symbol ", name));
  }
  return absl::OkStatus();
}

// dlopen()s `path` and resolves the C ABI. The library is never closed,
// even when it turns out unusable: unloading LibTorch is not supported.
absl::StatusOr<const TorchPlugin*> OpenPlugin(const std::string& path) {
  if (access(path.c_str(), F_OK) != 0) {
    return absl::NotFoundError("no such file");
  }
  // A name without a slash would make dlopen search the library path.
  const std::string file =
      path.find('/') == std::string::npos ? "./" + path : path;
  void* library = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* reason = dlerror();
    return absl::FailedPreconditionError(reason != nullptr ? reason
                                                           : "dlopen failed");
  }
  decltype(&slipway_torch_abi_version) abi_version = nullptr;
  RETURN_IF_ERROR(Resolve(library, "slipway_torch_abi_version", &abi_version));
  if (abi_version() != SLIPWAY_TORCH_ABI_VERSION) {
    return absl::FailedPreconditionError(absl::StrCat(
        "it has plugin ABI version ", abi_version(), " but this slipway needs ",
        SLIPWAY_TORCH_ABI_VERSION, "; rebuild the plugin with this slipway"));
  }
  auto plugin = std::make_unique<TorchPlugin>();
  RETURN_IF_ERROR(Resolve(library, "slipway_torch_version", &plugin->version));
  RETURN_IF_ERROR(Resolve(library, "slipway_torch_load", &plugin->load));
  RETURN_IF_ERROR(Resolve(library, "slipway_torch_predict", &plugin->predict));
  RETURN_IF_ERROR(
      Resolve(library, "slipway_torch_free_module", &plugin->free_module));
  RETURN_IF_ERROR(
      Resolve(library, "slipway_torch_free_error", &plugin->free_error));
  return plugin.release();
}

absl::StatusOr<const TorchPlugin*> GetPlugin(const TorchOptions& options) {
  const std::vector<std::string> paths = CandidatePaths(options);
  absl::MutexLock lock(&plugins_mu);
  if (opened_plugins == nullptr) {
    opened_plugins = new std::map<std::string, const TorchPlugin*>();
  }
  std::vector<std::string> tried;
  for (const std::string& path : paths) {
    auto it = opened_plugins->find(path);
    if (it != opened_plugins->end()) return it->second;
    absl::StatusOr<const TorchPlugin*> plugin = OpenPlugin(path);
    if (plugin.ok()) {
      opened_plugins->emplace(path, *plugin);
      return *plugin;
    }
    tried.push_back(
        absl::StrCat(path, " (", std::string(plugin.status().message()), ")"));
  }
  if (options.plugin_path.empty() && std::getenv(kPluginEnv) == nullptr) {
    tried.push_back(absl::StrCat("$", std::string(kPluginEnv), " (not set)"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "the TorchScript backend needs the LibTorch plugin ",
      std::string(kPluginFileName), ", which could not be loaded; tried ",
      absl::StrJoin(tried, ", "), "; install libtorch-dev and rebuild, or set ",
      std::string(kPluginEnv), " to the plugin's path"));
}

// Owns an error string the plugin allocated.
class PluginError {
 public:
  explicit PluginError(const TorchPlugin* plugin) : plugin_(plugin) {}
  ~PluginError() { plugin_->free_error(text_); }
  PluginError(const PluginError&) = delete;
  PluginError& operator=(const PluginError&) = delete;

  char** out() { return &text_; }
  std::string text() const {
    return text_ != nullptr ? std::string(text_) : "unknown LibTorch error";
  }

 private:
  const TorchPlugin* const plugin_;
  char* text_ = nullptr;
};

std::string FirstLine(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

// The line of a TorchScript interpreter error that says what went wrong:
// its traceback ends with the Python-style "RuntimeError: ..." line, and
// other errors are one line long.
std::string ErrorSummary(const std::string& text) {
  size_t start = text.rfind("Error: ");
  if (start == std::string::npos) return FirstLine(text);
  start = text.rfind('\n', start);
  start = start == std::string::npos ? 0 : start + 1;
  return FirstLine(text.substr(start));
}

std::string ShapeText(const int64_t* shape, int num_dims) {
  std::vector<int64_t> dims(shape,
                            shape + std::min(num_dims, SLIPWAY_TORCH_MAX_DIMS));
  return absl::StrCat("[", absl::StrJoin(dims, ", "),
                      num_dims > SLIPWAY_TORCH_MAX_DIMS ? ", ...]" : "]");
}

// How the module's output columns become Predict's outputs.
enum class OutputMapping {
  kCopy,            // already what the signature wants
  kColumn1,         // binary, [rows, 2] probabilities: P(class 1)
  kSigmoid,         // one logit per row
  kSoftmax,         // multiclass logits
  kSoftmaxColumn1,  // binary, [rows, 2] logits: P(class 1)
};

std::string ExpectedShape(const Signature& signature) {
  switch (signature.task()) {
    case Task::kRegression:
      return "[rows] or [rows, 1] (the value)";
    case Task::kBinaryClassification:
      return "[rows] or [rows, 1] (P(class 1)) or [rows, 2] (both class "
             "probabilities), or the logits in those shapes with `output: "
             "logits`";
    case Task::kMulticlassClassification:
      return absl::StrCat("[rows, ", signature.class_labels().size(),
                          "] (one probability per class, or logits with "
                          "`output: logits`)");
  }
  return "";
}

// The mapping for a module giving `columns` values a row, or nullopt when
// that width does not fit the signature.
std::optional<OutputMapping> MappingFor(const Signature& signature,
                                        int64_t columns, bool logits) {
  switch (signature.task()) {
    case Task::kRegression:
      if (columns == 1) return OutputMapping::kCopy;
      return std::nullopt;
    case Task::kBinaryClassification:
      if (columns == 1) {
        return logits ? OutputMapping::kSigmoid : OutputMapping::kCopy;
      }
      if (columns == 2) {
        return logits ? OutputMapping::kSoftmaxColumn1
                      : OutputMapping::kColumn1;
      }
      return std::nullopt;
    case Task::kMulticlassClassification:
      if (columns == static_cast<int64_t>(signature.class_labels().size())) {
        return logits ? OutputMapping::kSoftmax : OutputMapping::kCopy;
      }
      return std::nullopt;
  }
  return std::nullopt;
}

// Columns per row of an output of `shape` for `num_rows` rows: [rows] is one
// column, [rows, k] is k; anything else is -1.
int64_t ColumnsOf(const int64_t* shape, int num_dims, size_t num_rows) {
  if (num_dims < 1 || num_dims > 2) return -1;
  if (shape[0] != static_cast<int64_t>(num_rows)) return -1;
  return num_dims == 1 ? 1 : shape[1];
}

// Softmax of `n` scores in double, written as float.
void Softmax(const float* scores, size_t n, float* out) {
  const double top = *std::max_element(scores, scores + n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(scores[i] - top);
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(std::exp(scores[i] - top) / sum);
  }
}

class TorchScriptModel final : public Model {
 public:
  TorchScriptModel(Signature signature, const TorchPlugin* plugin,
                   SlipwayTorchModule* module, bool logits)
      : Model(std::move(signature)),
        plugin_(plugin),
        module_(module),
        logits_(logits) {}
  ~TorchScriptModel() override { plugin_->free_module(module_); }

  std::string_view format() const override { return kTorchScriptFormat; }

  // Runs the probe prediction and fixes the output mapping; called once by
  // LoadTorchScriptModel before the model is shared.
  absl::Status Configure() {
    const std::vector<float> zeros(signature().features().size(), 0.0f);
    // Every shape that fits a signature holds at most this many values for
    // one row; a larger output is reported by shape without being copied.
    std::vector<float> output(std::max<size_t>(2, signature().output_width()));
    int64_t shape[SLIPWAY_TORCH_MAX_DIMS] = {};
    int num_dims = 0;
    RETURN_IF_ERROR(
        Run(zeros.data(), 1, output.data(), output.size(), shape, &num_dims),
        absl::StrCat("torchscript model: test prediction on one row of ",
                     zeros.size(), " zeros (the signature's feature count)"));
    const int64_t columns = ColumnsOf(shape, num_dims, 1);
    std::optional<OutputMapping> mapping =
        MappingFor(signature(), columns, logits_);
    if (!mapping.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "torchscript model gives an output of shape ",
          ShapeText(shape, num_dims), " for one row, but the signature's ",
          std::string(TaskName(signature().task())), " task expects ",
          ExpectedShape(signature()),
          "; change the module's output or the signature"));
    }
    columns_ = static_cast<size_t>(columns);
    mapping_ = *mapping;
    return absl::OkStatus();
  }

  absl::Status Predict(const float* rows, size_t num_rows,
                       std::vector<float>* out) const override {
    const size_t width = static_cast<size_t>(signature().output_width());
    if (num_rows == 0) {
      out->clear();
      return absl::OkStatus();
    }
    if (rows == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("predict: no input rows given for ", num_rows, " rows"));
    }
    int64_t shape[SLIPWAY_TORCH_MAX_DIMS] = {};
    int num_dims = 0;
    if (mapping_ == OutputMapping::kCopy) {
      out->resize(num_rows * width);
      RETURN_IF_ERROR(
          Run(rows, num_rows, out->data(), out->size(), shape, &num_dims),
          "torchscript model predict");
      return CheckShape(shape, num_dims, num_rows);
    }
    // The module's own columns go to a per-thread buffer, then mapped.
    thread_local std::vector<float> scores;
    scores.resize(num_rows * columns_);
    RETURN_IF_ERROR(
        Run(rows, num_rows, scores.data(), scores.size(), shape, &num_dims),
        "torchscript model predict");
    RETURN_IF_ERROR(CheckShape(shape, num_dims, num_rows));
    out->resize(num_rows * width);
    for (size_t r = 0; r < num_rows; ++r) {
      const float* row = scores.data() + r * columns_;
      float* dest = out->data() + r * width;
      switch (mapping_) {
        case OutputMapping::kCopy:
          break;
        case OutputMapping::kColumn1:
          dest[0] = row[1];
          break;
        case OutputMapping::kSigmoid:
          dest[0] = static_cast<float>(1.0 / (1.0 + std::exp(-double{row[0]})));
          break;
        case OutputMapping::kSoftmax:
          Softmax(row, columns_, dest);
          break;
        case OutputMapping::kSoftmaxColumn1: {
          float both[2];
          Softmax(row, 2, both);
          dest[0] = both[1];
          break;
        }
      }
    }
    return absl::OkStatus();
  }

 private:
  // One forward() through the plugin into `out` (capacity floats).
  absl::Status Run(const float* rows, size_t num_rows, float* out,
                   size_t capacity, int64_t* shape, int* num_dims) const {
    PluginError error(plugin_);
    const SlipwayTorchResult result =
        plugin_->predict(module_, rows, static_cast<int64_t>(num_rows),
                         static_cast<int64_t>(signature().features().size()),
                         out, capacity, shape, num_dims, error.out());
    if (result == SLIPWAY_TORCH_ERROR) {
      return absl::InvalidArgumentError(
          absl::StrCat("forward() failed: ", ErrorSummary(error.text())));
    }
    // Too large for the buffer: the shape check names the shape.
    return absl::OkStatus();
  }

  // The module gave the probe's shape for this batch (a module could change
  // its output width with the batch; Predict would then misread it).
  absl::Status CheckShape(const int64_t* shape, int num_dims,
                          size_t num_rows) const {
    if (ColumnsOf(shape, num_dims, num_rows) !=
        static_cast<int64_t>(columns_)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "torchscript model gave an output of shape ",
          ShapeText(shape, num_dims), " for ", num_rows, " rows; expected [",
          num_rows, ", ", columns_, "] as for the test prediction at load"));
    }
    return absl::OkStatus();
  }

  const TorchPlugin* const plugin_;
  SlipwayTorchModule* const module_;
  const bool logits_;
  // Set by Configure, before the model is shared.
  size_t columns_ = 0;
  OutputMapping mapping_ = OutputMapping::kCopy;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadTorchScriptModel(
    std::string_view bytes, Signature signature, const TorchOptions& options) {
  if (options.outputs_are_logits && !signature.is_classification()) {
    return absl::InvalidArgumentError(
        "torchscript model: `output: logits` applies only to classification, "
        "but the signature's task is regression; remove it from model.yaml");
  }
  if (options.intra_op_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("torchscript model: intra_op_threads must be at least 1, "
                     "got ",
                     options.intra_op_threads));
  }
  ASSIGN_OR_RETURN(const TorchPlugin* plugin, GetPlugin(options));
  SlipwayTorchModule* module = nullptr;
  PluginError error(plugin);
  if (plugin->load(bytes.data(), bytes.size(), options.intra_op_threads,
                   &module, error.out()) != SLIPWAY_TORCH_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("torchscript model: LibTorch cannot load it (",
                     FirstLine(error.text()), "); ", kSaveAdvice));
  }
  auto model = std::make_unique<TorchScriptModel>(
      std::move(signature), plugin, module, options.outputs_are_logits);
  RETURN_IF_ERROR(model->Configure());
  return std::unique_ptr<Model>(std::move(model));
}

absl::StatusOr<nlohmann::json> TorchRuntimeVersions(
    const TorchOptions& options) {
  ASSIGN_OR_RETURN(const TorchPlugin* plugin, GetPlugin(options));
  return nlohmann::json{{"torch", plugin->version()}};
}

}  // namespace slipway
