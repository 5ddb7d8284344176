// ControlPlane: the `/api/v1` REST handlers the CLI (and later the web UI)
// use: apply and roll back app specs (apply refuses a spec whose score
// sources or endpoint fields lack a feature the champion needs), start and
// follow runs (steps, events, logs), fire trigger events, browse the
// registry (lineage, diffs, model cards, alias history), import models,
// move aliases (one or several in one transaction), download model files.
//
// Moving the alias an app serves (`champion`) loads that version into the
// ModelManager and answers only after the swap, so the next prediction sees
// it. Every handler answers errors with the one JSON error shape.
//
// Governance: when the app's current spec says policy.promote.approval:
// required, moving an alias files an approval request (202 with the
// request) instead; with policy.apply.approval: required, so does applying
// a changed spec to an app that serves a champion. Approving carries the
// change out (registry/approvals.h). Every change made here is audited:
// apply and rollback, run starts, alias moves and registrations (through
// the registry), approvals, tokens. /api/v1/approvals, /api/v1/audit and
// /api/v1/apps/{app}/deliveries show them.
//
// Access: every route first authenticates the request's bearer token
// (auth/tokens.h; 401 without a valid one) and checks its role against the
// route's minimum role in api/access.h (403 when too small); a refused
// request changes nothing. Tokens are managed under /api/v1/tokens (admin).
// The control plane also tracks which apps' current specs say
// `endpoint.auth: token` (AuthorizePrediction).
// Thread safety: safe for concurrent use once routes are added.
#ifndef SLIPWAY_API_CONTROL_PLANE_H_
#define SLIPWAY_API_CONTROL_PLANE_H_

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "audit/audit_log.h"
#include "auth/tokens.h"
#include "core/clock.h"
#include "core/filesystem.h"
#include "core/test_clock.h"
#include "pipeline/app_spec.h"
#include "pipeline/run_executor.h"
#include "monitor/alerts.h"
#include "models/loader.h"
#include "monitor/monitor_service.h"
#include "registry/approvals.h"
#include "registry/registry.h"
#include "serving/batcher.h"
#include "serving/http.h"
#include "serving/model_manager.h"

namespace slipway {

// The alias whose version an app serves.
inline constexpr char kServingAlias[] = "champion";

class ControlPlane {
 public:
  // REQUIRES: every pointer outlives the control plane.
  // `monitor` may be null: served versions are not monitored and the
  // monitoring routes are not registered. `loading` holds the server-wide
  // settings of the backends (work folder, python); each app's
  // endpoint.runtime adds its own when a version is loaded.
  ControlPlane(Store* store, Registry* registry, RunExecutor* executor,
               ModelManager* models, Filesystem* fs, TokenService* tokens,
               AuditLog* audit, Approvals* approvals, MonitorService* monitor,
               Clock* clock, ModelLoadOptions loading = {});

  void AddRoutes(Router* router);

  // GET and POST /api/v1/admin/clock (admin): the time of `clock`, and
  // {"advance_seconds": N} moving it forward. Registered only by a server
  // started with --test-clock.
  void AddTestClockRoutes(Router* router, TestClock* clock);

  // OK when a predict or infer request for `app` may go on: always, unless
  // the app's current spec says `endpoint.auth: token`; then the request
  // needs a valid token of any role (Unauthenticated otherwise).
  absl::Status AuthorizePrediction(const std::string& app,
                                   const HttpRequest& request) const;

  // Registers every app with the model manager and loads each champion.
  // A champion that fails to load is logged and reported by the manager's
  // states; the others still load.
  absl::Status LoadServedModels();

  // Loads `version` of `app` and swaps it in as the served model, batched
  // as the app's current spec says (endpoint.batching), and has the
  // monitor follow it (with its training baseline, when it has one).
  absl::Status ServeVersion(const std::string& app, int version);

  // Makes the model manager's canary and shadow of `app` what its current
  // spec's endpoint.canary / endpoint.shadow and their aliases say: a
  // canary or shadow serves while its alias points at another version than
  // the champion (loaded, routed, followed by the monitor beside the
  // champion), and stops otherwise. Each start and end is audited
  // ("canary.start", "canary.end", "shadow.start", "shadow.end") by
  // `actor`; an empty actor audits nothing (a restart restoring them).
  absl::Status SyncTraffic(const std::string& app, const std::string& actor);

  // The monitor section of the app's current spec (monitor_routes.cc).
  absl::StatusOr<MonitorSpec> CurrentMonitorSpec(const std::string& app);

  // An alert fired or resolved: recorded in the audit log by "monitor"
  // (alert.fire / alert.resolve, which the app's webhooks receive as
  // alert.firing / alert.resolved), and a firing rule's `fire` event
  // starts the pipelines whose trigger lists it.
  void OnAlert(const Alert& alert);
  // An alert raised by a decision rather than a monitor rule (a rollback):
  // stored with the app's alerts, then as OnAlert.
  void RaiseAlert(const Alert& alert);

  // Points `alias` of `app` at `version`, recorded in the alias history
  // with `actor` ("cli", "api"; "pipeline" for a register step's move). For
  // the served alias the version is loaded and swapped in first, so a
  // version that cannot load never becomes champion, and the call returns
  // once serving has swapped.
  absl::Status MoveAlias(const std::string& app, const std::string& alias,
                         int version, const std::string& actor);
  // MoveAlias for several aliases recorded in one transaction (champion ->
  // v7 with previous -> v6); the served alias's version is swapped in
  // before anything is recorded, and nothing is recorded if it fails.
  absl::Status MoveAliases(const std::string& app,
                           const std::vector<AliasMove>& moves,
                           const std::string& actor);

  // MoveAliases, unless the app's current spec says
  // policy.promote.approval: required: then files an approval request by
  // `requester` (expiring after policy.approvals.expire_after) and returns
  // its id. Returns 0 when the aliases moved.
  absl::StatusOr<int64_t> PromoteOrRequest(const std::string& app,
                                           const std::vector<AliasMove>& moves,
                                           const ApprovalCaller& requester,
                                           const std::string& comment);

 private:
  // A handler that also gets the token the request was authenticated with.
  using CallerHandler = std::function<HttpResponse(
      const HttpRequest&, const PathParams&, const ApiToken& caller)>;

  // Registers a control-plane route behind the token and role check
  // (the route's role from api/access.h; admin if it is not listed).
  void Guard(Router* router, const std::string& method,
             const std::string& pattern, CallerHandler handler);
  void Guard(Router* router, const std::string& method,
             const std::string& pattern, HttpHandler handler);

  // The /api/v1/tokens routes.
  void AddTokenRoutes(Router* router);
  // The /api/v1/approvals, /api/v1/audit and deliveries routes
  // (governance.cc).
  void AddGovernanceRoutes(Router* router);
  // POST /v1/apps/{app}/feedback, GET /api/v1/alerts and
  // GET /api/v1/apps/{app}/monitor (monitor_routes.cc).
  void AddMonitorRoutes(Router* router);

  // Has the monitor follow `version` of `app`, now served (`as` says
  // whether as the serving version or beside it); logged, not returned,
  // when it cannot: serving goes on unmonitored.
  void MonitorServedVersion(const std::string& app, int version,
                            MonitorService::TrackedAs as);

  // Loads `version` of `app` from the registry.
  ModelManager::Loader VersionLoader(const std::string& app, int version);
  // loading_ with the app's endpoint.runtime.
  ModelLoadOptions VersionLoading(const std::string& app);

  // SyncTraffic, logging a failure: the alias move or apply that called it
  // stands, and the next one tries again.
  void SyncTrafficLogged(const std::string& app, const std::string& actor);

  // Every alert rule of `spec` watches a metric that exists, for the
  // features of the app's champion, or of the spec's pinned schema; with
  // neither, drift.<feature> metrics are not checked. InvalidArgument
  // naming the rule's file position otherwise.
  absl::Status CheckAlertRules(const AppSpec& spec, const std::string& file);

  // The policy of the app's current spec; the defaults (nothing needs
  // approval) for an app without a revision that parses.
  PolicySpec CurrentPolicy(const std::string& app);

  // POST /api/v1/apps: applies `yaml` as the app's next revision (audited
  // "app.apply"), or files an approval request when the app's current
  // policy says policy.apply.approval: required, it serves a champion and
  // the text changed.
  // `action`: "app.apply", or "app.rollback" for the text of an earlier
  // revision.
  absl::StatusOr<HttpResponse> ApplySpec(const std::string& yaml,
                                         const std::string& file,
                                         const std::string& source_dir,
                                         const ApprovalCaller& caller,
                                         const std::string& comment,
                                         const std::string& action);
  // Applies `yaml` (after the champion feature check) and audits it;
  // `action` is "app.apply" or "app.rollback".
  absl::StatusOr<ApplyOutcome> ApplyAndAudit(const AppSpec& spec,
                                             const std::string& yaml,
                                             const std::string& source_dir,
                                             const std::string& actor,
                                             const std::string& action);
  // What approving `approval` does, by `approver`.
  absl::Status CarryOut(const ApprovalRecord& approval,
                        const ApprovalCaller& approver);
  // Records `entry`; the change it describes is already made, so a failure
  // is logged, not returned.
  void AuditChange(const AuditEntry& entry);

  // Records whether `app`'s current spec (`spec_yaml`) says
  // `endpoint.auth: token`; a spec that no longer parses keeps the
  // previous setting (logged).
  void TrackEndpointAuth(const std::string& app, const std::string& spec_yaml);

  // endpoint.batching of the app's current revision; the defaults (logged)
  // when the revision cannot be read or parsed.
  BatchingOptions ServingBatching(const std::string& app);

  // The feature gap check of apply (pipeline/feature_gap.h) against the
  // app's current champion; no champion, nothing to check. Returns the
  // warnings about sources it could not check.
  absl::StatusOr<std::vector<std::string>> CheckChampionFeatures(
      const AppSpec& spec, const std::string& source_dir);

  // Starts every pipeline of `app` whose trigger lists `event`; a pipeline
  // that cannot start now (already running) is reported as skipped.
  // `actor` started it, for the audit log.
  absl::StatusOr<HttpResponse> FireEvent(const std::string& app,
                                         const std::string& event,
                                         const std::string& actor);

  // POST /api/v1/apps/{app}/models: registers a model trained elsewhere
  // (models/import.h) as a new version created by "import". The body:
  // {"format": "xgboost", "model_base64": ..., "source": file name,
  // "signature": {...} or "sample_csv": "..."}. Nothing is stored when the
  // file or the signature is refused.
  absl::StatusOr<HttpResponse> ImportModel(const std::string& app,
                                           const HttpRequest& request);

  // MODEL_CARD.md of a version (registry/model_card.h), with the use case
  // of the app's current spec.
  absl::StatusOr<HttpResponse> ModelCard(const std::string& app, int version);

  // Part of a step's log from byte `offset` (query parameter, default 0),
  // at most `max` bytes (default 64 KiB), with the offset to ask for next
  // and whether the step has finished (no more will come).
  absl::StatusOr<HttpResponse> StepLog(const std::string& run_id,
                                       const std::string& step,
                                       const HttpRequest& request);

  Store* const store_;
  Registry* const registry_;
  RunExecutor* const executor_;
  ModelManager* const models_;
  Filesystem* const fs_;
  TokenService* const tokens_;
  AuditLog* const audit_;
  Approvals* const approvals_;
  MonitorService* const monitor_;
  Clock* const clock_;
  const ModelLoadOptions loading_;
  mutable absl::Mutex auth_mu_;
  // Apps whose current spec says endpoint.auth: token.
  std::set<std::string> token_apps_ ABSL_GUARDED_BY(auth_mu_);
};

}  // namespace slipway

#endif  // SLIPWAY_API_CONTROL_PLANE_H_
