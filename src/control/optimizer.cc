#include "control/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <utility>

#include "absl/strings/str_format.h"
#include "core/logging.h"
#include "core/status.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"
#include "stats/bootstrap.h"

namespace slipway {
namespace {

using nlohmann::json;

// One version's labelled predictions, as the bootstrap takes them.
struct Sample {
  std::vector<double> labels;
  std::vector<double> scores;
  size_t size() const { return labels.size(); }
};

// The labels and scores of `metric` for `records` predicted by a model
// with `signature`: for auc, logloss and accuracy the label 1 when it is
// the positive class (the second) and the score P(positive); for the
// regression metrics the number and the prediction. Records the metric
// cannot use (a multiclass prediction, a label that is not a number) are
// skipped.
Sample ToSample(const std::vector<const LabeledRecord*>& records,
                const Signature& signature, EvaluationMetric metric) {
  Sample sample;
  const bool binary = IsClassificationMetric(metric);
  if (binary && (!signature.is_classification() ||
                 signature.class_labels().size() != 2)) {
    return sample;
  }
  for (const LabeledRecord* r : records) {
    json prediction = json::parse(r->prediction_json, nullptr, false);
    if (!prediction.is_array() || prediction.size() != 1 ||
        !prediction[0].is_number()) {
      continue;
    }
    double label = 0;
    if (binary) {
      if (r->label == signature.class_labels()[1]) {
        label = 1;
      } else if (r->label != signature.class_labels()[0]) {
        continue;
      }
    } else {
      char* end = nullptr;
      label = std::strtod(r->label.c_str(), &end);
      if (end == r->label.c_str() || *end != '\0' || !std::isfinite(label)) {
        continue;
      }
    }
    sample.labels.push_back(label);
    sample.scores.push_back(prediction[0].get<double>());
  }
  return sample;
}

// The last move of `alias` in the app's alias history; nullopt if never.
std::optional<AliasHistoryRecord> LastMove(
    const std::vector<AliasHistoryRecord>& history, const std::string& alias) {
  std::optional<AliasHistoryRecord> last;
  for (const AliasHistoryRecord& h : history) {
    if (h.alias == alias && (!last.has_value() || h.seq > last->seq)) last = h;
  }
  return last;
}

// The records of `version` predicted in [from, to).
std::vector<const LabeledRecord*> Predicted(
    const std::vector<LabeledRecord>& records, int version, int64_t from,
    int64_t to) {
  std::vector<const LabeledRecord*> out;
  for (const LabeledRecord& r : records) {
    if (r.version == version && r.predicted_at >= from && r.predicted_at < to) {
      out.push_back(&r);
    }
  }
  return out;
}

std::string Version(int version) {
  std::string text = std::to_string(version);
  text.insert(text.begin(), 'v');
  return text;
}

// Requests a version answered or failed over some windows.
struct ErrorTally {
  int64_t requests = 0;
  int64_t failed = 0;
  double rate() const {
    return requests == 0 ? 0 : static_cast<double>(failed) / requests;
  }
  json ToJson() const {
    return {{"requests", requests}, {"failed", failed}, {"rate", rate()}};
  }
};

// The failures of `version` in its windows that overlap [from, to)
// (monitor/monitor_service.h stores them as "errors" with the drift).
ErrorTally TallyErrors(const std::vector<MonitorWindowRecord>& windows,
                       int version, int64_t from, int64_t to) {
  ErrorTally tally;
  for (const MonitorWindowRecord& w : windows) {
    if (w.version != version || w.end_at <= from || w.start_at >= to) continue;
    const json drift = json::parse(w.drift_json, nullptr, false);
    if (!drift.is_object() || !drift.contains("errors")) continue;
    tally.requests += drift["errors"].value("requests", int64_t{0});
    tally.failed += drift["errors"].value("failed", int64_t{0});
  }
  return tally;
}

// The standard normal quantile of p in (0, 1), by bisection on erfc.
double NormalQuantile(double p) {
  double low = -10;
  double high = 10;
  for (int i = 0; i < 100; ++i) {
    const double mid = (low + high) / 2;
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p) {
      low = mid;
    } else {
      high = mid;
    }
  }
  return (low + high) / 2;
}

// True when `after`'s failure rate exceeds `before`'s by more than `rise`
// with one-sided confidence (1 + confidence) / 2 (a two-proportion z-test
// with unpooled variance, the bootstrap's interval convention).
bool RoseBeyond(const ErrorTally& before, const ErrorTally& after, double rise,
                double confidence) {
  const double p0 = before.rate();
  const double p1 = after.rate();
  const double se = std::sqrt(p0 * (1 - p0) / before.requests +
                              p1 * (1 - p1) / after.requests);
  return p1 - p0 - rise - NormalQuantile((1 + confidence) / 2) * se > 0;
}

// The sample of `version` of `app`: its records of `labeled` predicted in
// [from, to), read with the version's signature.
absl::StatusOr<Sample> SampleOf(Registry* registry, const std::string& app,
                                int version,
                                const std::vector<LabeledRecord>& labeled,
                                int64_t from, int64_t to,
                                EvaluationMetric metric) {
  ASSIGN_OR_RETURN(ModelVersionRecord record,
                   registry->GetVersion(app, version));
  ASSIGN_OR_RETURN(
      Signature signature,
      Signature::FromJson(json::parse(record.signature_json, nullptr, false)),
      "model " + app + " " + Version(version));
  return ToSample(Predicted(labeled, version, from, to), signature, metric);
}

}  // namespace

ContinuousOptimizer::ContinuousOptimizer(Options options)
    : options_(std::move(options)) {}

absl::Status ContinuousOptimizer::Check(const AppSpec& spec) {
  const int64_t now = options_.clock->NowMicros();
  absl::Status canary = CheckCanary(spec, now);
  absl::Status rollback = CheckRollback(spec, now);
  RETURN_IF_ERROR(canary, "judging the canary of app '" + spec.app + "'");
  RETURN_IF_ERROR(rollback,
                  "watching the last promotion of app '" + spec.app + "'");
  return absl::OkStatus();
}

absl::Status ContinuousOptimizer::Audit(const std::string& app,
                                        const std::string& action, int version,
                                        const json& after) {
  AuditEntry entry;
  entry.actor = kPolicyActor;
  entry.action = action;
  entry.app = app;
  entry.object = "model " + app + " " + Version(version);
  entry.after_json = after.dump();
  return options_.audit->Record(entry).status();
}

absl::Status ContinuousOptimizer::CheckCanary(const AppSpec& spec,
                                              int64_t now) {
  if (!spec.endpoint.canary.has_value() || !spec.policy.promote.has_value() ||
      spec.policy.promote->metric.empty()) {
    return absl::OkStatus();
  }
  const CanarySpec& canary = *spec.endpoint.canary;
  const PromotePolicySpec& policy = *spec.policy.promote;
  const std::string& app = spec.app;
  ASSIGN_OR_RETURN(std::optional<int> champion,
                   options_.registry->ResolveAlias(app, spec.endpoint.model));
  ASSIGN_OR_RETURN(std::optional<int> challenger,
                   options_.registry->ResolveAlias(app, canary.model));
  if (!champion.has_value() || !challenger.has_value() ||
      *champion == *challenger) {
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::vector<AliasHistoryRecord> history,
                   options_.registry->AliasHistory(app));
  const std::optional<AliasHistoryRecord> champion_move =
      LastMove(history, spec.endpoint.model);
  const std::optional<AliasHistoryRecord> canary_move =
      LastMove(history, canary.model);
  const int64_t started =
      std::max(champion_move ? champion_move->at : 0,
               canary_move ? canary_move->at : 0);
  const std::vector<AliasMove> promotion = {
      {spec.endpoint.model, *challenger}, {"previous", *champion}};
  const std::vector<AliasMove> end_canary = {{canary.model, *champion}};

  // A promotion already asked for: wait for the approver; a refused one
  // ends the canary.
  ASSIGN_OR_RETURN(std::vector<ApprovalRecord> approvals,
                   options_.approvals->List(app, ""));
  for (const ApprovalRecord& a : approvals) {
    if (a.kind != "promote" || a.requested_by != kPolicyActor ||
        a.requested_at < started) {
      continue;
    }
    json change = json::parse(a.change_json, nullptr, false);
    bool same = change.is_object() && change.contains("moves");
    if (same) {
      same = false;
      for (const json& m : change["moves"]) {
        if (m.value("alias", "") == spec.endpoint.model &&
            m.value("version", 0) == *challenger) {
          same = true;
        }
      }
    }
    if (!same) continue;
    if (a.state == "pending" || a.state == "approved") return absl::OkStatus();
    RETURN_IF_ERROR(Audit(
        app, "canary.decide", *challenger,
        {{"champion", *champion},
         {"challenger", *challenger},
         {"alias", canary.model},
         {"decision", "end"},
         {"reason", "its promotion request " + std::to_string(a.id) +
                        " was " + a.state + " by " + a.decided_by}}));
    return options_.move_now(app, end_canary, kPolicyActor);
  }

  ASSIGN_OR_RETURN(EvaluationMetric metric,
                   ParseEvaluationMetric(policy.metric));
  ASSIGN_OR_RETURN(std::vector<LabeledRecord> labeled,
                   options_.store->ListLabeled(app, started, now + 1));
  ASSIGN_OR_RETURN(const Sample before,
                   SampleOf(options_.registry, app, *champion, labeled,
                            started, now + 1, metric));
  ASSIGN_OR_RETURN(const Sample after,
                   SampleOf(options_.registry, app, *challenger, labeled,
                            started, now + 1, metric));
  if (static_cast<int64_t>(before.size()) < canary.min_rows ||
      static_cast<int64_t>(after.size()) < canary.min_rows) {
    return absl::OkStatus();
  }
  BootstrapOptions bootstrap;
  bootstrap.confidence = policy.confidence;
  absl::StatusOr<MetricComparison> comparison = CompareIndependent(
      policy.metric, before.labels, before.scores, after.labels, after.scores,
      bootstrap);
  if (!comparison.ok()) {
    // Too few labelled rows of one class for an AUC interval, say: more
    // feedback will tell.
    LogInfo("canary.not_judged",
            {{"app", app}, {"reason", std::string(comparison.status().message())}});
    return absl::OkStatus();
  }
  const PromotionVerdict verdict = DecidePromotion(*comparison, policy.min_gain);
  if (verdict.decision == PromotionDecision::kInconclusive) {
    return absl::OkStatus();
  }
  const bool promote = verdict.decision == PromotionDecision::kPromote;
  json decision = {{"champion", *champion},
                   {"challenger", *challenger},
                   {"alias", canary.model},
                   {"percent", canary.percent},
                   {"metric", policy.metric},
                   {"min_gain", policy.min_gain},
                   {"comparison", ToJson(*comparison)},
                   {"decision", promote ? "promote" : "end"},
                   {"reason", verdict.reason}};
  RETURN_IF_ERROR(Audit(app, "canary.decide", *challenger, decision));
  LogInfo("canary.decided", {{"app", app},
                             {"challenger", Version(*challenger)},
                             {"decision", promote ? "promote" : "end"},
                             {"reason", verdict.reason}});
  if (!promote) return options_.move_now(app, end_canary, kPolicyActor);
  return options_
      .promote(app, promotion, kPolicyActor,
               "canary: " + Version(*challenger) + " over " +
                   Version(*champion) + ", " + verdict.reason)
      .status();
}

absl::Status ContinuousOptimizer::RollBack(const AppSpec& spec,
                                           const AliasHistoryRecord& move,
                                           json record, Alert alert,
                                           int64_t now) {
  const std::string& app = spec.app;
  const int previous = move.from_version;
  const int current = move.to_version;
  record["decision"] = "rollback";
  std::vector<AliasMove> moves = {{spec.endpoint.model, previous},
                                  {"previous", current}};
  // The canary's alias on the rolled-back version would send it live
  // traffic again: it goes back too.
  if (spec.endpoint.canary.has_value()) {
    ASSIGN_OR_RETURN(std::optional<int> canary,
                     options_.registry->ResolveAlias(
                         app, spec.endpoint.canary->model));
    if (canary.has_value() && *canary == current) {
      moves.push_back({spec.endpoint.canary->model, previous});
    }
  }
  RETURN_IF_ERROR(options_.move_now(app, moves, kRollbackActor));
  RETURN_IF_ERROR(Audit(app, "model.rollback", current, record));
  {
    absl::MutexLock lock(&mu_);
    decided_move_[app] = std::max(decided_move_[app], move.seq);
  }
  const std::string reason = record["reason"].get<std::string>();
  LogWarning("model.rolled_back", {{"app", app},
                                   {"from", Version(current)},
                                   {"to", Version(previous)},
                                   {"reason", reason}});
  if (options_.alert) {
    alert.rule = "rollback";
    alert.app = app;
    alert.state = AlertState::kFiring;
    alert.since_micros = now;
    options_.alert(alert);
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> ContinuousOptimizer::RollbackDecided(
    const AliasHistoryRecord& move) {
  {
    absl::MutexLock lock(&mu_);
    auto it = decided_move_.find(move.app);
    if (it != decided_move_.end() && it->second >= move.seq) return true;
  }
  AuditFilter filter;
  filter.app = move.app;
  filter.object_prefix =
      "model " + move.app + " " + Version(move.to_version);
  bool decided = false;
  for (const char* action : {"model.rollback", "rollback.check"}) {
    filter.action = action;
    ASSIGN_OR_RETURN(std::vector<AuditRecord> records,
                     options_.audit->List(filter));
    for (const AuditRecord& r : records) {
      json after = json::parse(r.after_json, nullptr, false);
      if (after.is_object() && after.value("move", int64_t{0}) == move.seq) {
        decided = true;
      }
    }
  }
  if (decided) {
    absl::MutexLock lock(&mu_);
    decided_move_[move.app] = std::max(decided_move_[move.app], move.seq);
  }
  return decided;
}

absl::Status ContinuousOptimizer::CheckRollback(const AppSpec& spec,
                                                int64_t now) {
  if (!spec.policy.rollback.has_value()) return absl::OkStatus();
  const RollbackPolicySpec& rollback = *spec.policy.rollback;
  const std::string& app = spec.app;
  ASSIGN_OR_RETURN(std::vector<AliasHistoryRecord> history,
                   options_.registry->AliasHistory(app));
  const std::optional<AliasHistoryRecord> move =
      LastMove(history, spec.endpoint.model);
  if (!move.has_value() || move->from_version == 0 ||
      move->from_version == move->to_version ||
      move->actor == kRollbackActor) {
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(bool decided, RollbackDecided(*move));
  if (decided) return absl::OkStatus();

  const int64_t span = rollback.windows * spec.monitor.window_seconds *
                       int64_t{1'000'000};
  const bool watch_over = now >= move->at + span;
  const int previous = move->from_version;
  const int current = move->to_version;
  ASSIGN_OR_RETURN(EvaluationMetric metric,
                   ParseEvaluationMetric(rollback.metric));
  ASSIGN_OR_RETURN(std::vector<LabeledRecord> labeled,
                   options_.store->ListLabeled(app, move->at - span, now + 1));
  ASSIGN_OR_RETURN(const Sample before,
                   SampleOf(options_.registry, app, previous, labeled,
                            move->at - span, move->at, metric));
  ASSIGN_OR_RETURN(const Sample after,
                   SampleOf(options_.registry, app, current, labeled, move->at,
                            now + 1, metric));
  json record = {{"move", move->seq},
                 {"champion", current},
                 {"previous", previous},
                 {"promoted_at", FormatTimestamp(move->at)},
                 {"metric", rollback.metric},
                 {"kpi_drop", rollback.kpi_drop},
                 {"previous_rows", before.size()},
                 {"champion_rows", after.size()}};
  auto finish = [&](const std::string& decision,
                    const std::string& reason) -> absl::Status {
    record["decision"] = decision;
    record["reason"] = reason;
    RETURN_IF_ERROR(Audit(app, "rollback.check", current, record));
    absl::MutexLock lock(&mu_);
    decided_move_[app] = std::max(decided_move_[app], move->seq);
    return absl::OkStatus();
  };
  // Failures first: they need no feedback.
  ASSIGN_OR_RETURN(std::vector<MonitorWindowRecord> windows,
                   options_.store->ListMonitorWindows(app, move->at - span,
                                                      now + 1));
  const ErrorTally failed_before = TallyErrors(windows, previous, move->at - span,
                                               move->at);
  const ErrorTally failed_after =
      TallyErrors(windows, current, move->at, now + 1);
  record["error_rate"] = {{"previous", failed_before.ToJson()},
                          {"champion", failed_after.ToJson()},
                          {"rise", rollback.error_rate_rise}};
  const double confidence =
      spec.policy.promote.has_value() ? spec.policy.promote->confidence : 0.95;
  if (failed_before.requests >= rollback.min_rows &&
      failed_after.requests >= rollback.min_rows &&
      RoseBeyond(failed_before, failed_after, rollback.error_rate_rise,
                 confidence)) {
    record["reason"] = absl::StrFormat(
        "%s failed %.4g of %d requests vs %.4g of %d for %s: the error rate "
        "rose by more than error_rate_rise %g",
        Version(current), failed_after.rate(), failed_after.requests,
        failed_before.rate(), failed_before.requests, Version(previous),
        rollback.error_rate_rise);
    Alert alert;
    alert.metric = "errors.rate";
    alert.value = failed_after.rate();
    alert.threshold = failed_before.rate() + rollback.error_rate_rise;
    alert.comparison = Comparison::kAbove;
    return RollBack(spec, *move, std::move(record), std::move(alert), now);
  }
  if (static_cast<int64_t>(before.size()) < rollback.min_rows ||
      static_cast<int64_t>(after.size()) < rollback.min_rows) {
    if (!watch_over) return absl::OkStatus();
    return finish("kept", absl::StrFormat(
                              "too few labelled predictions to judge after "
                              "%d windows (%d of %s, %d of %s; min_rows %d)",
                              rollback.windows, after.size(), Version(current),
                              before.size(), Version(previous),
                              rollback.min_rows));
  }
  BootstrapOptions bootstrap;
  bootstrap.confidence = confidence;
  absl::StatusOr<MetricComparison> comparison =
      CompareIndependent(rollback.metric, before.labels, before.scores,
                         after.labels, after.scores, bootstrap);
  if (!comparison.ok()) {
    if (!watch_over) return absl::OkStatus();
    return finish("kept", "not compared: " +
                              std::string(comparison.status().message()));
  }
  record["comparison"] = ToJson(*comparison);
  // gain = current - previous, signed so that positive is better.
  const std::string numbers = absl::StrFormat(
      "%s %s %.4g vs %s %.4g, gain %.4g (%.0f%% CI %.4g to %.4g) over %d and "
      "%d labelled predictions",
      rollback.metric, Version(current), comparison->challenger,
      Version(previous), comparison->champion, comparison->gain,
      comparison->confidence * 100, comparison->lower, comparison->upper,
      after.size(), before.size());
  if (comparison->upper < -rollback.kpi_drop) {
    record["reason"] = numbers + ": dropped by more than kpi_drop " +
                       absl::StrFormat("%g", rollback.kpi_drop);
    Alert alert;
    alert.metric = "kpi." + rollback.metric;
    alert.value = comparison->challenger;
    // The level the new champion crossed: kpi_drop worse than the previous
    // one, on the metric's own side.
    const bool higher_is_better = HigherIsBetter(metric);
    alert.threshold = higher_is_better
                          ? comparison->champion - rollback.kpi_drop
                          : comparison->champion + rollback.kpi_drop;
    alert.comparison =
        higher_is_better ? Comparison::kBelow : Comparison::kAbove;
    return RollBack(spec, *move, std::move(record), std::move(alert), now);
  }
  if (!watch_over) return absl::OkStatus();
  return finish("kept", numbers + ": within kpi_drop " +
                            absl::StrFormat("%g", rollback.kpi_drop));
}

}  // namespace slipway
