#include "pipeline/scheduler.h"

#include <algorithm>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/logging.h"
#include "pipeline/app_spec.h"

namespace slipway {
namespace {

constexpr int64_t kMinuteMicros = 60'000'000;

// The next whole minute after `now` (unix micros).
int64_t NextMinute(int64_t now) {
  int64_t minute = now / kMinuteMicros;
  if (now < 0 && now % kMinuteMicros != 0) --minute;
  return (minute + 1) * kMinuteMicros;
}

}  // namespace

Scheduler::Scheduler(Options options) : options_(std::move(options)) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Tick() {
  absl::MutexLock tick_lock(&tick_mu_);
  const int64_t now = options_.clock->NowMicros();
  absl::StatusOr<std::vector<AppRecord>> apps = options_.store->ListApps();
  if (!apps.ok()) {
    LogError("schedule.list_apps_failed",
             {{"error", std::string(apps.status().message())}});
    return;
  }
  for (const AppRecord& app : *apps) {
    if (app.current_revision == 0) continue;
    absl::StatusOr<AppRevisionRecord> revision =
        options_.registry->CurrentRevision(app.name);
    if (!revision.ok()) {
      LogError("schedule.revision_failed",
               {{"app", app.name},
                {"error", std::string(revision.status().message())}});
      continue;
    }
    // Stored revisions passed ParseAppSpec when applied; a failure here
    // means a spec from a newer release, which this one cannot schedule.
    absl::StatusOr<AppSpec> spec =
        ParseAppSpec(revision->spec_yaml, "slipway.yaml");
    if (!spec.ok()) {
      LogError("schedule.spec_invalid",
               {{"app", app.name},
                {"revision", std::to_string(revision->revision)},
                {"error", std::string(spec.status().message())}});
      continue;
    }
    for (const PipelineSpec& pipeline : spec->pipelines) {
      FireOnNewData(*spec, revision->source_dir, pipeline);
      if (pipeline.trigger.schedule.empty()) continue;
      // Cannot fail: ParseAppSpec checked the schedule with the same parser.
      absl::StatusOr<CronSchedule> schedule =
          CronSchedule::Parse(pipeline.trigger.schedule);
      if (!schedule.ok()) continue;
      FireIfDue(app.name, pipeline.name, revision->created_at, *schedule, now);
    }
  }
}

void Scheduler::FireOnNewData(const AppSpec& spec,
                              const std::string& source_dir,
                              const PipelineSpec& pipeline) {
  const auto& on = pipeline.trigger.on;
  if (options_.fs == nullptr ||
      std::find(on.begin(), on.end(), TriggerEvent::kNewData) == on.end()) {
    return;
  }
  std::string changed;  // the first changed source, as the run's trigger
  for (const StepSpec& step : pipeline.steps) {
    if (step.kind() != StepKind::kIngest) continue;
    const DataSourceSpec* source =
        spec.FindDataSource(std::get<IngestStepSpec>(step.params).source);
    if (source == nullptr || (source->connector != Connector::kCsv &&
                              source->connector != Connector::kJsonl)) {
      continue;
    }
    const std::string path = ResolvePath(source_dir, source->path);
    absl::StatusOr<Filesystem::FileStamp> stamp = options_.fs->Stamp(path);
    if (!stamp.ok()) continue;  // missing for now: the run would fail too
    const std::string key = absl::StrCat(spec.app, "\n", pipeline.name, "\n", path);
    auto [it, first] = seen_.try_emplace(key, *stamp);
    if (first || it->second == *stamp) continue;
    it->second = *stamp;
    if (changed.empty()) {
      changed =
          absl::StrCat("new data in source '", source->name, "' (", path, ")");
    }
  }
  if (changed.empty()) return;
  absl::StatusOr<RunRecord> run =
      options_.executor->Start(spec.app, pipeline.name, changed);
  if (run.ok()) {
    LogInfo("new_data.fired", {{"app", spec.app},
                               {"pipeline", pipeline.name},
                               {"trigger", changed},
                               {"run", run->id}});
  } else {
    LogWarning("new_data.not_started",
               {{"app", spec.app},
                {"pipeline", pipeline.name},
                {"trigger", changed},
                {"reason", std::string(run.status().message())}});
  }
}

void Scheduler::FireIfDue(const std::string& app, const std::string& pipeline,
                          int64_t revision_created_at,
                          const CronSchedule& schedule, int64_t now) {
  absl::StatusOr<std::optional<int64_t>> last =
      options_.store->GetLastScheduledFire(app, pipeline);
  if (!last.ok()) {
    LogError("schedule.state_failed",
             {{"app", app},
              {"pipeline", pipeline},
              {"error", std::string(last.status().message())}});
    return;
  }
  const int64_t since =
      std::max(last->value_or(revision_created_at), revision_created_at);
  const int64_t fire = schedule.LastFireAtOrBefore(now);
  if (fire <= since) return;

  // Record first: a crash after this line skips the run instead of
  // repeating it at the next start-up.
  if (absl::Status s =
          options_.store->SetLastScheduledFire(app, pipeline, fire);
      !s.ok()) {
    LogError("schedule.state_failed", {{"app", app},
                                       {"pipeline", pipeline},
                                       {"error", std::string(s.message())}});
    return;
  }
  const std::string fire_time = FormatTimestamp(fire);
  absl::StatusOr<RunRecord> run =
      options_.executor->Start(app, pipeline, "scheduler");
  if (run.ok()) {
    LogInfo("schedule.fired", {{"app", app},
                               {"pipeline", pipeline},
                               {"fire_time", fire_time},
                               {"run", run->id}});
  } else if (absl::IsFailedPrecondition(run.status())) {
    LogWarning("schedule.skipped",
               {{"app", app},
                {"pipeline", pipeline},
                {"fire_time", fire_time},
                {"reason", std::string(run.status().message())}});
  } else {
    LogError("schedule.start_failed",
             {{"app", app},
              {"pipeline", pipeline},
              {"fire_time", fire_time},
              {"error", std::string(run.status().message())}});
  }
}

void Scheduler::Start() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  thread_ = std::thread(&Scheduler::Loop, this);
}

void Scheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Scheduler::Loop() {
  while (true) {
    Tick();
    // Every fire time is a whole minute, so waking at each minute boundary
    // never misses one, and a schedule applied a moment ago fires on its
    // first minute.
    const int64_t now = options_.clock->NowMicros();
    const int64_t wait =
        std::clamp<int64_t>(NextMinute(now) - now, 0, kMinuteMicros);
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                             absl::Microseconds(wait))) {
      return;
    }
  }
}

}  // namespace slipway
