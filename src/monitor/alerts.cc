#include "monitor/alerts.h"

#include <array>
#include <cmath>
#include <set>
#include <utility>

#include "core/clock.h"

namespace slipway {
namespace {

using json = nlohmann::json;

constexpr int kStateVersion = 1;
constexpr std::string_view kDriftRulePrefix = "drift:";

// The quality metrics ComputeKpis reports (kpis.h).
constexpr std::array<std::string_view, 8> kQualityKpis = {
    "accuracy", "precision", "recall", "f1",
    "auc",      "logloss",   "rmse",   "mae"};

std::string_view ComparisonName(Comparison comparison) {
  return comparison == Comparison::kBelow ? "below" : "above";
}

bool Holds(const AlertRuleSpec& rule, double value) {
  return rule.comparison == Comparison::kBelow ? value < rule.threshold
                                               : value > rule.threshold;
}

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

void AddDriftMetrics(const std::vector<FeatureDrift>& drifts,
                     WindowMetrics* metrics) {
  for (const FeatureDrift& drift : drifts) {
    const std::string key = "drift." + drift.name;
    if (drift.score) (*metrics)[key] = *drift.score;
    if (!drift.insufficient) (*metrics)[key + ".drift"] = drift.drift ? 1 : 0;
  }
}

void AddKpiMetrics(const json& kpis, WindowMetrics* metrics) {
  for (std::string_view name : kQualityKpis) {
    const auto it = kpis.find(name);
    if (it != kpis.end() && it->is_number()) {
      (*metrics)["kpi." + std::string(name)] = it->get<double>();
    }
  }
  const auto business = kpis.find("kpis");
  if (business == kpis.end() || !business->is_object()) return;
  for (const auto& [name, values] : business->items()) {
    for (const char* field : {"sum", "mean"}) {
      const auto it = values.find(field);
      if (it != values.end() && it->is_number()) {
        (*metrics)["kpi." + name + "." + field] = it->get<double>();
      }
    }
  }
}

absl::Status CheckRuleMetric(const std::string& metric,
                             const std::vector<std::string>& features) {
  const std::string_view name = metric;
  if (name == "rows" || name == "latency.p50_ms" ||
      name == "latency.p99_ms" || name == "drift.prediction" ||
      name == "drift.prediction.drift") {
    return absl::OkStatus();
  }
  if (name.starts_with("kpi.")) {
    const std::string_view rest = name.substr(4);
    for (std::string_view kpi : kQualityKpis) {
      if (rest == kpi) return absl::OkStatus();
    }
    for (std::string_view suffix : {".sum", ".mean"}) {
      if (EndsWith(rest, suffix) && rest.size() > suffix.size()) {
        return absl::OkStatus();
      }
    }
  }
  if (name.starts_with("drift.")) {
    std::string_view feature = name.substr(6);
    for (const std::string& known : features) {
      if (feature == known || feature == known + ".drift") {
        return absl::OkStatus();
      }
    }
  }

  std::string valid;
  for (std::string_view kpi : kQualityKpis) {
    valid += "kpi." + std::string(kpi) + ", ";
  }
  valid += "kpi.<name>.sum and kpi.<name>.mean (a business value sent with "
           "feedback), ";
  for (const std::string& feature : features) {
    valid += "drift." + feature + ", ";
  }
  valid += "drift.prediction (each drift.X also as drift.X.drift, 1 when "
           "drifted), latency.p50_ms, latency.p99_ms, rows";
  return absl::InvalidArgumentError("alert rule metric '" + metric +
                                    "' does not exist; valid metrics: " +
                                    valid);
}

std::string_view AlertStateName(AlertState state) {
  switch (state) {
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
    case AlertState::kResolved:
      return "resolved";
  }
  return "unknown";
}

json Alert::ToJson() const {
  json out = json::object();
  out["rule"] = rule;
  out["app"] = app;
  out["state"] = std::string(AlertStateName(state));
  out["metric"] = metric;
  out["value"] = value;
  out["threshold"] = threshold;
  out["comparison"] = std::string(ComparisonName(comparison));
  out["since"] = FormatTimestamp(since_micros);
  out["fire"] = fire ? json(std::string(TriggerEventName(*fire))) : json();
  return out;
}

AlertEngine::AlertEngine(Options options)
    : app_(std::move(options.app)), rules_(std::move(options.rules)) {
  for (const std::string& feature : options.features) {
    AlertRuleSpec rule;
    rule.name = std::string(kDriftRulePrefix) + feature;
    rule.metric = "drift." + feature + ".drift";
    rule.comparison = Comparison::kAbove;
    rule.threshold = 0.5;
    rule.for_windows = options.drift_for_windows;
    rule.fire = TriggerEvent::kDrift;
    rules_.push_back(std::move(rule));
  }
  states_.resize(rules_.size());
}

absl::StatusOr<AlertEngine> AlertEngine::Create(Options options) {
  if (options.drift_for_windows < 1) {
    return absl::InvalidArgumentError(
        "alert engine of app '" + options.app + "': drift_for_windows is " +
        std::to_string(options.drift_for_windows) +
        "; a drift rule must hold for at least 1 window");
  }
  AlertEngine engine(std::move(options));
  std::set<std::string_view> names;
  for (const AlertRuleSpec& rule : engine.rules_) {
    const std::string context =
        "alert rule '" + rule.name + "' of app '" + engine.app_ + "'";
    if (rule.name.empty()) {
      return absl::InvalidArgumentError(
          "an alert rule of app '" + engine.app_ + "' (metric '" +
          rule.metric + "') has no name; give every rule a name");
    }
    if (!names.insert(rule.name).second) {
      return absl::InvalidArgumentError(
          context + " is defined twice" +
          (rule.name.starts_with(kDriftRulePrefix)
               ? "; names starting with 'drift:' belong to the implicit "
                 "drift rule of each feature, rename the rule"
               : "; give each rule its own name"));
    }
    if (rule.for_windows < 1) {
      return absl::InvalidArgumentError(
          context + ": 'for' is " + std::to_string(rule.for_windows) +
          "; a rule must hold for at least 1 window");
    }
    if (!std::isfinite(rule.threshold)) {
      return absl::InvalidArgumentError(
          context + ": the threshold must be a finite number");
    }
  }
  return engine;
}

Alert AlertEngine::MakeAlert(size_t rule, AlertState state) const {
  const AlertRuleSpec& spec = rules_[rule];
  Alert alert;
  alert.rule = spec.name;
  alert.app = app_;
  alert.state = state;
  alert.metric = spec.metric;
  alert.value = states_[rule].value;
  alert.threshold = spec.threshold;
  alert.comparison = spec.comparison;
  alert.since_micros = states_[rule].since_micros;
  alert.fire = spec.fire;
  return alert;
}

std::vector<Alert> AlertEngine::Evaluate(const WindowMetrics& metrics,
                                         int64_t window_end_micros) {
  std::vector<Alert> transitions;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const AlertRuleSpec& rule = rules_[i];
    const auto it = metrics.find(rule.metric);
    if (it == metrics.end() || std::isnan(it->second)) continue;
    RuleState& state = states_[i];
    state.value = it->second;
    if (!Holds(rule, it->second)) {
      if (state.phase == Phase::kFiring) {
        state.since_micros = window_end_micros;
        transitions.push_back(MakeAlert(i, AlertState::kResolved));
      }
      state.phase = Phase::kInactive;
      state.windows = 0;
      continue;
    }
    if (state.phase == Phase::kFiring) continue;
    if (state.phase == Phase::kInactive) {
      state.phase = Phase::kPending;
      state.windows = 0;
      state.since_micros = window_end_micros;
    }
    ++state.windows;
    if (state.windows >= rule.for_windows) {
      state.phase = Phase::kFiring;
      state.since_micros = window_end_micros;
      transitions.push_back(MakeAlert(i, AlertState::kFiring));
    }
  }
  return transitions;
}

std::vector<Alert> AlertEngine::Active() const {
  std::vector<Alert> active;
  for (size_t i = 0; i < rules_.size(); ++i) {
    switch (states_[i].phase) {
      case Phase::kInactive:
        break;
      case Phase::kPending:
        active.push_back(MakeAlert(i, AlertState::kPending));
        break;
      case Phase::kFiring:
        active.push_back(MakeAlert(i, AlertState::kFiring));
        break;
    }
  }
  return active;
}

json AlertEngine::SaveState() const {
  json rules = json::array();
  for (size_t i = 0; i < rules_.size(); ++i) {
    const RuleState& state = states_[i];
    if (state.phase == Phase::kInactive) continue;
    rules.push_back(
        {{"rule", rules_[i].name},
         {"state", state.phase == Phase::kFiring ? "firing" : "pending"},
         {"windows", state.windows},
         {"since", state.since_micros},
         {"value", state.value}});
  }
  return {{"version", kStateVersion}, {"app", app_}, {"rules", rules}};
}

absl::Status AlertEngine::RestoreState(const json& state) {
  const std::string context = "alert state of app '" + app_ + "'";
  if (!state.is_object() || state.value("version", json()) != kStateVersion) {
    return absl::InvalidArgumentError(
        context + ": expected an object with \"version\": " +
        std::to_string(kStateVersion) +
        " (a value saved by AlertEngine::SaveState)");
  }
  const json app = state.value("app", json());
  if (app != app_) {
    return absl::InvalidArgumentError(context + ": the state is app " +
                                      app.dump() + "'s; restore each app's "
                                      "own state");
  }
  const auto rules = state.find("rules");
  if (rules == state.end() || !rules->is_array()) {
    return absl::InvalidArgumentError(
        context + ": 'rules' must be an array of rule states");
  }
  std::vector<RuleState> restored(rules_.size());
  for (size_t r = 0; r < rules->size(); ++r) {
    const json& entry = (*rules)[r];
    const std::string where = context + ": rules[" + std::to_string(r) + "]";
    if (!entry.is_object()) {
      return absl::InvalidArgumentError(where + " must be an object");
    }
    const json name = entry.value("rule", json());
    const json phase = entry.value("state", json());
    const json windows = entry.value("windows", json());
    const json since = entry.value("since", json());
    const json value = entry.value("value", json());
    if (!name.is_string() || (phase != "pending" && phase != "firing") ||
        !windows.is_number_integer() || windows.get<int64_t>() < 1 ||
        !since.is_number_integer() || !value.is_number()) {
      return absl::InvalidArgumentError(
          where +
          " must hold \"rule\" (a name), \"state\" (\"pending\" or "
          "\"firing\"), \"windows\" (an integer >= 1), \"since\" "
          "(microseconds) and \"value\" (a number)");
    }
    for (size_t i = 0; i < rules_.size(); ++i) {
      if (rules_[i].name != name.get_ref<const std::string&>()) continue;
      RuleState& rule = restored[i];
      rule.phase = phase == "firing" ? Phase::kFiring : Phase::kPending;
      rule.windows = windows.get<int64_t>();
      rule.since_micros = since.get<int64_t>();
      rule.value = value.get<double>();
    }
  }
  states_ = std::move(restored);
  return absl::OkStatus();
}

}  // namespace slipway
