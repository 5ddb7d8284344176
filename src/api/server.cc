#include "api/server.h"

#include <atomic>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/access.h"
#include "api/control_plane.h"
#include "artifacts/local_artifact_store.h"
#include "audit/audit_log.h"
#include "auth/tokens.h"
#include "control/optimizer.h"
#include "core/clock.h"
#include "core/filesystem.h"
#include "core/ids.h"
#include "core/logging.h"
#include "core/prometheus_text.h"
#include "core/status.h"
#include "core/test_clock.h"
#include "monitor/monitor_service.h"
#include "data/secrets.h"
#include "notify/webhooks.h"
#include "pipeline/app_spec.h"
#include "pipeline/run_executor.h"
#include "pipeline/scheduler.h"
#include "registry/approvals.h"
#include "registry/registry.h"
#include "serving/http_server.h"
#include "serving/inference.h"
#include "serving/metrics.h"
#include "serving/model_manager.h"
#include "serving/prediction_observer.h"
#include "store/sqlite_store.h"

namespace slipway {
namespace {

// Hands each answered prediction to the monitor.
class MonitorObserver : public PredictionObserver {
 public:
  explicit MonitorObserver(MonitorService* monitor) : monitor_(monitor) {}

  // A shadow's prediction is profiled in the shadow version's windows,
  // logged as "<request id>~shadow" (core/ids.h ShadowLoggedId; feedback on
  // the request labels both), and compared with the answer the client got.
  void Observe(const ObservedPrediction& p) override {
    if (!p.shadow) {
      monitor_->Observe(p.app, p.version, p.request_id, p.answered_at_micros,
                        p.latency_micros, p.rows, p.num_rows, p.outputs,
                        p.width);
      observed_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    monitor_->Observe(p.app, p.version, ShadowLoggedId(p.request_id),
                      p.answered_at_micros, p.latency_micros, p.rows,
                      p.num_rows, p.outputs, p.width);
    monitor_->ObserveAgreement(p.app, p.version, p.num_rows, p.outputs,
                               p.width, p.primary_outputs, p.primary_width);
  }

  void ObserveFailure(std::string_view app, int version) override {
    monitor_->ObserveFailure(app, version);
  }

  // slipway_predictions_observed_total: answered predict and infer
  // requests handed to the monitor. Serving counts a request in
  // slipway_requests_total before answering and hands it over after, so
  // once the two agree (and slipway_prediction_log_queued is 0) every
  // answered prediction is stored.
  std::string RenderMetrics() const {
    std::string text = PrometheusFamilyHeader(
        "slipway_predictions_observed_total",
        "Answered predict and infer requests handed to the monitor.",
        "counter");
    AppendPrometheusSample(
        &text, "slipway_predictions_observed_total", "",
        std::to_string(observed_.load(std::memory_order_relaxed)));
    return text;
  }

 private:
  MonitorService* const monitor_;
  std::atomic<int64_t> observed_{0};
};

class ServerImpl : public Server {
 public:
  ~ServerImpl() override {
    StopExpiry();
    // Its thread calls into control_, which goes first.
    if (monitor_ != nullptr) monitor_->Stop();
  }

  absl::Status Init(const Options& options) {
    Filesystem* fs = LocalFilesystem();
    Clock* clock = RealClock();
    if (options.test_clock_start_micros != 0) {
      test_clock_ = std::make_unique<TestClock>(
          RealClock(), options.test_clock_start_micros);
      clock = test_clock_.get();
      LogInfo("server.test_clock",
              {{"start", FormatTimestamp(options.test_clock_start_micros)}});
    }
    RETURN_IF_ERROR(fs->CreateDirs(options.data_dir));
    ASSIGN_OR_RETURN(store_, OpenSqliteStore(options.data_dir, clock));
    ASSIGN_OR_RETURN(
        artifacts_,
        OpenLocalArtifactStore(fs, JoinPath(options.data_dir, "artifacts")));
    RETURN_IF_ERROR(artifacts_->RemoveTemporaryFiles());
    ASSIGN_OR_RETURN(
        audit_, AuditLog::Open(store_.get(), fs,
                               JoinPath(options.data_dir, kAuditHeadFile)));
    poster_ = NewCurlPoster();
    notifier_ = std::make_unique<WebhookNotifier>(
        store_.get(), clock, poster_.get(),
        [this](const std::string& app) { return AppWebhooks(app); });
    audit_->AddObserver(notifier_.get());
    tokens_ = std::make_unique<TokenService>(store_.get(), clock);
    RETURN_IF_ERROR(tokens_->Load());
    const std::string admin_token = JoinPath(options.data_dir, kAdminTokenFile);
    // Logs the file's path (auth.admin_token_written), never the token.
    ASSIGN_OR_RETURN(bool wrote_admin,
                     tokens_->WriteFirstAdminToken(admin_token));
    if (wrote_admin) {
      RETURN_IF_ERROR(AuditFirstAdminToken());
    }
    registry_ = std::make_unique<Registry>(store_.get(), artifacts_.get(),
                                           audit_.get());
    approvals_ = std::make_unique<Approvals>(store_.get(), audit_.get(), clock);

    RunExecutor::Options executor_options;
    executor_options.store = store_.get();
    executor_options.registry = registry_.get();
    executor_options.fs = fs;
    executor_options.clock = clock;
    executor_options.run_root = JoinPath(options.data_dir, "runs");
    executor_options.max_parallel_steps = options.max_parallel_steps;
    executor_options.python = options.python;
    executor_options.models_dir = JoinPath(options.data_dir, "models");
    executor_options.audit = audit_.get();
    // A register step's alias move is a promotion like any other: it
    // waits for approval when the app's policy says so.
    executor_options.move_alias = [this](const std::string& app,
                                         const std::string& alias, int version,
                                         const std::string& actor) {
      return control_->PromoteOrRequest(app, {AliasMove{alias, version}},
                                        ApprovalCaller{actor, "", ""},
                                        "registered by " + actor);
    };
    executor_ = std::make_unique<RunExecutor>(executor_options);

    metrics_ = std::make_unique<ServingMetrics>();
    models_ = std::make_unique<ModelManager>(clock, metrics_.get());
    // Shadow copies are predicted, and their predictions stored, on the
    // --shadow-cpus when given.
    ShadowRunner::Options shadow_options;
    shadow_options.cpus = options.shadow_cpus;
    ASSIGN_OR_RETURN(std::shared_ptr<ShadowRunner> shadow_runner,
                     ShadowRunner::Create(shadow_options));
    MonitorService::Options monitor_options;
    monitor_options.shadow_writer_setup = [cpus = options.shadow_cpus] {
      PinToCpus(cpus);
    };
    monitor_options.store = store_.get();
    monitor_options.clock = clock;
    monitor_options.monitor_spec = [this](const std::string& app) {
      return control_->CurrentMonitorSpec(app);
    };
    monitor_options.on_alert = [this](const Alert& alert) {
      control_->OnAlert(alert);
    };
    monitor_options.on_window_closed = [this](const std::string& app) {
      JudgeLiveTraffic(app);
    };
    ASSIGN_OR_RETURN(monitor_, MonitorService::Create(monitor_options));
    observer_ = std::make_unique<MonitorObserver>(monitor_.get());
    // Model bundles (Python, TorchScript) are unpacked under the data
    // directory; Python workers run the steps' python.
    ModelLoadOptions loading;
    loading.work_dir = JoinPath(options.data_dir, "models");
    loading.python.python = options.python;
    control_ = std::make_unique<ControlPlane>(
        store_.get(), registry_.get(), executor_.get(), models_.get(), fs,
        tokens_.get(), audit_.get(), approvals_.get(), monitor_.get(), clock,
        std::move(loading));
    ContinuousOptimizer::Options optimizer_options;
    optimizer_options.store = store_.get();
    optimizer_options.registry = registry_.get();
    optimizer_options.approvals = approvals_.get();
    optimizer_options.audit = audit_.get();
    optimizer_options.clock = clock;
    optimizer_options.promote =
        [this](const std::string& app, const std::vector<AliasMove>& moves,
               const std::string& actor, const std::string& comment) {
          return control_->PromoteOrRequest(app, moves,
                                            ApprovalCaller{actor, "", ""},
                                            comment);
        };
    optimizer_options.move_now = [this](const std::string& app,
                                        const std::vector<AliasMove>& moves,
                                        const std::string& actor) {
      return control_->MoveAliases(app, moves, actor);
    };
    optimizer_options.alert = [this](const Alert& alert) {
      control_->RaiseAlert(alert);
    };
    optimizer_ = std::make_unique<ContinuousOptimizer>(optimizer_options);
    RETURN_IF_ERROR(control_->LoadServedModels());
    // After the control plane: a retried run may move the served alias.
    RETURN_IF_ERROR(executor_->Recover());

    // Predict and infer of an app whose endpoint says `auth: token` need a
    // valid token (ControlPlane::AuthorizePrediction).
    AddInferenceRoutes(
        &router_, models_.get(), clock, metrics_.get(),
        [this](const std::string& app,
               const HttpRequest& request) -> std::optional<HttpResponse> {
          absl::Status allowed = control_->AuthorizePrediction(app, request);
          if (allowed.ok()) return std::nullopt;
          return AccessRefusal(allowed);
        },
        observer_.get(), std::move(shadow_runner));
    AddMetricsRoute(&router_, metrics_.get(), models_.get(),
                    [this] {
                      return monitor_->RenderMetrics() +
                             observer_->RenderMetrics();
                    });
    control_->AddRoutes(&router_);
    if (test_clock_ != nullptr) {
      control_->AddTestClockRoutes(&router_, test_clock_.get());
    }

    HttpServer::Options http;
    http.host = options.host;
    http.port = options.port;
    http.threads = options.threads;
    http.max_connections = options.max_connections;
    http.max_body_bytes = options.max_body_bytes;
    http.header_timeout_ms = options.header_timeout_ms;
    http.body_timeout_ms = options.body_timeout_ms;
    http.idle_timeout_ms = options.idle_timeout_ms;
    ASSIGN_OR_RETURN(http_, HttpServer::Start(http, &router_));
    if (!options.port_file.empty()) {
      RETURN_IF_ERROR(fs->WriteFileAtomic(
          options.port_file, std::to_string(http_->port()) + "\n"));
    }
    // Last, after Recover and after everything a run may call (control_
    // moves aliases): the first tick starts runs missed while down.
    scheduler_ = std::make_unique<Scheduler>(Scheduler::Options{
        store_.get(), registry_.get(), executor_.get(), clock, fs});
    scheduler_->Start();
    monitor_->Start();
    notifier_->Start();
    expiry_ = std::thread([this] { ExpireApprovals(); });
    LogInfo("server.started", {{"data_dir", options.data_dir},
                               {"port", std::to_string(http_->port())}});
    return absl::OkStatus();
  }

  int port() const override { return http_->port(); }

  std::vector<RouteInfo> Routes() const override { return router_.Routes(); }

  void Shutdown() override {
    http_->Shutdown(/*drain_timeout_ms=*/10000);
    // No new scheduled runs once the executor starts cancelling.
    scheduler_->Stop();
    executor_->Shutdown();
    // After the HTTP server: every answered prediction reaches the log.
    monitor_->Stop();
    StopExpiry();
    notifier_->Stop();
    LogInfo("server.stopped");
  }

  void Wait() override { http_->Wait(); }

 private:
  // The webhooks of `app`'s current spec, secrets resolved. A secret whose
  // environment variable is unset is an error naming it (logged by the
  // notifier; no delivery is stored unsigned by mistake).
  absl::StatusOr<std::vector<Webhook>> AppWebhooks(const std::string& app) {
    ASSIGN_OR_RETURN(AppRevisionRecord current,
                     registry_->CurrentRevision(app));
    ASSIGN_OR_RETURN(AppSpec spec,
                     ParseAppSpec(current.spec_yaml, "slipway.yaml"));
    std::vector<Webhook> hooks;
    for (const NotifierSpec& n : spec.notify) {
      Webhook hook;
      hook.url = n.webhook;
      if (!n.secret.empty()) {
        ASSIGN_OR_RETURN(
            hook.secret,
            ResolveSecret(n.secret, "notify secret of app '" + app + "' for " +
                                        n.webhook));
      }
      hooks.push_back(std::move(hook));
    }
    return hooks;
  }

  // A monitoring window of `app` closed: the canary and the last promotion
  // are judged on the feedback so far (control/optimizer.h).
  void JudgeLiveTraffic(const std::string& app) {
    absl::Status s = [&]() -> absl::Status {
      ASSIGN_OR_RETURN(AppRevisionRecord current,
                       registry_->CurrentRevision(app));
      ASSIGN_OR_RETURN(AppSpec spec,
                       ParseAppSpec(current.spec_yaml, "slipway.yaml"));
      return optimizer_->Check(spec);
    }();
    if (!s.ok()) {
      LogError("optimizer.check_failed",
               {{"app", app}, {"error", std::string(s.message())}});
    }
  }

  // The first admin token was written at start-up: on the record.
  absl::Status AuditFirstAdminToken() {
    for (const ApiToken& t : tokens_->List()) {
      if (t.created_by != "server") continue;
      AuditEntry entry;
      entry.actor = "server";
      entry.action = "token.create";
      entry.object = "token " + t.id;
      entry.after_json = nlohmann::json{
          {"id", t.id},
          {"name", t.name},
          {"role", std::string(RoleName(t.role))},
          {"state",
           "active"}}.dump();
      return audit_->Record(entry).status();
    }
    return absl::OkStatus();
  }

  // Expires pending approvals whose time is up, every 10 s of real time,
  // so their "approval.decided" events go out without anyone listing them.
  void ExpireApprovals() {
    absl::MutexLock lock(&expiry_mu_);
    while (!stopping_) {
      expiry_cv_.WaitWithTimeout(&expiry_mu_, absl::Seconds(10));
      if (stopping_) break;
      expiry_mu_.Unlock();
      absl::Status s = approvals_->ExpireDue().status();
      if (!s.ok()) {
        LogError("approvals.expiry_failed",
                 {{"error", std::string(s.message())}});
      }
      expiry_mu_.Lock();
    }
  }

  void StopExpiry() {
    {
      absl::MutexLock lock(&expiry_mu_);
      stopping_ = true;
      expiry_cv_.Signal();
    }
    if (expiry_.joinable()) expiry_.join();
  }

  // Everything below may read it; null unless --test-clock.
  std::unique_ptr<TestClock> test_clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<HttpPoster> poster_;
  // Observes audit_; stopped in Shutdown.
  std::unique_ptr<WebhookNotifier> notifier_;
  std::unique_ptr<Approvals> approvals_;
  absl::Mutex expiry_mu_;
  absl::CondVar expiry_cv_;
  bool stopping_ ABSL_GUARDED_BY(expiry_mu_) = false;
  std::thread expiry_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<TokenService> tokens_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<RunExecutor> executor_;
  // Outlives models_, whose batchers record into it.
  std::unique_ptr<ServingMetrics> metrics_;
  // Outlive the router's handlers, which report predictions to them.
  std::unique_ptr<MonitorService> monitor_;
  std::unique_ptr<MonitorObserver> observer_;
  std::unique_ptr<ModelManager> models_;
  std::unique_ptr<ControlPlane> control_;
  // Called by the monitor's thread, stopped before it goes.
  std::unique_ptr<ContinuousOptimizer> optimizer_;
  Router router_;
  std::unique_ptr<HttpServer> http_;
  // Declared after executor_ so that it is destroyed (stopped) first.
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const Options& options) {
  auto server = std::make_unique<ServerImpl>();
  RETURN_IF_ERROR(server->Init(options));
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace slipway
