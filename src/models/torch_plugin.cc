// The LibTorch plugin (libslipway_torch.so): the C ABI of torch_plugin_api.h
// over torch::jit. This is the only Slipway file that includes LibTorch
// headers; it is compiled with hidden visibility, so the ABI functions are
// its only exported symbols. Every LibTorch or standard library exception is
// caught in the ABI function that called it and returned as an error string.
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/version.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "models/torch_plugin_api.h"

struct SlipwayTorchModule {
  // Module::forward is not a const member, but running it mutates nothing
  // the module owns (the graph executor guards its plan cache with its own
  // lock), which is what lets predictions run concurrently.
  mutable torch::jit::Module module;
};

namespace {

// Hands `message` to the caller as a malloc'ed copy (freed by
// slipway_torch_free_error). Out of memory leaves *error null, which the
// caller reports as an unknown failure.
SlipwayTorchResult Fail(char** error, const std::string& message) noexcept {
  char* copy = static_cast<char*>(std::malloc(message.size() + 1));
  if (copy != nullptr) std::memcpy(copy, message.c_str(), message.size() + 1);
  *error = copy;
  return SLIPWAY_TORCH_ERROR;
}

// LibTorch's message without the C++ stack trace c10::Error::what() adds.
std::string Reason(const c10::Error& e) { return e.what_without_backtrace(); }

// at::set_num_threads is process-wide; the first load decides (see the
// header for why later values are ignored rather than applied).
void SetIntraOpThreadsOnce(int intra_op_threads) {
  static std::once_flag once;
  std::call_once(once,
                 [intra_op_threads] { at::set_num_threads(intra_op_threads); });
}

}  // namespace

extern "C" {

int slipway_torch_abi_version(void) { return SLIPWAY_TORCH_ABI_VERSION; }

const char* slipway_torch_version(void) { return TORCH_VERSION; }

SlipwayTorchResult slipway_torch_load(const char* bytes, size_t size,
                                      int intra_op_threads,
                                      SlipwayTorchModule** module,
                                      char** error) {
  if (intra_op_threads < 1) {
    return Fail(error, "intra_op_threads must be at least 1, got " +
                           std::to_string(intra_op_threads));
  }
  try {
    std::istringstream stream(std::string(bytes, size));
    torch::jit::Module loaded = torch::jit::load(stream, torch::kCPU);
    loaded.eval();
    SetIntraOpThreadsOnce(intra_op_threads);
    *module = new SlipwayTorchModule{std::move(loaded)};
    return SLIPWAY_TORCH_OK;
  } catch (const c10::Error& e) {
    return Fail(error, Reason(e));
  } catch (const std::exception& e) {
    return Fail(error, e.what());
  } catch (...) {
    return Fail(error, "unknown exception while loading the module");
  }
}

SlipwayTorchResult slipway_torch_predict(const SlipwayTorchModule* module,
                                         const float* rows, int64_t num_rows,
                                         int64_t num_cols, float* out,
                                         size_t out_capacity, int64_t* shape,
                                         int* num_dims, char** error) {
  try {
    torch::NoGradGuard no_grad;
    // from_blob wraps the caller's rows without copying; the cast is safe
    // as long as the module does not write to its input, checked below
    // through the tensor's version counter.
    const at::Tensor input =
        torch::from_blob(const_cast<float*>(rows), {num_rows, num_cols},
                         torch::TensorOptions().dtype(torch::kFloat32));
    const uint32_t input_version = input._version();
    std::vector<c10::IValue> inputs{input};
    const c10::IValue result = module->module.forward(std::move(inputs));
    if (input._version() != input_version) {
      return Fail(error,
                  "the module modified its input tensor in place; clone it "
                  "first (x = x.clone()) or use out-of-place operations");
    }
    if (!result.isTensor()) {
      return Fail(error, std::string("forward() returned a ") +
                             result.tagKind() +
                             ", not a Tensor; return one tensor of shape "
                             "[rows] or [rows, outputs]");
    }
    const at::Tensor output =
        result.toTensor().to(torch::kCPU, torch::kFloat32).contiguous();
    const int64_t dims = output.dim();
    for (int64_t d = 0; d < dims && d < SLIPWAY_TORCH_MAX_DIMS; ++d) {
      shape[d] = output.size(d);
    }
    *num_dims = static_cast<int>(dims);
    const size_t count = static_cast<size_t>(output.numel());
    if (count > out_capacity) return SLIPWAY_TORCH_OUTPUT_TOO_LARGE;
    std::memcpy(out, output.data_ptr<float>(), count * sizeof(float));
    return SLIPWAY_TORCH_OK;
  } catch (const c10::Error& e) {
    return Fail(error, Reason(e));
  } catch (const std::exception& e) {
    return Fail(error, e.what());
  } catch (...) {
    return Fail(error, "unknown exception in forward()");
  }
}

void slipway_torch_free_module(SlipwayTorchModule* module) { delete module; }

void slipway_torch_free_error(char* error) { std::free(error); }

}  // extern "C"
