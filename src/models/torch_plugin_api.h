// The C ABI between Slipway and its LibTorch plugin (libslipway_torch.so,
// built from torch_plugin.cc). The `slipway` binary never links LibTorch: it
// dlopen()s the plugin on the first TorchScript model (torchscript_model.h)
// and looks these functions up by name. Only C types cross the boundary, so
// the plugin and the binary share no C++ ABI, and no exception crosses it.
//
// Conventions:
// - Functions that can fail return a SlipwayTorchResult; on
//   SLIPWAY_TORCH_ERROR they set *error to a NUL-terminated message that the
//   plugin allocated and the caller releases with slipway_torch_free_error.
//   On any other result *error is left untouched.
// - A module handle is owned by the caller from slipway_torch_load until
//   slipway_torch_free_module.
//
// Thread safety: slipway_torch_predict may run concurrently on one module
// (TorchScript's forward is re-entrant in eval mode). Loading and freeing
// are safe from any thread, but a module must not be freed while a predict
// on it runs.
#ifndef SLIPWAY_MODELS_TORCH_PLUGIN_API_H_
#define SLIPWAY_MODELS_TORCH_PLUGIN_API_H_

#include <stddef.h>
#include <stdint.h>

#define SLIPWAY_TORCH_EXPORT __attribute__((visibility("default")))

// Bumped whenever a signature or a convention here changes; the loader
// refuses a plugin whose slipway_torch_abi_version() differs.
#define SLIPWAY_TORCH_ABI_VERSION 1

// The most output dimensions slipway_torch_predict reports.
#define SLIPWAY_TORCH_MAX_DIMS 8

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SLIPWAY_TORCH_OK = 0,
  // *error holds the reason.
  SLIPWAY_TORCH_ERROR = 1,
  // slipway_torch_predict only: the output has more values than the
  // caller's buffer holds; the shape is reported, nothing was copied and
  // *error is not set.
  SLIPWAY_TORCH_OUTPUT_TOO_LARGE = 2,
} SlipwayTorchResult;

// A loaded TorchScript module in eval mode.
typedef struct SlipwayTorchModule SlipwayTorchModule;

// SLIPWAY_TORCH_ABI_VERSION as the plugin was compiled.
SLIPWAY_TORCH_EXPORT int slipway_torch_abi_version(void);

// The LibTorch version the plugin was built against (TORCH_VERSION, e.g.
// "1.13.0a0" for Debian's 1.13.1 packages). Static storage; never freed.
SLIPWAY_TORCH_EXPORT const char* slipway_torch_version(void);

// Loads a TorchScript module from the bytes of a torch.jit.save file (the
// plugin copies them) and puts it in eval mode. `intra_op_threads` (>= 1) is
// LibTorch's process-wide intra-op thread count: the first successful load
// in the process sets it and later values are ignored, because LibTorch
// keeps one setting per process and threads that already ran an operator
// keep the count they started with.
SLIPWAY_TORCH_EXPORT SlipwayTorchResult
slipway_torch_load(const char* bytes, size_t size, int intra_op_threads,
                   SlipwayTorchModule** module, char** error);

// Runs forward() on `num_rows` x `num_cols` row-major float32 `rows`
// (NaN passed through as is) without copying them, so the module must not
// modify its input in place: one that does gets SLIPWAY_TORCH_ERROR (the
// rows it was given are then modified). The output must be one tensor; it
// is converted to contiguous float32 on the CPU and copied once into `out`,
// which holds `out_capacity` floats. `shape` (SLIPWAY_TORCH_MAX_DIMS
// entries) receives the output's first dimensions and *num_dims its rank,
// on SLIPWAY_TORCH_OK and on SLIPWAY_TORCH_OUTPUT_TOO_LARGE.
SLIPWAY_TORCH_EXPORT SlipwayTorchResult slipway_torch_predict(
    const SlipwayTorchModule* module, const float* rows, int64_t num_rows,
    int64_t num_cols, float* out, size_t out_capacity, int64_t* shape,
    int* num_dims, char** error);

// Releases a module from slipway_torch_load; null is ignored.
SLIPWAY_TORCH_EXPORT void slipway_torch_free_module(SlipwayTorchModule* module);

// Releases a message set through an `error` argument; null is ignored.
SLIPWAY_TORCH_EXPORT void slipway_torch_free_error(char* error);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // SLIPWAY_MODELS_TORCH_PLUGIN_API_H_
