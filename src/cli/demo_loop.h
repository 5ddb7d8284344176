// The second part of `slipway demo`: the improvement loop on a simulated
// clock. A server started with --test-clock serves a churn app (rows of
// data/drift_stream.h) whose monitoring windows are an hour long; the demo
// moves the clock an hour at a time instead of waiting, and shows what the
// app does without anyone acting: drift fires an alert, the alert retrains
// on the latest rows, the challenger wins its evaluation and serves a
// canary share of traffic, the canary's feedback promotes it and the
// accuracy recovers; a challenger trained with a bug is discarded; a bad
// manual promotion is rolled back. It ends with the app's timeline.
#ifndef SLIPWAY_CLI_DEMO_LOOP_H_
#define SLIPWAY_CLI_DEMO_LOOP_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "data/table.h"
#include "nlohmann/json.hpp"

namespace slipway {

// A cell as a client sends it: its value, null when missing.
nlohmann::json CellJson(const Column& column, size_t row);

// Runs the loop with `binary` (this slipway) over a new server in
// `work_dir` (created; holds the spec, the data and the server's data
// directory), printing each step. The server is stopped on return.
absl::Status RunImprovementLoopDemo(const std::string& binary,
                                    const std::string& work_dir);

}  // namespace slipway

#endif  // SLIPWAY_CLI_DEMO_LOOP_H_
