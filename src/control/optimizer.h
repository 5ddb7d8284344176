// ContinuousOptimizer: the part of the improvement loop that watches live
// traffic after a model reaches it. Each time a monitoring window of an app
// closes, Check() judges, on the ground-truth feedback received so far:
//
// - The canary (endpoint.canary): while the canary alias points at another
//   version than the champion, the two versions' labelled predictions since
//   the canary began (the later of the two aliases' last moves) are
//   compared on policy.promote.metric with an unpaired bootstrap
//   (stats/bootstrap.h CompareIndependent) once each side has
//   canary.min_rows. The policy decides (DecidePromotion with min_gain and
//   confidence): "promote" asks to move champion to the canary's version
//   (and `previous` to the old champion), through approval when the policy
//   requires it; "keep_champion" ends the canary by pointing its alias back
//   at the champion's version. Inconclusive: wait for more feedback. A
//   promotion request that an approver rejected (or that expired) ends the
//   canary too. Each decision is audited as "canary.decide".
//
// - The last promotion (policy.rollback): for policy.rollback.windows
//   windows after the champion moved from version A to B, B's labelled
//   predictions since the move are compared with A's over the same span
//   before it. When B's KPI is below A's by more than kpi_drop with the
//   promotion policy's confidence (the whole interval of B - A lies below
//   -kpi_drop), or when the share of requests B failed (5xx: model errors,
//   refused requests; the monitor windows' "errors") exceeds A's by more
//   than error_rate_rise with the same confidence (a two-proportion z-test,
//   at least min_rows requests each), champion moves back to A (`previous`
//   to B, and the canary's alias to A when it points at B) at once, without
//   approval, recorded as "model.rollback" with the numbers, and an alert
//   "rollback" fires. When the watch ends without that, "rollback.check"
//   records that the promotion stands. A move made by a rollback is not
//   itself watched.
//
// Every decision carries the comparison behind it (ToJson of the
// MetricComparison), so `slipway history` shows the numbers.
//
// Thread safety: Check() calls for the same app must not overlap (the
// monitor's tick thread makes them); different apps may run concurrently.
#ifndef SLIPWAY_CONTROL_OPTIMIZER_H_
#define SLIPWAY_CONTROL_OPTIMIZER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "audit/audit_log.h"
#include "core/clock.h"
#include "monitor/alerts.h"
#include "nlohmann/json.hpp"
#include "pipeline/app_spec.h"
#include "registry/approvals.h"
#include "registry/registry.h"
#include "store/store.h"

namespace slipway {

// The actor of the alias moves a rollback makes, in the alias history.
inline constexpr char kRollbackActor[] = "rollback";
// The actor of the moves and requests the canary's decisions make.
inline constexpr char kPolicyActor[] = "policy";

class ContinuousOptimizer {
 public:
  struct Options {
    Store* store = nullptr;
    Registry* registry = nullptr;
    Approvals* approvals = nullptr;
    AuditLog* audit = nullptr;
    Clock* clock = nullptr;
    // Moves aliases as a promotion: through approval when the app's policy
    // requires it. Returns the approval request's id, or 0 when moved.
    std::function<absl::StatusOr<int64_t>(
        const std::string& app, const std::vector<AliasMove>& moves,
        const std::string& actor, const std::string& comment)>
        promote;
    // Moves aliases at once (ending a canary, rolling back).
    std::function<absl::Status(const std::string& app,
                               const std::vector<AliasMove>& moves,
                               const std::string& actor)>
        move_now;
    // An alert fired by a decision (a rollback).
    std::function<void(const Alert& alert)> alert;
  };

  explicit ContinuousOptimizer(Options options);

  // Judges `spec`'s app's canary and its last promotion (see above) at the
  // clock's time; `spec` is the app's current spec. Errors reading the
  // store or registry are returned, and so is a decision that cannot be
  // carried out: a rollback is recorded only once its alias move is made;
  // a canary decision is recorded first (the timeline tells the decision,
  // then what it did), and a window that could not carry it out decides
  // and records again at the next one.
  absl::Status Check(const AppSpec& spec);

 private:
  absl::Status CheckCanary(const AppSpec& spec, int64_t now);
  absl::Status CheckRollback(const AppSpec& spec, int64_t now);
  // Moves champion back from `move`'s version to the one before, audits
  // "model.rollback" with `record` and raises `alert` (its metric, value,
  // threshold and comparison set) as the alert "rollback".
  absl::Status RollBack(const AppSpec& spec, const AliasHistoryRecord& move,
                        nlohmann::json record, Alert alert, int64_t now);
  // True when the promotion watch of `move` (a champion move) has already
  // been decided: in memory, or found in the audit log after a restart.
  absl::StatusOr<bool> RollbackDecided(const AliasHistoryRecord& move);
  absl::Status Audit(const std::string& app, const std::string& action,
                     int version, const nlohmann::json& after);

  const Options options_;
  absl::Mutex mu_;
  // Per app: the alias-history seq of the last champion move whose watch
  // ended (kept or rolled back).
  std::map<std::string, int64_t> decided_move_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipway

#endif  // SLIPWAY_CONTROL_OPTIMIZER_H_
