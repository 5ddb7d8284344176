// ModelManager: which model version each app serves, and the lifecycle of
// every loaded version, the TF Serving way (STYLE.md rules 12-13).
//
// Each version goes through an explicit state machine, and every transition
// is recorded with its time:
//
//   loading -> ready -> draining -> unloaded
//      \-> failed (with the reason; the previous version keeps serving)
//
// Serve() loads a version completely, then swaps it in atomically: the next
// Get() returns it. The version it replaces goes `draining`: requests that
// already hold a ServableHandle finish on it, and it is unloaded (the Model
// destroyed) when the last handle is released.
//
// Drain detection: the manager hands out the served model through a
// shared_ptr whose custom deleter destroys the Model and records
// `unloaded`. The manager keeps only a weak_ptr to a draining version (so
// Get(app, version) can still reach it while a handle lives), which means the
// last handle to go, wherever it is released, unloads the version at once.
// The deleter writes only to the transition log, which it co-owns, so a
// handle may safely outlive the manager (not the clock).
//
// Traffic: beside its serving (champion) version an app may have
//   - a canary, which answers a fixed percent of the requests Route() routes
//     (sticky per routing key), and
//   - a shadow, which gets a copy of each request off the response path
//     (the inference handlers send it; its answers never reach a client).
// ServeCanary() and ServeShadow() load like Serve() (the same state machine,
// reuse of a loaded version, a failed load leaving the previous one in
// place); EndCanary() and EndShadow() drain them like a swapped-out version.
// A version takes part in every role it holds with one load: serving,
// canary and shadow of the same version share the model. Get() answers with
// the serving version only; Route() is what the predict handlers use.
//
// Batching: each served version gets its own BatchScheduler (batcher.h),
// built from the BatchingOptions given to Serve() and handed out with every
// ServableHandle. The scheduler holds the model, so a version stays loaded
// (draining) until its batcher has finished the requests queued on it and
// the last handle is gone; requests that got the new version's handle go to
// the new batcher.
//
// A version taken over from another role keeps its batcher, except one that
// only shadowed: a shadow's scheduler records no batch metrics (its batches
// are no client's), so a shadow becoming serving or canary gets a new one.
//
// Thread safety: every method may be called concurrently. Get() and Route()
// are the hot path: a reader lock on the app table and one shared_ptr copy
// (Route adds a hash of the key or one relaxed atomic increment); Shadow()
// returns at once without a lock while no app has a shadow. Readers never
// wait for each other or for a load in progress (loading happens outside
// the table lock). Serve(), ServeCanary(), ServeShadow(), EndCanary() and
// EndShadow() calls for the same app run one at a time, so two loads never
// race to swap (concurrent calls are taken in lock order; a call made after
// another returned always swaps last); different apps load in parallel.
#ifndef SLIPWAY_SERVING_MODEL_MANAGER_H_
#define SLIPWAY_SERVING_MODEL_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/clock.h"
#include "models/model.h"
#include "serving/batcher.h"

namespace slipway {

class ServingMetrics;

// A reference to one loaded model version. While any copy is alive the
// version stays loaded, even after a newer version has been swapped in.
struct ServableHandle {
  std::shared_ptr<const Model> model;
  int version = 0;
  // Where predictions for this version go: the version's batcher, or a
  // DirectScheduler when batching is off. Never null in a handle from Get.
  // Copies must not be owned by a scheduler's `done` callback (see
  // batcher.h): capture `model` there instead.
  std::shared_ptr<BatchScheduler> scheduler;
};

enum class VersionStateKind { kLoading, kReady, kDraining, kUnloaded, kFailed };

// "loading", "ready", "draining", "unloaded", "failed".
std::string_view VersionStateName(VersionStateKind state);

// The current state of one load of a version.
struct VersionState {
  std::string app;
  int version = 0;
  VersionStateKind state = VersionStateKind::kLoading;
  std::string reason;        // why it failed; empty otherwise
  int64_t since_micros = 0;  // wall-clock time of the last transition
  // What the load does for its app: "serving", "canary" or "shadow" (a load
  // holding several roles shows the first of these), or "" while it loads,
  // drains, or once it is unloaded or failed.
  std::string role;
};

class ModelManager {
 public:
  using Loader = std::function<absl::StatusOr<std::shared_ptr<const Model>>()>;

  // `clock` stamps the transitions and times the batchers; it must outlive
  // the manager and every handle the manager gave out (a released handle
  // records `unloaded`). `metrics` (may be null) receives the batchers'
  // measurements and must outlive them too.
  explicit ModelManager(Clock* clock, ServingMetrics* metrics = nullptr);
  ~ModelManager();
  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // Makes `app` known (Get then answers "no champion yet" instead of "not
  // found"). Adding a known app changes nothing.
  void AddApp(const std::string& app);
  // Forgets `app`; its serving version, canary and shadow go draining and
  // unload when the last in-flight request releases them. Unknown apps are
  // ignored.
  void RemoveApp(const std::string& app);

  // Loads `version` with `load`, then atomically makes it the app's serving
  // version, with a scheduler built from `batching`; returns after the swap
  // (the next Get sees it). The previous version goes draining (unless it
  // is also the canary or the shadow). A version that is still loaded is
  // reused without calling `load`: the serving version is left as it is,
  // batcher included; the canary is promoted with its batcher (the canary
  // slot then equals serving and gets no separate traffic until EndCanary
  // or ServeCanary); a shadow or a version draining and held by a request
  // gets a new batcher, so a quick rollback costs nothing.
  // Errors: InvalidArgument for `batching` out of range; NotFound for an
  // unknown app; when `load` fails (or returns no model) the previous
  // version keeps serving, the version is recorded as failed with the
  // reason, and the error is returned with the model named.
  absl::Status Serve(const std::string& app, int version, Loader load,
                     const BatchingOptions& batching = {});

  // Loads `version` (reusing it when it is already loaded: serving, canary,
  // shadow or draining and held) with its own scheduler from `batching`, and
  // makes it the app's canary: Route() sends `percent` of the app's requests
  // to it. Replaces the app's previous canary (which goes draining like a
  // swapped-out version); called again for the canary's version it only
  // changes the percent. A canary equal to the serving version gets no traffic
  // of its own (Route returns the serving version), and gets its share
  // back if a later Serve() makes the two differ again.
  // Errors: InvalidArgument for `percent` outside [1, 99] or bad
  // `batching`; NotFound for an unknown app; a failed load as Serve() (the
  // previous canary stays).
  absl::Status ServeCanary(const std::string& app, int version, int percent,
                           Loader load, const BatchingOptions& batching = {});
  // The same for the shadow, which Shadow() returns. A shadow's own
  // scheduler records no batch metrics (its batches are no client's); a
  // shadow of the canary's version shares the canary's batcher.
  absl::Status ServeShadow(const std::string& app, int version, Loader load,
                           const BatchingOptions& batching = {});
  // The app's canary / shadow stops: it drains like a swapped-out version
  // (unless it is also the serving version or holds the other role). Nothing
  // happens when there is none or the app is unknown.
  void EndCanary(const std::string& app);
  void EndShadow(const std::string& app);

  // The app's serving version.
  // NotFound "app 'x' not found"; Unavailable when nothing serves yet.
  absl::StatusOr<ServableHandle> Get(const std::string& app) const;
  // A specific version: the serving one, the canary, the shadow, or a
  // draining one still loaded. NotFound "model x v7 is not loaded" otherwise.
  absl::StatusOr<ServableHandle> Get(const std::string& app, int version) const;

  // The version that answers a request for `app` routed by `key` (empty:
  // none): the canary for its percent of requests, else the serving
  // version. With a key the choice is a stable hash of the app and the key
  // into 100 buckets, the canary taking buckets [0, percent): the same key
  // always gets the same version while the split stays the same (in every
  // process, run after run), and a percent change moves only the keys it
  // must. Without a key an atomic counter spreads the requests so that
  // exactly `percent` of every 100 consecutive ones go to the canary, evenly
  // interleaved rather than in a run. Errors as Get(app).
  absl::StatusOr<ServableHandle> Route(const std::string& app,
                                       std::string_view key) const;
  // The app's shadow, when it has one that differs from the serving version.
  std::optional<ServableHandle> Shadow(const std::string& app) const;

  // Which versions take the app's traffic; a field is 0 when the role is
  // empty, and every field is 0 for an unknown app. canary_version equal to
  // serving_version means the canary gets no traffic of its own.
  struct Traffic {
    int serving_version = 0;
    int canary_version = 0;
    int canary_percent = 0;
    int shadow_version = 0;
  };
  Traffic GetTraffic(const std::string& app) const;

  // Every tracked load, grouped by app (sorted) and in load order: all live
  // versions plus the last kFinishedKept unloaded or failed ones per app.
  std::vector<VersionState> States() const;

  // The worker processes of each version holding a role (Model::Workers;
  // versions whose backend has none are left out), by app and version.
  struct VersionWorkers {
    std::string app;
    int version = 0;
    std::vector<ModelWorker> workers;
  };
  std::vector<VersionWorkers> Workers() const;

  // Finished (unloaded or failed) loads remembered per app.
  static constexpr int kFinishedKept = 4;

 private:
  class TransitionLog;

  // What a version does for its app.
  enum class Role { kServing, kCanary, kShadow };

  // One load in a role: empty (null model) when the app has no such role.
  struct LoadedVersion {
    std::shared_ptr<const Model> model;
    std::shared_ptr<BatchScheduler> scheduler;
    int version = 0;
    uint64_t load_id = 0;
  };

  // A version no role holds any more, possibly still held by requests.
  struct DrainingVersion {
    std::weak_ptr<const Model> model;
    std::weak_ptr<BatchScheduler> scheduler;
    uint64_t load_id = 0;
  };

  // What a role change replaced; the caller releases it after unlocking mu_
  // (its release may unload the model and joins the batcher).
  struct Retired {
    std::shared_ptr<const Model> model;
    std::shared_ptr<BatchScheduler> scheduler;
  };

  struct AppSlot {
    // Runs this app's role changes (Serve, ServeCanary, ServeShadow,
    // EndCanary, EndShadow) one at a time; never taken by readers. Shared
    // so a load in progress survives RemoveApp(); comparing it also tells a
    // load whether the app was removed (and maybe re-added) meanwhile.
    std::shared_ptr<absl::Mutex> serve_mu = std::make_shared<absl::Mutex>();
    LoadedVersion serving;  // null model until the first swap
    LoadedVersion canary;
    int canary_percent = 0;  // 0 exactly when there is no canary
    LoadedVersion shadow;
    int loading_version = 0;  // a serving load in progress, else 0
    std::map<int, DrainingVersion> draining;
    // Keyless requests Route() has sent, for the canary's exact share.
    // Counted under the reader lock, hence atomic.
    mutable std::atomic<uint64_t> keyless_routed{0};
  };

  // "serving", "canary", "shadow".
  static std::string_view RoleName(Role role);
  static LoadedVersion& RoleSlot(AppSlot* slot, Role role);

  // The app's slot when it is still the one `serve_mu` belongs to.
  AppSlot* FindSlot(const std::string& app,
                    const std::shared_ptr<absl::Mutex>& serve_mu)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Serve, ServeCanary and ServeShadow: loads `version` (or reuses it) and
  // makes it the app's `role`. `percent` is the canary's share.
  absl::Status ServeRole(const std::string& app, Role role, int version,
                         int percent, Loader load,
                         const BatchingOptions& batching);
  // EndCanary and EndShadow.
  void EndRole(const std::string& app, Role role);

  // Puts `next` (may be empty) in `role` of `slot`, records it ready and
  // republishes the roles; the load it replaces goes draining unless
  // another role still holds its version.
  Retired Assign(const std::string& app, AppSlot* slot, Role role,
                 LoadedVersion next, int percent)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the role of each of the slot's live loads in the log.
  void PublishRoles(const std::string& app, const AppSlot& slot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  ServingMetrics* const metrics_;
  // Co-owned by the deleters of every published model.
  const std::shared_ptr<TransitionLog> log_;
  mutable absl::Mutex mu_;
  std::map<std::string, AppSlot> apps_ ABSL_GUARDED_BY(mu_);
  // Apps with a shadow; changed under mu_, read without it by Shadow(), so
  // requests pay no lock for shadows while there are none.
  std::atomic<int> apps_with_shadow_{0};
};

}  // namespace slipway

#endif  // SLIPWAY_SERVING_MODEL_MANAGER_H_
