#include "serving/model_manager.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <utility>

#include "core/logging.h"
#include "core/status.h"

namespace slipway {

std::string_view VersionStateName(VersionStateKind state) {
  switch (state) {
    case VersionStateKind::kLoading:
      return "loading";
    case VersionStateKind::kReady:
      return "ready";
    case VersionStateKind::kDraining:
      return "draining";
    case VersionStateKind::kUnloaded:
      return "unloaded";
    case VersionStateKind::kFailed:
      return "failed";
  }
  return "unknown";
}

namespace {

bool IsFinished(VersionStateKind state) {
  return state == VersionStateKind::kUnloaded ||
         state == VersionStateKind::kFailed;
}

std::string ModelName(const std::string& app, int version) {
  return "model " + app + " v" + std::to_string(version);
}

}  // namespace

// The state of every load the manager started. Shared with the deleters of
// published models, which record `unloaded` from whatever thread releases
// the last handle; it takes no other lock, so it may be called with the
// manager's lock held (lock order: ModelManager::mu_, then this).
class ModelManager::TransitionLog {
 public:
  explicit TransitionLog(Clock* clock) : clock_(clock) {}

  // Records a new load of `version` as `loading`; returns its load id.
  uint64_t Start(const std::string& app, int version) {
    absl::MutexLock lock(&mu_);
    uint64_t id = next_id_++;
    VersionState state;
    state.app = app;
    state.version = version;
    state.state = VersionStateKind::kLoading;
    state.since_micros = clock_->NowMicros();
    by_app_[app].push_back(Entry{id, std::move(state)});
    return id;
  }

  // Moves a live load to `state`. A finished load never changes again, so
  // a deleter running after a load was recorded as failed keeps the reason.
  void Set(const std::string& app, uint64_t load_id, VersionStateKind state,
           std::string reason = "") {
    absl::MutexLock lock(&mu_);
    auto it = by_app_.find(app);
    if (it == by_app_.end()) return;
    for (Entry& entry : it->second) {
      if (entry.id != load_id) continue;
      if (IsFinished(entry.state.state)) return;
      entry.state.state = state;
      entry.state.reason = std::move(reason);
      entry.state.since_micros = clock_->NowMicros();
      break;
    }
    if (IsFinished(state)) Trim(&it->second);
  }

  std::vector<VersionState> Snapshot() const {
    absl::MutexLock lock(&mu_);
    std::vector<VersionState> states;
    for (const auto& [app, entries] : by_app_) {
      for (const Entry& entry : entries) states.push_back(entry.state);
    }
    return states;
  }

 private:
  struct Entry {
    uint64_t id;
    VersionState state;
  };

  // Drops the oldest finished loads beyond kFinishedKept; live loads stay.
  void Trim(std::deque<Entry>* entries) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int finished = 0;
    for (const Entry& entry : *entries)
      finished += IsFinished(entry.state.state);
    for (auto it = entries->begin();
         finished > kFinishedKept && it != entries->end();) {
      if (IsFinished(it->state.state)) {
        it = entries->erase(it);
        --finished;
      } else {
        ++it;
      }
    }
  }

  Clock* const clock_;
  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, std::deque<Entry>> by_app_ ABSL_GUARDED_BY(mu_);
};

namespace {

// The deleter of a published model: when the last handle goes, it destroys
// the model (the loader's pointer) and records the version as unloaded.
class UnloadOnRelease {
 public:
  UnloadOnRelease(std::shared_ptr<const Model> model,
                  std::function<void()> on_unloaded)
      : model_(std::move(model)), on_unloaded_(std::move(on_unloaded)) {}

  void operator()(const Model*) {
    // Reset here, not in our destructor: weak_ptrs keep the deleter alive
    // after the last handle, and the memory must go now.
    model_.reset();
    on_unloaded_();
    on_unloaded_ = nullptr;
  }

 private:
  std::shared_ptr<const Model> model_;
  std::function<void()> on_unloaded_;
};

}  // namespace

ModelManager::ModelManager(Clock* clock, ServingMetrics* metrics)
    : clock_(clock),
      metrics_(metrics),
      log_(std::make_shared<TransitionLog>(clock)) {}

ModelManager::~ModelManager() = default;

void ModelManager::AddApp(const std::string& app) {
  absl::MutexLock lock(&mu_);
  apps_.try_emplace(app);
}

void ModelManager::RemoveApp(const std::string& app) {
  // Released after the lock: the batcher finishes its queue and the deleter
  // may run and free the model.
  Retired retired;
  absl::MutexLock lock(&mu_);
  auto it = apps_.find(app);
  if (it == apps_.end()) return;
  retired.model = std::move(it->second.serving);
  retired.scheduler = std::move(it->second.scheduler);
  if (retired.model != nullptr) {
    log_->Set(app, it->second.serving_load_id, VersionStateKind::kDraining);
  }
  apps_.erase(it);
}

ModelManager::AppSlot* ModelManager::FindSlot(
    const std::string& app, const std::shared_ptr<absl::Mutex>& serve_mu) {
  auto it = apps_.find(app);
  if (it == apps_.end() || it->second.serve_mu != serve_mu) return nullptr;
  return &it->second;
}

ModelManager::Retired ModelManager::SwapIn(
    const std::string& app, AppSlot* slot, std::shared_ptr<const Model> model,
    std::shared_ptr<BatchScheduler> scheduler, int version, uint64_t load_id) {
  Retired retired{std::move(slot->serving), std::move(slot->scheduler)};
  if (retired.model != nullptr) {
    slot->draining[slot->serving_version] = DrainingVersion{
        retired.model, retired.scheduler, slot->serving_load_id};
    log_->Set(app, slot->serving_load_id, VersionStateKind::kDraining);
  }
  slot->serving = std::move(model);
  slot->scheduler = std::move(scheduler);
  slot->serving_version = version;
  slot->serving_load_id = load_id;
  slot->draining.erase(version);
  std::erase_if(slot->draining,
                [](const auto& entry) { return entry.second.model.expired(); });
  log_->Set(app, load_id, VersionStateKind::kReady);
  return retired;
}

absl::Status ModelManager::Serve(const std::string& app, int version,
                                 Loader load, const BatchingOptions& batching) {
  RETURN_IF_ERROR(ValidateBatchingOptions(batching),
                  "serving " + ModelName(app, version));
  std::shared_ptr<absl::Mutex> serve_mu;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = apps_.find(app);
    if (it == apps_.end()) {
      return absl::NotFoundError("app '" + app + "' not found");
    }
    serve_mu = it->second.serve_mu;
  }
  absl::MutexLock serialize(serve_mu.get());
  const std::string name = ModelName(app, version);
  // Declared before the locks below so the swapped-out version is released
  // (its batcher drained, the model possibly destroyed) only after mu_ is
  // unlocked.
  Retired retired;
  std::shared_ptr<const Model> published;
  std::shared_ptr<BatchScheduler> scheduler;
  uint64_t load_id = 0;

  {
    absl::MutexLock lock(&mu_);
    AppSlot* slot = FindSlot(app, serve_mu);
    if (slot == nullptr) {
      return absl::NotFoundError("app '" + app + "' not found");
    }
    if (slot->serving != nullptr && slot->serving_version == version) {
      return absl::OkStatus();
    }
    auto draining = slot->draining.find(version);
    if (draining != slot->draining.end()) {
      if (std::shared_ptr<const Model> alive = draining->second.model.lock()) {
        // A rare path (a rollback while the old version is still held), so
        // starting the new batcher's thread under the lock is acceptable.
        scheduler =
            MakeBatchScheduler(app, version, alive, batching, clock_, metrics_);
        retired = SwapIn(app, slot, std::move(alive), std::move(scheduler),
                         version, draining->second.load_id);
        LogInfo("model.ready", {{"app", app},
                                {"version", std::to_string(version)},
                                {"how", "reused a draining version"}});
        return absl::OkStatus();
      }
    }
    slot->loading_version = version;
    load_id = log_->Start(app, version);
  }
  LogInfo("model.loading",
          {{"app", app}, {"version", std::to_string(version)}});

  absl::StatusOr<std::shared_ptr<const Model>> loaded = load();
  absl::Status status = loaded.status();
  if (status.ok() && *loaded == nullptr) {
    status = absl::InternalError("the loader returned no model");
  }
  if (status.ok()) {
    const Model* raw = loaded->get();
    std::shared_ptr<TransitionLog> log = log_;
    published = std::shared_ptr<const Model>(
        raw, UnloadOnRelease(std::move(*loaded), [log, app, load_id, version] {
          log->Set(app, load_id, VersionStateKind::kUnloaded);
          LogInfo("model.unloaded",
                  {{"app", app}, {"version", std::to_string(version)}});
        }));
    scheduler =
        MakeBatchScheduler(app, version, published, batching, clock_, metrics_);
  }

  absl::MutexLock lock(&mu_);
  AppSlot* slot = FindSlot(app, serve_mu);
  if (slot != nullptr) slot->loading_version = 0;
  if (status.ok() && slot == nullptr) {
    status = absl::NotFoundError("app '" + app + "' was removed while " + name +
                                 " was loading");
  }
  if (!status.ok()) {
    log_->Set(app, load_id, VersionStateKind::kFailed,
              std::string(status.message()));
    LogWarning("model.load_failed",
               {{"app", app},
                {"version", std::to_string(version)},
                {"reason", std::string(status.message())}});
    // `published`, if any, is released after the unlock; the log keeps
    // "failed" because finished loads do not change.
    return Annotate(status, "loading " + name);
  }
  retired = SwapIn(app, slot, std::move(published), std::move(scheduler),
                   version, load_id);
  LogInfo("model.ready", {{"app", app}, {"version", std::to_string(version)}});
  return absl::OkStatus();
}

absl::StatusOr<ServableHandle> ModelManager::Get(const std::string& app) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = apps_.find(app);
  if (it == apps_.end()) {
    return absl::NotFoundError("app '" + app + "' not found");
  }
  const AppSlot& slot = it->second;
  if (slot.serving == nullptr) {
    if (slot.loading_version != 0) {
      return absl::UnavailableError(
          "app '" + app + "' is loading its first model (" +
          ModelName(app, slot.loading_version) + "); retry shortly");
    }
    return absl::UnavailableError(
        "app '" + app +
        "' has no champion model yet: train one with `slipway run " + app +
        " train --wait` and promote it");
  }
  return ServableHandle{slot.serving, slot.serving_version, slot.scheduler};
}

absl::StatusOr<ServableHandle> ModelManager::Get(const std::string& app,
                                                 int version) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = apps_.find(app);
  if (it == apps_.end()) {
    return absl::NotFoundError("app '" + app + "' not found");
  }
  const AppSlot& slot = it->second;
  if (slot.serving != nullptr && slot.serving_version == version) {
    return ServableHandle{slot.serving, version, slot.scheduler};
  }
  auto draining = slot.draining.find(version);
  if (draining != slot.draining.end()) {
    if (std::shared_ptr<const Model> alive = draining->second.model.lock()) {
      std::shared_ptr<BatchScheduler> scheduler =
          draining->second.scheduler.lock();
      // Its batcher is gone once its queue drained; the few requests that
      // still name a draining version run unbatched.
      if (scheduler == nullptr) {
        scheduler = std::make_shared<DirectScheduler>(app, version, alive,
                                                      clock_, metrics_);
      }
      return ServableHandle{std::move(alive), version, std::move(scheduler)};
    }
  }
  std::string message = ModelName(app, version) + " is not loaded";
  if (slot.serving != nullptr) {
    message += " (app '" + app + "' serves v" +
               std::to_string(slot.serving_version) + ")";
  }
  return absl::NotFoundError(message);
}

std::vector<VersionState> ModelManager::States() const {
  return log_->Snapshot();
}

}  // namespace slipway
