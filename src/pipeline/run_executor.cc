#include "pipeline/run_executor.h"

#include <utility>

#include "core/ids.h"
#include "core/logging.h"
#include "core/status.h"
#include "pipeline/app_spec.h"

namespace slipway {
RunExecutor::RunExecutor(Options options) : options_(std::move(options)) {}

RunExecutor::~RunExecutor() { Shutdown(); }

absl::Status RunExecutor::Recover() {
  ASSIGN_OR_RETURN(std::vector<std::string> runs,
                   options_.store->FailUnfinishedRuns(
                       "interrupted", options_.clock->NowMicros()));
  for (const std::string& id : runs) {
    LogWarning("run.interrupted", {{"run", id}});
  }
  return absl::OkStatus();
}

absl::StatusOr<RunRecord> RunExecutor::Start(const std::string& app,
                                             const std::string& pipeline) {
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
  if (pipeline_spec->kind != PipelineKind::kTrain) {
    return absl::UnimplementedError(
        "pipeline '" + pipeline + "' is a " +
        std::string(PipelineKindName(pipeline_spec->kind)) +
        " pipeline; this release runs train pipelines");
  }
  RunRecord run;
  int64_t now = options_.clock->NowMicros();
  run.id = NewId("run", now);
  run.app = app;
  run.pipeline = pipeline;
  run.revision = revision.revision;
  run.state = "queued";
  run.created_at = now;
  std::vector<StepRecord> steps;
  for (size_t i = 0; i < pipeline_spec->steps.size(); ++i) {
    StepRecord step;
    step.run_id = run.id;
    step.name = pipeline_spec->steps[i].name;
    step.ordinal = static_cast<int>(i);
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
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  ActiveRun& active = active_[run.id];
  active.app = app;
  active.pipeline = pipeline;
  active.cancel = cancel;
  active.thread = std::thread(&RunExecutor::Execute, this, run, cancel);
  LogInfo("run.queued",
          {{"run", run.id}, {"app", app}, {"pipeline", pipeline}});
  return run;
}

absl::Status RunExecutor::Cancel(const std::string& run_id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = active_.find(run_id);
    if (it != active_.end()) {
      it->second.cancel->store(true);
      return absl::OkStatus();
    }
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
    for (auto& [id, run] : active_) run.cancel->store(true);
    active.swap(active_);
    finished_.clear();
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

void RunExecutor::Execute(RunRecord run,
                          std::shared_ptr<std::atomic<bool>> cancel) {
  {
    // Wait for a free slot; a cancel while queued ends the run at once.
    absl::MutexLock lock(&mu_);
    auto slot_free = [this, &cancel]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return running_ < options_.max_concurrent_runs || cancel->load();
    };
    mu_.Await(absl::Condition(&slot_free));
    ++running_;
  }
  std::string state = "cancelled";
  std::string reason = "cancelled before it started";
  absl::StatusOr<std::vector<StepRecord>> steps =
      options_.store->ListSteps(run.id);
  if (!steps.ok()) {
    state = "failed";
    reason = std::string(steps.status().message());
  } else if (!cancel->load()) {
    run.state = "running";
    run.started_at = options_.clock->NowMicros();
    absl::Status s = options_.store->UpdateRun(run);
    if (s.ok()) {
      LogInfo("run.started", {{"run", run.id}});
      std::tie(state, reason) = ExecuteSteps(run, *std::move(steps), *cancel);
    } else {
      state = "failed";
      reason = std::string(s.message());
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
  --running_;
  if (!shutting_down_) finished_.push_back(run.id);
}

std::pair<std::string, std::string> RunExecutor::ExecuteSteps(
    const RunRecord& run, std::vector<StepRecord> steps,
    const std::atomic<bool>& cancel) {
  absl::StatusOr<AppRevisionRecord> revision =
      options_.store->GetAppRevision(run.app, run.revision);
  if (!revision.ok())
    return {"failed", std::string(revision.status().message())};
  absl::StatusOr<AppSpec> spec =
      ParseAppSpec(revision->spec_yaml, "slipway.yaml");
  if (!spec.ok()) return {"failed", std::string(spec.status().message())};
  const PipelineSpec* pipeline = spec->FindPipeline(run.pipeline);
  if (pipeline == nullptr || pipeline->steps.size() != steps.size()) {
    return {"failed",
            "pipeline '" + run.pipeline + "' changed shape under the run"};
  }

  StepEnvironment env;
  env.spec = &*spec;
  env.revision = *revision;
  env.run_id = run.id;
  env.fs = options_.fs;
  env.registry = options_.registry;
  env.move_alias = options_.move_alias;
  env.train_threads = options_.train_threads;
  env.cancel = &cancel;
  RunData data;

  std::string state = "succeeded";
  std::string reason;
  for (size_t i = 0; i < steps.size(); ++i) {
    StepRecord& step = steps[i];
    if (state != "succeeded") {
      step.state = "skipped";
      options_.store->UpdateStep(step).IgnoreError();
      continue;
    }
    if (cancel.load()) {
      state = "cancelled";
      reason = "cancelled before step '" + step.name + "'";
      step.state = "skipped";
      options_.store->UpdateStep(step).IgnoreError();
      continue;
    }
    step.state = "running";
    step.started_at = options_.clock->NowMicros();
    if (absl::Status s = options_.store->UpdateStep(step); !s.ok()) {
      return {"failed", std::string(s.message())};
    }
    LogInfo("step.started", {{"run", run.id}, {"step", step.name}});
    absl::StatusOr<StepResult> result = RunStep(pipeline->steps[i], env, &data);
    step.finished_at = options_.clock->NowMicros();
    if (result.ok()) {
      step.state = "succeeded";
      step.message = result->message;
      step.outputs_json = result->outputs.dump();
    } else if (cancel.load() && absl::IsCancelled(result.status())) {
      step.state = "cancelled";
      step.message = std::string(result.status().message());
      state = "cancelled";
      reason = "cancelled during step '" + step.name + "'";
    } else {
      step.state = "failed";
      step.message = std::string(result.status().message());
      state = "failed";
      reason = "step '" + step.name + "' failed: " + step.message;
    }
    LogInfo("step.finished",
            {{"run", run.id}, {"step", step.name}, {"state", step.state}});
    if (absl::Status s = options_.store->UpdateStep(step); !s.ok()) {
      return {"failed", std::string(s.message())};
    }
  }
  return {state, reason};
}

}  // namespace slipway
