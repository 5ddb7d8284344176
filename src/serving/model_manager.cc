#include "serving/model_manager.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string_view>
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

  // Moves a live load to `state`; a load that is not ready has no role.
  // A finished load never changes again, so a deleter running after a load
  // was recorded as failed keeps the reason; a load already in `state`
  // keeps the time it got there.
  void Set(const std::string& app, uint64_t load_id, VersionStateKind state,
           std::string reason = "") {
    absl::MutexLock lock(&mu_);
    auto it = by_app_.find(app);
    if (it == by_app_.end()) return;
    for (Entry& entry : it->second) {
      if (entry.id != load_id) continue;
      if (IsFinished(entry.state.state) || entry.state.state == state) return;
      entry.state.state = state;
      entry.state.reason = std::move(reason);
      entry.state.since_micros = clock_->NowMicros();
      if (state != VersionStateKind::kReady) entry.state.role.clear();
      break;
    }
    if (IsFinished(state)) Trim(&it->second);
  }

  // Records what a ready load does for its app ("serving", "canary",
  // "shadow").
  void SetRole(const std::string& app, uint64_t load_id,
               std::string_view role) {
    absl::MutexLock lock(&mu_);
    auto it = by_app_.find(app);
    if (it == by_app_.end()) return;
    for (Entry& entry : it->second) {
      if (entry.id == load_id) {
        entry.state.role = role;
        return;
      }
    }
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

// The Unavailable answer for an app that has no serving version yet.
absl::Status NoServingVersion(const std::string& app, int loading_version) {
  if (loading_version != 0) {
    return absl::UnavailableError(
        "app '" + app + "' is loading its first model (" +
        ModelName(app, loading_version) + "); retry shortly");
  }
  return absl::UnavailableError(
      "app '" + app +
      "' has no champion model yet: train one with `slipway run " + app +
      " train --wait` and promote it");
}

// Routing buckets: the canary takes [0, percent) of them.
constexpr uint64_t kRoutingBuckets = 100;

// The routing bucket of `key` for `app`: 64-bit FNV-1a over the app, a
// separator and the key, then SplitMix64's finalizer so that every bit of
// the hash counts in the remainder. Fixed arithmetic, so a key keeps its
// bucket in every process and release (std::hash promises neither); the
// app takes part so one key is not in every app's canary at once.
uint64_t RoutingBucket(std::string_view app, std::string_view key) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  auto mix = [&hash](std::string_view text) {
    for (char c : text) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 0x100000001b3ULL;
    }
  };
  mix(app);
  hash ^= 0xff;  // no byte of UTF-8 text: "ab"+"c" and "a"+"bc" differ
  hash *= 0x100000001b3ULL;
  mix(key);
  hash ^= hash >> 30;
  hash *= 0xbf58476d1ce4e5b9ULL;
  hash ^= hash >> 27;
  hash *= 0x94d049bb133111ebULL;
  hash ^= hash >> 31;
  return hash % kRoutingBuckets;
}

// Whether the n-th keyless request goes to a canary taking `percent`:
// request n does when floor((n + 1) * percent / 100) steps past
// floor(n * percent / 100), which happens for exactly `percent` of any 100
// consecutive n, spread evenly.
bool KeylessToCanary(uint64_t n, int percent) {
  const uint64_t p = static_cast<uint64_t>(percent);
  const uint64_t r = n % kRoutingBuckets;
  return (r + 1) * p / kRoutingBuckets != r * p / kRoutingBuckets;
}

}  // namespace

std::string_view ModelManager::RoleName(Role role) {
  switch (role) {
    case Role::kServing:
      return "serving";
    case Role::kCanary:
      return "canary";
    case Role::kShadow:
      return "shadow";
  }
  return "";
}

ModelManager::LoadedVersion& ModelManager::RoleSlot(AppSlot* slot, Role role) {
  switch (role) {
    case Role::kCanary:
      return slot->canary;
    case Role::kShadow:
      return slot->shadow;
    case Role::kServing:
      break;
  }
  return slot->serving;
}

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
  // Released after the lock: the batchers finish their queues and the
  // deleters may run and free the models.
  Retired retired[3];
  absl::MutexLock lock(&mu_);
  auto it = apps_.find(app);
  if (it == apps_.end()) return;
  AppSlot& slot = it->second;
  if (slot.shadow.model != nullptr) {
    apps_with_shadow_.fetch_sub(1, std::memory_order_relaxed);
  }
  int i = 0;
  for (LoadedVersion* loaded : {&slot.serving, &slot.canary, &slot.shadow}) {
    if (loaded->model == nullptr) continue;
    log_->Set(app, loaded->load_id, VersionStateKind::kDraining);
    retired[i++] =
        Retired{std::move(loaded->model), std::move(loaded->scheduler)};
  }
  apps_.erase(it);
}

ModelManager::AppSlot* ModelManager::FindSlot(
    const std::string& app, const std::shared_ptr<absl::Mutex>& serve_mu) {
  auto it = apps_.find(app);
  if (it == apps_.end() || it->second.serve_mu != serve_mu) return nullptr;
  return &it->second;
}

void ModelManager::PublishRoles(const std::string& app, const AppSlot& slot) {
  // Least important first, so a load holding several roles ends up named
  // by the first of serving, canary, shadow.
  if (slot.shadow.model != nullptr) {
    log_->SetRole(app, slot.shadow.load_id, RoleName(Role::kShadow));
  }
  if (slot.canary.model != nullptr) {
    log_->SetRole(app, slot.canary.load_id, RoleName(Role::kCanary));
  }
  if (slot.serving.model != nullptr) {
    log_->SetRole(app, slot.serving.load_id, RoleName(Role::kServing));
  }
}

ModelManager::Retired ModelManager::Assign(const std::string& app,
                                           AppSlot* slot, Role role,
                                           LoadedVersion next, int percent) {
  LoadedVersion& target = RoleSlot(slot, role);
  const bool had = target.model != nullptr;
  LoadedVersion previous = std::exchange(target, std::move(next));
  const bool has = target.model != nullptr;
  if (role == Role::kCanary) slot->canary_percent = has ? percent : 0;
  if (role == Role::kShadow && had != has) {
    apps_with_shadow_.fetch_add(has ? 1 : -1, std::memory_order_relaxed);
  }
  if (has) {
    slot->draining.erase(target.version);
    log_->Set(app, target.load_id, VersionStateKind::kReady);
  }
  // The replaced load drains once no role holds its version. Its scheduler
  // is released either way: a version taken over by another role may have
  // a batcher of its own there.
  Retired retired{previous.model, std::move(previous.scheduler)};
  if (previous.model != nullptr) {
    const int version = previous.version;
    const bool held =
        (slot->serving.model != nullptr && slot->serving.version == version) ||
        (slot->canary.model != nullptr && slot->canary.version == version) ||
        (slot->shadow.model != nullptr && slot->shadow.version == version);
    if (!held) {
      slot->draining[version] =
          DrainingVersion{previous.model, retired.scheduler, previous.load_id};
      log_->Set(app, previous.load_id, VersionStateKind::kDraining);
    }
  }
  std::erase_if(slot->draining,
                [](const auto& entry) { return entry.second.model.expired(); });
  PublishRoles(app, *slot);
  return retired;
}

absl::Status ModelManager::Serve(const std::string& app, int version,
                                 Loader load, const BatchingOptions& batching) {
  return ServeRole(app, Role::kServing, version, 0, std::move(load), batching);
}

absl::Status ModelManager::ServeCanary(const std::string& app, int version,
                                       int percent, Loader load,
                                       const BatchingOptions& batching) {
  if (percent < 1 || percent > 99) {
    return absl::InvalidArgumentError(
        "canary " + ModelName(app, version) + " would take " +
        std::to_string(percent) +
        "% of the requests; give a percent from 1 to 99 (end the canary to "
        "stop its traffic, promote it to give it all)");
  }
  return ServeRole(app, Role::kCanary, version, percent, std::move(load),
                   batching);
}

absl::Status ModelManager::ServeShadow(const std::string& app, int version,
                                       Loader load,
                                       const BatchingOptions& batching) {
  return ServeRole(app, Role::kShadow, version, 0, std::move(load), batching);
}

absl::Status ModelManager::ServeRole(const std::string& app, Role role,
                                     int version, int percent, Loader load,
                                     const BatchingOptions& batching) {
  // "model churn v3" when serving, "canary model churn v3" otherwise.
  const std::string name =
      role == Role::kServing
          ? ModelName(app, version)
          : std::string(RoleName(role)) + " " + ModelName(app, version);
  RETURN_IF_ERROR(ValidateBatchingOptions(batching), "serving " + name);
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
  // A shadow's batches are no client's: they stay out of the app's batch
  // metrics.
  ServingMetrics* const batch_metrics =
      role == Role::kShadow ? nullptr : metrics_;
  const std::string role_name(RoleName(role));
  // Declared before the locks below so the replaced version is released
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
    LoadedVersion& current = RoleSlot(slot, role);
    if (current.model != nullptr && current.version == version) {
      if (role == Role::kCanary) slot->canary_percent = percent;
      return absl::OkStatus();
    }
    // A version another role holds, taken over with its batcher (a
    // shadow's gets a new one, see the header).
    std::optional<LoadedVersion> reused;
    for (Role other : {Role::kServing, Role::kCanary, Role::kShadow}) {
      const LoadedVersion& loaded = RoleSlot(slot, other);
      if (other == role || loaded.model == nullptr ||
          loaded.version != version) {
        continue;
      }
      reused = loaded;
      if (other == Role::kShadow) {
        // Starting a batcher's thread under the lock: as rare as promoting
        // a shadow.
        reused->scheduler = MakeBatchScheduler(app, version, loaded.model,
                                               batching, clock_, batch_metrics);
      }
      break;
    }
    if (!reused.has_value()) {
      auto draining = slot->draining.find(version);
      if (draining != slot->draining.end()) {
        if (std::shared_ptr<const Model> alive =
                draining->second.model.lock()) {
          // A rare path (a rollback while the old version is still held),
          // so starting the new batcher's thread under the lock is
          // acceptable.
          std::shared_ptr<BatchScheduler> fresh = MakeBatchScheduler(
              app, version, alive, batching, clock_, batch_metrics);
          reused = LoadedVersion{std::move(alive), std::move(fresh), version,
                                 draining->second.load_id};
        }
      }
    }
    if (reused.has_value()) {
      retired = Assign(app, slot, role, *std::move(reused), percent);
      LogInfo("model.ready", {{"app", app},
                              {"version", std::to_string(version)},
                              {"role", role_name},
                              {"how", "reused a loaded version"}});
      return absl::OkStatus();
    }
    if (role == Role::kServing) slot->loading_version = version;
    load_id = log_->Start(app, version);
  }
  LogInfo("model.loading", {{"app", app},
                            {"version", std::to_string(version)},
                            {"role", role_name}});

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
    scheduler = MakeBatchScheduler(app, version, published, batching, clock_,
                                   batch_metrics);
  }

  absl::MutexLock lock(&mu_);
  AppSlot* slot = FindSlot(app, serve_mu);
  if (slot != nullptr && role == Role::kServing) slot->loading_version = 0;
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
                {"role", role_name},
                {"reason", std::string(status.message())}});
    // `published`, if any, is released after the unlock; the log keeps
    // "failed" because finished loads do not change.
    return Annotate(status, "loading " + name);
  }
  retired = Assign(app, slot, role,
                   LoadedVersion{std::move(published), std::move(scheduler),
                                 version, load_id},
                   percent);
  LogInfo("model.ready", {{"app", app},
                          {"version", std::to_string(version)},
                          {"role", role_name}});
  return absl::OkStatus();
}

void ModelManager::EndCanary(const std::string& app) {
  EndRole(app, Role::kCanary);
}

void ModelManager::EndShadow(const std::string& app) {
  EndRole(app, Role::kShadow);
}

void ModelManager::EndRole(const std::string& app, Role role) {
  std::shared_ptr<absl::Mutex> serve_mu;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = apps_.find(app);
    if (it == apps_.end()) return;
    serve_mu = it->second.serve_mu;
  }
  absl::MutexLock serialize(serve_mu.get());
  Retired retired;  // released after mu_, as in ServeRole
  absl::MutexLock lock(&mu_);
  AppSlot* slot = FindSlot(app, serve_mu);
  if (slot == nullptr || RoleSlot(slot, role).model == nullptr) return;
  retired = Assign(app, slot, role, LoadedVersion{}, 0);
  LogInfo("model.role_ended",
          {{"app", app}, {"role", std::string(RoleName(role))}});
}

absl::StatusOr<ServableHandle> ModelManager::Get(const std::string& app) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = apps_.find(app);
  if (it == apps_.end()) {
    return absl::NotFoundError("app '" + app + "' not found");
  }
  const AppSlot& slot = it->second;
  if (slot.serving.model == nullptr) {
    return NoServingVersion(app, slot.loading_version);
  }
  return ServableHandle{slot.serving.model, slot.serving.version,
                        slot.serving.scheduler};
}

absl::StatusOr<ServableHandle> ModelManager::Route(const std::string& app,
                                                   std::string_view key) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = apps_.find(app);
  if (it == apps_.end()) {
    return absl::NotFoundError("app '" + app + "' not found");
  }
  const AppSlot& slot = it->second;
  if (slot.serving.model == nullptr) {
    return NoServingVersion(app, slot.loading_version);
  }
  const LoadedVersion* chosen = &slot.serving;
  if (slot.canary.model != nullptr &&
      slot.canary.version != slot.serving.version) {
    const bool to_canary =
        key.empty() ? KeylessToCanary(slot.keyless_routed.fetch_add(
                                          1, std::memory_order_relaxed),
                                      slot.canary_percent)
                    : RoutingBucket(app, key) <
                          static_cast<uint64_t>(slot.canary_percent);
    if (to_canary) chosen = &slot.canary;
  }
  return ServableHandle{chosen->model, chosen->version, chosen->scheduler};
}

std::optional<ServableHandle> ModelManager::Shadow(
    const std::string& app) const {
  if (apps_with_shadow_.load(std::memory_order_relaxed) == 0) {
    return std::nullopt;
  }
  absl::ReaderMutexLock lock(&mu_);
  auto it = apps_.find(app);
  if (it == apps_.end()) return std::nullopt;
  const AppSlot& slot = it->second;
  if (slot.shadow.model == nullptr ||
      (slot.serving.model != nullptr &&
       slot.serving.version == slot.shadow.version)) {
    return std::nullopt;
  }
  return ServableHandle{slot.shadow.model, slot.shadow.version,
                        slot.shadow.scheduler};
}

ModelManager::Traffic ModelManager::GetTraffic(const std::string& app) const {
  absl::ReaderMutexLock lock(&mu_);
  Traffic traffic;
  auto it = apps_.find(app);
  if (it == apps_.end()) return traffic;
  const AppSlot& slot = it->second;
  if (slot.serving.model != nullptr) {
    traffic.serving_version = slot.serving.version;
  }
  if (slot.canary.model != nullptr) {
    traffic.canary_version = slot.canary.version;
    traffic.canary_percent = slot.canary_percent;
  }
  if (slot.shadow.model != nullptr) {
    traffic.shadow_version = slot.shadow.version;
  }
  return traffic;
}

absl::StatusOr<ServableHandle> ModelManager::Get(const std::string& app,
                                                 int version) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = apps_.find(app);
  if (it == apps_.end()) {
    return absl::NotFoundError("app '" + app + "' not found");
  }
  const AppSlot& slot = it->second;
  for (const LoadedVersion* loaded :
       {&slot.serving, &slot.canary, &slot.shadow}) {
    if (loaded->model != nullptr && loaded->version == version) {
      return ServableHandle{loaded->model, version, loaded->scheduler};
    }
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
  if (slot.serving.model != nullptr) {
    message += " (app '" + app + "' serves v" +
               std::to_string(slot.serving.version) + ")";
  }
  return absl::NotFoundError(message);
}

std::vector<VersionState> ModelManager::States() const {
  return log_->Snapshot();
}

std::vector<ModelManager::VersionWorkers> ModelManager::Workers() const {
  // Models are read outside the lock: Workers() may read /proc.
  std::map<std::pair<std::string, int>, std::shared_ptr<const Model>> loaded;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [app, slot] : apps_) {
      for (const LoadedVersion* load : {&slot.serving, &slot.canary,
                                        &slot.shadow}) {
        if (load->model != nullptr) {
          loaded.emplace(std::make_pair(app, load->version), load->model);
        }
      }
    }
  }
  std::vector<VersionWorkers> all;
  for (const auto& [key, model] : loaded) {
    std::vector<ModelWorker> workers = model->Workers();
    if (workers.empty()) continue;
    all.push_back(VersionWorkers{key.first, key.second, std::move(workers)});
  }
  return all;
}

}  // namespace slipway
