// Model bundles: a model folder (Python or TorchScript) as the one blob a
// registry stores. A bundle is a POSIX tar archive (pax format, written with
// libarchive) of the folder's regular files and directories, sorted by
// path, with mtime 0, owner 0 and mode 0644 (0755 for directories): the same
// folder always gives the same bytes, so its SHA-256 names its content.
// `tar -tf` lists it. libarchive is loaded (dlopen) on the first bundle
// read or written, not at the program's start; where it cannot be, every
// function returns FailedPrecondition naming the package.
//
// Reading refuses what a folder written by a training step never holds:
// symbolic and hard links, devices, absolute paths, paths with `..`, more
// than kMaxBundleEntries entries or kMaxBundleBytes of file content.
//
// Every error is InvalidArgument naming the folder or the entry and the fix.
// Thread safety: the functions are safe to call concurrently; two processes
// or threads unpacking the same bundle into the same work_dir is safe (see
// UnpackedBundleDir).
#ifndef SLIPWAY_MODELS_MODEL_BUNDLE_H_
#define SLIPWAY_MODELS_MODEL_BUNDLE_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipway {

inline constexpr int kMaxBundleEntries = 10000;
inline constexpr int64_t kMaxBundleBytes = int64_t{4} << 30;  // 4 GiB

// Packs every regular file and directory under `dir` (recursively; the
// paths in the bundle are relative to `dir`). Refuses a folder holding a
// symbolic link, socket, fifo or device, naming it.
absl::StatusOr<std::string> PackModelFolder(const std::string& dir);

// The files of a bundle: relative path ("model.yaml", "sub/x.bin") →
// content. Directories are implied by the paths.
absl::StatusOr<std::map<std::string, std::string>> ReadModelBundle(
    std::string_view bundle);

// Unpacks `bundle` into `work_dir`/bundles/<SHA-256 of the bundle, hex>
// unless that folder exists, and returns the folder. The bundle is unpacked
// into a fresh temporary folder beside it and renamed into place, so the
// folder, once there, is complete; a concurrent unpacker that loses the
// rename discards its copy. `work_dir` is created when missing.
absl::StatusOr<std::string> UnpackedBundleDir(std::string_view bundle,
                                              const std::string& work_dir);

}  // namespace slipway

#endif  // SLIPWAY_MODELS_MODEL_BUNDLE_H_
