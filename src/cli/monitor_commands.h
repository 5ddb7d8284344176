// The monitoring commands: `slipway alerts list` (GET /api/v1/alerts) and
// `slipway monitor APP` (GET /api/v1/apps/{app}/monitor), clients of a
// running server like commands.h's. Each prints a human-readable answer, or
// the server's JSON with --json, and returns the exit code: 0 success, 1 the
// server's refusal or an unreachable server ("error: <message>" on stderr).
// Bad flags (an unknown --state) are refused by the argument parser (exit 2).
//
// The Format* functions are the pure part: they turn the server's JSON into
// the printed text, so the layout is testable without a server. They accept
// any JSON; a field that is absent, null or of another type prints as "-".
#ifndef SLIPWAY_CLI_MONITOR_COMMANDS_H_
#define SLIPWAY_CLI_MONITOR_COMMANDS_H_

#include <string>

#include "cli/commands.h"
#include "nlohmann/json.hpp"

namespace slipway {

// Which alerts `slipway alerts list` shows; empty fields match all.
struct AlertsQuery {
  std::string app;
  std::string state;  // "firing", "pending" or "resolved"
};
int AlertsListCommand(const CliContext& ctx, const AlertsQuery& query);

// Which windows `slipway monitor APP` shows.
struct MonitorQuery {
  std::string app;
  // ISO 8601 ("2026-11-27T12:00:00Z") or unix seconds; empty: the server's
  // default range (the last 24 hours).
  std::string from;
  std::string to;
  // The latest `windows` windows of the range; 0: one for the table, the
  // server's default (100) for --json.
  int windows = 0;
};
int MonitorCommand(const CliContext& ctx, const MonitorQuery& query);

// The alerts of a GET /api/v1/alerts answer as a table (APP, RULE, STATE,
// METRIC, VALUE, THRESHOLD with "<" for below and ">" for above, SINCE,
// FIRE), or "no alerts".
std::string FormatAlerts(const nlohmann::json& answer);

// One window of a GET /api/v1/apps/{app}/monitor answer: the header line
// ("churn window START .. END  model v3  512 rows"), the drift of every
// feature with the prediction last, then the window's KPIs when feedback
// arrived in it.
std::string FormatMonitorWindow(const std::string& app,
                                const nlohmann::json& window);

// Every window of the answer, oldest first, separated by blank lines; or
// the note that `app` has no closed window yet.
std::string FormatMonitor(const std::string& app, const nlohmann::json& answer);

}  // namespace slipway

#endif  // SLIPWAY_CLI_MONITOR_COMMANDS_H_
