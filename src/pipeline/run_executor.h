// RunExecutor: starts pipeline runs of an app's current revision and drives
// them to a final state, each on its own thread (the `local` executor).
//
// A run is `queued` when Start returns, `running` while its steps execute in
// order, then `succeeded`, `failed` (with the failing step and reason) or
// `cancelled`. Every state change is written to the Store before it is
// reported, so a crash leaves a run `running`; Recover() at start-up marks
// such runs `failed` with reason `interrupted`.
//
// Step outputs (row counts, fingerprint, metrics, the registered version)
// are stored as JSON with each step; the data passed between steps stays in
// memory.
// Thread safety: safe for concurrent use. Shutdown() cancels what is running
// and joins the threads; the destructor calls it.
#ifndef SLIPWAY_PIPELINE_RUN_EXECUTOR_H_
#define SLIPWAY_PIPELINE_RUN_EXECUTOR_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/clock.h"
#include "core/filesystem.h"
#include "pipeline/steps.h"
#include "registry/registry.h"
#include "store/store.h"

namespace slipway {

class RunExecutor {
 public:
  struct Options {
    Store* store = nullptr;
    Registry* registry = nullptr;
    Filesystem* fs = nullptr;
    Clock* clock = nullptr;
    int max_concurrent_runs = 2;  // further runs wait, `queued`
    int train_threads = 0;        // XGBoost threads; 0 = every core
    // Moves an alias when a register step names one (the server swaps
    // serving when it is the served alias).
    AliasMover move_alias;
  };

  explicit RunExecutor(Options options);
  ~RunExecutor();
  RunExecutor(const RunExecutor&) = delete;
  RunExecutor& operator=(const RunExecutor&) = delete;

  // Marks runs left unfinished by a previous process failed, reason
  // "interrupted". Call once, before Start.
  absl::Status Recover();

  // Validates that `pipeline` exists in the app's current revision, stores
  // the run (`queued`) and starts it. NotFound for an unknown app or
  // pipeline (naming the pipelines there are). FailedPrecondition when the
  // pipeline already has as many unfinished runs in this process as its
  // spec's `concurrency` allows (default 1), naming them.
  absl::StatusOr<RunRecord> Start(const std::string& app,
                                  const std::string& pipeline);

  // Asks a queued or running run to stop; it ends `cancelled` after the
  // current step. FailedPrecondition when it already finished.
  absl::Status Cancel(const std::string& run_id);

  // Cancels every unfinished run of this process and waits for the threads.
  void Shutdown();

 private:
  struct ActiveRun {
    std::string app;
    std::string pipeline;
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> cancel;
  };

  void Execute(RunRecord run, std::shared_ptr<std::atomic<bool>> cancel);
  // Runs the steps of `run` (already `running`); returns the run's final
  // state and reason.
  std::pair<std::string, std::string> ExecuteSteps(
      const RunRecord& run, std::vector<StepRecord> steps,
      const std::atomic<bool>& cancel);
  void ReapFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  absl::Mutex mu_;
  std::map<std::string, ActiveRun> active_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> finished_ ABSL_GUARDED_BY(mu_);  // to join
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_RUN_EXECUTOR_H_
