#include "api/control_plane.h"

#include <algorithm>
#include <charconv>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "api/access.h"
#include "api/handlers.h"
#include "audit/timeline.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/ids.h"
#include "core/logging.h"
#include "core/status.h"
#include "core/test_clock.h"
#include "data/csv.h"
#include "models/import.h"
#include "models/loader.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"
#include "pipeline/app_spec.h"
#include "pipeline/feature_gap.h"
#include "registry/model_card.h"
#include "registry/model_diff.h"

namespace slipway {
namespace {

using nlohmann::json;

json RevisionJson(const AppRevisionRecord& r, bool with_spec) {
  json j = {{"app", r.app},
            {"revision", r.revision},
            {"spec_sha256", r.spec_sha256},
            {"source_dir", r.source_dir},
            {"created_at", Timestamp(r.created_at)}};
  if (with_spec) j["spec"] = r.spec_yaml;
  return j;
}

json RunJson(const RunRecord& r) {
  return {{"id", r.id},
          {"app", r.app},
          {"pipeline", r.pipeline},
          {"revision", r.revision},
          {"state", r.state},
          {"reason", r.reason},
          {"created_at", Timestamp(r.created_at)},
          {"started_at", Timestamp(r.started_at)},
          {"finished_at", Timestamp(r.finished_at)},
          {"retry_of", r.retry_of}};
}

json StepJson(const StepRecord& s) {
  return {
      {"name", s.name},
      {"kind", s.kind},
      {"ordinal", s.ordinal},
      {"state", s.state},
      {"message", s.message},
      {"outputs", StoredJson(s.outputs_json)},
      {"progress", StoredJson(s.progress_json)},
      {"started_at", Timestamp(s.started_at)},
      {"finished_at", Timestamp(s.finished_at)},
      {"attempts", s.attempts},
      {"cpu_user_seconds", static_cast<double>(s.cpu_user_micros) / 1e6},
      {"cpu_system_seconds", static_cast<double>(s.cpu_system_micros) / 1e6},
      {"peak_rss_kb", s.peak_rss_kb},
      {"cache_key", s.cache_key},
      {"cached_from_run", s.cached_from_run}};
}

json EventJson(const RunEventRecord& e) {
  json value = json::parse(e.value_json, nullptr, false);
  return {{"seq", e.seq},
          {"step", e.step},
          {"at", Timestamp(e.at)},
          {"type", e.type},
          {"name", e.name},
          {"value", value.is_discarded() ? json(e.value_json) : value},
          {"message", e.message}};
}

bool IsFinalState(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "cancelled" ||
         state == "skipped";
}

json VersionJson(const ModelVersionRecord& v,
                 const std::vector<AliasRecord>& aliases) {
  json names = json::array();
  for (const AliasRecord& a : aliases) {
    if (a.version == v.version) names.push_back(a.alias);
  }
  return {
      {"app", v.app},
      {"version", v.version},
      {"aliases", names},
      {"artifact_sha256", v.artifact_sha256},
      {"format", v.format},
      {"signature", StoredJson(v.signature_json)},
      {"transform",
       v.transform_json.empty() ? json(nullptr) : StoredJson(v.transform_json)},
      {"params", StoredJson(v.params_json)},
      {"metrics", StoredJson(v.metrics_json)},
      {"data_fingerprint", v.data_fingerprint},
      {"row_count", v.row_count},
      {"run_id", v.run_id},
      {"revision", v.revision},
      {"created_at", Timestamp(v.created_at)},
      {"lineage",
       {{"run_id", v.run_id},
        {"revision", v.revision},
        {"data_fingerprint", v.data_fingerprint},
        {"row_count", v.row_count},
        {"data_sources", StoredJson(v.data_sources_json)},
        {"code_sha256", v.code_sha256},
        {"parent_version", v.parent_version},
        {"runtime", StoredJson(v.runtime_json)},
        {"created_by", v.created_by},
        {"baseline_sha256", v.baseline_sha256.empty()
                                ? json(nullptr)
                                : json(v.baseline_sha256)}}}};
}

json AliasMoveJson(const AliasHistoryRecord& h) {
  return {{"seq", h.seq},
          {"alias", h.alias},
          {"from_version",
           h.from_version == 0 ? json(nullptr) : json(h.from_version)},
          {"to_version", h.to_version},
          {"at", Timestamp(h.at)},
          {"actor", h.actor}};
}

json AliasJson(const AliasRecord& a) {
  return {{"alias", a.alias},
          {"version", a.version},
          {"updated_at", Timestamp(a.updated_at)}};
}

absl::StatusOr<json> ParseBody(const HttpRequest& request) {
  if (request.body.empty()) {
    return absl::InvalidArgumentError(
        "request body is empty; send a JSON "
        "object");
  }
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return absl::InvalidArgumentError("request body is not a JSON object");
  }
  return body;
}

absl::StatusOr<int> ParseVersion(const std::string& text) {
  int version = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || version > 100000000) {
      return absl::InvalidArgumentError("'" + text +
                                        "' is not a model version number");
    }
    version = version * 10 + (c - '0');
  }
  if (text.empty() || version == 0) {
    return absl::InvalidArgumentError("'" + text +
                                      "' is not a model version number");
  }
  return version;
}

absl::StatusOr<std::string> StringField(const json& body,
                                        const std::string& field) {
  auto it = body.find(field);
  if (it == body.end() || !it->is_string()) {
    return absl::InvalidArgumentError("field '" + field +
                                      "' (a string) is required");
  }
  return it->get<std::string>();
}

// Who moves an alias through the API, for the alias history: the client
// (the body's "actor": "cli" from the slipway CLI, else "api") and the name
// of the caller's token, "cli:ops-team".
absl::StatusOr<std::string> ActorField(const json& body,
                                       const ApiToken& caller) {
  auto it = body.find("actor");
  std::string client = "api";
  if (it != body.end()) {
    if (!it->is_string() || (*it != "cli" && *it != "api")) {
      return absl::InvalidArgumentError("field 'actor' is " + it->dump() +
                                        "; give \"cli\" or \"api\"");
    }
    client = it->get<std::string>();
  }
  return client + ":" + caller.name;
}

// Who makes a change with a request that has no body (DELETE, cancel):
// the CLI says so in a header.
std::string HeaderActor(const HttpRequest& request, const ApiToken& caller) {
  return (request.Header("x-slipway-client") == "cli" ? "cli:" : "api:") +
         caller.name;
}

// Who asks for or decides a change through the API.
absl::StatusOr<ApprovalCaller> CallerOf(const json& body,
                                        const ApiToken& caller) {
  ASSIGN_OR_RETURN(std::string actor, ActorField(body, caller));
  return ApprovalCaller{actor, caller.id, caller.name};
}

// The optional "comment" of a request.
absl::StatusOr<std::string> CommentField(const json& body) {
  auto it = body.find("comment");
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return absl::InvalidArgumentError("field 'comment' must be a string");
  }
  return it->get<std::string>();
}

// An approval filed instead of a change: 202 with the request and how to
// decide it.
HttpResponse ApprovalPending(const ApprovalRecord& approval);

// The "moves" of a multi-alias request: [{"alias": "champion", "version":
// 7}, ...].
absl::StatusOr<std::vector<AliasMove>> MovesField(const json& body) {
  auto it = body.find("moves");
  if (it == body.end() || !it->is_array() || it->empty()) {
    return absl::InvalidArgumentError(
        "field 'moves' (a non-empty list of {\"alias\", \"version\"}) is "
        "required");
  }
  std::vector<AliasMove> moves;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string at = "moves[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("alias") || !m["alias"].is_string() ||
        !m.contains("version") || !m["version"].is_number_integer()) {
      return absl::InvalidArgumentError(
          "field '" + at +
          "' must be {\"alias\": string, \"version\": integer}");
    }
    moves.push_back({m["alias"].get<std::string>(), m["version"].get<int>()});
  }
  return moves;
}

// The import request's model file, decoded.
absl::StatusOr<std::string> ModelBytesField(const json& body) {
  ASSIGN_OR_RETURN(std::string encoded, StringField(body, "model_base64"));
  std::string bytes;
  if (!absl::Base64Unescape(encoded, &bytes)) {
    return absl::InvalidArgumentError(
        "field 'model_base64' is not base64; send the model file's bytes "
        "base64-encoded");
  }
  return bytes;
}

}  // namespace

namespace {

HttpResponse ApprovalPending(const ApprovalRecord& approval) {
  json answer = {
      {"app", approval.app},
      {"approval", ApprovalJson(approval)},
      {"pending", true},
      {"next", "an approver runs: slipway approvals approve " +
                   std::to_string(approval.id) + " --comment \"...\""}};
  return JsonResponse(202, answer);
}

json TokenAudit(const ApiToken& t, std::string_view state) {
  return {{"id", t.id},
          {"name", t.name},
          {"role", std::string(RoleName(t.role))},
          {"state", std::string(state)},
          {"expires_at", t.expires_at}};
}

// `loading` with the runtime a version recorded (its registry lineage), so
// a Python model warns when its workers run other package versions.
ModelLoadOptions WithRuntime(ModelLoadOptions loading,
                             const std::string& runtime_json) {
  json runtime = json::parse(runtime_json, nullptr, false);
  if (runtime.is_object()) loading.runtime = std::move(runtime);
  return loading;
}

}  // namespace

ControlPlane::ControlPlane(Store* store, Registry* registry,
                           RunExecutor* executor, ModelManager* models,
                           Filesystem* fs, TokenService* tokens,
                           AuditLog* audit, Approvals* approvals,
                           MonitorService* monitor, Clock* clock,
                           ModelLoadOptions loading)
    : store_(store),
      registry_(registry),
      executor_(executor),
      models_(models),
      fs_(fs),
      tokens_(tokens),
      audit_(audit),
      approvals_(approvals),
      monitor_(monitor),
      clock_(clock),
      loading_(std::move(loading)) {}

void ControlPlane::Guard(Router* router, const std::string& method,
                         const std::string& pattern, CallerHandler handler) {
  const Role needed = RequiredRole(method, pattern).value_or(Role::kAdmin);
  router->Add(method, pattern,
              [this, needed, method, pattern, handler = std::move(handler)](
                  const HttpRequest& request, const PathParams& params) {
                absl::StatusOr<ApiToken> caller =
                    tokens_->Authenticate(request.Header("authorization"));
                if (!caller.ok()) return AccessRefusal(caller.status());
                absl::Status allowed =
                    CheckRole(*caller, needed, method, pattern);
                if (!allowed.ok()) return AccessRefusal(allowed);
                return handler(request, params, *caller);
              });
}

void ControlPlane::Guard(Router* router, const std::string& method,
                         const std::string& pattern, HttpHandler handler) {
  Guard(
      router, method, pattern,
      CallerHandler([handler = std::move(handler)](
                        const HttpRequest& request, const PathParams& params,
                        const ApiToken&) { return handler(request, params); }));
}

absl::Status ControlPlane::AuthorizePrediction(
    const std::string& app, const HttpRequest& request) const {
  {
    absl::ReaderMutexLock lock(&auth_mu_);
    if (token_apps_.count(app) == 0) return absl::OkStatus();
  }
  return Annotate(
      tokens_->Authenticate(request.Header("authorization")).status(),
      "app '" + app + "' serves with endpoint.auth: token");
}

void ControlPlane::TrackEndpointAuth(const std::string& app,
                                     const std::string& spec_yaml) {
  absl::StatusOr<AppSpec> spec = ParseAppSpec(spec_yaml, "slipway.yaml");
  if (!spec.ok()) {
    LogWarning("auth.endpoint_unchanged",
               {{"app", app}, {"error", std::string(spec.status().message())}});
    return;
  }
  absl::MutexLock lock(&auth_mu_);
  if (spec->endpoint.require_token) {
    token_apps_.insert(app);
  } else {
    token_apps_.erase(app);
  }
}

namespace {

json TokenJson(const ApiToken& t, std::string_view state) {
  return {{"id", t.id},
          {"name", t.name},
          {"role", std::string(RoleName(t.role))},
          {"state", std::string(state)},
          {"created_at", Timestamp(t.created_at)},
          {"expires_at", Timestamp(t.expires_at)},
          {"revoked_at", Timestamp(t.revoked_at)},
          {"created_by", t.created_by}};
}

}  // namespace

void ControlPlane::AddTokenRoutes(Router* router) {
  Guard(router, "POST", "/api/v1/tokens",
        CallerHandler([this](const HttpRequest& request, const PathParams&,
                             const ApiToken& caller) {
          absl::StatusOr<HttpResponse> response =
              [&]() -> absl::StatusOr<HttpResponse> {
            ASSIGN_OR_RETURN(json body, ParseBody(request));
            ASSIGN_OR_RETURN(std::string name, StringField(body, "name"));
            ASSIGN_OR_RETURN(std::string role_name, StringField(body, "role"));
            ASSIGN_OR_RETURN(Role role, ParseRole(role_name));
            int64_t lifetime = 0;
            if (body.contains("expires_in")) {
              ASSIGN_OR_RETURN(std::string text,
                               StringField(body, "expires_in"));
              ASSIGN_OR_RETURN(lifetime, ParseTokenLifetime(text));
            }
            ASSIGN_OR_RETURN(std::string actor, ActorField(body, caller));
            ASSIGN_OR_RETURN(
                IssuedToken issued,
                tokens_->Create(name, role, lifetime, "token " + caller.id));
            AuditChange({actor, "token.create", "", "token " + issued.token.id,
                         "null", TokenAudit(issued.token, "active").dump()});
            json answer = TokenJson(issued.token, "active");
            answer["token"] = issued.secret;
            return JsonResponse(201, answer);
          }();
          if (!response.ok()) return HttpResponse::Error(response.status());
          return *std::move(response);
        }));
  Guard(router, "GET", "/api/v1/tokens",
        Handle([this](const HttpRequest&,
                      const PathParams&) -> absl::StatusOr<HttpResponse> {
          json list = json::array();
          for (const ApiToken& t : tokens_->List()) {
            list.push_back(TokenJson(t, tokens_->State(t)));
          }
          return JsonResponse(200, {{"tokens", list}});
        }));
  Guard(router, "DELETE", "/api/v1/tokens/{token}",
        HandleCaller(
            [this](const HttpRequest& request, const PathParams& p,
                   const ApiToken& caller) -> absl::StatusOr<HttpResponse> {
              const std::string actor = HeaderActor(request, caller);
              ASSIGN_OR_RETURN(ApiToken revoked,
                               tokens_->Revoke(p.at("token")));
              AuditChange({actor, "token.revoke", "", "token " + revoked.id,
                           TokenAudit(revoked, "active").dump(),
                           TokenAudit(revoked, "revoked").dump()});
              return JsonResponse(200, TokenJson(revoked, "revoked"));
            }));
}

absl::StatusOr<std::vector<std::string>> ControlPlane::CheckChampionFeatures(
    const AppSpec& spec, const std::string& source_dir) {
  // A new app has no champion; an app whose champion is unset neither.
  if (!store_->GetApp(spec.app).ok()) return std::vector<std::string>();
  ASSIGN_OR_RETURN(std::optional<int> champion,
                   registry_->ResolveAlias(spec.app, kServingAlias));
  if (!champion.has_value()) return std::vector<std::string>();
  ASSIGN_OR_RETURN(ModelVersionRecord record,
                   registry_->GetVersion(spec.app, *champion));
  ASSIGN_OR_RETURN(
      Signature signature,
      Signature::FromJson(json::parse(record.signature_json, nullptr, false)),
      "model " + spec.app + " v" + std::to_string(*champion));
  return CheckFeatureGap(spec, signature, source_dir, fs_);
}

absl::StatusOr<HttpResponse> ControlPlane::FireEvent(const std::string& app,
                                                     const std::string& event,
                                                     const std::string& actor) {
  std::optional<TriggerEvent> fired;
  std::string names;
  for (TriggerEvent e : {TriggerEvent::kDrift, TriggerEvent::kKpiDecay,
                         TriggerEvent::kNewData}) {
    if (TriggerEventName(e) == event) fired = e;
    names += (names.empty() ? "" : ", ") + std::string(TriggerEventName(e));
  }
  if (!fired.has_value()) {
    return absl::InvalidArgumentError("unknown event '" + event +
                                      "'; events are: " + names);
  }
  ASSIGN_OR_RETURN(AppRevisionRecord revision, registry_->CurrentRevision(app));
  ASSIGN_OR_RETURN(
      AppSpec spec, ParseAppSpec(revision.spec_yaml, "slipway.yaml"),
      "app '" + app + "' revision " + std::to_string(revision.revision));
  json started = json::array();
  json skipped = json::array();
  for (const PipelineSpec& pipeline : spec.pipelines) {
    const std::vector<TriggerEvent>& on = pipeline.trigger.on;
    if (std::find(on.begin(), on.end(), *fired) == on.end()) continue;
    absl::StatusOr<RunRecord> run =
        executor_->Start(app, pipeline.name, "event " + event + " by " + actor);
    if (run.ok()) {
      started.push_back(RunJson(*run));
      LogInfo("trigger.fired", {{"app", app},
                                {"event", event},
                                {"pipeline", pipeline.name},
                                {"run", run->id}});
    } else {
      skipped.push_back({{"pipeline", pipeline.name},
                         {"reason", std::string(run.status().message())}});
    }
  }
  return JsonResponse(200, {{"app", app},
                            {"event", event},
                            {"started", started},
                            {"skipped", skipped}});
}

absl::StatusOr<HttpResponse> ControlPlane::StepLog(const std::string& run_id,
                                                   const std::string& step,
                                                   const HttpRequest& request) {
  ASSIGN_OR_RETURN(RunRecord run, store_->GetRun(run_id));
  ASSIGN_OR_RETURN(std::vector<StepRecord> steps, store_->ListSteps(run.id));
  const StepRecord* found = nullptr;
  std::string names;
  for (const StepRecord& s : steps) {
    if (s.name == step) found = &s;
    names += (names.empty() ? "" : ", ") + s.name;
  }
  if (found == nullptr) {
    return absl::NotFoundError("run '" + run_id + "' has no step '" + step +
                               "'; its steps are: " + names);
  }
  ASSIGN_OR_RETURN(uint64_t offset, QueryNumber(request, "offset", 0));
  ASSIGN_OR_RETURN(uint64_t max, QueryNumber(request, "max", 64 * 1024));
  // Read the state before the file, so "done" never hides a last write.
  const bool done = IsFinalState(found->state);
  const std::string path = executor_->RunDir(run.id) + "/" + step + ".log";
  std::string text;
  uint64_t size = 0;
  if (fs_->Exists(path)) {
    ASSIGN_OR_RETURN(size, fs_->FileSize(path));
    if (offset < size) {
      ASSIGN_OR_RETURN(std::unique_ptr<SequentialFile> file,
                       fs_->OpenSequential(path));
      RETURN_IF_ERROR(file->Skip(offset));
      text.resize(std::min<uint64_t>(max, size - offset));
      size_t filled = 0;
      while (filled < text.size()) {
        ASSIGN_OR_RETURN(
            size_t n, file->Read(text.size() - filled, text.data() + filled));
        if (n == 0) break;
        filled += n;
      }
      text.resize(filled);
    }
  }
  const uint64_t next = std::max<uint64_t>(offset, offset + text.size());
  return JsonResponse(200, {{"run", run.id},
                            {"step", step},
                            {"state", found->state},
                            {"text", text},
                            {"offset", offset},
                            {"next_offset", next},
                            {"size", size},
                            {"done", done && next >= size}});
}

BatchingOptions ControlPlane::ServingBatching(const std::string& app) {
  absl::StatusOr<AppRevisionRecord> current = registry_->CurrentRevision(app);
  absl::StatusOr<AppSpec> spec =
      current.ok() ? ParseAppSpec(current->spec_yaml, "slipway.yaml")
                   : absl::StatusOr<AppSpec>(current.status());
  BatchingOptions options;
  if (!spec.ok()) {
    // Serving must not depend on the spec still parsing (a revision stored
    // by an older release may not): the model serves with the defaults.
    LogWarning(
        "serving.batching_defaults",
        {{"app", app}, {"reason", std::string(spec.status().message())}});
    return options;
  }
  const BatchingSpec& batching = spec->endpoint.batching;
  options.enabled = batching.enabled;
  options.max_batch = static_cast<int>(batching.max_batch);
  options.max_delay_us = batching.max_delay_us;
  options.max_queue = static_cast<int>(batching.max_queue);
  return options;
}

ModelLoadOptions ControlPlane::VersionLoading(const std::string& app) {
  ModelLoadOptions options = loading_;
  absl::StatusOr<AppRevisionRecord> current = registry_->CurrentRevision(app);
  if (!current.ok()) return options;
  absl::StatusOr<AppSpec> spec =
      ParseAppSpec(current->spec_yaml, "slipway.yaml");
  // As ServingBatching: a revision that no longer parses serves with the
  // defaults.
  if (!spec.ok()) return options;
  const RuntimeSpec& runtime = spec->endpoint.runtime;
  options.python.workers = static_cast<int>(runtime.workers);
  options.python.recycle_after = runtime.recycle_after;
  options.python.timeout_ms = runtime.timeout_seconds * 1000;
  options.torch.intra_op_threads = static_cast<int>(runtime.threads);
  return options;
}

ModelManager::Loader ControlPlane::VersionLoader(const std::string& app,
                                                int version) {
  Registry* registry = registry_;
  return [registry, app, version, loading = VersionLoading(app)]()
             -> absl::StatusOr<std::shared_ptr<const Model>> {
    ASSIGN_OR_RETURN(ModelVersionRecord record,
                     registry->GetVersion(app, version));
    ASSIGN_OR_RETURN(std::string bytes, registry->ReadModelBytes(record));
    json signature_json = json::parse(record.signature_json, nullptr, false);
    ASSIGN_OR_RETURN(Signature signature, Signature::FromJson(signature_json),
                     "model " + app + " v" + std::to_string(version));
    ASSIGN_OR_RETURN(
        std::unique_ptr<Model> model,
        LoadRegisteredModel(record.format, bytes, std::move(signature),
                            record.transform_json,
                            WithRuntime(loading, record.runtime_json)),
        "model " + app + " v" + std::to_string(version));
    return std::shared_ptr<const Model>(std::move(model));
  };
}

absl::Status ControlPlane::ServeVersion(const std::string& app, int version) {
  RETURN_IF_ERROR(models_->Serve(app, version, VersionLoader(app, version),
                                 ServingBatching(app)));
  MonitorServedVersion(app, version, MonitorService::TrackedAs::kServing);
  return absl::OkStatus();
}

absl::Status ControlPlane::SyncTraffic(const std::string& app,
                                       const std::string& actor) {
  ASSIGN_OR_RETURN(AppRevisionRecord current, registry_->CurrentRevision(app));
  ASSIGN_OR_RETURN(AppSpec spec, ParseAppSpec(current.spec_yaml, "slipway.yaml"));
  ASSIGN_OR_RETURN(std::optional<int> champion,
                   registry_->ResolveAlias(app, kServingAlias));
  // The version an alias gives a role beside the champion; 0: none.
  auto beside = [&](const std::string& alias) -> absl::StatusOr<int> {
    if (!champion.has_value()) return 0;
    ASSIGN_OR_RETURN(std::optional<int> v, registry_->ResolveAlias(app, alias));
    return v.has_value() && *v != *champion ? *v : 0;
  };
  const ModelManager::Traffic before = models_->GetTraffic(app);
  const BatchingOptions batching = ServingBatching(app);
  const std::string model = "model " + app + " v";
  auto audit = [&](const std::string& action, int version, json after) {
    if (actor.empty()) return;
    after["champion"] = champion.value_or(0);
    AuditChange({actor, action, app, model + std::to_string(version), "null",
                 after.dump()});
  };
  // A version that no longer serves beside the champion: unless it is the
  // champion now, the monitor forgets it once idle.
  auto untrack = [&](int version) {
    if (monitor_ != nullptr && version != 0 && version != champion.value_or(0)) {
      monitor_->Untrack(app, version);
    }
  };

  int canary = 0;
  int percent = 0;
  if (spec.endpoint.canary.has_value()) {
    ASSIGN_OR_RETURN(canary, beside(spec.endpoint.canary->model));
    percent = static_cast<int>(spec.endpoint.canary->percent);
  }
  const int old_canary = before.canary_version;
  if (canary == 0 && old_canary != 0) {
    models_->EndCanary(app);
    untrack(old_canary);
    audit("canary.end", old_canary,
          {{"alias", spec.endpoint.canary ? spec.endpoint.canary->model : ""},
           {"promoted", old_canary == champion.value_or(0)}});
  } else if (canary != 0 && (canary != old_canary ||
                             percent != before.canary_percent)) {
    RETURN_IF_ERROR(models_->ServeCanary(app, canary, percent,
                                         VersionLoader(app, canary), batching));
    MonitorServedVersion(app, canary, MonitorService::TrackedAs::kBeside);
    if (old_canary != canary) untrack(old_canary);
    audit("canary.start", canary,
          {{"alias", spec.endpoint.canary->model}, {"percent", percent}});
  }

  int shadow = 0;
  if (spec.endpoint.shadow.has_value()) {
    ASSIGN_OR_RETURN(shadow, beside(spec.endpoint.shadow->model));
  }
  if (shadow == 0 && before.shadow_version != 0) {
    models_->EndShadow(app);
    untrack(before.shadow_version);
    audit("shadow.end", before.shadow_version,
          {{"alias", spec.endpoint.shadow ? spec.endpoint.shadow->model : ""}});
  } else if (shadow != 0 && shadow != before.shadow_version) {
    RETURN_IF_ERROR(models_->ServeShadow(app, shadow,
                                         VersionLoader(app, shadow), batching));
    MonitorServedVersion(app, shadow, MonitorService::TrackedAs::kShadow);
    untrack(before.shadow_version);
    audit("shadow.start", shadow, {{"alias", spec.endpoint.shadow->model}});
  }
  return absl::OkStatus();
}

void ControlPlane::SyncTrafficLogged(const std::string& app,
                                     const std::string& actor) {
  absl::Status s = SyncTraffic(app, actor);
  if (!s.ok()) {
    LogError("traffic.sync_failed",
             {{"app", app}, {"error", std::string(s.message())}});
  }
}

absl::Status ControlPlane::MoveAlias(const std::string& app,
                                     const std::string& alias, int version,
                                     const std::string& actor) {
  return MoveAliases(app, {AliasMove{alias, version}}, actor);
}

absl::Status ControlPlane::MoveAliases(const std::string& app,
                                       const std::vector<AliasMove>& moves,
                                       const std::string& actor) {
  for (const AliasMove& move : moves) {
    RETURN_IF_ERROR(registry_->GetVersion(app, move.version).status());
  }
  for (const AliasMove& move : moves) {
    if (move.alias == kServingAlias) {
      RETURN_IF_ERROR(ServeVersion(app, move.version));
    }
  }
  RETURN_IF_ERROR(registry_->MoveAliases(app, moves, actor));
  for (const AliasMove& move : moves) {
    LogInfo("alias.moved", {{"app", app},
                            {"alias", move.alias},
                            {"version", std::to_string(move.version)},
                            {"actor", actor}});
  }
  // A moved alias may start, move or end the canary or the shadow.
  SyncTrafficLogged(app, actor);
  return absl::OkStatus();
}

absl::StatusOr<HttpResponse> ControlPlane::ImportModel(
    const std::string& app, const HttpRequest& request) {
  ASSIGN_OR_RETURN(json body, ParseBody(request));
  ASSIGN_OR_RETURN(std::string format, StringField(body, "format"));
  const bool folder_format =
      format == kPythonFormat || format == kTorchScriptFormat;
  if (format != "xgboost" && !folder_format) {
    return absl::InvalidArgumentError("unknown model format '" + format +
                                      "'; import takes: xgboost, python, "
                                      "torchscript");
  }
  if (folder_format && !body.value("bundle", false)) {
    return absl::InvalidArgumentError(
        "a " + format +
        " model travels as a model bundle: send \"bundle\": true with "
        "model_base64 holding the packed folder (slipway models import "
        "does this)");
  }
  ASSIGN_OR_RETURN(AppRevisionRecord revision, registry_->CurrentRevision(app));
  ASSIGN_OR_RETURN(std::string bytes, ModelBytesField(body));
  const std::string source = body.value("source", std::string("model"));
  std::optional<json> signature;
  if (body.contains("signature")) signature = body["signature"];
  std::optional<Table> sample;
  if (body.contains("sample_csv")) {
    ASSIGN_OR_RETURN(std::string csv, StringField(body, "sample_csv"));
    ASSIGN_OR_RETURN(sample, ParseCsv(csv, "the --sample CSV"));
  }
  const Table* sample_table = sample.has_value() ? &*sample : nullptr;
  ImportedModel imported;
  json runtime = RuntimeVersions();
  if (folder_format) {
    // The app schema's target names the sample's label column.
    absl::StatusOr<AppSpec> spec =
        ParseAppSpec(revision.spec_yaml, "slipway.yaml");
    const std::string target = spec.ok() ? spec->schema.target : "";
    ASSIGN_OR_RETURN(imported, ImportFolderModel(format, bytes, source,
                                                 signature, sample_table,
                                                 target, loading_));
    runtime.erase("xgboost");
    runtime.update(imported.runtime);
  } else {
    ASSIGN_OR_RETURN(imported, ImportXgboostModel(bytes, source, signature,
                                                  sample_table));
  }
  NewModelVersion version;
  version.app = app;
  version.format = imported.format;
  version.model_bytes = std::move(imported.model_bytes);
  version.signature_json = imported.signature.ToJson().dump();
  json params = imported.params;
  params["imported_from"] = source;
  version.params_json = params.dump();
  version.metrics_json = "{}";
  version.revision = revision.revision;
  version.created_by = "import";
  version.runtime_json = runtime.dump();
  ASSIGN_OR_RETURN(ModelVersionRecord record, registry_->Register(version));
  LogInfo("model.imported", {{"app", app},
                             {"version", std::to_string(record.version)},
                             {"source", source}});
  ASSIGN_OR_RETURN(std::vector<AliasRecord> aliases,
                   registry_->ListAliases(app));
  return JsonResponse(201, VersionJson(record, aliases));
}

absl::StatusOr<HttpResponse> ControlPlane::ModelCard(const std::string& app,
                                                     int version) {
  ModelCardInput input;
  ASSIGN_OR_RETURN(input.version, registry_->GetVersion(app, version));
  ASSIGN_OR_RETURN(input.aliases, registry_->ListAliases(app));
  ASSIGN_OR_RETURN(input.approvals, approvals_->List(app, ""));
  ASSIGN_OR_RETURN(AppRevisionRecord revision, registry_->CurrentRevision(app));
  absl::StatusOr<AppSpec> spec =
      ParseAppSpec(revision.spec_yaml, "slipway.yaml");
  if (spec.ok() && spec->use_case.has_value()) {
    const UseCaseSpec& u = *spec->use_case;
    std::string integration;
    for (const std::string& i : u.integration) {
      integration += (integration.empty() ? "" : ", ") + i;
    }
    for (const auto& [field, value] :
         std::vector<std::pair<std::string, std::string>>{
             {"problem", u.problem},
             {"integration", integration},
             {"owner", u.owner},
             {"business_kpi", u.business_kpi}}) {
      if (!value.empty()) input.use_case.emplace_back(field, value);
    }
  }
  return HttpResponse::Text(200, RenderModelCard(input),
                            "text/markdown; charset=utf-8");
}

absl::Status ControlPlane::LoadServedModels() {
  ASSIGN_OR_RETURN(std::vector<AppRecord> apps, store_->ListApps());
  for (const AppRecord& app : apps) {
    models_->AddApp(app.name);
    absl::StatusOr<AppRevisionRecord> current =
        registry_->CurrentRevision(app.name);
    if (current.ok()) TrackEndpointAuth(app.name, current->spec_yaml);
    ASSIGN_OR_RETURN(std::optional<int> version,
                     registry_->ResolveAlias(app.name, kServingAlias));
    if (!version.has_value()) continue;
    absl::Status s = ServeVersion(app.name, *version);
    if (!s.ok()) {
      LogError("model.load_failed", {{"app", app.name},
                                     {"version", std::to_string(*version)},
                                     {"error", std::string(s.message())}});
      continue;
    }
    // Restores a canary or shadow that was serving (no audit: nothing
    // changed).
    SyncTrafficLogged(app.name, "");
  }
  return absl::OkStatus();
}

void ControlPlane::AddRoutes(Router* router) {
  // Apps.
  Guard(router, "POST", "/api/v1/apps",
        HandleCaller(
            [this](const HttpRequest& request, const PathParams&,
                   const ApiToken& caller) -> absl::StatusOr<HttpResponse> {
              ASSIGN_OR_RETURN(json body, ParseBody(request));
              ASSIGN_OR_RETURN(std::string yaml, StringField(body, "spec"));
              ASSIGN_OR_RETURN(ApprovalCaller who, CallerOf(body, caller));
              ASSIGN_OR_RETURN(std::string comment, CommentField(body));
              return ApplySpec(yaml, body.value("file", "slipway.yaml"),
                               body.value("source_dir", ""), who, comment,
                               "app.apply");
            }));
  Guard(router, "GET", "/api/v1/apps",
        Handle([this](const HttpRequest&,
                      const PathParams&) -> absl::StatusOr<HttpResponse> {
          ASSIGN_OR_RETURN(std::vector<AppRecord> apps, store_->ListApps());
          json list = json::array();
          for (const AppRecord& app : apps) {
            list.push_back({{"app", app.name},
                            {"revision", app.current_revision},
                            {"created_at", Timestamp(app.created_at)}});
          }
          return JsonResponse(200, {{"apps", list}});
        }));
  Guard(router, "GET", "/api/v1/apps/{app}",
        Handle([this](const HttpRequest&,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          const std::string& app = p.at("app");
          ASSIGN_OR_RETURN(AppRevisionRecord current,
                           registry_->CurrentRevision(app));
          ASSIGN_OR_RETURN(std::vector<AppRevisionRecord> revisions,
                           store_->ListAppRevisions(app));
          ASSIGN_OR_RETURN(std::vector<AliasRecord> aliases,
                           registry_->ListAliases(app));
          json answer = RevisionJson(current, true);
          answer["revisions"] = json::array();
          for (const AppRevisionRecord& r : revisions) {
            answer["revisions"].push_back(RevisionJson(r, false));
          }
          answer["aliases"] = json::array();
          for (const AliasRecord& a : aliases) {
            answer["aliases"].push_back(AliasJson(a));
          }
          return JsonResponse(200, answer);
        }));
  Guard(router, "POST", "/api/v1/apps/{app}/rollback",
        HandleCaller(
            [this](const HttpRequest& request, const PathParams& p,
                   const ApiToken& caller) -> absl::StatusOr<HttpResponse> {
              ASSIGN_OR_RETURN(json body, ParseBody(request));
              auto it = body.find("revision");
              if (it == body.end() || !it->is_number_integer()) {
                return absl::InvalidArgumentError(
                    "field 'revision' (an integer) is required");
              }
              ASSIGN_OR_RETURN(ApprovalCaller who, CallerOf(body, caller));
              ASSIGN_OR_RETURN(std::string comment, CommentField(body));
              // A rollback stores the old text as a new revision: an apply.
              ASSIGN_OR_RETURN(
                  AppRevisionRecord target,
                  store_->GetAppRevision(p.at("app"), it->get<int>()));
              return ApplySpec(target.spec_yaml, "slipway.yaml",
                               target.source_dir, who, comment, "app.rollback");
            }));

  // Runs.
  Guard(router, "POST", "/api/v1/apps/{app}/runs",
        HandleCaller(
            [this](const HttpRequest& request, const PathParams& p,
                   const ApiToken& caller) -> absl::StatusOr<HttpResponse> {
              ASSIGN_OR_RETURN(json body, ParseBody(request));
              ASSIGN_OR_RETURN(std::string pipeline,
                               StringField(body, "pipeline"));
              ASSIGN_OR_RETURN(std::string actor, ActorField(body, caller));
              ASSIGN_OR_RETURN(RunRecord run,
                               executor_->Start(p.at("app"), pipeline, actor));
              return JsonResponse(201, RunJson(run));
            }));
  Guard(router, "POST", "/api/v1/apps/{app}/events",
        HandleCaller(
            [this](const HttpRequest& request, const PathParams& p,
                   const ApiToken& caller) -> absl::StatusOr<HttpResponse> {
              ASSIGN_OR_RETURN(json body, ParseBody(request));
              ASSIGN_OR_RETURN(std::string event, StringField(body, "event"));
              ASSIGN_OR_RETURN(std::string actor, ActorField(body, caller));
              return FireEvent(p.at("app"), event, actor);
            }));
  Guard(router, "GET", "/api/v1/apps/{app}/runs",
        Handle([this](const HttpRequest& request,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          RETURN_IF_ERROR(store_->GetApp(p.at("app")).status());
          ASSIGN_OR_RETURN(std::vector<RunRecord> runs,
                           store_->ListRuns(p.at("app"), 100));
          json list = json::array();
          for (const RunRecord& r : runs) list.push_back(RunJson(r));
          return JsonResponse(200, {{"runs", list}});
        }));
  Guard(router, "GET", "/api/v1/runs/{run}",
        Handle([this](const HttpRequest&,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          ASSIGN_OR_RETURN(RunRecord run, store_->GetRun(p.at("run")));
          ASSIGN_OR_RETURN(std::vector<StepRecord> steps,
                           store_->ListSteps(run.id));
          ASSIGN_OR_RETURN(std::vector<RunEventRecord> events,
                           store_->ListRunEvents(run.id));
          json answer = RunJson(run);
          answer["steps"] = json::array();
          for (const StepRecord& s : steps) {
            answer["steps"].push_back(StepJson(s));
          }
          answer["events"] = json::array();
          for (const RunEventRecord& e : events) {
            answer["events"].push_back(EventJson(e));
          }
          return JsonResponse(200, answer);
        }));
  Guard(router, "GET", "/api/v1/runs/{run}/steps/{step}/log",
        Handle([this](const HttpRequest& request,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          return StepLog(p.at("run"), p.at("step"), request);
        }));
  Guard(
      router, "POST", "/api/v1/runs/{run}/cancel",
      HandleCaller([this](
                       const HttpRequest& request, const PathParams& p,
                       const ApiToken& caller) -> absl::StatusOr<HttpResponse> {
        RETURN_IF_ERROR(executor_->Cancel(p.at("run")));
        ASSIGN_OR_RETURN(RunRecord run, store_->GetRun(p.at("run")));
        AuditChange(
            {HeaderActor(request, caller), "run.cancel", run.app,
             "run " + run.id, json{{"state", run.state}}.dump(),
             json{{"state", run.state}, {"cancel_requested", true}}.dump()});
        return JsonResponse(202, RunJson(run));
      }));

  // Models and aliases.
  Guard(router, "GET", "/api/v1/apps/{app}/models",
        Handle([this](const HttpRequest&,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          const std::string& app = p.at("app");
          ASSIGN_OR_RETURN(std::vector<ModelVersionRecord> versions,
                           registry_->ListVersions(app));
          ASSIGN_OR_RETURN(std::vector<AliasRecord> aliases,
                           registry_->ListAliases(app));
          json list = json::array();
          for (const ModelVersionRecord& v : versions) {
            list.push_back(VersionJson(v, aliases));
          }
          json alias_list = json::array();
          for (const AliasRecord& a : aliases) {
            alias_list.push_back(AliasJson(a));
          }
          return JsonResponse(
              200, {{"app", app}, {"models", list}, {"aliases", alias_list}});
        }));
  Guard(router, "GET", "/api/v1/apps/{app}/models/{version}",
        Handle([this](const HttpRequest&,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          ASSIGN_OR_RETURN(int version, ParseVersion(p.at("version")));
          ASSIGN_OR_RETURN(ModelVersionRecord record,
                           registry_->GetVersion(p.at("app"), version));
          ASSIGN_OR_RETURN(std::vector<AliasRecord> aliases,
                           registry_->ListAliases(p.at("app")));
          return JsonResponse(200, VersionJson(record, aliases));
        }));
  Guard(router, "POST", "/api/v1/apps/{app}/models",
        Handle([this](const HttpRequest& request,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          return ImportModel(p.at("app"), request);
        }));
  Guard(router, "GET", "/api/v1/apps/{app}/models/{version}/diff/{other}",
        Handle([this](const HttpRequest&,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          ASSIGN_OR_RETURN(int from, ParseVersion(p.at("version")));
          ASSIGN_OR_RETURN(int to, ParseVersion(p.at("other")));
          ASSIGN_OR_RETURN(ModelVersionRecord a,
                           registry_->GetVersion(p.at("app"), from));
          ASSIGN_OR_RETURN(ModelVersionRecord b,
                           registry_->GetVersion(p.at("app"), to));
          return JsonResponse(200, DiffModelVersions(a, b));
        }));
  Guard(router, "GET", "/api/v1/apps/{app}/models/{version}/card",
        Handle([this](const HttpRequest&,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          ASSIGN_OR_RETURN(int version, ParseVersion(p.at("version")));
          return ModelCard(p.at("app"), version);
        }));
  Guard(router, "GET", "/api/v1/apps/{app}/models/{version}/artifact",
        Handle([this](const HttpRequest&,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          ASSIGN_OR_RETURN(int version, ParseVersion(p.at("version")));
          ASSIGN_OR_RETURN(ModelVersionRecord record,
                           registry_->GetVersion(p.at("app"), version));
          ASSIGN_OR_RETURN(std::string bytes,
                           registry_->ReadModelBytes(record));
          HttpResponse response = HttpResponse::Text(
              200, std::move(bytes), "application/octet-stream");
          response.headers.emplace_back("X-Model-Format", record.format);
          response.headers.emplace_back("X-Artifact-Sha256",
                                        record.artifact_sha256);
          return response;
        }));
  Guard(router, "GET", "/api/v1/apps/{app}/models/{version}/baseline",
        Handle([this](const HttpRequest&,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          ASSIGN_OR_RETURN(int version, ParseVersion(p.at("version")));
          ASSIGN_OR_RETURN(ModelVersionRecord record,
                           registry_->GetVersion(p.at("app"), version));
          ASSIGN_OR_RETURN(std::string profile,
                           registry_->ReadBaseline(record));
          return HttpResponse::Json(200, std::move(profile));
        }));
  Guard(
      router, "PUT", "/api/v1/apps/{app}/aliases/{alias}",
      HandleCaller([this](
                       const HttpRequest& request, const PathParams& p,
                       const ApiToken& caller) -> absl::StatusOr<HttpResponse> {
        ASSIGN_OR_RETURN(json body, ParseBody(request));
        auto it = body.find("version");
        if (it == body.end() || !it->is_number_integer()) {
          return absl::InvalidArgumentError(
              "field 'version' (an integer) is required");
        }
        const std::string& app = p.at("app");
        const std::string& alias = p.at("alias");
        int version = it->get<int>();
        ASSIGN_OR_RETURN(ApprovalCaller who, CallerOf(body, caller));
        ASSIGN_OR_RETURN(std::string comment, CommentField(body));
        ASSIGN_OR_RETURN(
            int64_t approval,
            PromoteOrRequest(app, {AliasMove{alias, version}}, who, comment));
        if (approval != 0) {
          ASSIGN_OR_RETURN(ApprovalRecord request, approvals_->Get(approval));
          return ApprovalPending(request);
        }
        return JsonResponse(200, {{"app", app},
                                  {"alias", alias},
                                  {"version", version},
                                  {"serving", alias == kServingAlias}});
      }));
  Guard(router, "POST", "/api/v1/apps/{app}/aliases",
        HandleCaller(
            [this](const HttpRequest& request, const PathParams& p,
                   const ApiToken& caller) -> absl::StatusOr<HttpResponse> {
              ASSIGN_OR_RETURN(json body, ParseBody(request));
              ASSIGN_OR_RETURN(std::vector<AliasMove> moves, MovesField(body));
              ASSIGN_OR_RETURN(ApprovalCaller who, CallerOf(body, caller));
              ASSIGN_OR_RETURN(std::string comment, CommentField(body));
              const std::string& app = p.at("app");
              ASSIGN_OR_RETURN(int64_t approval,
                               PromoteOrRequest(app, moves, who, comment));
              if (approval != 0) {
                ASSIGN_OR_RETURN(ApprovalRecord request,
                                 approvals_->Get(approval));
                return ApprovalPending(request);
              }
              json moved = json::array();
              bool serving = false;
              for (const AliasMove& m : moves) {
                moved.push_back({{"alias", m.alias}, {"version", m.version}});
                serving = serving || m.alias == kServingAlias;
              }
              return JsonResponse(
                  200, {{"app", app}, {"moves", moved}, {"serving", serving}});
            }));
  Guard(router, "GET", "/api/v1/apps/{app}/aliases/history",
        Handle([this](const HttpRequest&,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          const std::string& app = p.at("app");
          ASSIGN_OR_RETURN(std::vector<AliasHistoryRecord> history,
                           registry_->AliasHistory(app));
          json list = json::array();
          for (const AliasHistoryRecord& h : history) {
            list.push_back(AliasMoveJson(h));
          }
          return JsonResponse(200, {{"app", app}, {"history", list}});
        }));
  Guard(router, "GET", "/api/v1/serving",
        Handle([this](const HttpRequest&,
                      const PathParams&) -> absl::StatusOr<HttpResponse> {
          json list = json::array();
          for (const VersionState& s : models_->States()) {
            list.push_back({{"app", s.app},
                            {"version", s.version},
                            {"role", s.role},
                            {"state", std::string(VersionStateName(s.state))},
                            {"reason", s.reason},
                            {"since", Timestamp(s.since_micros)}});
          }
          return JsonResponse(200, {{"models", list}});
        }));
  AddTokenRoutes(router);
  AddGovernanceRoutes(router);
  if (monitor_ != nullptr) AddMonitorRoutes(router);
}

void ControlPlane::AddTestClockRoutes(Router* router, TestClock* clock) {
  auto now = [clock] {
    const int64_t micros = clock->NowMicros();
    return JsonResponse(200, {{"now", Timestamp(micros)}, {"now_micros", micros}});
  };
  Guard(router, "GET", "/api/v1/admin/clock",
        Handle([now](const HttpRequest&, const PathParams&)
                   -> absl::StatusOr<HttpResponse> { return now(); }));
  Guard(router, "POST", "/api/v1/admin/clock",
        Handle([clock, now](const HttpRequest& request, const PathParams&)
                   -> absl::StatusOr<HttpResponse> {
          json body = json::parse(request.body, nullptr, false);
          const json* seconds =
              body.is_object() && body.contains("advance_seconds")
                  ? &body["advance_seconds"]
                  : nullptr;
          if (seconds == nullptr || !seconds->is_number() ||
              seconds->get<double>() <= 0 ||
              seconds->get<double>() > 366.0 * 86400) {
            return absl::InvalidArgumentError(
                "the body must be {\"advance_seconds\": N} with N a number of "
                "seconds in (0, 31622400], for example {\"advance_seconds\": "
                "3600}");
          }
          const int64_t micros =
              static_cast<int64_t>(seconds->get<double>() * 1e6);
          clock->Advance(micros);
          LogInfo("test_clock.advanced",
                  {{"seconds", std::to_string(micros / 1e6)},
                   {"now", FormatTimestamp(clock->NowMicros())}});
          return now();
        }));
}

void ControlPlane::AuditChange(const AuditEntry& entry) {
  absl::Status s = audit_->Record(entry).status();
  if (!s.ok()) {
    LogError("audit.record_failed", {{"action", entry.action},
                                     {"object", entry.object},
                                     {"error", std::string(s.message())}});
  }
}

PolicySpec ControlPlane::CurrentPolicy(const std::string& app) {
  absl::StatusOr<AppRevisionRecord> current = registry_->CurrentRevision(app);
  if (!current.ok()) return PolicySpec();
  absl::StatusOr<AppSpec> spec =
      ParseAppSpec(current->spec_yaml, "slipway.yaml");
  if (!spec.ok()) return PolicySpec();
  return spec->policy;
}

absl::StatusOr<int64_t> ControlPlane::PromoteOrRequest(
    const std::string& app, const std::vector<AliasMove>& moves,
    const ApprovalCaller& requester, const std::string& comment) {
  // Refuse a request for a version that does not exist up front, rather
  // than asking an approver to approve it.
  for (const AliasMove& move : moves) {
    RETURN_IF_ERROR(registry_->GetVersion(app, move.version).status());
  }
  const PolicySpec policy = CurrentPolicy(app);
  if (!policy.promote.has_value() || !policy.promote->requires_approval) {
    RETURN_IF_ERROR(MoveAliases(app, moves, requester.actor));
    return 0;
  }
  json change = {{"moves", json::array()}};
  for (const AliasMove& move : moves) {
    change["moves"].push_back(
        {{"alias", move.alias}, {"version", move.version}});
  }
  ASSIGN_OR_RETURN(
      ApprovalRecord request,
      approvals_->Request(app, "promote", change.dump(), requester, comment,
                          policy.approvals.expire_after_seconds));
  LogInfo("approval.requested", {{"app", app},
                                 {"approval", std::to_string(request.id)},
                                 {"kind", "promote"},
                                 {"by", requester.actor}});
  return request.id;
}

absl::StatusOr<ApplyOutcome> ControlPlane::ApplyAndAudit(
    const AppSpec& spec, const std::string& yaml, const std::string& source_dir,
    const std::string& actor, const std::string& action) {
  ASSIGN_OR_RETURN(ApplyOutcome outcome,
                   registry_->Apply(spec.app, yaml, source_dir));
  models_->AddApp(spec.app);
  TrackEndpointAuth(spec.app, yaml);
  if (outcome.changed) {
    const int revision = outcome.revision.revision;
    json before = revision == 1
                      ? json(nullptr)
                      : json{{"revision", revision - 1},
                             {"spec_sha256", Sha256Hex(outcome.previous_yaml)}};
    json after = {{"revision", revision},
                  {"spec_sha256", outcome.revision.spec_sha256},
                  {"source_dir", outcome.revision.source_dir}};
    AuditChange({actor, action, spec.app, "app " + spec.app, before.dump(),
                 after.dump()});
    // endpoint.canary or endpoint.shadow may have changed.
    SyncTrafficLogged(spec.app, actor);
  }
  return outcome;
}

absl::StatusOr<HttpResponse> ControlPlane::ApplySpec(
    const std::string& yaml, const std::string& file,
    const std::string& source_dir, const ApprovalCaller& caller,
    const std::string& comment, const std::string& action) {
  ASSIGN_OR_RETURN(AppSpec spec, ParseAppSpec(yaml, file));
  RETURN_IF_ERROR(CheckAlertRules(spec, file));
  ASSIGN_OR_RETURN(std::vector<std::string> warnings,
                   CheckChampionFeatures(spec, source_dir));
  absl::StatusOr<AppRevisionRecord> current =
      registry_->CurrentRevision(spec.app);
  if (current.ok() && current->spec_yaml != yaml) {
    // The policy in force is the current revision's, so a spec cannot
    // switch approval off by saying so itself.
    const PolicySpec policy = CurrentPolicy(spec.app);
    ASSIGN_OR_RETURN(std::optional<int> champion,
                     registry_->ResolveAlias(spec.app, kServingAlias));
    if (policy.apply.requires_approval && champion.has_value()) {
      json change = {{"spec_yaml", yaml},
                     {"spec_sha256", Sha256Hex(yaml)},
                     {"file", file},
                     {"source_dir", source_dir},
                     {"action", action},
                     {"from_revision", current->revision},
                     {"diff", DiffSpecs(current->spec_yaml, yaml)}};
      ASSIGN_OR_RETURN(
          ApprovalRecord request,
          approvals_->Request(spec.app, "apply", change.dump(), caller, comment,
                              policy.approvals.expire_after_seconds));
      LogInfo("approval.requested", {{"app", spec.app},
                                     {"approval", std::to_string(request.id)},
                                     {"kind", "apply"},
                                     {"by", caller.actor}});
      return ApprovalPending(request);
    }
  }
  ASSIGN_OR_RETURN(ApplyOutcome outcome,
                   ApplyAndAudit(spec, yaml, source_dir, caller.actor, action));
  json answer = {
      {"app", spec.app},
      {"revision", outcome.revision.revision},
      {"changed", outcome.changed},
      {"diff", outcome.changed ? DiffSpecs(outcome.previous_yaml, yaml)
                               : std::string()},
      {"warnings", warnings}};
  const bool created = outcome.changed && action == "app.apply";
  return JsonResponse(created ? 201 : 200, answer);
}

absl::Status ControlPlane::CarryOut(const ApprovalRecord& approval,
                                    const ApprovalCaller& approver) {
  const json change = json::parse(approval.change_json, nullptr, false);
  const std::string actor =
      approver.actor + " (approval " + std::to_string(approval.id) + ")";
  if (approval.kind == "promote" && change.is_object()) {
    ASSIGN_OR_RETURN(std::vector<AliasMove> moves, MovesField(change));
    return MoveAliases(approval.app, moves, actor);
  }
  if (approval.kind == "apply" && change.is_object()) {
    ASSIGN_OR_RETURN(std::string yaml, StringField(change, "spec_yaml"));
    const std::string file = change.value("file", "slipway.yaml");
    const std::string source_dir = change.value("source_dir", "");
    ASSIGN_OR_RETURN(AppSpec spec, ParseAppSpec(yaml, file));
    RETURN_IF_ERROR(CheckAlertRules(spec, file));
    RETURN_IF_ERROR(CheckChampionFeatures(spec, source_dir).status());
    return ApplyAndAudit(spec, yaml, source_dir, actor,
                         change.value("action", "app.apply"))
        .status();
  }
  return absl::DataLossError("approval " + std::to_string(approval.id) +
                             " holds a change this server cannot read (kind '" +
                             approval.kind + "')");
}

namespace {

absl::StatusOr<int64_t> ApprovalId(const std::string& text) {
  int64_t id = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || ptr != text.data() + text.size() || id <= 0) {
    return absl::InvalidArgumentError(
        "'" + text +
        "' is not an approval id (slipway approvals list shows "
        "them)");
  }
  return id;
}

// An approve or reject request: which approval, who decides, and why.
struct Decision {
  int64_t id = 0;
  ApprovalCaller who;
  std::string comment;
};

absl::StatusOr<Decision> ParseDecision(const HttpRequest& request,
                                       const PathParams& p,
                                       const ApiToken& caller) {
  Decision decision;
  ASSIGN_OR_RETURN(decision.id, ApprovalId(p.at("approval")));
  ASSIGN_OR_RETURN(json body, ParseBody(request));
  ASSIGN_OR_RETURN(decision.who, CallerOf(body, caller));
  ASSIGN_OR_RETURN(decision.comment, CommentField(body));
  return decision;
}

json AuditJson(const AuditRecord& r) { return ToJson(r); }

// The page of audit records a request asks for: after sequence number
// `after` (default 0), at most `limit` (default 1,000, at most 100,000).
absl::StatusOr<AuditFilter> PageOfAudit(const HttpRequest& request) {
  ASSIGN_OR_RETURN(uint64_t after, QueryNumber(request, "after", 0));
  ASSIGN_OR_RETURN(uint64_t limit, QueryNumber(request, "limit", 1000));
  AuditFilter filter;
  filter.after_seq = static_cast<int64_t>(after);
  filter.limit = static_cast<int>(std::min<uint64_t>(limit, 100000));
  return filter;
}

json DeliveryJson(const DeliveryRecord& d) {
  return {{"id", d.id},
          {"app", d.app},
          {"audit_seq", d.audit_seq},
          {"event", d.event},
          {"url", d.url},
          {"state", d.state},
          {"attempts", d.attempts},
          {"next_attempt_at", Timestamp(d.next_attempt_at)},
          {"last_status", d.last_status},
          {"last_error", d.last_error},
          {"created_at", Timestamp(d.created_at)},
          {"delivered_at", Timestamp(d.delivered_at)},
          {"signed", !d.signature.empty()}};
}

}  // namespace

void ControlPlane::AddGovernanceRoutes(Router* router) {
  Guard(router, "GET", "/api/v1/approvals",
        Handle([this](const HttpRequest& request,
                      const PathParams&) -> absl::StatusOr<HttpResponse> {
          const std::string state = QueryText(request, "state");
          if (!state.empty() && state != "pending" && state != "approved" &&
              state != "rejected" && state != "expired") {
            return absl::InvalidArgumentError(
                "query parameter 'state' is '" + state +
                "'; give pending, approved, rejected or expired");
          }
          ASSIGN_OR_RETURN(std::vector<ApprovalRecord> approvals,
                           approvals_->List(QueryText(request, "app"), state));
          json list = json::array();
          for (const ApprovalRecord& a : approvals) {
            list.push_back(ApprovalJson(a));
          }
          return JsonResponse(200, {{"approvals", list}});
        }));
  Guard(router, "GET", "/api/v1/approvals/{approval}",
        Handle([this](const HttpRequest&,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          ASSIGN_OR_RETURN(int64_t id, ApprovalId(p.at("approval")));
          ASSIGN_OR_RETURN(ApprovalRecord approval, approvals_->Get(id));
          return JsonResponse(200, ApprovalJson(approval));
        }));
  Guard(router, "POST", "/api/v1/approvals/{approval}/approve",
        HandleCaller(
            [this](const HttpRequest& request, const PathParams& p,
                   const ApiToken& caller) -> absl::StatusOr<HttpResponse> {
              ASSIGN_OR_RETURN(Decision d, ParseDecision(request, p, caller));
              ASSIGN_OR_RETURN(ApprovalRecord pending, approvals_->Get(d.id));
              const bool forbid_self =
                  CurrentPolicy(pending.app).approvals.forbid_self_approval;
              ASSIGN_OR_RETURN(
                  ApprovalRecord approved,
                  approvals_->Approve(d.id, d.who, d.comment, forbid_self,
                                      [this, &d](const ApprovalRecord& a) {
                                        return CarryOut(a, d.who);
                                      }));
              LogInfo("approval.approved", {{"app", approved.app},
                                            {"approval", std::to_string(d.id)},
                                            {"by", d.who.actor}});
              return JsonResponse(200, ApprovalJson(approved));
            }));
  Guard(router, "POST", "/api/v1/approvals/{approval}/reject",
        HandleCaller(
            [this](const HttpRequest& request, const PathParams& p,
                   const ApiToken& caller) -> absl::StatusOr<HttpResponse> {
              ASSIGN_OR_RETURN(Decision d, ParseDecision(request, p, caller));
              ASSIGN_OR_RETURN(ApprovalRecord rejected,
                               approvals_->Reject(d.id, d.who, d.comment));
              LogInfo("approval.rejected", {{"app", rejected.app},
                                            {"approval", std::to_string(d.id)},
                                            {"by", d.who.actor}});
              return JsonResponse(200, ApprovalJson(rejected));
            }));
  Guard(router, "GET", "/api/v1/audit",
        Handle([this](const HttpRequest& request,
                      const PathParams&) -> absl::StatusOr<HttpResponse> {
          ASSIGN_OR_RETURN(AuditFilter filter, PageOfAudit(request));
          filter.app = QueryText(request, "app");
          filter.actor = QueryText(request, "actor");
          filter.action = QueryText(request, "action");
          filter.object_prefix = QueryText(request, "object");
          ASSIGN_OR_RETURN(std::vector<AuditRecord> records,
                           audit_->List(filter));
          json list = json::array();
          for (const AuditRecord& r : records) list.push_back(AuditJson(r));
          return JsonResponse(200, {{"records", list}});
        }));
  Guard(router, "GET", "/api/v1/apps/{app}/history",
        Handle([this](const HttpRequest& request,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          const std::string& app = p.at("app");
          RETURN_IF_ERROR(store_->GetApp(app).status());
          ASSIGN_OR_RETURN(AuditFilter filter, PageOfAudit(request));
          filter.app = app;
          ASSIGN_OR_RETURN(std::vector<AuditRecord> records,
                           audit_->List(filter));
          json events = json::array();
          for (const AuditRecord& r : records) {
            events.push_back(ToTimelineEntry(r).ToJson());
          }
          return JsonResponse(200, {{"app", app}, {"events", events}});
        }));
  Guard(router, "GET", "/api/v1/audit/verify",
        Handle([this](const HttpRequest&,
                      const PathParams&) -> absl::StatusOr<HttpResponse> {
          ASSIGN_OR_RETURN(AuditVerification v, audit_->Verify());
          return JsonResponse(200, {{"ok", v.ok},
                                    {"records", v.records},
                                    {"first_bad_seq", v.first_bad_seq},
                                    {"problem", v.problem},
                                    {"head_hash", v.head_hash}});
        }));
  Guard(router, "GET", "/api/v1/apps/{app}/deliveries",
        Handle([this](const HttpRequest& request,
                      const PathParams& p) -> absl::StatusOr<HttpResponse> {
          const std::string& app = p.at("app");
          RETURN_IF_ERROR(store_->GetApp(app).status());
          ASSIGN_OR_RETURN(uint64_t limit, QueryNumber(request, "limit", 100));
          ASSIGN_OR_RETURN(
              std::vector<DeliveryRecord> deliveries,
              store_->ListDeliveries(
                  app, static_cast<int>(std::min<uint64_t>(limit, 10000))));
          json list = json::array();
          for (const DeliveryRecord& d : deliveries) {
            list.push_back(DeliveryJson(d));
          }
          return JsonResponse(200, {{"app", app}, {"deliveries", list}});
        }));
}

}  // namespace slipway
