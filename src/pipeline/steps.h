// The built-in steps of a train pipeline: ingest, validate, split, train,
// evaluate, register. Each reads what earlier steps left in RunData and
// adds its own results; each returns a StepResult (a one-line message and
// a JSON object of outputs stored with the step) or an error whose message
// tells the user what to fix.
// Thread safety: a RunData belongs to one run's thread.
#ifndef SLIPWAY_PIPELINE_STEPS_H_
#define SLIPWAY_PIPELINE_STEPS_H_

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/filesystem.h"
#include "data/csv.h"
#include "data/table.h"
#include "nlohmann/json.hpp"
#include "pipeline/app_spec.h"
#include "registry/registry.h"
#include "train/trainer.h"

namespace slipway {

// Moves `alias` of `app` to `version` (the server swaps serving when the
// alias is the served one).
using AliasMover = std::function<absl::Status(
    const std::string& app, const std::string& alias, int version)>;

// Where a run's steps find their collaborators.
struct StepEnvironment {
  const AppSpec* spec = nullptr;
  AppRevisionRecord revision;  // spec text, source_dir
  std::string run_id;
  Filesystem* fs = nullptr;
  Registry* registry = nullptr;
  AliasMover move_alias;
  int train_threads = 0;
  const std::atomic<bool>* cancel = nullptr;
};

// What the steps of one run pass along, in memory.
struct RunData {
  std::optional<CsvData> input;  // ingest
  std::optional<Table> train;    // split (or the whole input)
  std::optional<Table> test;     // split
  std::optional<TrainedModel> model;
  nlohmann::json metrics = nlohmann::json::object();
  std::optional<ModelVersionRecord> registered;
};

struct StepResult {
  std::string message;
  nlohmann::json outputs = nlohmann::json::object();
};

// Runs one step. Errors name the step's input and what to change.
absl::StatusOr<StepResult> RunStep(const StepSpec& step,
                                   const StepEnvironment& env, RunData* data);

// `path` as written in a data source, resolved against the directory of the
// applied spec file when relative.
std::string ResolveDataPath(const std::string& path,
                            const std::string& source_dir);

// Reads data source `source` of the spec.
absl::StatusOr<CsvData> ReadDataSource(const DataSourceSpec& source,
                                       const std::string& source_dir,
                                       Filesystem* fs);

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_STEPS_H_
