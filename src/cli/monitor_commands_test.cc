#include "cli/monitor_commands.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// The lines of `text`, without their newlines.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// A window as GET /api/v1/apps/{app}/monitor answers it: a numeric feature
// that drifted, a categorical one with its chi-square p-value, one with too
// few rows to compare, the prediction, and KPIs with a business value.
json ChurnWindow() {
  return json::parse(R"({
    "start": "2026-11-27T12:00:00Z", "end": "2026-11-27T12:05:00Z",
    "model_version": 3, "rows": 512,
    "features": {
      "income": {"name": "income", "kind": "numeric", "method": "wasserstein",
                 "score": 0.8123456, "psi": 0.41, "js": 0.1234567,
                 "ks": 0.31, "ks_pvalue": 1.234e-9, "wasserstein": 0.8123456,
                 "missing_fraction": 0.021, "insufficient": false,
                 "drift": true, "warn": true},
      "region": {"name": "region", "kind": "categorical", "method": "psi",
                 "score": 0.12, "psi": 0.12, "js": 0.02,
                 "chi2_pvalue": 0.0431, "missing_fraction": 0,
                 "insufficient": false, "drift": false, "warn": true},
      "tenure": {"name": "tenure", "kind": "numeric", "method": "wasserstein",
                 "missing_fraction": 0, "insufficient": true,
                 "drift": false, "warn": false}
    },
    "prediction": {"name": "prediction", "kind": "numeric", "method": "ks",
                   "score": 0.05, "psi": 0.01, "js": 0.004, "ks": 0.05,
                   "ks_pvalue": 0.62, "wasserstein": 0.002,
                   "missing_fraction": 0, "insufficient": false,
                   "drift": false, "warn": false},
    "kpis": {"rows": 240, "accuracy": 0.8125, "auc": 0.87123, "f1": 0.7,
             "logloss": 0.41,
             "kpis": {"revenue": {"sum": 1234.5, "mean": 12.3456}}}
  })");
}

TEST(FormatMonitorWindowTest, HeaderFeaturesPredictionAndKpis) {
  const std::vector<std::string> lines =
      Lines(FormatMonitorWindow("churn", ChurnWindow()));
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_EQ(lines[0],
            "churn window 2026-11-27T12:00:00Z .. 2026-11-27T12:05:00Z  "
            "model v3  512 rows");
  EXPECT_THAT(lines[1], HasSubstr("FEATURE"));
  EXPECT_THAT(lines[1], HasSubstr("KS (p)"));
  EXPECT_THAT(lines[1], HasSubstr("WASSERSTEIN / CHI2 p"));
  EXPECT_THAT(lines[1], HasSubstr("MISSING %"));

  // Features in name order, the prediction last.
  EXPECT_THAT(lines[2], ::testing::StartsWith("  income "));
  EXPECT_THAT(lines[3], ::testing::StartsWith("  region "));
  EXPECT_THAT(lines[4], ::testing::StartsWith("  tenure "));
  EXPECT_THAT(lines[5], ::testing::StartsWith("  prediction "));

  // Four significant digits; a p-value below 0.001 in two.
  EXPECT_THAT(lines[2], HasSubstr("0.8123"));
  EXPECT_THAT(lines[2], HasSubstr("0.1235"));
  EXPECT_THAT(lines[2], HasSubstr("0.31 (1.2e-09)"));
  EXPECT_THAT(lines[2], HasSubstr(" 2.1 "));
  EXPECT_THAT(lines[2], ::testing::EndsWith("DRIFT"));
  // A categorical feature: no KS, the chi-square p-value in the last
  // distance column.
  EXPECT_THAT(lines[3], HasSubstr("categorical"));
  EXPECT_THAT(lines[3], HasSubstr("p=0.0431"));
  EXPECT_THAT(lines[3], ::testing::EndsWith("warn"));
  // Too few rows: no scores, no verdict.
  EXPECT_THAT(lines[4], ::testing::EndsWith("n/a (few rows)"));
  EXPECT_THAT(lines[4], Not(HasSubstr("DRIFT")));
  EXPECT_THAT(lines[5], HasSubstr("0.05 (0.62)"));
  EXPECT_THAT(lines[5], ::testing::EndsWith(" -"));

  // Columns line up: every row's DRIFT cell starts where the header's does.
  const size_t drift_column = lines[1].find("DRIFT");
  for (size_t i = 2; i <= 5; ++i) {
    EXPECT_NE(lines[i].substr(drift_column, 1), " ") << lines[i];
    EXPECT_EQ(lines[i][drift_column - 1], ' ') << lines[i];
  }

  // Quality KPIs in kpis.h's order, then the business values.
  EXPECT_EQ(lines[6],
            "kpis: accuracy 0.8125  f1 0.7  auc 0.8712  logloss 0.41  "
            "(240 labeled)");
  EXPECT_EQ(lines[7], "  revenue: sum 1234.5 mean 12.35");
}

TEST(FormatMonitorWindowTest, NoFeedbackNoPredictionNoKpiBlock) {
  json window = ChurnWindow();
  window["kpis"] = json::object();
  window.erase("prediction");
  const std::string text = FormatMonitorWindow("churn", window);
  EXPECT_THAT(text, Not(HasSubstr("kpis")));
  EXPECT_THAT(text, Not(HasSubstr("prediction")));
  EXPECT_EQ(Lines(text).size(), 5u);
}

TEST(FormatMonitorWindowTest, FeedbackWithoutDefinableMetricsSaysSo) {
  json window = ChurnWindow();
  window["kpis"] = {{"rows", 3}};
  EXPECT_THAT(FormatMonitorWindow("churn", window),
              HasSubstr("kpis: no quality metric is defined by these rows  "
                        "(3 labeled)\n"));
}

TEST(FormatMonitorTest, EveryWindowOldestFirst) {
  json older = ChurnWindow();
  older["start"] = "2026-11-27T11:55:00Z";
  older["end"] = "2026-11-27T12:00:00Z";
  older["model_version"] = 2;
  const json answer = {{"app", "churn"},
                       {"windows", json::array({older, ChurnWindow()})}};
  const std::string text = FormatMonitor("churn", answer);
  const size_t first = text.find("churn window 2026-11-27T11:55:00Z");
  const size_t second = text.find("churn window 2026-11-27T12:00:00Z");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  EXPECT_LT(first, second);
  EXPECT_THAT(text, HasSubstr("model v2"));
  EXPECT_THAT(text, HasSubstr("(240 labeled)\n  revenue: sum 1234.5 mean "
                              "12.35\n\nchurn window"));
}

TEST(FormatMonitorTest, NoWindowsExplainsWhenTheyAppear) {
  EXPECT_EQ(
      FormatMonitor("churn", {{"app", "churn"}, {"windows", json::array()}}),
      "no monitoring windows yet for app 'churn' (windows close every "
      "monitor.window once the app serves traffic)\n");
}

TEST(FormatAlertsTest, TableWithComparisonAndNullFire) {
  const json answer = json::parse(R"({"alerts": [
    {"rule": "acc-low", "app": "churn", "state": "firing",
     "metric": "kpi.accuracy", "value": 0.61234, "threshold": 0.7,
     "comparison": "below", "since": "2026-11-27T12:05:00Z",
     "fire": "kpi_decay", "updated_at": "2026-11-27T12:10:00Z"},
    {"rule": "drift:income", "app": "churn", "state": "pending",
     "metric": "drift.income.drift", "value": 1, "threshold": 0.5,
     "comparison": "above", "since": "2026-11-27T12:10:00Z",
     "fire": null, "updated_at": "2026-11-27T12:10:00Z"}
  ]})");
  const std::vector<std::string> lines = Lines(FormatAlerts(answer));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], ::testing::StartsWith("APP"));
  for (const char* column :
       {"RULE", "STATE", "METRIC", "VALUE", "THRESHOLD", "SINCE", "FIRE"}) {
    EXPECT_THAT(lines[0], HasSubstr(column));
  }
  EXPECT_THAT(lines[1], HasSubstr("acc-low"));
  EXPECT_THAT(lines[1], HasSubstr("0.6123"));
  EXPECT_THAT(lines[1], HasSubstr("< 0.7"));
  EXPECT_THAT(lines[1], ::testing::EndsWith("kpi_decay"));
  EXPECT_THAT(lines[2], HasSubstr("drift:income"));
  EXPECT_THAT(lines[2], HasSubstr("> 0.5"));
  EXPECT_THAT(lines[2], ::testing::EndsWith(" -"));
  // FIRE is the last column: a null fire lines up under its header.
  EXPECT_EQ(lines[2].size() - 1, lines[0].find("FIRE"));
}

TEST(FormatAlertsTest, NoAlerts) {
  EXPECT_EQ(FormatAlerts({{"alerts", json::array()}}), "no alerts\n");
}

}  // namespace
}  // namespace slipway
