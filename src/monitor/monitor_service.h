// MonitorService: the monitor of a serving process. It follows every served
// model version, closes monitoring windows on the clock, and keeps the
// prediction log, the feedback, the stored windows and the alerts.
//
// - Observe (the serving hot path, through serving/prediction_observer.h)
//   profiles the request rows into the version's WindowProfiler, counts its
//   latency, and queues one prediction record per row in the PredictionLog:
//   a request of one row under its request id, a request of N rows under
//   "<request_id>/<i>" for row i. A `monitor.log_inputs` fraction of the
//   requests (SampleInputs) also keeps its inputs, as the model saw them.
// - AddFeedback takes ground truth by request id, checks every label
//   against the app's model before anything is stored, and stores the batch
//   in one transaction (durable when it returns).
// - Tick closes each app's window once `monitor.window` has passed, and
//   reads the app's monitor settings then (a change applies from the next
//   window; between window ends a Tick reads nothing): per
//   version that saw rows or feedback, the window profile is compared with
//   the version's training baseline (stats/drift.h, with the spec's drift
//   policy), the KPIs are computed from the feedback received in the window
//   joined with its predictions (kpis.h), and the window is stored. The
//   serving version's window then feeds the app's AlertEngine; each firing
//   or resolved transition is stored and handed to `on_alert`, a pending
//   alert is stored as pending, and the engine state is saved, so a restart
//   continues where it was. Predictions older than `monitor.retention` are
//   deleted with their feedback.
// - RenderMetrics gives the Prometheus gauges of the latest windows.
//
// Windows are aligned to multiples of monitor.window since the epoch. A
// window in which a version saw no request and got no feedback is not
// stored. A window whose end passed long ago (the server was down or
// stalled) is closed at its end and the next one starts at the current
// aligned window.
//
// Ownership: the Options' objects must outlive the service.
// Thread safety: every method may be called concurrently. Observe takes a
// reader lock on the app table and the profiler's shard lock; Ticks are
// serialized.
#ifndef SLIPWAY_MONITOR_MONITOR_SERVICE_H_
#define SLIPWAY_MONITOR_MONITOR_SERVICE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/clock.h"
#include "models/signature.h"
#include "monitor/alerts.h"
#include "monitor/prediction_log.h"
#include "monitor/window_profiler.h"
#include "nlohmann/json.hpp"
#include "pipeline/app_spec.h"
#include "stats/drift.h"
#include "stats/profile.h"
#include "store/store.h"

namespace slipway {

// The drift policy a spec's monitor.drift describes: the method and
// threshold for every feature, the per-feature overrides, and the PSI warn
// and alert levels. With method auto, a threshold sets the distance level
// (normalized Wasserstein and Jensen-Shannon) of large baselines.
DriftPolicy DriftPolicyFor(const DriftSpec& spec);

// Latency of the requests of one window: the value below which a fraction
// `q` of them fell, interpolated within histogram buckets as Prometheus'
// histogram_quantile does. nullopt when no request was counted.
// `bounds` are the buckets' upper bounds; `counts` has one more entry (the
// +Inf bucket).
std::optional<double> BucketQuantile(const std::vector<int64_t>& bounds,
                                     const std::vector<int64_t>& counts,
                                     double q);

class MonitorService {
 public:
  struct Options {
    Store* store = nullptr;
    Clock* clock = nullptr;
    // The monitor section of the app's current spec.
    std::function<absl::StatusOr<MonitorSpec>(const std::string& app)>
        monitor_spec;
    // Told of every firing and resolved transition, after it is stored.
    std::function<void(const Alert& alert)> on_alert;
    // Told when a window of `app` has closed, after its windows and alert
    // transitions are stored (on the monitor's thread).
    std::function<void(const std::string& app)> on_window_closed;
    // The prediction log's settings (its clock defaults to `clock`).
    PredictionLog::Options log;
    // Run first on the thread that stores shadow versions' predictions,
    // which have a log of their own (the same settings otherwise), so that
    // a shadow's logging can be kept off the CPUs that answer clients.
    std::function<void()> shadow_writer_setup;
  };

  // Request latency bucket bounds, in microseconds (+Inf implied).
  static constexpr std::array<int64_t, 13> kLatencyBoundsMicros = {
      50,     100,    250,    500,     1'000,   2'500,    5'000,
      10'000, 25'000, 50'000, 100'000, 250'000, 1'000'000};

  // Starts the prediction log's writer. InvalidArgument when an option is
  // missing or out of range.
  static absl::StatusOr<std::unique_ptr<MonitorService>> Create(
      Options options);
  ~MonitorService();  // Stop()
  MonitorService(const MonitorService&) = delete;
  MonitorService& operator=(const MonitorService&) = delete;

  // Serving swapped `version` of `app` in: its requests are profiled (when
  // it has a training baseline) and logged from now on, with the settings
  // of `spec`. The version it replaces keeps its window until the window
  // closes. InvalidArgument when the baseline does not match the signature.
  //
  // TrackedAs::kBeside: `version` serves beside the app's serving version
  // (a canary): followed and windowed like it, kept through windows without
  // traffic, but the alerts keep following the serving version. kShadow:
  // the same for a shadow, whose predictions feedback labels too (logged
  // under core/ids.h ShadowLoggedId). Serving it later (kServing) makes it
  // the serving version.
  enum class TrackedAs { kServing, kBeside, kShadow };
  absl::Status Track(const std::string& app, int version,
                     const Signature& signature,
                     std::optional<ProfileSet> baseline,
                     const MonitorSpec& spec,
                     TrackedAs as = TrackedAs::kServing);
  // `version` no longer serves beside the serving version: it is forgotten
  // once a window closes without its traffic or feedback.
  void Untrack(const std::string& app, int version);

  // One answered request (see the file comment). Never blocks on I/O.
  void Observe(std::string_view app, int version, std::string_view request_id,
               int64_t answered_at_micros, int64_t latency_micros,
               const float* rows, size_t num_rows, const float* outputs,
               size_t width);

  // A request `version` of `app` failed (serving/prediction_observer.h):
  // each window stores {"requests", "failed", "rate"} of its version (the
  // API's window "errors"). Never blocks on I/O.
  void ObserveFailure(std::string_view app, int version);

  // A shadow's prediction of `num_rows` rows (outputs: num_rows x width)
  // against the answer the client got for them (primary_outputs, as wide):
  // for a classification model, the share of rows with the same predicted
  // class goes into the shadow version's window as the KPIs "agreement"
  // and "agreement_rows". Never blocks on I/O.
  void ObserveAgreement(std::string_view app, int version, size_t num_rows,
                        const float* outputs, size_t width,
                        const float* primary_outputs, size_t primary_width);

  // POST /v1/apps/{app}/feedback: `body` is one item {"request_id",
  // "label", "kpis": {name: number}}, {"feedback": [items]} or [items].
  // Returns {"app", "accepted", "duplicate", "unknown_request",
  // "wrong_app", "late", "items": [{"request_id", "outcome"}]}, where
  // "late" counts the accepted items whose prediction was made in an
  // earlier window than the one the feedback arrived in (it counts in this
  // window's KPIs).
  // InvalidArgument naming the item and field for a malformed item or a
  // label the app's model cannot have (nothing is stored); NotFound when a
  // single item's request id was never logged for the app (nothing is
  // stored); Unavailable when the app serves no model yet.
  absl::StatusOr<nlohmann::json> AddFeedback(const std::string& app,
                                             const nlohmann::json& body);

  // Closes every window that ended by the clock's now. Errors of one app
  // are logged and do not stop the others; the first one is returned.
  absl::Status Tick();

  // Runs Tick on a thread of its own, at each window's end. Stop ends it
  // and stores what the prediction log holds. Start REQUIRES: not started.
  void Start();
  void Stop();

  // The gauges of the latest window of each app and version, the alert
  // states and the feedback and log counters, in Prometheus text format
  // (HELP and TYPE once per family).
  std::string RenderMetrics() const;

  // Waits until every prediction observed so far is stored (tests, and
  // feedback, which must find its prediction).
  absl::Status FlushLog();

 private:
  struct VersionState;
  struct AppState;
  struct Latest;

  explicit MonitorService(Options options);

  absl::Status TickApp(const std::string& app, int64_t now);
  // Stores one version's window; fills `metrics` when it is the version
  // the alerts follow.
  absl::Status CloseVersionWindow(const std::string& app, VersionState& state,
                                  int64_t start, int64_t end,
                                  const std::vector<LabeledRecord>& labeled,
                                  const DriftPolicy& policy,
                                  WindowMetrics* metrics, Latest* latest);
  // Rebuilds the app's alert engine when its rules or features changed,
  // keeping the rules' state.
  absl::Status RefreshEngine(const std::string& app, AppState& state,
                             const MonitorSpec& spec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Loop();

  const Options options_;
  std::unique_ptr<PredictionLog> log_;
  // The predictions of versions tracked as kShadow.
  std::unique_ptr<PredictionLog> shadow_log_;

  absl::Mutex tick_mu_;  // serializes Ticks
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<AppState>, std::less<>> apps_
      ABSL_GUARDED_BY(mu_);

  // Feedback outcomes by app and outcome name, for /metrics.
  mutable absl::Mutex counters_mu_;
  std::map<std::pair<std::string, std::string>, int64_t> feedback_counts_
      ABSL_GUARDED_BY(counters_mu_);
  // Accepted feedback on predictions of an earlier window, by app.
  std::map<std::string, int64_t> feedback_late_ ABSL_GUARDED_BY(counters_mu_);

  absl::Mutex loop_mu_;
  absl::CondVar loop_cv_;
  bool stopping_ ABSL_GUARDED_BY(loop_mu_) = false;
  std::thread loop_;
};

}  // namespace slipway

#endif  // SLIPWAY_MONITOR_MONITOR_SERVICE_H_
