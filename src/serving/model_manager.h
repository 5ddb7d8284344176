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
// Batching: each served version gets its own BatchScheduler (batcher.h),
// built from the BatchingOptions given to Serve() and handed out with every
// ServableHandle. The scheduler holds the model, so a version stays loaded
// (draining) until its batcher has finished the requests queued on it and
// the last handle is gone; requests that got the new version's handle go to
// the new batcher.
//
// Thread safety: every method may be called concurrently. Get() is the hot
// path: a reader lock on the app table and one shared_ptr copy; readers never
// wait for each other or for a load in progress (loading happens outside the
// table lock). Serve() calls for the same app run one at a time, so two
// loads never race to swap (concurrent calls are taken in lock order; a call
// made after another returned always swaps last); different apps load in
// parallel.
#ifndef SLIPWAY_SERVING_MODEL_MANAGER_H_
#define SLIPWAY_SERVING_MODEL_MANAGER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
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
  // Forgets `app`; its serving version goes draining and unloads when the
  // last in-flight request releases it. Unknown apps are ignored.
  void RemoveApp(const std::string& app);

  // Loads `version` with `load`, then atomically makes it the app's serving
  // version, with a scheduler built from `batching`; returns after the swap
  // (the next Get sees it). The previous version goes draining. A version
  // that is still loaded (serving, or draining and held by a request) is
  // reused without calling `load`, so a quick rollback costs nothing; the
  // serving version is left as it is, batcher included.
  // Errors: InvalidArgument for `batching` out of range; NotFound for an
  // unknown app; when `load` fails (or returns no model) the previous
  // version keeps serving, the version is recorded as failed with the
  // reason, and the error is returned with the model named.
  absl::Status Serve(const std::string& app, int version, Loader load,
                     const BatchingOptions& batching = {});

  // The app's serving version.
  // NotFound "app 'x' not found"; Unavailable when nothing serves yet.
  absl::StatusOr<ServableHandle> Get(const std::string& app) const;
  // A specific version: the serving one or a draining one still loaded.
  // NotFound "model x v7 is not loaded" otherwise.
  absl::StatusOr<ServableHandle> Get(const std::string& app, int version) const;

  // Every tracked load, grouped by app (sorted) and in load order: all live
  // versions plus the last kFinishedKept unloaded or failed ones per app.
  std::vector<VersionState> States() const;

  // Finished (unloaded or failed) loads remembered per app.
  static constexpr int kFinishedKept = 4;

 private:
  class TransitionLog;

  // A version swapped out but possibly still held by requests.
  struct DrainingVersion {
    std::weak_ptr<const Model> model;
    std::weak_ptr<BatchScheduler> scheduler;
    uint64_t load_id = 0;
  };

  // What a swap replaced; the caller releases it after unlocking mu_ (its
  // release may unload the model and joins the batcher).
  struct Retired {
    std::shared_ptr<const Model> model;
    std::shared_ptr<BatchScheduler> scheduler;
  };

  struct AppSlot {
    // Runs this app's Serve() calls one at a time; never taken by readers.
    // Shared so a Serve() in progress survives RemoveApp(); comparing it
    // also tells Serve() whether the app was removed (and maybe re-added)
    // while it was loading.
    std::shared_ptr<absl::Mutex> serve_mu = std::make_shared<absl::Mutex>();
    std::shared_ptr<const Model> serving;       // null until the first swap
    std::shared_ptr<BatchScheduler> scheduler;  // serving's
    int serving_version = 0;
    uint64_t serving_load_id = 0;
    int loading_version = 0;  // 0 when no load is in progress
    std::map<int, DrainingVersion> draining;
  };

  // The app's slot when it is still the one `serve_mu` belongs to.
  AppSlot* FindSlot(const std::string& app,
                    const std::shared_ptr<absl::Mutex>& serve_mu)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Makes `model` (load `load_id`) with `scheduler` the serving version of
  // `slot` and moves the previous one to draining.
  Retired SwapIn(const std::string& app, AppSlot* slot,
                 std::shared_ptr<const Model> model,
                 std::shared_ptr<BatchScheduler> scheduler, int version,
                 uint64_t load_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  ServingMetrics* const metrics_;
  // Co-owned by the deleters of every published model.
  const std::shared_ptr<TransitionLog> log_;
  mutable absl::Mutex mu_;
  std::map<std::string, AppSlot> apps_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipway

#endif  // SLIPWAY_SERVING_MODEL_MANAGER_H_
