// The CLI's client commands: each talks to a Slipway server through
// ApiClient, prints a human-readable answer (or the server's JSON with
// --json) and returns the process exit code (0 success, 1 failure, 2 bad
// usage). Errors are printed to stderr as "error: <message>".
#ifndef SLIPWAY_CLI_COMMANDS_H_
#define SLIPWAY_CLI_COMMANDS_H_

#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "cli/api_client.h"
#include "nlohmann/json.hpp"

namespace slipway {

struct CliContext {
  ApiClient* client = nullptr;
  bool json = false;  // print raw JSON answers
};

// Prints "error: <the status's message>" on standard error and returns
// exit code 1, what every command returns when the server refuses or
// cannot be reached.
int Fail(const absl::Status& status);

int ApplyCommand(const CliContext& ctx, const std::string& file);
int AppsListCommand(const CliContext& ctx);
int AppsShowCommand(const CliContext& ctx, const std::string& app);
int AppsRollbackCommand(const CliContext& ctx, const std::string& app,
                        int revision);
// Polls run `run_id` until it reaches a final state, printing each step's
// state changes to `progress` (when not null); returns the final run.
absl::StatusOr<nlohmann::json> FollowRun(const ApiClient& client,
                                         const std::string& run_id,
                                         std::ostream* progress);

// Starts a run; with `wait`, follows it step by step and returns 1 when it
// does not succeed, naming the failing step.
int RunCommand(const CliContext& ctx, const std::string& app,
               const std::string& pipeline, bool wait);
int RunsListCommand(const CliContext& ctx, const std::string& app);
int RunsShowCommand(const CliContext& ctx, const std::string& run_id);
// Every step's log (or only `step`'s); with `follow`, keeps printing until
// the run finishes.
int RunsLogsCommand(const CliContext& ctx, const std::string& run_id,
                    const std::string& step, bool follow);
// Fires a trigger event (drift, kpi_decay, new_data) for an app's pipelines.
int EventsFireCommand(const CliContext& ctx, const std::string& app,
                      const std::string& event);
int RunsCancelCommand(const CliContext& ctx, const std::string& run_id);
int ModelsListCommand(const CliContext& ctx, const std::string& app);
int ModelsShowCommand(const CliContext& ctx, const std::string& app,
                      int version);
int ModelsPromoteCommand(const CliContext& ctx, const std::string& app,
                         int version, const std::string& alias);
// Params, metrics (with the difference) and signature changes from v1 to v2.
int ModelsDiffCommand(const CliContext& ctx, const std::string& app, int from,
                      int to);
// Every alias move of the app, oldest first.
int ModelsHistoryCommand(const CliContext& ctx, const std::string& app);
// Registers a model trained elsewhere: `path` is an XGBoost model file
// (JSON or UBJSON) or an MLflow model directory whose MLmodel names the
// xgboost flavor; the signature comes from `signature_file` (Signature
// JSON) or is derived with `sample_csv` (either may be empty).
int ModelsImportCommand(const CliContext& ctx, const std::string& app,
                        const std::string& path, const std::string& format,
                        const std::string& sample_csv,
                        const std::string& signature_file);
// Writes DIR/model.json (native XGBoost JSON), DIR/signature.json,
// DIR/transform.json (with a transform) and DIR/MODEL_CARD.md. A relative
// DIR that leaves the current directory (".." after normalisation, or
// through a symlink) is refused before anything is written, and so is a
// file in DIR that is a symlink.
int ModelsExportCommand(const CliContext& ctx, const std::string& app,
                        int version, const std::string& dir);

// API tokens (admin). Create prints the secret once; `expires` is a
// lifetime ("30d", "12h"; empty: never).
int TokensCreateCommand(const CliContext& ctx, const std::string& name,
                        const std::string& role, const std::string& expires);
int TokensListCommand(const CliContext& ctx);
int TokensRevokeCommand(const CliContext& ctx, const std::string& id);

// Approvals: lists them (filtered by app and state when given), approves
// (carrying the change out) or rejects one with a comment.
int ApprovalsListCommand(const CliContext& ctx, const std::string& app,
                         const std::string& state);
int ApprovalsDecideCommand(const CliContext& ctx, int64_t id, bool approve,
                           const std::string& comment);

// Which audit records `slipway audit list` shows; empty fields match all.
struct AuditQuery {
  std::string app;
  std::string object;  // a prefix: "model churn" matches "model churn v3"
  std::string actor;
  std::string action;
  int limit = 0;  // 0: the server's default
};
int AuditListCommand(const CliContext& ctx, const AuditQuery& query);
// Exit code 0 when the chain and the head file agree, 1 (naming the first
// record that does not match) otherwise.
int AuditVerifyCommand(const CliContext& ctx);
// `slipway history APP`: the app's timeline (GET /api/v1/apps/{app}/history),
// oldest first, the latest `limit` events (0: all the server gives).
int HistoryCommand(const CliContext& ctx, const std::string& app, int limit);

}  // namespace slipway

#endif  // SLIPWAY_CLI_COMMANDS_H_
