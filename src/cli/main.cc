// slipway: the one binary. `slipway server` runs the daemon; every other
// command is a client of a running server (--server, SLIPWAY_SERVER), except
// `slipway demo`, which starts its own, `slipway gen`, which only writes
// a generated data file, and `slipway profile`, which reads local files (and
// asks a server only for --against's baseline).
#include <cstdlib>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/demo.h"
#include "cli/gen.h"
#include "cli/monitor_commands.h"
#include "cli/profile_command.h"
#include "cli/server_command.h"

namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace slipway;
  CLI::App cli{"Slipway: a production ML runtime in one binary"};
  cli.set_version_flag("--version", "slipway " SLIPWAY_VERSION);
  cli.require_subcommand(1);
  std::string server_url = EnvOr("SLIPWAY_SERVER", "http://127.0.0.1:8080");
  bool json = false;
  cli.add_option("--server", server_url,
                 "server URL (default $SLIPWAY_SERVER or "
                 "http://127.0.0.1:8080)");
  cli.add_flag("--json", json, "print the server's JSON answers");
  std::string client_data_dir = EnvOr("SLIPWAY_DATA_DIR", ".slipway");
  cli.add_option("--data-dir", client_data_dir,
                 "data directory whose admin.token the CLI sends when "
                 "$SLIPWAY_TOKEN is not set (default $SLIPWAY_DATA_DIR or "
                 ".slipway)");

  int code = 0;
  ApiClient client(server_url);
  // Rebuilt after parsing, when --server and --data-dir are known.
  auto ctx = [&]() {
    absl::StatusOr<std::string> token = ClientToken(client_data_dir);
    if (!token.ok()) {
      std::cerr << "warning: " << token.status().message() << "\n";
    }
    client = ApiClient(server_url, token.ok() ? *token : std::string());
    return CliContext{&client, json};
  };

  // server
  ServerFlags server_flags;
  server_flags.data_dir = EnvOr("SLIPWAY_DATA_DIR", ".slipway");
  auto* server = cli.add_subcommand("server", "run the Slipway daemon");
  server->add_option("--data-dir", server_flags.data_dir,
                     "data directory (default $SLIPWAY_DATA_DIR or .slipway)");
  server->add_option("--listen", server_flags.listen,
                     "HOST:PORT to listen on; port 0 picks a free port");
  server->add_option("--port-file", server_flags.port_file,
                     "write the bound port to this file");
  server->add_option("--roles", server_flags.roles, "roles to run");
  server
      ->add_option("--threads", server_flags.threads,
                   "HTTP threads (default 0: one per core)")
      ->check(CLI::Range(0, 1024));
  server
      ->add_option("--max-connections", server_flags.max_connections,
                   "open connections; more are answered 503 (default 1024)")
      ->check(CLI::Range(1, 1000000));
  server
      ->add_option("--max-body-mb", server_flags.max_body_mb,
                   "largest request body in MiB; larger get 413 (default 64)")
      ->check(CLI::Range(1, 4096));
  server
      ->add_option("--header-timeout-ms", server_flags.header_timeout_ms,
                   "time to send the request headers (default 10000)")
      ->check(CLI::Range(1, 86400000));
  server
      ->add_option("--body-timeout-ms", server_flags.body_timeout_ms,
                   "time to send the body and read the answer "
                   "(default 30000)")
      ->check(CLI::Range(1, 86400000));
  server
      ->add_option("--idle-timeout-ms", server_flags.idle_timeout_ms,
                   "idle keep-alive connections close after this "
                   "(default 60000)")
      ->check(CLI::Range(1, 86400000));
  server
      ->add_option("--max-parallel-steps", server_flags.max_parallel_steps,
                   "steps of one run that may run at once (default: one per "
                   "core)")
      ->check(CLI::Range(1, 1024));
  server->add_option("--python", server_flags.python,
                     "python of command and notebook steps (default "
                     "$SLIPWAY_PYTHON, else /usr/bin/python3)");
  server->add_option("--shadow-cpus", server_flags.shadow_cpus,
                     "CPUs (taskset -c list, e.g. 1 or 2-3) for the thread "
                     "that predicts shadow copies; default: any");
  server->add_option("--test-clock", server_flags.test_clock,
                     "for scenario tests: run on a clock that starts at this "
                     "RFC 3339 time and that POST /api/v1/admin/clock moves "
                     "forward");
  server->callback([&] { code = ServerCommand(server_flags); });

  // apply
  std::string file;
  auto* apply = cli.add_subcommand("apply", "validate and store an app spec");
  apply->add_option("FILE", file, "slipway.yaml")->required();
  apply->callback([&] { code = ApplyCommand(ctx(), file); });

  // apps
  std::string app;
  int revision = 0;
  auto* apps = cli.add_subcommand("apps", "apps and their revisions");
  apps->require_subcommand(1);
  apps->add_subcommand("list", "list apps")->callback([&] {
    code = AppsListCommand(ctx());
  });
  auto* apps_show = apps->add_subcommand("show", "show an app");
  apps_show->add_option("APP", app)->required();
  apps_show->callback([&] { code = AppsShowCommand(ctx(), app); });
  auto* apps_rollback =
      apps->add_subcommand("rollback", "re-apply an earlier revision");
  apps_rollback->add_option("APP", app)->required();
  apps_rollback->add_option("--to", revision, "revision")->required();
  apps_rollback->callback(
      [&] { code = AppsRollbackCommand(ctx(), app, revision); });

  // run
  std::string pipeline;
  bool wait = false;
  auto* run = cli.add_subcommand("run", "start a pipeline run");
  run->add_option("APP", app)->required();
  run->add_option("PIPELINE", pipeline)->required();
  run->add_flag("--wait", wait,
                "follow the run; exit non-zero if it does not succeed");
  run->callback([&] { code = RunCommand(ctx(), app, pipeline, wait); });

  // runs
  std::string run_id;
  auto* runs = cli.add_subcommand("runs", "runs of an app");
  runs->require_subcommand(1);
  auto* runs_list = runs->add_subcommand("list", "list an app's runs");
  runs_list->add_option("APP", app)->required();
  runs_list->callback([&] { code = RunsListCommand(ctx(), app); });
  auto* runs_show = runs->add_subcommand("show", "show a run and its steps");
  runs_show->add_option("RUN", run_id)->required();
  runs_show->callback([&] { code = RunsShowCommand(ctx(), run_id); });
  std::string step;
  bool follow = false;
  auto* runs_logs = runs->add_subcommand("logs", "a run's step logs");
  runs_logs->add_option("RUN", run_id)->required();
  runs_logs->add_option("STEP", step, "only this step's log");
  runs_logs->add_flag("-f,--follow", follow,
                      "keep printing until the run finishes");
  runs_logs->callback(
      [&] { code = RunsLogsCommand(ctx(), run_id, step, follow); });
  auto* runs_cancel = runs->add_subcommand("cancel", "cancel a run");
  runs_cancel->add_option("RUN", run_id)->required();
  runs_cancel->callback([&] { code = RunsCancelCommand(ctx(), run_id); });

  // events
  std::string event;
  auto* events = cli.add_subcommand("events", "trigger events");
  events->require_subcommand(1);
  auto* events_fire = events->add_subcommand(
      "fire",
      "start the pipelines an event triggers (drift, kpi_decay, "
      "new_data)");
  events_fire->add_option("APP", app)->required();
  events_fire->add_option("EVENT", event)->required();
  events_fire->callback([&] { code = EventsFireCommand(ctx(), app, event); });

  // models
  int version = 0;
  std::string alias = "champion";
  std::string dir;
  auto* models = cli.add_subcommand("models", "the model registry");
  models->require_subcommand(1);
  auto* models_list = models->add_subcommand("list", "list model versions");
  models_list->add_option("APP", app)->required();
  models_list->callback([&] { code = ModelsListCommand(ctx(), app); });
  auto* models_show = models->add_subcommand("show", "show a model version");
  models_show->add_option("APP", app)->required();
  models_show->add_option("VERSION", version)->required();
  models_show->callback([&] { code = ModelsShowCommand(ctx(), app, version); });
  auto* promote = models->add_subcommand(
      "promote", "move an alias; returns when serving has swapped");
  promote->add_option("APP", app)->required();
  promote->add_option("VERSION", version)->required();
  promote->add_option("--alias", alias, "alias to move (default champion)");
  promote->footer(
      "When the app's policy says promote: {approval: required}, this files "
      "an approval request and prints its id instead.");
  promote->callback(
      [&] { code = ModelsPromoteCommand(ctx(), app, version, alias); });
  int other_version = 0;
  auto* diff = models->add_subcommand(
      "diff", "compare two versions' params, metrics and signature");
  diff->add_option("APP", app)->required();
  diff->add_option("V1", version)->required();
  diff->add_option("V2", other_version)->required();
  diff->callback(
      [&] { code = ModelsDiffCommand(ctx(), app, version, other_version); });
  auto* history = models->add_subcommand("history", "every alias move");
  history->add_option("APP", app)->required();
  history->callback([&] { code = ModelsHistoryCommand(ctx(), app); });
  std::string import_path;
  std::string import_format;
  std::string sample_csv;
  std::string signature_file;
  auto* model_import = models->add_subcommand(
      "import",
      "register a model trained elsewhere (XGBoost JSON/UBJ file "
      "or MLflow model directory)");
  model_import->add_option("APP", app)->required();
  model_import->add_option("PATH", import_path)->required();
  model_import
      ->add_option("--format", import_format, "xgboost|python|torchscript")
      ->required();
  auto* sample_option = model_import->add_option(
      "--sample", sample_csv,
      "CSV rows the model was trained on (categories, classes)");
  model_import
      ->add_option("--signature", signature_file,
                   "Signature JSON (as `models export` writes it)")
      ->excludes(sample_option);
  model_import->callback([&] {
    code = ModelsImportCommand(ctx(), app, import_path, import_format,
                               sample_csv, signature_file);
  });
  auto* model_export = models->add_subcommand(
      "export", "write the model file, signature and MODEL_CARD.md");
  model_export->add_option("APP", app)->required();
  model_export->add_option("VERSION", version)->required();
  model_export->add_option("DIR", dir)->required();
  model_export->callback(
      [&] { code = ModelsExportCommand(ctx(), app, version, dir); });

  // tokens
  std::string token_name;
  std::string token_role;
  std::string token_expires;
  std::string token_id;
  auto* tokens = cli.add_subcommand("tokens", "API tokens (admin)");
  tokens->require_subcommand(1);
  auto* tokens_create = tokens->add_subcommand(
      "create", "create a token; its secret is printed once");
  tokens_create
      ->add_option("--role", token_role, "viewer, operator, approver or admin")
      ->required();
  tokens_create->add_option("--name", token_name, "what the token is for")
      ->required();
  tokens_create->add_option("--expires", token_expires,
                            "lifetime: 90m, 12h, 30d, 2w (default: never)");
  tokens_create->callback([&] {
    code = TokensCreateCommand(ctx(), token_name, token_role, token_expires);
  });
  tokens->add_subcommand("list", "list tokens (no secrets)")->callback([&] {
    code = TokensListCommand(ctx());
  });
  auto* tokens_revoke = tokens->add_subcommand("revoke", "revoke a token");
  tokens_revoke->add_option("ID", token_id, "the token's id (tok-...)")
      ->required();
  tokens_revoke->callback([&] { code = TokensRevokeCommand(ctx(), token_id); });

  // approvals
  auto* approvals =
      cli.add_subcommand("approvals", "changes waiting for an approver");
  approvals->require_subcommand(1);
  std::string approval_state;
  auto* approvals_list =
      approvals->add_subcommand("list", "list approval requests");
  approvals_list->add_option("--app", app, "only this app's");
  approvals_list
      ->add_option("--state", approval_state,
                   "pending, approved, rejected or expired")
      ->check(CLI::IsMember({"pending", "approved", "rejected", "expired"}));
  approvals_list->callback(
      [&] { code = ApprovalsListCommand(ctx(), app, approval_state); });
  int64_t approval_id = 0;
  std::string comment;
  auto* approve = approvals->add_subcommand(
      "approve", "approve a request, carrying its change out (approver)");
  approve->add_option("ID", approval_id)->required();
  approve->add_option("--comment", comment, "why");
  approve->callback([&] {
    code = ApprovalsDecideCommand(ctx(), approval_id, true, comment);
  });
  auto* reject =
      approvals->add_subcommand("reject", "reject a request (approver)");
  reject->add_option("ID", approval_id)->required();
  reject->add_option("--comment", comment, "why (required)")->required();
  reject->callback([&] {
    code = ApprovalsDecideCommand(ctx(), approval_id, false, comment);
  });

  // audit
  auto* audit = cli.add_subcommand("audit", "the hash-chained audit log");
  audit->require_subcommand(1);
  AuditQuery audit_query;
  auto* audit_list = audit->add_subcommand("list", "list audit records");
  audit_list->add_option("--app", audit_query.app, "only this app's");
  audit_list->add_option("--object", audit_query.object,
                         "objects starting with this (\"model churn\")");
  audit_list->add_option("--actor", audit_query.actor,
                         "only this actor's (\"cli:alice\")");
  audit_list->add_option("--action", audit_query.action,
                         "only this action (\"alias.move\")");
  audit_list->add_option("--limit", audit_query.limit, "at most this many");
  audit_list->callback([&] { code = AuditListCommand(ctx(), audit_query); });
  audit
      ->add_subcommand("verify",
                       "check the chain and the head file; names the first "
                       "record that does not match")
      ->callback([&] { code = AuditVerifyCommand(ctx()); });

  // history
  std::string history_app;
  int history_limit = 0;
  auto* app_history = cli.add_subcommand(
      "history",
      "the app's story: specs, runs and what started them, versions and "
      "their metrics, promotions, approvals, alerts");
  app_history->add_option("APP", history_app, "app")->required();
  app_history->add_option("--limit", history_limit, "the latest this many");
  app_history->callback(
      [&] { code = HistoryCommand(ctx(), history_app, history_limit); });

  // alerts
  auto* alerts =
      cli.add_subcommand("alerts", "alerts of the apps' monitoring rules");
  alerts->require_subcommand(1);
  AlertsQuery alerts_query;
  auto* alerts_list = alerts->add_subcommand("list", "list alerts");
  alerts_list->add_option("--app", alerts_query.app, "only this app's");
  alerts_list
      ->add_option("--state", alerts_query.state, "firing, pending or resolved")
      ->check(CLI::IsMember({"firing", "pending", "resolved"}));
  alerts_list->add_flag("--json", json, "print the server's JSON answer");
  alerts_list->callback([&] { code = AlertsListCommand(ctx(), alerts_query); });

  // monitor
  MonitorQuery monitor_query;
  auto* monitor = cli.add_subcommand(
      "monitor",
      "an app's latest monitoring window: drift of every feature and the "
      "prediction, KPIs from feedback");
  monitor->add_option("APP", monitor_query.app)->required();
  monitor->add_option("--from", monitor_query.from,
                      "windows from this time: ISO 8601 or unix seconds "
                      "(default: 24 hours ago)");
  monitor->add_option("--to", monitor_query.to,
                      "windows up to this time (default: now)");
  monitor
      ->add_option("--windows", monitor_query.windows,
                   "show the latest N windows, oldest first (default 1; "
                   "with --json the server's default, 100)")
      ->check(CLI::Range(1, 100000));
  monitor->add_flag("--json", json, "print the server's JSON answer");
  monitor->callback([&] { code = MonitorCommand(ctx(), monitor_query); });

  // demo
  DemoFlags demo_flags;
  auto* demo = cli.add_subcommand(
      "demo", "the whole lifecycle on a real data set shipped by Debian");
  demo->add_flag("--serve", demo_flags.serve,
                 "leave the server running afterwards");
  demo->add_option("--data-dir", demo_flags.data_dir,
                   "data directory (default: a new temporary directory)");
  demo->add_option("--example", demo_flags.example,
                   "the example app spec (default: "
                   "examples/breast-cancer/slipway.yaml)");
  demo->callback([&] { code = DemoCommand(demo_flags, argv[0]); });

  // gen
  GenFlags gen_flags;
  auto* gen = cli.add_subcommand(
      "gen",
      "write a deterministic churn-like CSV stream with scheduled covariate "
      "shift and concept drift (runs locally, no server)");
  gen->add_option("--rows", gen_flags.rows, "rows to write (default 1000)");
  gen->add_option("--seed", gen_flags.seed, "stream seed (default 1)");
  gen->add_option("--start", gen_flags.start,
                  "first row index; rows are [start, start + rows) "
                  "(default 0)");
  gen->add_option("--covariate-shift-at", gen_flags.covariate_shift_at,
                  "row from which the --shift features are shifted "
                  "(default -1: never)");
  gen->add_option("--shift", gen_flags.shift,
                  "comma-separated features to shift: age, income, tenure, "
                  "plan, region, support_calls, monthly_spend, f<k> "
                  "(default income,region)");
  gen->add_option("--concept-drift-at", gen_flags.concept_drift_at,
                  "row from which the label's dependence on support_calls "
                  "and plan flips (default -1: never)");
  gen->add_option("--missing", gen_flags.missing,
                  "fraction of numeric cells left empty (default 0.02)");
  gen->add_flag("--no-label", gen_flags.no_label,
                "leave out the churned column");
  gen->add_option("--extra-numeric", gen_flags.extra_numeric,
                  "extra standard-normal columns f0..f<K-1> (default 0)");
  gen->add_option("--out", gen_flags.out,
                  "CSV file to write (default: standard output)");
  gen->callback([&] { code = GenCommand(gen_flags); });

  // profile
  ProfileFlags profile_flags;
  auto* profile = cli.add_subcommand(
      "profile",
      "profile a CSV file in bounded memory, or check it for drift against "
      "a baseline (runs locally; exit 3 when a feature drifted)");
  profile->add_option("file", profile_flags.file, "the CSV file to profile")
      ->required();
  profile->add_option("--against", profile_flags.against,
                      "APP:VERSION: compare with the training baseline the "
                      "server stored with that model version");
  profile->add_option("--baseline", profile_flags.baseline,
                      "compare with BASE.csv's profile, or with a profile "
                      "saved by `slipway profile BASE.csv --json`");
  profile->add_option("--skip", profile_flags.skip,
                      "comma-separated columns to leave out (an id)");
  profile->add_flag("--json", profile_flags.json,
                    "print the profile, or the drift of every feature, as "
                    "JSON");
  profile->callback([&] {
    profile_flags.json = profile_flags.json || json;
    if (profile_flags.against.empty()) {
      code = ProfileCommand(profile_flags, nullptr);
    } else {
      code = ProfileCommand(profile_flags, ctx().client);
    }
  });

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int exit_code = cli.exit(e);
    return exit_code == 0 ? 0 : 2;
  }
  return code;
}
