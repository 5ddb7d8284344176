#include "pipeline/run_executor.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>

#include "absl/time/time.h"
#include "core/ids.h"
#include "core/logging.h"
#include "core/status.h"
#include "pipeline/app_spec.h"
#include "pipeline/dag.h"
#include "pipeline/step_cache.h"

namespace slipway {
namespace {

using nlohmann::json;

// How often waits look at the clock again: a FakeClock moves without
// waking anyone.
constexpr int64_t kPollMicros = 20'000;

// "10s", "1500ms", "5m", "2h": a policy duration as the spec writes it.
std::string FormatDuration(int64_t ms) {
  if (ms > 0 && ms % 3'600'000 == 0)
    return std::to_string(ms / 3'600'000) + "h";
  if (ms > 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms > 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::map<std::string, std::string> InheritedProgramEnv() {
  std::map<std::string, std::string> env;
  for (const char* name : {"PATH", "HOME", "LANG", "LC_ALL"}) {
    if (const char* value = std::getenv(name)) env[name] = value;
  }
  return env;
}

bool IsProgram(const StepSpec& step) {
  return step.kind() == StepKind::kCommand ||
         step.kind() == StepKind::kNotebook;
}

// Appends one executor line to a step's log (programs append their output
// to the same file).
void AppendLog(const std::string& path, const std::string& line) {
  std::ofstream log(path, std::ios::app);
  log << "[slipway] " << line << "\n";
}

std::string MessageOf(const absl::Status& status) {
  return std::string(status.message());
}

}  // namespace

class RunExecutor::RunControl {
 public:
  void Cancel() {
    absl::MutexLock lock(&mu);
    cancel_.store(true);
    changed.SignalAll();
  }
  bool cancelled() const { return cancel_.load(); }
  const std::atomic<bool>* cancel_flag() const { return &cancel_; }

  // Waits, holding `mu`, until `done` holds, the run is cancelled or the
  // clock reaches `deadline` (monotonic micros; 0: none). Returns whether
  // `done` held.
  template <typename Done>
  bool WaitLocked(Clock* clock, int64_t deadline, Done done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!done()) {
      if (cancelled()) return false;
      int64_t wait = kPollMicros;
      if (deadline > 0) {
        const int64_t now = clock->MonotonicMicros();
        if (now >= deadline) return false;
        wait = std::min(wait, deadline - now);
      }
      changed.WaitWithTimeout(&mu, absl::Microseconds(wait));
    }
    return true;
  }

  absl::Mutex mu;
  // Signalled when a step finishes, an attempt ends or the run is
  // cancelled.
  absl::CondVar changed;

 private:
  std::atomic<bool> cancel_{false};
};

// One run's steps in flight: schedules them as the DAG allows and records
// every transition.
class RunExecutor::RunGraph {
 public:
  RunGraph(const RunExecutor::Options& options, std::string run_dir,
           const RunRecord& run, RunControl* control, const AppSpec& spec,
           const PipelineSpec& pipeline, PipelineGraph graph,
           StepEnvironment env, std::vector<StepRecord> records)
      : options_(options),
        run_dir_(std::move(run_dir)),
        run_(run),
        control_(control),
        spec_(spec),
        pipeline_(pipeline),
        graph_(std::move(graph)),
        env_(std::move(env)) {
    for (StepRecord& record : records) {
      steps_.push_back({std::move(record), Phase::kPending, {}});
    }
  }

  // Runs every step to an end; returns the run's final state and reason.
  std::pair<std::string, std::string> Run();

 private:
  enum class Phase { kPending, kRunning, kDone };
  struct Step {
    StepRecord record;
    Phase phase;
    StepOutputs outputs;  // once succeeded
  };

  // Stores a step's progress at most once per interval; the last report
  // also goes into the step's final record.
  class Progress {
   public:
    Progress(const RunExecutor::Options& options, std::string run_id,
             std::string step)
        : options_(options),
          run_id_(std::move(run_id)),
          step_(std::move(step)) {}
    void Report(const json& progress) {
      absl::MutexLock lock(&mu_);
      latest_ = progress;
      const int64_t now = options_.clock->MonotonicMicros();
      if (written_ && now - last_write_ < options_.progress_interval_micros) {
        return;
      }
      written_ = true;
      last_write_ = now;
      options_.store->UpdateStepProgress(run_id_, step_, progress.dump())
          .IgnoreError();
    }
    std::string Latest() {
      absl::MutexLock lock(&mu_);
      return latest_.is_null() ? "{}" : latest_.dump();
    }

   private:
    const RunExecutor::Options& options_;
    const std::string run_id_;
    const std::string step_;
    absl::Mutex mu_;
    json latest_ ABSL_GUARDED_BY(mu_);
    bool written_ ABSL_GUARDED_BY(mu_) = false;
    int64_t last_write_ ABSL_GUARDED_BY(mu_) = 0;
  };

  void Schedule(std::vector<std::thread>* threads)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_->mu);
  void Skip(int i, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_->mu);
  absl::StatusOr<StepOutputs> ResolveInputs(int i)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_->mu);
  void RunOneStep(int i);
  // Fills `record` with the step's outcome; returns the outputs it made.
  StepOutputs Attempts(const StepSpec& spec, StepContext context,
                       StepRecord* record, Progress* progress);
  std::optional<StepOutputs> Reuse(const StepSpec& spec,
                                   const StepContext& context,
                                   StepRecord* record);
  absl::StatusOr<StepResult> RunAttempt(const StepSpec& spec,
                                        StepContext context,
                                        StepReport* report);
  void RecordEvents(const std::string& step,
                    const std::vector<StepEvent>& events);
  void Store(const StepRecord& record);

  const RunExecutor::Options& options_;
  const std::string run_dir_;
  const RunRecord run_;
  RunControl* const control_;
  const AppSpec& spec_;
  const PipelineSpec& pipeline_;
  const PipelineGraph graph_;
  const StepEnvironment env_;
  std::vector<Step> steps_ ABSL_GUARDED_BY(control_->mu);
};

std::pair<std::string, std::string> RunExecutor::RunGraph::Run() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&control_->mu);
    while (true) {
      Schedule(&threads);
      bool all_done =
          std::all_of(steps_.begin(), steps_.end(),
                      [](const Step& s) { return s.phase == Phase::kDone; });
      if (all_done) break;
      control_->changed.WaitWithTimeout(&control_->mu,
                                        absl::Microseconds(kPollMicros));
    }
  }
  for (std::thread& thread : threads) thread.join();

  absl::MutexLock lock(&control_->mu);
  std::vector<const StepRecord*> failed;
  for (const Step& step : steps_) {
    if (step.record.state == "failed") failed.push_back(&step.record);
  }
  if (control_->cancelled()) {
    std::string stopped;
    for (const Step& step : steps_) {
      if (step.record.state == "cancelled") {
        stopped +=
            (stopped.empty() ? "" : ", ") + ("'" + step.record.name + "'");
      }
    }
    return {"cancelled", stopped.empty()
                             ? "cancelled"
                             : "cancelled during step(s) " + stopped};
  }
  if (failed.empty()) return {"succeeded", ""};
  if (failed.size() == 1) {
    return {"failed",
            "step '" + failed[0]->name + "' failed: " + failed[0]->message};
  }
  std::string names, messages;
  for (const StepRecord* f : failed) {
    names += (names.empty() ? "'" : ", '") + f->name + "'";
    messages += (messages.empty() ? "" : "; ") + f->name + ": " + f->message;
  }
  return {"failed", "steps " + names + " failed: " + messages};
}

void RunExecutor::RunGraph::Schedule(std::vector<std::thread>* threads) {
  int running = 0;
  for (const Step& step : steps_) running += step.phase == Phase::kRunning;
  const int limit = options_.max_parallel_steps;
  // Topological order: a step skipped here makes its dependents skip in
  // the same pass.
  for (int i : graph_.order) {
    Step& step = steps_[i];
    if (step.phase != Phase::kPending) continue;
    bool waiting = false;
    std::string blocked_by;
    for (int d : graph_.dependencies[i]) {
      const Step& dep = steps_[d];
      if (dep.phase != Phase::kDone) {
        waiting = true;
      } else if (dep.record.state != "succeeded" && blocked_by.empty()) {
        blocked_by = dep.record.name + "' " + dep.record.state;
      }
    }
    if (!blocked_by.empty()) {
      Skip(i, "skipped: step '" + blocked_by);
      continue;
    }
    if (waiting) continue;
    if (control_->cancelled()) {
      Skip(i, "skipped: the run was cancelled");
      continue;
    }
    if (running >= limit) continue;
    step.phase = Phase::kRunning;
    ++running;
    threads->emplace_back(&RunGraph::RunOneStep, this, i);
  }
}

void RunExecutor::RunGraph::Skip(int i, const std::string& message) {
  Step& step = steps_[i];
  step.phase = Phase::kDone;
  step.record.state = "skipped";
  step.record.message = message;
  step.record.finished_at = options_.clock->NowMicros();
  Store(step.record);
}

absl::StatusOr<StepOutputs> RunExecutor::RunGraph::ResolveInputs(int i) {
  StepOutputs inputs;
  for (const StepInputRef& ref : graph_.inputs[i]) {
    const Step& producer = steps_[ref.producer];
    bool found = false;
    for (const std::shared_ptr<StepOutput>& output : producer.outputs) {
      if (ref.output.empty() || output->name() == ref.output) {
        inputs.push_back(output);
        found = true;
      }
    }
    if (!found && !ref.output.empty()) {
      return absl::FailedPreconditionError(
          "step '" + pipeline_.steps[i].name + "' reads '" +
          producer.record.name + "." + ref.output + "', which step '" +
          producer.record.name + "' did not write");
    }
  }
  return inputs;
}

void RunExecutor::RunGraph::RunOneStep(int i) {
  const StepSpec& spec = pipeline_.steps[i];
  StepRecord record;
  absl::StatusOr<StepOutputs> inputs;
  {
    absl::MutexLock lock(&control_->mu);
    record = steps_[i].record;
    inputs = ResolveInputs(i);
  }
  record.state = "running";
  record.started_at = options_.clock->NowMicros();
  Store(record);
  LogInfo("step.started", {{"run", run_.id}, {"step", record.name}});

  Progress progress(options_, run_.id, record.name);
  StepOutputs outputs;
  if (!inputs.ok()) {
    record.state = "failed";
    record.message = MessageOf(inputs.status());
  } else {
    StepContext context;
    context.step = &spec;
    context.env = &env_;
    context.inputs = *std::move(inputs);
    context.output_dir = JoinPath(run_dir_, spec.name);
    context.input_dir = JoinPath(run_dir_, spec.name + ".inputs");
    context.log_path = JoinPath(run_dir_, spec.name + ".log");
    context.events_path = JoinPath(run_dir_, spec.name + ".events.jsonl");
    context.progress = [&progress](const json& p) { progress.Report(p); };
    outputs = Attempts(spec, std::move(context), &record, &progress);
  }
  record.finished_at = options_.clock->NowMicros();
  LogInfo("step.finished",
          {{"run", run_.id}, {"step", record.name}, {"state", record.state}});
  Store(record);

  absl::MutexLock lock(&control_->mu);
  steps_[i].record = std::move(record);
  steps_[i].outputs = std::move(outputs);
  steps_[i].phase = Phase::kDone;
  control_->changed.SignalAll();
}

StepOutputs RunExecutor::RunGraph::Attempts(const StepSpec& spec,
                                            StepContext context,
                                            StepRecord* record,
                                            Progress* progress) {
  Filesystem* fs = options_.fs;
  if (MayReuseOutputs(spec)) {
    absl::StatusOr<std::string> key =
        StepCacheKey(spec, spec_, env_.revision.source_dir, context.inputs, fs);
    if (!key.ok()) {
      record->state = "failed";
      record->message = MessageOf(key.status());
      return {};
    }
    record->cache_key = *key;
    if (std::optional<StepOutputs> reused = Reuse(spec, context, record)) {
      return *std::move(reused);
    }
  }
  const StepPolicySpec& policy = spec.policy;
  const int64_t max_attempts = 1 + std::max<int64_t>(0, policy.retries);
  for (int64_t attempt = 1;; ++attempt) {
    record->attempts = static_cast<int>(attempt);
    record->message = attempt == 1 ? ""
                                   : "attempt " + std::to_string(attempt) +
                                         " of " + std::to_string(max_attempts);
    Store(*record);
    AppendLog(context.log_path, "attempt " + std::to_string(attempt) + " of " +
                                    std::to_string(max_attempts) + " started");
    absl::Status prepared = RemoveTree(context.output_dir);
    if (prepared.ok()) prepared = RemoveTree(context.input_dir);
    if (prepared.ok()) prepared = fs->CreateDirs(context.output_dir);
    StepReport report;
    absl::StatusOr<StepResult> result =
        prepared.ok() ? RunAttempt(spec, context, &report) : prepared;
    record->cpu_user_micros += report.cpu_user_micros;
    record->cpu_system_micros += report.cpu_system_micros;
    record->peak_rss_kb = std::max(record->peak_rss_kb, report.peak_rss_kb);
    RecordEvents(spec.name, report.events);
    record->progress_json = progress->Latest();
    if (result.ok()) {
      json outputs = result->outputs;
      outputs["artifacts"] =
          OutputsToJson(result->produced, context.output_dir);
      record->state = "succeeded";
      record->message = result->message;
      record->outputs_json = outputs.dump();
      AppendLog(context.log_path, "succeeded: " + result->message);
      if (MayReuseOutputs(spec)) {
        absl::Status put =
            options_.store->PutStepCache({run_.app, run_.pipeline, spec.name,
                                          record->cache_key, run_.id, 0});
        if (!put.ok()) {
          LogWarning("step.cache_put_failed",
                     {{"run", run_.id},
                      {"step", spec.name},
                      {"error", std::string(put.message())}});
        }
      }
      return std::move(result->produced);
    }
    const std::string failure = MessageOf(result.status());
    AppendLog(context.log_path,
              "attempt " + std::to_string(attempt) + " failed: " + failure);
    record->message = failure;
    record->outputs_json = report.failure_outputs.dump();
    if (control_->cancelled()) {
      record->state = "cancelled";
      return {};
    }
    if (attempt >= max_attempts) {
      record->state = "failed";
      if (max_attempts > 1) {
        record->message = "failed after " + std::to_string(max_attempts) +
                          " attempts; the last: " + failure;
      }
      return {};
    }
    const int64_t backoff_ms = policy.retry_backoff_ms
                               << std::min<int64_t>(attempt - 1, 20);
    // The deadline is fixed before the wait is announced.
    const int64_t retry_at =
        options_.clock->MonotonicMicros() + backoff_ms * 1000;
    record->message = "attempt " + std::to_string(attempt) + " failed (" +
                      failure + "); retrying in " + FormatDuration(backoff_ms);
    Store(*record);
    AppendLog(context.log_path, "retrying in " + FormatDuration(backoff_ms));
    absl::MutexLock lock(&control_->mu);
    control_->WaitLocked(options_.clock, retry_at, [] { return false; });
    if (control_->cancelled()) {
      record->state = "cancelled";
      record->message = "cancelled while waiting to retry; attempt " +
                        std::to_string(attempt) + " failed: " + failure;
      return {};
    }
  }
}

std::optional<StepOutputs> RunExecutor::RunGraph::Reuse(
    const StepSpec& spec, const StepContext& context, StepRecord* record) {
  auto skip = [&](const std::string& why) -> std::optional<StepOutputs> {
    LogWarning("step.cache_unusable",
               {{"run", run_.id}, {"step", spec.name}, {"reason", why}});
    return std::nullopt;
  };
  absl::StatusOr<std::optional<StepCacheRecord>> hit =
      options_.store->FindStepCache(run_.app, run_.pipeline, spec.name,
                                    record->cache_key);
  if (!hit.ok()) return skip(std::string(hit.status().message()));
  if (!hit->has_value() || (*hit)->run_id == run_.id) return std::nullopt;
  const std::string& from_run = (*hit)->run_id;
  absl::StatusOr<std::vector<StepRecord>> earlier =
      options_.store->ListSteps(from_run);
  if (!earlier.ok()) return skip(std::string(earlier.status().message()));
  auto it =
      std::find_if(earlier->begin(), earlier->end(),
                   [&](const StepRecord& s) { return s.name == spec.name; });
  if (it == earlier->end() || it->state != "succeeded") {
    return skip("run " + from_run + " has no succeeded step " + spec.name);
  }
  json outputs = json::parse(it->outputs_json, nullptr, false);
  if (!outputs.is_object()) return skip("unreadable outputs of " + from_run);
  const std::string from_dir =
      JoinPath(JoinPath(options_.run_root, from_run), spec.name);
  if (!options_.fs->Exists(from_dir)) return skip(from_dir + " is gone");
  absl::Status copied = RemoveTree(context.output_dir);
  if (copied.ok()) copied = options_.fs->CreateDirs(run_dir_);
  if (copied.ok()) copied = LinkOrCopy(from_dir, context.output_dir);
  if (!copied.ok()) return skip(std::string(copied.message()));
  absl::StatusOr<StepOutputs> reused =
      OutputsFromJson(spec.name, outputs.value("artifacts", json::object()),
                      context.output_dir);
  if (!reused.ok()) return skip(std::string(reused.status().message()));
  record->state = "succeeded";
  record->cached_from_run = from_run;
  record->message =
      "reused the outputs of run " + from_run + ": " + it->message;
  record->outputs_json = it->outputs_json;
  AppendLog(context.log_path, record->message);
  return *std::move(reused);
}

absl::StatusOr<StepResult> RunExecutor::RunGraph::RunAttempt(
    const StepSpec& spec, StepContext context, StepReport* report) {
  std::atomic<bool> stop{false};
  context.stop = &stop;
  bool done = false;
  std::optional<absl::StatusOr<StepResult>> result;
  std::thread worker([&] {
    absl::StatusOr<StepResult> r = RunStep(context, report);
    absl::MutexLock lock(&control_->mu);
    result = std::move(r);
    done = true;
    control_->changed.SignalAll();
  });
  // Programs get their timeout from the launcher; built-ins from here.
  const int64_t timeout_ms = IsProgram(spec) ? 0 : spec.policy.timeout_ms;
  const int64_t deadline =
      timeout_ms > 0 ? options_.clock->MonotonicMicros() + timeout_ms * 1000
                     : 0;
  bool timed_out = false;
  {
    absl::MutexLock lock(&control_->mu);
    while (!done) {
      if (control_->cancelled()) stop.store(true);
      if (deadline > 0 && !timed_out &&
          options_.clock->MonotonicMicros() >= deadline) {
        timed_out = true;
        stop.store(true);
      }
      control_->changed.WaitWithTimeout(&control_->mu,
                                        absl::Microseconds(kPollMicros));
    }
  }
  worker.join();
  if (timed_out) {
    return absl::DeadlineExceededError("step '" + spec.name +
                                       "' exceeded its timeout (" +
                                       FormatDuration(timeout_ms) + ")");
  }
  return *std::move(result);
}

void RunExecutor::RunGraph::RecordEvents(const std::string& step,
                                         const std::vector<StepEvent>& events) {
  if (events.empty()) return;
  std::vector<RunEventRecord> records;
  const int64_t now = options_.clock->NowMicros();
  for (const StepEvent& e : events) {
    records.push_back(
        {run_.id, step, 0, now, e.type, e.name, e.value.dump(), e.message});
  }
  absl::StatusOr<std::vector<RunEventRecord>> added =
      options_.store->AddRunEvents(records);
  if (!added.ok()) {
    LogWarning("step.events_failed",
               {{"run", run_.id},
                {"step", step},
                {"error", std::string(added.status().message())}});
  }
}

void RunExecutor::RunGraph::Store(const StepRecord& record) {
  absl::Status s = options_.store->UpdateStep(record);
  if (!s.ok()) {
    LogError("step.update_failed", {{"run", run_.id},
                                    {"step", record.name},
                                    {"error", std::string(s.message())}});
  }
}

RunExecutor::RunExecutor(Options options) : options_(std::move(options)) {
  if (options_.launcher == nullptr) options_.launcher = LocalProcessLauncher();
  if (options_.max_parallel_steps <= 0) {
    options_.max_parallel_steps =
        std::max(1u, std::thread::hardware_concurrency());
  }
  if (options_.program_env.empty())
    options_.program_env = InheritedProgramEnv();
  if (options_.run_root.empty()) {
    options_.run_root = JoinPath(
        std::filesystem::temp_directory_path().string(), "slipway-runs");
    LogWarning("executor.run_root_defaulted",
               {{"run_root", options_.run_root}});
  }
}

RunExecutor::~RunExecutor() { Shutdown(); }

std::string RunExecutor::RunDir(const std::string& run_id) const {
  return JoinPath(options_.run_root, run_id);
}

absl::Status RunExecutor::Recover() {
  ASSIGN_OR_RETURN(std::vector<std::string> runs,
                   options_.store->FailUnfinishedRuns(
                       "interrupted", options_.clock->NowMicros()));
  for (const std::string& id : runs) {
    LogWarning("run.interrupted", {{"run", id}});
    absl::StatusOr<RunRecord> run = options_.store->GetRun(id);
    if (!run.ok() || !run->retry_of.empty()) continue;
    absl::StatusOr<AppRevisionRecord> revision =
        options_.registry->CurrentRevision(run->app);
    if (!revision.ok()) continue;
    absl::StatusOr<AppSpec> spec =
        ParseAppSpec(revision->spec_yaml, "slipway.yaml");
    if (!spec.ok()) continue;
    const PipelineSpec* pipeline = spec->FindPipeline(run->pipeline);
    if (pipeline == nullptr || !pipeline->retry_interrupted) continue;
    absl::StatusOr<RunRecord> retry =
        StartRun(run->app, run->pipeline, id, "server");
    if (retry.ok()) {
      LogInfo("run.retrying_interrupted", {{"run", id}, {"retry", retry->id}});
    } else {
      LogWarning(
          "run.retry_failed",
          {{"run", id}, {"error", std::string(retry.status().message())}});
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RunRecord> RunExecutor::Start(const std::string& app,
                                             const std::string& pipeline,
                                             const std::string& actor) {
  return StartRun(app, pipeline, "", actor);
}

void RunExecutor::AuditRun(const RunRecord& run, const std::string& action,
                           const std::string& actor,
                           const std::string& before_state) {
  if (options_.audit == nullptr) return;
  AuditEntry entry;
  entry.actor = actor;
  entry.action = action;
  entry.app = run.app;
  entry.object = "run " + run.id;
  nlohmann::json after = {{"app", run.app},
                          {"pipeline", run.pipeline},
                          {"revision", run.revision},
                          {"state", run.state}};
  if (!run.reason.empty()) after["reason"] = run.reason;
  if (!run.retry_of.empty()) after["retry_of"] = run.retry_of;
  if (!before_state.empty()) {
    entry.before_json = nlohmann::json{{"state", before_state}}.dump();
  }
  entry.after_json = after.dump();
  absl::Status s = options_.audit->Record(entry).status();
  if (!s.ok()) {
    LogError("run.audit_failed", {{"run", run.id},
                                  {"action", action},
                                  {"error", std::string(s.message())}});
  }
}

absl::StatusOr<RunRecord> RunExecutor::StartRun(const std::string& app,
                                                const std::string& pipeline,
                                                const std::string& retry_of,
                                                const std::string& actor) {
  ASSIGN_OR_RETURN(AppRevisionRecord revision,
                   options_.registry->CurrentRevision(app));
  ASSIGN_OR_RETURN(
      AppSpec spec, ParseAppSpec(revision.spec_yaml, "slipway.yaml"),
      "app '" + app + "' revision " + std::to_string(revision.revision));
  const PipelineSpec* pipeline_spec = spec.FindPipeline(pipeline);
  if (pipeline_spec == nullptr) {
    std::string names;
    for (const PipelineSpec& p : spec.pipelines) {
      names += (names.empty() ? "" : ", ") + p.name;
    }
    return absl::NotFoundError(
        "app '" + app + "' has no pipeline '" + pipeline +
        "'; its pipelines are: " + (names.empty() ? "(none)" : names));
  }
  RunRecord run;
  int64_t now = options_.clock->NowMicros();
  run.id = NewId("run", now);
  run.app = app;
  run.pipeline = pipeline;
  run.revision = revision.revision;
  run.state = "queued";
  run.created_at = now;
  run.retry_of = retry_of;
  std::vector<StepRecord> steps;
  for (size_t i = 0; i < pipeline_spec->steps.size(); ++i) {
    const StepSpec& spec_step = pipeline_spec->steps[i];
    StepRecord step;
    step.run_id = run.id;
    step.name = spec_step.name;
    step.ordinal = static_cast<int>(i);
    step.kind = std::string(StepKindName(spec_step.kind()));
    step.state = "pending";
    step.outputs_json = "{}";
    steps.push_back(std::move(step));
  }

  absl::MutexLock lock(&mu_);
  if (shutting_down_) {
    return absl::UnavailableError(
        "the server is shutting down; start the "
        "run again once it is back");
  }
  ReapFinished();
  // After reaping, active_ holds exactly the unfinished runs.
  std::vector<std::string> unfinished;
  for (const auto& [id, active] : active_) {
    if (active.app == app && active.pipeline == pipeline) {
      unfinished.push_back(id);
    }
  }
  if (static_cast<int64_t>(unfinished.size()) >= pipeline_spec->concurrency) {
    std::string ids;
    for (const std::string& id : unfinished) {
      ids += (ids.empty() ? "" : ", ") + id;
    }
    if (pipeline_spec->concurrency == 1) {
      return absl::FailedPreconditionError(
          "pipeline '" + pipeline + "' of app '" + app +
          "' is already running (run " + ids +
          "); wait for it to finish or cancel it, or allow more with "
          "'concurrency:' in the pipeline's spec");
    }
    return absl::FailedPreconditionError(
        "pipeline '" + pipeline + "' of app '" + app + "' already has " +
        std::to_string(unfinished.size()) + " runs in progress (runs " + ids +
        "), the most its 'concurrency: " +
        std::to_string(pipeline_spec->concurrency) +
        "' allows; wait for one to finish or cancel it");
  }
  RETURN_IF_ERROR(options_.store->CreateRun(run, steps));
  AuditRun(run, "run.start", actor, "");
  auto control = std::make_shared<RunControl>();
  ActiveRun& active = active_[run.id];
  active.app = app;
  active.pipeline = pipeline;
  active.control = control;
  active.thread = std::thread(&RunExecutor::Execute, this, run, control);
  LogInfo("run.queued",
          {{"run", run.id}, {"app", app}, {"pipeline", pipeline}});
  return run;
}

absl::Status RunExecutor::Cancel(const std::string& run_id) {
  std::shared_ptr<RunControl> control;
  {
    absl::MutexLock lock(&mu_);
    ReapFinished();
    auto it = active_.find(run_id);
    if (it != active_.end()) control = it->second.control;
  }
  if (control != nullptr) {
    control->Cancel();
    // A queued run waits on mu_ for a slot; wake it.
    absl::MutexLock lock(&mu_);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(RunRecord run, options_.store->GetRun(run_id));
  return absl::FailedPreconditionError("run '" + run_id + "' is already " +
                                       run.state);
}

void RunExecutor::Shutdown() {
  std::map<std::string, ActiveRun> active;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    active.swap(active_);
    finished_.clear();
  }
  for (auto& [id, run] : active) run.control->Cancel();
  {
    absl::MutexLock lock(&mu_);  // wakes runs queued for a slot
  }
  for (auto& [id, run] : active) {
    if (run.thread.joinable()) run.thread.join();
  }
}

void RunExecutor::ReapFinished() {
  for (const std::string& id : finished_) {
    auto it = active_.find(id);
    if (it == active_.end()) continue;
    if (it->second.thread.joinable()) it->second.thread.join();
    active_.erase(it);
  }
  finished_.clear();
}

void RunExecutor::Execute(RunRecord run, std::shared_ptr<RunControl> control) {
  {
    // Wait for a free slot; a cancel while queued ends the run at once.
    absl::MutexLock lock(&mu_);
    auto slot_free = [this, &control]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return running_ < options_.max_concurrent_runs || control->cancelled();
    };
    mu_.Await(absl::Condition(&slot_free));
    ++running_;
  }
  std::string state = "cancelled";
  std::string reason = "cancelled before it started";
  if (!control->cancelled()) {
    run.state = "running";
    run.started_at = options_.clock->NowMicros();
    absl::Status s = options_.store->UpdateRun(run);
    if (s.ok()) {
      LogInfo("run.started", {{"run", run.id}});
      std::tie(state, reason) = ExecuteSteps(run, control.get());
    } else {
      state = "failed";
      reason = std::string(s.message());
    }
  } else {
    // Its steps never start.
    absl::StatusOr<std::vector<StepRecord>> steps =
        options_.store->ListSteps(run.id);
    if (steps.ok()) {
      for (StepRecord& step : *steps) {
        step.state = "skipped";
        step.message = "skipped: the run was cancelled";
        options_.store->UpdateStep(step).IgnoreError();
      }
    }
  }
  run.state = state;
  run.reason = reason;
  run.finished_at = options_.clock->NowMicros();
  // The final write and the hand-over to finished_ happen under one lock, so
  // once the store shows the run finished, Start no longer counts it against
  // its pipeline's concurrency.
  absl::MutexLock lock(&mu_);
  absl::Status s = options_.store->UpdateRun(run);
  if (!s.ok()) {
    LogError("run.update_failed",
             {{"run", run.id}, {"error", std::string(s.message())}});
  }
  LogInfo("run.finished",
          {{"run", run.id}, {"state", state}, {"reason", reason}});
  if (s.ok()) {
    AuditRun(run, "run.finish", "run " + run.id,
             run.started_at == 0 ? "queued" : "running");
  }
  --running_;
  if (!shutting_down_) finished_.push_back(run.id);
}

std::pair<std::string, std::string> RunExecutor::ExecuteSteps(
    const RunRecord& run, RunControl* control) {
  absl::StatusOr<std::vector<StepRecord>> steps =
      options_.store->ListSteps(run.id);
  if (!steps.ok()) return {"failed", std::string(steps.status().message())};
  absl::StatusOr<AppRevisionRecord> revision =
      options_.store->GetAppRevision(run.app, run.revision);
  if (!revision.ok())
    return {"failed", std::string(revision.status().message())};
  absl::StatusOr<AppSpec> spec =
      ParseAppSpec(revision->spec_yaml, "slipway.yaml");
  if (!spec.ok()) return {"failed", std::string(spec.status().message())};
  const PipelineSpec* pipeline = spec->FindPipeline(run.pipeline);
  if (pipeline == nullptr || pipeline->steps.size() != steps->size()) {
    return {"failed",
            "pipeline '" + run.pipeline + "' changed shape under the run"};
  }
  absl::StatusOr<PipelineGraph> graph = BuildPipelineGraph(*pipeline);
  if (!graph.ok()) return {"failed", std::string(graph.status().message())};
  const std::string run_dir = RunDir(run.id);
  if (absl::Status s = options_.fs->CreateDirs(run_dir); !s.ok()) {
    return {"failed",
            "creating the run directory: " + std::string(s.message())};
  }

  StepEnvironment env;
  env.spec = &*spec;
  env.revision = *revision;
  env.run_id = run.id;
  env.fs = options_.fs;
  env.registry = options_.registry;
  env.move_alias = options_.move_alias;
  env.train_threads = options_.train_threads;
  env.score_threads = options_.score_threads;
  env.launcher = options_.launcher;
  env.python = options_.python;
  env.loading.work_dir = options_.models_dir;
  env.loading.python.python = options_.python;
  env.base_env = options_.program_env;
  RunGraph run_graph(options_, run_dir, run, control, *spec, *pipeline,
                     *std::move(graph), std::move(env), *std::move(steps));
  return run_graph.Run();
}

}  // namespace slipway
