#include "testing/python_reference.h"

#include <fstream>
#include <sstream>
#include <string>

#include "core/process.h"
#include "testing/temp_dir.h"

namespace slipway {

absl::StatusOr<std::vector<std::vector<double>>> RunPythonReference(
    std::string_view script, const nlohmann::json& requests,
    int64_t timeout_ms) {
  TempDir dir;
  const std::string script_path = dir.path() + "/reference.py";
  const std::string input = dir.path() + "/requests.json";
  const std::string output = dir.path() + "/answers.json";
  const std::string log = dir.path() + "/python.log";
  std::ofstream(script_path) << script;
  std::ofstream(input) << requests.dump();
  ProcessSpec spec;
  spec.argv = {"/usr/bin/python3", script_path, input, output};
  spec.env = {{"PATH", "/usr/bin:/bin"}, {"OMP_NUM_THREADS", "1"}};
  spec.log_path = log;
  spec.timeout_ms = timeout_ms;
  absl::StatusOr<ProcessResult> result =
      LocalProcessLauncher()->Run(spec, nullptr);
  std::stringstream log_text;
  log_text << std::ifstream(log).rdbuf();
  if (!result.ok() || !result->ok()) {
    return absl::InternalError(
        "python3 reference script failed: " +
        (result.ok() ? result->Describe() : result.status().ToString()) +
        "\n" + log_text.str());
  }
  nlohmann::json answers =
      nlohmann::json::parse(std::ifstream(output), nullptr, false);
  if (!answers.is_array()) {
    return absl::InternalError("python3 reference script wrote no answers\n" +
                               log_text.str());
  }
  return answers.get<std::vector<std::vector<double>>>();
}

}  // namespace slipway
