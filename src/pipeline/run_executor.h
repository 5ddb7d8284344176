// RunExecutor: starts pipeline runs of an app's current revision and drives
// them to a final state, each on its own thread (the `local` executor).
//
// A run is `queued` when Start returns (at most max_concurrent_runs run at
// once, the others wait), `running` while its steps execute, then
// `succeeded`, `failed` (naming the failed steps and why) or `cancelled`.
// Every state change is written to the Store before it is reported, so a
// crash leaves a run `running`; Recover() at start-up marks such runs
// `failed` with reason `interrupted` and starts a new run of each whose
// pipeline says `retry_interrupted` (once: a retry that is interrupted in
// turn is not retried again).
//
// Steps run as a DAG (pipeline/dag.h): a step starts once every step it
// depends on succeeded, at most max_parallel_steps at a time per run. A
// failed step skips its dependents (`skipped`), while independent branches
// go on to their end. Per step (StepPolicySpec):
// - attempts: 1 + `retries`; before retry i the step waits
//   retry_backoff * 2^(i-1) on the Clock (a cancel ends the wait);
// - timeout: command and notebook steps get it from the ProcessLauncher
//   (the whole process group is killed); a built-in step is asked to stop
//   when its attempt is past the deadline and fails with "step 'x' exceeded
//   its timeout (10s)";
// - memory: the address-space limit of command and notebook programs;
// - cache: a step that may reuse outputs (step_cache.h) whose key matches an
//   earlier successful run's reuses that run's output files (hard links)
//   instead of running: `succeeded`, with cached_from_run set.
// Cancel stops the running steps (the launcher kills program groups;
// built-ins stop at their next check) and skips those not started.
//
// On disk: <run_root>/<run_id>/<step>/ holds each step's outputs
// (step_outputs.h), <step>.log its log (program output, and a line per
// attempt), <step>.events.jsonl what a program appended to
// $SLIPWAY_EVENTS (also stored as run events), <step>.inputs/ the links a
// program reads its inputs from. Run directories are kept: the step cache
// reuses them.
//
// Progress of a running step (rows read, boosting rounds) is stored in its
// progress_json at most once per progress_interval_micros.
//
// Thread safety: safe for concurrent use. Shutdown() cancels what is running
// and joins the threads; the destructor calls it.
#ifndef SLIPWAY_PIPELINE_RUN_EXECUTOR_H_
#define SLIPWAY_PIPELINE_RUN_EXECUTOR_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "audit/audit_log.h"
#include "core/clock.h"
#include "core/filesystem.h"
#include "core/process.h"
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
    // Runs command and notebook steps; null: LocalProcessLauncher().
    ProcessLauncher* launcher = nullptr;
    // Where run directories go; the server uses <data_dir>/runs. Empty:
    // <temp dir>/slipway-runs (with a warning in the log).
    std::string run_root;
    int max_concurrent_runs = 2;  // further runs wait, `queued`
    int max_parallel_steps = 0;   // per run; 0: the number of cores
    int train_threads = 0;        // XGBoost threads; 0 = every core
    int score_threads = 0;        // score step threads; 0 = every core
    // The python of command steps that run python/python3 and of notebooks,
    // and of the Python workers steps load models with.
    std::string python = "/usr/bin/python3";
    // Where steps unpack Python and TorchScript model bundles
    // (models/loader.h); the server uses <data_dir>/models. Empty:
    // <temp dir>/slipway-models.
    std::string models_dir;
    // The environment programs start from; empty: PATH, HOME, LANG and
    // LC_ALL of this process, where set.
    std::map<std::string, std::string> program_env;
    int64_t progress_interval_micros = 1'000'000;
    // Moves an alias when a register step names one (the server swaps
    // serving when it is the served alias).
    AliasMover move_alias;
    // Where run starts and ends are recorded ("run.start", "run.finish");
    // null: nowhere.
    AuditLog* audit = nullptr;
  };

  explicit RunExecutor(Options options);
  ~RunExecutor();
  RunExecutor(const RunExecutor&) = delete;
  RunExecutor& operator=(const RunExecutor&) = delete;

  // Marks runs left unfinished by a previous process failed, reason
  // "interrupted", and starts the retries their pipelines ask for. Call
  // once, before Start, once everything a run may call (move_alias) works.
  absl::Status Recover();

  // Validates that `pipeline` exists in the app's current revision, stores
  // the run (`queued`) and starts it. NotFound for an unknown app or
  // pipeline (naming the pipelines there are). FailedPrecondition when the
  // pipeline already has as many unfinished runs in this process as its
  // spec's `concurrency` allows (default 1), naming them.
  // `actor` ("api:<token name>", "scheduler", "event <name>") is who
  // started it, for the audit log.
  absl::StatusOr<RunRecord> Start(const std::string& app,
                                  const std::string& pipeline,
                                  const std::string& actor);

  // Asks a queued or running run to stop; it ends `cancelled` once its
  // running steps have stopped. FailedPrecondition when it already finished.
  absl::Status Cancel(const std::string& run_id);

  // Cancels every unfinished run of this process and waits for the threads.
  void Shutdown();

  // The directory of run `run_id`'s files.
  std::string RunDir(const std::string& run_id) const;

 private:
  // Cancellation and wake-ups of one run, shared by its threads.
  class RunControl;
  class RunGraph;

  struct ActiveRun {
    std::string app;
    std::string pipeline;
    std::thread thread;
    std::shared_ptr<RunControl> control;
  };

  absl::StatusOr<RunRecord> StartRun(const std::string& app,
                                     const std::string& pipeline,
                                     const std::string& retry_of,
                                     const std::string& actor);
  // Records a run's start or end in the audit log, if there is one; a
  // failure is logged (the run itself is already stored).
  void AuditRun(const RunRecord& run, const std::string& action,
                const std::string& actor, const std::string& before_state);
  void Execute(RunRecord run, std::shared_ptr<RunControl> control);
  // Runs the steps of `run` (already `running`); returns the run's final
  // state and reason.
  std::pair<std::string, std::string> ExecuteSteps(const RunRecord& run,
                                                   RunControl* control);
  void ReapFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Options options_;
  absl::Mutex mu_;
  std::map<std::string, ActiveRun> active_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> finished_ ABSL_GUARDED_BY(mu_);  // to join
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_RUN_EXECUTOR_H_
