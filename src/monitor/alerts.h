// Alert rules: turn each window's metrics into alert transitions, the way
// Prometheus' alerting rules do (pending for N windows, then firing once,
// then resolved once).
//
// A window's metrics are a flat map of numbers, filled by the caller from
// the window's drift comparison (AddDriftMetrics), its KPIs (AddKpiMetrics)
// and serving's own counters:
//   rows                         requests profiled in the window
//   latency.p50_ms, .p99_ms      request latency
//   kpi.<quality>                kpi.accuracy, .precision, .recall, .f1,
//                                .auc, .logloss, .rmse, .mae
//   kpi.<business>.sum, .mean    business values sent with feedback
//   drift.<feature>              the feature's drift score (FeatureDrift::
//                                score: a p-value for ks and chi2, lower
//                                meaning more drift; a distance otherwise)
//   drift.<feature>.drift        1 when the feature drifted, else 0
//   drift.prediction[.drift]     the same for the prediction
//
// The engine evaluates the app's rules (monitor.rules) and one implicit rule
// per request feature, "drift:<feature>" (drift.<feature>.drift above 0.5,
// firing the `drift` event), so an alert says which feature moved. Per rule
// and window:
// - the rule holds when its metric is below / above the threshold (strict);
// - inactive -> pending when it holds; pending -> firing when it has held
//   for `for_windows` consecutive windows, reported once ("firing");
//   pending -> inactive when it stops holding (a flap resets the count);
// - firing -> resolved when it stops holding, reported once ("resolved"),
//   after which the rule is inactive again;
// - a window without the metric (or with NaN) neither advances nor resets
//   the rule: a window with too few rows to decide drift, or with no
//   feedback yet, says nothing either way.
//
// The state (each rule's phase, count, since and last value) is a JSON
// value the caller persists after each window and restores on restart, so
// a pending count survives a restart and a firing alert is not reported
// twice.
//
// Thread safety: a plain value; one thread at a time (the monitor tick).
#ifndef SLIPWAY_MONITOR_ALERTS_H_
#define SLIPWAY_MONITOR_ALERTS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "pipeline/app_spec.h"
#include "stats/drift.h"

namespace slipway {

// A window's metrics by name (see the file comment).
using WindowMetrics = std::map<std::string, double, std::less<>>;

// drift.<name> (when the feature has a score) and drift.<name>.drift (when
// the window had enough values to decide) for every feature and the
// prediction compared.
void AddDriftMetrics(const std::vector<FeatureDrift>& drifts,
                     WindowMetrics* metrics);

// kpi.<metric> for each quality metric of a ComputeKpis result (kpis.h),
// and kpi.<name>.sum / kpi.<name>.mean for each business value.
void AddKpiMetrics(const nlohmann::json& kpis, WindowMetrics* metrics);

// OK when `metric` names a window metric a rule may watch, for an app whose
// model has the request features `features`; InvalidArgument listing the
// valid names otherwise.
absl::Status CheckRuleMetric(const std::string& metric,
                             const std::vector<std::string>& features);

enum class AlertState { kPending, kFiring, kResolved };
// "pending", "firing", "resolved".
std::string_view AlertStateName(AlertState state);

// One rule's alert: a transition Evaluate reports, or a live alert.
struct Alert {
  std::string rule;
  std::string app;
  AlertState state = AlertState::kPending;
  std::string metric;
  double value = 0;  // the metric in the window of the transition (or last)
  double threshold = 0;
  Comparison comparison = Comparison::kAbove;
  // The end of the window at which the alert entered `state` (pending: the
  // first window of the run of windows that held).
  int64_t since_micros = 0;
  // The event the rule raises when it fires (the caller raises it on a
  // "firing" transition only).
  std::optional<TriggerEvent> fire;

  // {"rule", "app", "state", "metric", "value", "threshold",
  //  "comparison": "below" | "above", "since": "2026-11-27T12:58:37.000Z",
  //  "fire": "drift" | "kpi_decay" | "new_data" | null}
  nlohmann::json ToJson() const;
};

class AlertEngine {
 public:
  struct Options {
    std::string app;
    // monitor.rules of the app's spec.
    std::vector<AlertRuleSpec> rules;
    // The model's request features: one implicit "drift:<feature>" rule
    // each.
    std::vector<std::string> features;
    // Consecutive drifted windows before a drift rule fires. The default
    // drift decision of a large baseline (stats/drift.h) already keeps an
    // undrifted window's false alarm rate below 1e-4 per feature; with a
    // baseline of at most 1,000 rows it is a 5% test per feature and
    // window, which more windows bring down to about 0.05^N.
    int64_t drift_for_windows = 1;
  };

  // InvalidArgument naming the rule when a name is empty or repeats
  // (implicit drift rules included), for_windows is below 1 or the
  // threshold is not a finite number. Metrics are not checked here (see
  // CheckRuleMetric): a rule on a metric no window reports never fires.
  static absl::StatusOr<AlertEngine> Create(Options options);

  // Evaluates every rule on the metrics of the window that ended at
  // `window_end_micros` and returns the transitions to report: "firing"
  // and "resolved" alerts, in rule order (the app's rules, then the drift
  // rules in feature order).
  std::vector<Alert> Evaluate(const WindowMetrics& metrics,
                              int64_t window_end_micros);

  // The pending and firing alerts, in rule order.
  std::vector<Alert> Active() const;

  // {"version": 1, "app": ..., "rules": [{"rule", "state": "pending" |
  //  "firing", "windows", "since", "value"}]} for every active rule.
  nlohmann::json SaveState() const;
  // Restores a SaveState value: the rules it lists continue where they
  // were (a rule the engine no longer has is dropped); every other rule
  // starts inactive. InvalidArgument (and no change) when the value is not
  // a state of this app's engine.
  absl::Status RestoreState(const nlohmann::json& state);

 private:
  enum class Phase { kInactive, kPending, kFiring };
  struct RuleState {
    Phase phase = Phase::kInactive;
    int64_t windows = 0;  // consecutive windows the rule held
    int64_t since_micros = 0;
    double value = 0;
  };

  explicit AlertEngine(Options options);

  Alert MakeAlert(size_t rule, AlertState state) const;

  std::string app_;
  std::vector<AlertRuleSpec> rules_;
  std::vector<RuleState> states_;  // one per rule
};

}  // namespace slipway

#endif  // SLIPWAY_MONITOR_ALERTS_H_
