// Scheduler: starts pipelines whose trigger has a cron `schedule`
// (pipeline/cron.h, UTC) at their fire times.
//
// Each Tick looks at every app's current revision. A scheduled pipeline is
// due when its schedule has a fire time in (since, now], where `since` is the
// later of the last fire recorded in the Store and the revision's creation
// (a schedule added or changed by a revision counts from its apply time).
// A due pipeline gets ONE run however many fire times were missed (a server
// down for three days runs a daily pipeline once at start-up), and the
// latest fire time <= now is recorded BEFORE the run is started, so a crash
// in between loses that run rather than starting it twice. A start the
// executor refuses (the pipeline is already running, see `concurrency` in
// app_spec.h) is logged and not retried before the next fire time.
//
// New data: a pipeline whose trigger lists `new_data` is also started when a
// file its ingest steps read (a csv or jsonl data source) changes: its size
// or modification time differs from what the previous Tick saw. The first
// look at a file (after a start-up or an apply that adds it) only records
// it; sources in a database are not watched (a loader says so with `slipway
// events fire APP new_data`). The run is started by "new data in source
// '<name>' (<path>)".
//
// Start() runs Tick on a thread: at once, then at every minute boundary of
// the clock (cron's resolution). Tests on a FakeClock call Tick directly
// instead.
//
// Ownership: the Options' objects must outlive the Scheduler.
// Thread safety: safe for concurrent use; concurrent Ticks are serialized.
#ifndef SLIPWAY_PIPELINE_SCHEDULER_H_
#define SLIPWAY_PIPELINE_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/clock.h"
#include "core/filesystem.h"
#include "pipeline/app_spec.h"
#include "pipeline/cron.h"
#include "pipeline/run_executor.h"
#include "registry/registry.h"
#include "store/store.h"

namespace slipway {

class Scheduler {
 public:
  struct Options {
    Store* store = nullptr;
    Registry* registry = nullptr;
    RunExecutor* executor = nullptr;
    Clock* clock = nullptr;
    // Reads the data files watched for new data; null: none are watched.
    Filesystem* fs = nullptr;
  };

  explicit Scheduler(Options options);
  ~Scheduler();  // Stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // One evaluation of every schedule at the clock's now.
  void Tick();

  // Starts the thread that ticks. REQUIRES: not started yet.
  void Start();
  // Stops the thread, interrupting its wait, and joins it. Idempotent.
  void Stop();

 private:
  void FireIfDue(const std::string& app, const std::string& pipeline,
                 int64_t revision_created_at, const CronSchedule& schedule,
                 int64_t now);
  // Starts `pipeline` when a file it ingests changed since the last Tick.
  void FireOnNewData(const AppSpec& spec, const std::string& source_dir,
                     const PipelineSpec& pipeline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu_);
  void Loop();

  const Options options_;
  absl::Mutex tick_mu_;  // serializes Ticks: a fire is decided once
  // What each watched file looked like at the last Tick, by app, pipeline
  // and path.
  std::map<std::string, Filesystem::FileStamp> seen_ ABSL_GUARDED_BY(tick_mu_);
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // touched only by Start and Stop
};

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_SCHEDULER_H_
