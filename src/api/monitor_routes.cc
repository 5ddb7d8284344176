// The control plane's side of monitoring: what the monitor follows, where
// its alerts go, the rule check at apply, and the monitoring routes.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "api/control_plane.h"
#include "api/handlers.h"
#include "core/logging.h"
#include "core/status.h"
#include "models/signature.h"
#include "stats/profile.h"

namespace slipway {
namespace {

using nlohmann::json;

// A time query parameter: RFC 3339 ("2026-11-27T12:00:00Z") or unix
// seconds; `fallback` when absent.
absl::StatusOr<int64_t> QueryTime(const HttpRequest& request,
                                  const std::string& name, int64_t fallback) {
  const std::string text = QueryText(request, name);
  if (text.empty()) return fallback;
  if (std::all_of(text.begin(), text.end(),
                  [](char c) { return c >= '0' && c <= '9'; }) &&
      text.size() <= 12) {
    return std::stoll(text) * 1'000'000;
  }
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return absl::InvalidArgumentError(
        "query parameter '" + name + "' is '" + text +
        "'; give an RFC 3339 time such as 2026-11-27T12:00:00Z, or unix "
        "seconds");
  }
  return absl::ToUnixMicros(time);
}

json WindowJson(const MonitorWindowRecord& w) {
  json window = {{"start", Timestamp(w.start_at)},
                 {"end", Timestamp(w.end_at)},
                 {"model_version", w.version},
                 {"rows", w.rows}};
  const json drift = StoredJson(w.drift_json);
  window["features"] = drift.value("features", json::object());
  if (drift.contains("prediction")) window["prediction"] = drift["prediction"];
  json latency = json::object();
  if (drift.contains("latency_p50_ms")) latency["p50_ms"] = drift["latency_p50_ms"];
  if (drift.contains("latency_p99_ms")) latency["p99_ms"] = drift["latency_p99_ms"];
  window["latency"] = std::move(latency);
  if (drift.contains("errors")) window["errors"] = drift["errors"];
  window["kpis"] = StoredJson(w.kpis_json);
  return window;
}

json AlertJson(const AlertRecord& a) {
  json alert = StoredJson(a.alert_json);
  if (!alert.is_object()) alert = json::object();
  alert["rule"] = a.rule;
  alert["app"] = a.app;
  alert["state"] = a.state;
  alert["since"] = Timestamp(a.since);
  alert["updated_at"] = Timestamp(a.updated_at);
  return alert;
}

}  // namespace

absl::StatusOr<MonitorSpec> ControlPlane::CurrentMonitorSpec(
    const std::string& app) {
  ASSIGN_OR_RETURN(AppRevisionRecord current, registry_->CurrentRevision(app));
  ASSIGN_OR_RETURN(AppSpec spec,
                   ParseAppSpec(current.spec_yaml, "slipway.yaml"),
                   "app '" + app + "' revision " +
                       std::to_string(current.revision));
  return spec.monitor;
}

void ControlPlane::MonitorServedVersion(const std::string& app, int version,
                                        MonitorService::TrackedAs as) {
  if (monitor_ == nullptr) return;
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(ModelVersionRecord record,
                     registry_->GetVersion(app, version));
    const std::string model = "model " + app + " v" + std::to_string(version);
    ASSIGN_OR_RETURN(
        Signature signature,
        Signature::FromJson(json::parse(record.signature_json, nullptr, false)),
        model);
    std::optional<ProfileSet> baseline;
    if (!record.baseline_sha256.empty()) {
      ASSIGN_OR_RETURN(std::string text, registry_->ReadBaseline(record));
      ASSIGN_OR_RETURN(baseline,
                       ProfileSet::FromJson(json::parse(text, nullptr, false)),
                       "baseline of " + model);
    }
    absl::StatusOr<MonitorSpec> spec = CurrentMonitorSpec(app);
    return monitor_->Track(app, version, signature, std::move(baseline),
                           spec.ok() ? *spec : MonitorSpec(), as);
  }();
  if (!status.ok()) {
    LogError("monitor.track_failed",
             {{"app", app},
              {"version", std::to_string(version)},
              {"error", std::string(status.message())}});
  }
}

void ControlPlane::RaiseAlert(const Alert& alert) {
  AlertRecord record;
  record.app = alert.app;
  record.rule = alert.rule;
  record.state = std::string(AlertStateName(alert.state));
  record.since = alert.since_micros;
  record.updated_at = alert.since_micros;
  record.value = alert.value;
  record.alert_json = alert.ToJson().dump();
  absl::Status s = store_->PutAlert(record);
  if (!s.ok()) {
    LogError("alert.store_failed", {{"app", alert.app},
                                    {"rule", alert.rule},
                                    {"error", std::string(s.message())}});
  }
  OnAlert(alert);
}

void ControlPlane::OnAlert(const Alert& alert) {
  const json after = alert.ToJson();
  AuditChange({"monitor",
               alert.state == AlertState::kFiring ? "alert.fire"
                                                  : "alert.resolve",
               alert.app, "alert " + alert.rule, "null", after.dump()});
  if (alert.state != AlertState::kFiring || !alert.fire.has_value()) return;
  absl::StatusOr<HttpResponse> fired =
      FireEvent(alert.app, std::string(TriggerEventName(*alert.fire)),
                "monitor (alert " + alert.rule + ")");
  if (!fired.ok()) {
    LogError("monitor.fire_failed",
             {{"app", alert.app},
              {"rule", alert.rule},
              {"error", std::string(fired.status().message())}});
  }
}

absl::Status ControlPlane::CheckAlertRules(const AppSpec& spec,
                                           const std::string& file) {
  if (spec.monitor.rules.empty()) return absl::OkStatus();
  std::optional<std::vector<std::string>> features;
  if (store_->GetApp(spec.app).ok()) {
    ASSIGN_OR_RETURN(std::optional<int> champion,
                     registry_->ResolveAlias(spec.app, kServingAlias));
    if (champion.has_value()) {
      ASSIGN_OR_RETURN(ModelVersionRecord record,
                       registry_->GetVersion(spec.app, *champion));
      ASSIGN_OR_RETURN(Signature signature,
                       Signature::FromJson(
                           json::parse(record.signature_json, nullptr, false)),
                       "model " + spec.app + " v" + std::to_string(*champion));
      features.emplace();
      for (const FeatureSpec& f : signature.features()) {
        features->push_back(f.name);
      }
    }
  }
  if (!features.has_value() && !spec.schema.features.empty()) {
    features.emplace();
    for (const ColumnType& c : spec.schema.features) {
      features->push_back(c.column);
    }
  }
  for (const AlertRuleSpec& rule : spec.monitor.rules) {
    // Without known features any drift.<name> may become valid.
    if (!features.has_value() && rule.metric.starts_with("drift.")) continue;
    absl::Status valid = CheckRuleMetric(
        rule.metric, features.value_or(std::vector<std::string>()));
    if (!valid.ok()) {
      return absl::InvalidArgumentError(
          FormatLocation(file, rule.location) + ": alert rule '" + rule.name +
          "': " + std::string(valid.message()));
    }
  }
  return absl::OkStatus();
}

void ControlPlane::AddMonitorRoutes(Router* router) {
  // Ground truth comes from the same clients as predictions, with the
  // same credentials (endpoint.auth).
  router->Add(
      "POST", "/v1/apps/{app}/feedback",
      Handle([this](const HttpRequest& request,
                    const PathParams& p) -> absl::StatusOr<HttpResponse> {
        const std::string& app = p.at("app");
        RETURN_IF_ERROR(AuthorizePrediction(app, request));
        if (request.body.empty()) {
          return absl::InvalidArgumentError(
              "request body is empty; send {\"request_id\": \"req-...\", "
              "\"label\": 1} or a list of them");
        }
        json body = json::parse(request.body, nullptr, false);
        if (body.is_discarded()) {
          return absl::InvalidArgumentError("request body is not JSON");
        }
        ASSIGN_OR_RETURN(json answer, monitor_->AddFeedback(app, body));
        return JsonResponse(200, answer);
      }));
  Guard(router, "GET", "/api/v1/alerts",
        Handle([this](const HttpRequest& request,
                      const PathParams&) -> absl::StatusOr<HttpResponse> {
          const std::string state = QueryText(request, "state");
          if (!state.empty() && state != "pending" && state != "firing" &&
              state != "resolved") {
            return absl::InvalidArgumentError(
                "query parameter 'state' is '" + state +
                "'; give pending, firing or resolved");
          }
          ASSIGN_OR_RETURN(std::vector<AlertRecord> alerts,
                           store_->ListAlerts(QueryText(request, "app")));
          json list = json::array();
          for (const AlertRecord& a : alerts) {
            if (state.empty() || a.state == state) list.push_back(AlertJson(a));
          }
          return JsonResponse(200, {{"alerts", list}});
        }));
  Guard(router, "GET", "/api/v1/apps/{app}/monitor",
        Handle([this](const HttpRequest& request,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          const std::string& app = p.at("app");
          const int64_t now = clock_->NowMicros();
          ASSIGN_OR_RETURN(int64_t to, QueryTime(request, "to", now + 1));
          ASSIGN_OR_RETURN(int64_t from,
                           QueryTime(request, "from", to - 86400LL * 1'000'000));
          ASSIGN_OR_RETURN(uint64_t limit, QueryNumber(request, "limit", 100));
          if (to <= from) {
            return absl::InvalidArgumentError(
                "query parameter 'to' must be after 'from'");
          }
          ASSIGN_OR_RETURN(std::vector<MonitorWindowRecord> windows,
                           store_->ListMonitorWindows(app, from, to));
          const size_t keep = std::min<size_t>(windows.size(), limit);
          json list = json::array();
          for (size_t i = windows.size() - keep; i < windows.size(); ++i) {
            list.push_back(WindowJson(windows[i]));
          }
          return JsonResponse(200, {{"app", app}, {"windows", list}});
        }));
}

}  // namespace slipway
