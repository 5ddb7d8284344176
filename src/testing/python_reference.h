// Reference values computed by Python in the test that checks against them
// (NumPy, SciPy, scikit-learn from /usr/bin/python3): the test passes a
// script and its requests; the script reads the requests from the JSON file
// named by argv[1] and writes its answers, a JSON list of lists of numbers,
// one list per request, to the file named by argv[2].
#ifndef SLIPWAY_TESTING_PYTHON_REFERENCE_H_
#define SLIPWAY_TESTING_PYTHON_REFERENCE_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace slipway {

// The script's answers, in request order. Internal (with the script's log)
// when python3 fails, times out after `timeout_ms` or writes no answers.
absl::StatusOr<std::vector<std::vector<double>>> RunPythonReference(
    std::string_view script, const nlohmann::json& requests,
    int64_t timeout_ms);

}  // namespace slipway

#endif  // SLIPWAY_TESTING_PYTHON_REFERENCE_H_
