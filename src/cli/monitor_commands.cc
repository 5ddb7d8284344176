#include "cli/monitor_commands.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/table.h"
#include "data/secrets.h"

namespace slipway {
namespace {

using nlohmann::json;

// The quality KPIs in the order monitor/kpis.h lists them (a JSON object's
// keys come back sorted, which would scatter them).
constexpr std::array<std::string_view, 8> kQualityKpis = {
    "accuracy", "precision", "recall", "f1", "auc", "logloss", "rmse", "mae"};

// `object[key]`, or null when `object` is not an object or lacks the key.
const json& Field(const json& object, std::string_view key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

// Four significant digits; from 1000 up to 1e9 every integer digit and one
// decimal (a revenue sum of 1234.5 stays whole), trailing ".0" dropped.
std::string Number(double value) {
  char buffer[48];
  const double magnitude = std::fabs(value);
  if (std::isfinite(value) && magnitude >= 1000 && magnitude < 1e9) {
    std::snprintf(buffer, sizeof(buffer), "%.1f", value);
    std::string text = buffer;
    if (text.size() > 2 && text.compare(text.size() - 2, 2, ".0") == 0) {
      text.resize(text.size() - 2);
    }
    return text;
  }
  std::snprintf(buffer, sizeof(buffer), "%.4g", value);
  return buffer;
}

// A p-value: two significant digits once it is below 0.001 (only its order
// of magnitude matters there), four above.
std::string PValue(double value) {
  if (value >= 0.001 || value == 0) return Number(value);
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.2g", value);
  return buffer;
}

std::string Text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return value.dump();
  if (value.is_number()) return Number(value.get<double>());
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  return "-";
}

std::string NumberText(const json& value) {
  return value.is_number() ? Number(value.get<double>()) : "-";
}

bool Flag(const json& object, std::string_view key) {
  const json& value = Field(object, key);
  return value.is_boolean() && value.get<bool>();
}

std::string DriftText(const json& feature) {
  if (Flag(feature, "insufficient")) return "n/a (few rows)";
  if (Flag(feature, "drift")) return "DRIFT";
  if (Flag(feature, "warn")) return "warn";
  return "-";
}

std::vector<std::string> FeatureRow(const std::string& name,
                                    const json& feature) {
  std::string ks = NumberText(Field(feature, "ks"));
  const json& ks_pvalue = Field(feature, "ks_pvalue");
  if (ks_pvalue.is_number()) ks += " (" + PValue(ks_pvalue.get<double>()) + ")";
  // Numeric features carry the Wasserstein distance, categorical ones the
  // chi-square test's p-value.
  std::string distance = "-";
  const json& wasserstein = Field(feature, "wasserstein");
  const json& chi2_pvalue = Field(feature, "chi2_pvalue");
  if (wasserstein.is_number()) {
    distance = Number(wasserstein.get<double>());
  } else if (chi2_pvalue.is_number()) {
    distance = "p=" + PValue(chi2_pvalue.get<double>());
  }
  std::string missing = "-";
  const json& missing_fraction = Field(feature, "missing_fraction");
  if (missing_fraction.is_number()) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.1f",
                  100.0 * missing_fraction.get<double>());
    missing = buffer;
  }
  return {name,
          Text(Field(feature, "kind")),
          Text(Field(feature, "method")),
          NumberText(Field(feature, "score")),
          NumberText(Field(feature, "psi")),
          NumberText(Field(feature, "js")),
          ks,
          distance,
          missing,
          DriftText(feature)};
}

// "kpis: accuracy 0.812  auc 0.871  (240 labeled)" and one line per
// business value; "" when no feedback arrived in the window.
std::string FormatKpis(const json& kpis) {
  if (!kpis.is_object() || kpis.empty()) return "";
  std::string line = "kpis:";
  bool any = false;
  for (std::string_view name : kQualityKpis) {
    const json& value = Field(kpis, name);
    if (!value.is_number()) continue;
    line += any ? "  " : " ";
    line += std::string(name) + " " + Number(value.get<double>());
    any = true;
  }
  if (!any) line += " no quality metric is defined by these rows";
  line += "  (" + Text(Field(kpis, "rows")) + " labeled)\n";
  const json& business = Field(kpis, "kpis");
  if (business.is_object()) {
    for (const auto& [name, values] : business.items()) {
      line += "  " + name + ": sum " + NumberText(Field(values, "sum"));
      line += " mean " + NumberText(Field(values, "mean")) + "\n";
    }
  }
  return line;
}

std::string VersionText(const json& value) {
  return value.is_number_integer() ? "v" + value.dump() : "-";
}

// Appends "?name=value" (or "&name=value") to a query string; an empty
// value adds nothing.
void AddParam(const char* name, const std::string& value, std::string* params) {
  if (value.empty()) return;
  *params += params->empty() ? "?" : "&";
  *params += name;
  *params += '=';
  *params += PercentEncode(value);
}

}  // namespace

std::string FormatAlerts(const json& answer) {
  const json& alerts = Field(answer, "alerts");
  if (!alerts.is_array() || alerts.empty()) return "no alerts\n";
  std::vector<std::vector<std::string>> rows;
  for (const json& a : alerts) {
    const std::string comparison = Text(Field(a, "comparison"));
    std::string threshold = NumberText(Field(a, "threshold"));
    if (comparison == "below") threshold = "< " + threshold;
    if (comparison == "above") threshold = "> " + threshold;
    rows.push_back({Text(Field(a, "app")), Text(Field(a, "rule")),
                    Text(Field(a, "state")), Text(Field(a, "metric")),
                    NumberText(Field(a, "value")), threshold,
                    Text(Field(a, "since")), Text(Field(a, "fire"))});
  }
  return FormatTable(
      {"APP", "RULE", "STATE", "METRIC", "VALUE", "THRESHOLD", "SINCE", "FIRE"},
      rows);
}

std::string FormatMonitorWindow(const std::string& app, const json& window) {
  std::string out = app + " window " + Text(Field(window, "start")) + " .. " +
                    Text(Field(window, "end"));
  out += "  model " + VersionText(Field(window, "model_version"));
  out += "  " + Text(Field(window, "rows")) + " rows\n";
  std::vector<std::vector<std::string>> rows;
  const json& features = Field(window, "features");
  if (features.is_object()) {
    for (const auto& [name, feature] : features.items()) {
      rows.push_back(FeatureRow(name, feature));
    }
  }
  const json& prediction = Field(window, "prediction");
  if (prediction.is_object())
    rows.push_back(FeatureRow("prediction", prediction));
  out += FormatTable({"FEATURE", "KIND", "METHOD", "SCORE", "PSI", "JS",
                      "KS (p)", "WASSERSTEIN / CHI2 p", "MISSING %", "DRIFT"},
                     rows, "  ");
  out += FormatKpis(Field(window, "kpis"));
  return out;
}

std::string FormatMonitor(const std::string& app, const json& answer) {
  const json& windows = Field(answer, "windows");
  if (!windows.is_array() || windows.empty()) {
    return "no monitoring windows yet for app '" + app +
           "' (windows close every monitor.window once the app serves "
           "traffic)\n";
  }
  std::string out;
  for (size_t i = 0; i < windows.size(); ++i) {
    if (i > 0) out += "\n";
    out += FormatMonitorWindow(app, windows[i]);
  }
  return out;
}

int AlertsListCommand(const CliContext& ctx, const AlertsQuery& query) {
  std::string params;
  auto add = [&params](const char* name, const std::string& value) {
    AddParam(name, value, &params);
  };
  add("app", query.app);
  add("state", query.state);
  absl::StatusOr<json> answer = ctx.client->Get("/api/v1/alerts" + params);
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::cout << FormatAlerts(*answer);
  return 0;
}

int MonitorCommand(const CliContext& ctx, const MonitorQuery& query) {
  std::string params;
  auto add = [&params](const char* name, const std::string& value) {
    AddParam(name, value, &params);
  };
  add("from", query.from);
  add("to", query.to);
  if (query.windows > 0) {
    add("limit", std::to_string(query.windows));
  } else if (!ctx.json) {
    add("limit", "1");  // the table shows the latest window
  }
  absl::StatusOr<json> answer = ctx.client->Get(
      "/api/v1/apps/" + PercentEncode(query.app) + "/monitor" + params);
  if (!answer.ok()) return Fail(answer.status());
  if (ctx.json) {
    std::cout << answer->dump(2) << "\n";
    return 0;
  }
  std::cout << FormatMonitor(query.app, *answer);
  return 0;
}

}  // namespace slipway
