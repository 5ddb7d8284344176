// The steps of a pipeline, one attempt at a time: the built-ins (ingest,
// validate, split, transform, train, evaluate, register, score, sink) and
// the user programs (command, notebook).
//
// A step reads its inputs (step_outputs.h: the outputs of the steps it
// depends on, resolved by the executor from pipeline/dag.h) and writes its
// own outputs into its output directory. What a built-in step looks for
// among its inputs, nearest first:
//   validate, split   a table named `data` (else any table)
//   transform         `train` (else `data`) to fit on; `test` is
//                     transformed too when present
//   train             `train` (else `data`); when that table came from a
//                     transform step, the nearest `transform` output, which
//                     the model directory then carries
//   evaluate          a model and `test`
//   register          a model (required: "no model" fails naming the step),
//                     the nearest metrics
//   sink              a table (the nearest)
//   command, notebook every input, linked under SLIPWAY_INPUT_DIR/<step>/
// ingest and score read data entries of the spec instead.
//
// Each returns a StepResult (a one-line message, a JSON object of results
// stored with the step, the outputs it wrote) or an error whose message
// tells the user what to fix. A StepReport collects what the attempt leaves
// behind either way: a failed validate's violations, a program's resource
// usage and events.
//
// Thread safety: RunStep may run concurrently for different steps; a
// StepContext and its StepReport belong to one attempt.
#ifndef SLIPWAY_PIPELINE_STEPS_H_
#define SLIPWAY_PIPELINE_STEPS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/filesystem.h"
#include "core/process.h"
#include "data/csv.h"
#include "models/loader.h"
#include "nlohmann/json.hpp"
#include "pipeline/app_spec.h"
#include "pipeline/command_step.h"
#include "pipeline/step_outputs.h"
#include "registry/registry.h"
#include "store/store.h"

namespace slipway {

// Moves `alias` of `app` to `version` (the server swaps serving when it is
// the served alias); `actor` ("run <id>") goes into the alias history.
// Returns 0 when the alias moved, or the id of the approval request filed
// instead when the app's policy says promotions need approval.
using AliasMover = std::function<absl::StatusOr<int64_t>(
    const std::string& app, const std::string& alias, int version,
    const std::string& actor)>;

// What every step of one run shares.
struct StepEnvironment {
  const AppSpec* spec = nullptr;
  AppRevisionRecord revision;  // spec text, source_dir
  std::string run_id;
  Filesystem* fs = nullptr;
  Registry* registry = nullptr;
  AliasMover move_alias;
  int train_threads = 0;  // XGBoost threads when a step does not say
  int score_threads = 0;  // score step threads when it does not say
  ProcessLauncher* launcher = nullptr;
  std::string python = "/usr/bin/python3";
  std::map<std::string, std::string> base_env;  // for programs
  // How steps load Python and TorchScript models (work folder, python).
  ModelLoadOptions loading;
};

// One attempt of one step.
struct StepContext {
  const StepSpec* step = nullptr;
  const StepEnvironment* env = nullptr;
  StepOutputs inputs;       // nearest first
  std::string output_dir;   // <run_dir>/<step>, empty, created
  std::string input_dir;    // <run_dir>/<step>.inputs (programs)
  std::string log_path;     // <run_dir>/<step>.log
  std::string events_path;  // <run_dir>/<step>.events.jsonl
  // Set when the run is cancelled or the attempt ran past its timeout; a
  // step stops at its next check (training rounds, chunks, the launcher).
  const std::atomic<bool>* stop = nullptr;
  // Progress of a long step ({"rows": n} or {"round": i, "rounds": n});
  // the caller throttles what it stores. May be empty.
  std::function<void(const nlohmann::json&)> progress;
};

struct StepResult {
  std::string message;
  nlohmann::json outputs = nlohmann::json::object();
  StepOutputs produced;
};

struct StepReport {
  // Results kept with a failed step (validate's report).
  nlohmann::json failure_outputs = nlohmann::json::object();
  int64_t cpu_user_micros = 0;
  int64_t cpu_system_micros = 0;
  int64_t peak_rss_kb = 0;
  std::vector<StepEvent> events;
};

absl::StatusOr<StepResult> RunStep(const StepContext& context,
                                   StepReport* report);

// Reads CSV data source `source` of the spec whole.
absl::StatusOr<CsvData> ReadDataSource(const DataSourceSpec& source,
                                       const std::string& source_dir,
                                       Filesystem* fs);

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_STEPS_H_
