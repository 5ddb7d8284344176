// The LibTorch plugin (libslipway_torch.so) that the build put beside the
// `slipway` binary, for tests that load TorchScript models. Tests run from
// <build>/src/<module>, so the plugin is two folders up from the test
// binary; "" where it was not built (libtorch-dev missing), and such tests
// skip.
#ifndef SLIPWAY_TESTING_TORCH_PLUGIN_H_
#define SLIPWAY_TESTING_TORCH_PLUGIN_H_

#include <filesystem>
#include <string>
#include <system_error>

namespace slipway {

inline std::string BuiltTorchPlugin() {
  std::error_code ec;
  const std::filesystem::path exe =
      std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path plugin =
      exe.parent_path() / ".." / ".." / "libslipway_torch.so";
  return std::filesystem::exists(plugin, ec) ? plugin.string() : "";
}

}  // namespace slipway

#endif  // SLIPWAY_TESTING_TORCH_PLUGIN_H_
