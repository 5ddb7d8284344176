#include "monitor/alerts.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "monitor/kpis.h"
#include "nlohmann/json.hpp"
#include "testing/fake_clock.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr int64_t kWindowMicros = 300'000'000;  // 5 minutes

AlertRuleSpec AccuracyRule(int64_t for_windows) {
  AlertRuleSpec rule;
  rule.name = "accuracy-low";
  rule.metric = "kpi.accuracy";
  rule.comparison = Comparison::kBelow;
  rule.threshold = 0.8;
  rule.for_windows = for_windows;
  rule.fire = TriggerEvent::kKpiDecay;
  return rule;
}

AlertEngine::Options ChurnOptions(int64_t for_windows) {
  AlertEngine::Options options;
  options.app = "churn";
  options.rules = {AccuracyRule(for_windows)};
  options.features = {"age", "plan"};
  return options;
}

// Drives an engine window by window on a fake clock.
class Windows {
 public:
  explicit Windows(AlertEngine engine) : engine_(std::move(engine)) {}

  // Closes a window with these metrics; returns "rule:state" per transition.
  std::vector<std::string> Close(const WindowMetrics& metrics) {
    clock_.Advance(kWindowMicros);
    last_transitions_ = engine_.Evaluate(metrics, clock_.NowMicros());
    std::vector<std::string> out;
    for (const Alert& alert : last_transitions_) {
      out.push_back(alert.rule + ":" +
                    std::string(AlertStateName(alert.state)));
    }
    return out;
  }
  std::vector<std::string> Accuracy(double value) {
    return Close({{"kpi.accuracy", value}});
  }

  AlertEngine& engine() { return engine_; }
  FakeClock& clock() { return clock_; }
  const std::vector<Alert>& last() const { return last_transitions_; }

 private:
  AlertEngine engine_;
  FakeClock clock_;
  std::vector<Alert> last_transitions_;
};

AlertEngine MakeEngine(AlertEngine::Options options) {
  auto engine = AlertEngine::Create(std::move(options));
  EXPECT_TRUE(engine.ok()) << engine.status();
  return *std::move(engine);
}

TEST(AlertEngineTest, FiresAfterForWindowsOnceAndResolvesOnce) {
  Windows w(MakeEngine(ChurnOptions(3)));
  const int64_t start = w.clock().NowMicros();
  EXPECT_THAT(w.Accuracy(0.7), ElementsAre());
  EXPECT_THAT(w.Accuracy(0.75), ElementsAre());
  ASSERT_EQ(w.engine().Active().size(), 1u);
  EXPECT_EQ(w.engine().Active()[0].state, AlertState::kPending);
  EXPECT_EQ(w.engine().Active()[0].since_micros, start + kWindowMicros);

  EXPECT_THAT(w.Accuracy(0.7), ElementsAre("accuracy-low:firing"));
  const Alert& fired = w.last()[0];
  EXPECT_EQ(fired.since_micros, start + 3 * kWindowMicros);
  EXPECT_EQ(fired.ToJson(),
            json({{"rule", "accuracy-low"},
                  {"app", "churn"},
                  {"state", "firing"},
                  {"metric", "kpi.accuracy"},
                  {"value", 0.7},
                  {"threshold", 0.8},
                  {"comparison", "below"},
                  {"since", FormatTimestamp(start + 3 * kWindowMicros)},
                  {"fire", "kpi_decay"}}));

  // Still firing: deduplicated.
  EXPECT_THAT(w.Accuracy(0.6), ElementsAre());
  EXPECT_THAT(w.Accuracy(0.5), ElementsAre());
  ASSERT_EQ(w.engine().Active().size(), 1u);
  EXPECT_EQ(w.engine().Active()[0].state, AlertState::kFiring);
  EXPECT_EQ(w.engine().Active()[0].value, 0.5);

  EXPECT_THAT(w.Accuracy(0.9), ElementsAre("accuracy-low:resolved"));
  EXPECT_EQ(w.last()[0].value, 0.9);
  EXPECT_EQ(w.last()[0].since_micros, start + 6 * kWindowMicros);
  EXPECT_THAT(w.Accuracy(0.95), ElementsAre());
  EXPECT_TRUE(w.engine().Active().empty());

  // A new run of bad windows is a new alert.
  EXPECT_THAT(w.Accuracy(0.1), ElementsAre());
  EXPECT_THAT(w.Accuracy(0.1), ElementsAre());
  EXPECT_THAT(w.Accuracy(0.1), ElementsAre("accuracy-low:firing"));
}

TEST(AlertEngineTest, AFlapResetsThePendingCount) {
  Windows w(MakeEngine(ChurnOptions(3)));
  EXPECT_THAT(w.Accuracy(0.7), ElementsAre());
  EXPECT_THAT(w.Accuracy(0.7), ElementsAre());
  EXPECT_THAT(w.Accuracy(0.85), ElementsAre());  // back to inactive
  EXPECT_TRUE(w.engine().Active().empty());
  EXPECT_THAT(w.Accuracy(0.7), ElementsAre());
  EXPECT_THAT(w.Accuracy(0.7), ElementsAre());
  EXPECT_THAT(w.Accuracy(0.8), ElementsAre());  // strict: 0.8 is not below
  EXPECT_THAT(w.Accuracy(0.7), ElementsAre());
  EXPECT_THAT(w.Accuracy(0.7), ElementsAre());
  EXPECT_THAT(w.Accuracy(0.7), ElementsAre("accuracy-low:firing"));
}

TEST(AlertEngineTest, AnAbsentMetricNeitherAdvancesNorResets) {
  Windows w(MakeEngine(ChurnOptions(3)));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(w.Accuracy(0.7), ElementsAre());
  EXPECT_THAT(w.Close({}), ElementsAre());
  EXPECT_THAT(w.Close({{"rows", 12}}), ElementsAre());
  EXPECT_THAT(w.Accuracy(0.7), ElementsAre());
  EXPECT_THAT(w.Accuracy(nan), ElementsAre());  // NaN counts as absent
  EXPECT_EQ(w.engine().Active().at(0).state, AlertState::kPending);
  EXPECT_THAT(w.Accuracy(0.7), ElementsAre("accuracy-low:firing"));
  // Firing, then no feedback for a while: still firing, nothing resolved.
  EXPECT_THAT(w.Close({}), ElementsAre());
  EXPECT_THAT(w.Close({}), ElementsAre());
  EXPECT_EQ(w.engine().Active().at(0).state, AlertState::kFiring);
  EXPECT_THAT(w.Accuracy(0.9), ElementsAre("accuracy-low:resolved"));
}

TEST(AlertEngineTest, RestoresMidPendingFromJson) {
  Windows before(MakeEngine(ChurnOptions(3)));
  const int64_t start = before.clock().NowMicros();
  EXPECT_THAT(before.Accuracy(0.7), ElementsAre());
  EXPECT_THAT(before.Accuracy(0.6), ElementsAre());
  // What the caller persists: the state as text.
  const std::string saved = before.engine().SaveState().dump();

  Windows after(MakeEngine(ChurnOptions(3)));
  after.clock().Set(before.clock().NowMicros());
  ASSERT_TRUE(after.engine().RestoreState(json::parse(saved)).ok());
  ASSERT_EQ(after.engine().Active().size(), 1u);
  const Alert pending = after.engine().Active()[0];
  EXPECT_EQ(pending.state, AlertState::kPending);
  EXPECT_EQ(pending.value, 0.6);
  EXPECT_EQ(pending.since_micros, start + kWindowMicros);

  EXPECT_THAT(after.Accuracy(0.7), ElementsAre("accuracy-low:firing"));
  // And a restored firing alert is not reported again.
  Windows again(MakeEngine(ChurnOptions(3)));
  ASSERT_TRUE(
      again.engine().RestoreState(after.engine().SaveState()).ok());
  EXPECT_THAT(again.Accuracy(0.7), ElementsAre());
  EXPECT_THAT(again.Accuracy(0.9), ElementsAre("accuracy-low:resolved"));
}

TEST(AlertEngineTest, RestoreRefusesAnotherStateAndDropsUnknownRules) {
  AlertEngine engine = MakeEngine(ChurnOptions(3));
  json other_app = engine.SaveState();
  other_app["app"] = "fraud";
  EXPECT_THAT(engine.RestoreState(other_app).message(),
              HasSubstr("the state is app \"fraud\"'s"));
  EXPECT_EQ(engine.RestoreState(json{{"version", 2}}).code(),
            absl::StatusCode::kInvalidArgument);
  json bad = engine.SaveState();
  bad["rules"] = json::array(
      {json{{"rule", "accuracy-low"}, {"state", "sleeping"}}});
  EXPECT_THAT(engine.RestoreState(bad).message(), HasSubstr("rules[0]"));

  // A rule removed from the spec since the state was saved is dropped.
  json removed = engine.SaveState();
  removed["rules"] = json::array({json{{"rule", "latency-high"},
                                        {"state", "firing"},
                                        {"windows", 4},
                                        {"since", 1},
                                        {"value", 80.0}}});
  ASSERT_TRUE(engine.RestoreState(removed).ok());
  EXPECT_TRUE(engine.Active().empty());
}

TEST(AlertEngineTest, DriftRulesNameTheFeature) {
  Windows w(MakeEngine(ChurnOptions(3)));
  FeatureDrift age;
  age.name = "age";
  age.score = 0.31;
  age.drift = true;
  FeatureDrift plan;
  plan.name = "plan";
  plan.score = 0.02;
  FeatureDrift thin;  // too few values to decide: no drift flag
  thin.name = "income";
  thin.score = 0.9;
  thin.insufficient = true;
  WindowMetrics metrics;
  AddDriftMetrics({age, plan, thin}, &metrics);
  EXPECT_EQ(metrics, (WindowMetrics{{"drift.age", 0.31},
                                    {"drift.age.drift", 1},
                                    {"drift.plan", 0.02},
                                    {"drift.plan.drift", 0},
                                    {"drift.income", 0.9}}));

  EXPECT_THAT(w.Close(metrics), ElementsAre("drift:age:firing"));
  EXPECT_EQ(w.last()[0].ToJson()["fire"], "drift");
  EXPECT_EQ(w.last()[0].ToJson()["metric"], "drift.age.drift");

  // A window too small to decide keeps the alert firing.
  FeatureDrift undecided = age;
  undecided.insufficient = true;
  undecided.drift = false;
  metrics.clear();
  AddDriftMetrics({undecided}, &metrics);
  EXPECT_THAT(w.Close(metrics), ElementsAre());
  age.drift = false;
  metrics.clear();
  AddDriftMetrics({age}, &metrics);
  EXPECT_THAT(w.Close(metrics), ElementsAre("drift:age:resolved"));
}

TEST(AlertEngineTest, RulesWatchKpisFromComputeKpis) {
  AlertEngine::Options options = ChurnOptions(1);
  AlertRuleSpec revenue;
  revenue.name = "revenue-low";
  revenue.metric = "kpi.revenue.mean";
  revenue.comparison = Comparison::kBelow;
  revenue.threshold = 10;
  options.rules.push_back(revenue);
  Windows w(MakeEngine(std::move(options)));

  const Signature signature(Task::kBinaryClassification,
                            {{"x", DataType::kFloat64, {}}}, "churned",
                            DataType::kInt64, {"0", "1"});
  auto kpis = ComputeKpis({{{0.9f}, "0", {{"revenue", 4}}},
                           {{0.1f}, "0", {{"revenue", 8}}}},
                          signature);
  ASSERT_TRUE(kpis.ok()) << kpis.status();
  WindowMetrics metrics;
  AddKpiMetrics(*kpis, &metrics);
  EXPECT_EQ(metrics.at("kpi.accuracy"), 0.5);
  EXPECT_EQ(metrics.at("kpi.revenue.sum"), 12);
  EXPECT_EQ(metrics.at("kpi.revenue.mean"), 6);
  EXPECT_FALSE(metrics.contains("kpi.auc"));  // one class
  EXPECT_THAT(w.Close(metrics),
              ElementsAre("accuracy-low:firing", "revenue-low:firing"));
  EXPECT_EQ(w.last()[1].ToJson()["fire"], json());
}

TEST(AlertEngineTest, CreateRefusesBadRules) {
  AlertEngine::Options twice = ChurnOptions(1);
  twice.rules.push_back(twice.rules[0]);
  EXPECT_THAT(AlertEngine::Create(twice).status().message(),
              HasSubstr("alert rule 'accuracy-low' of app 'churn' is defined "
                        "twice"));

  AlertEngine::Options clash = ChurnOptions(1);
  clash.rules[0].name = "drift:age";
  EXPECT_THAT(AlertEngine::Create(clash).status().message(),
              HasSubstr("implicit drift rule"));

  AlertEngine::Options zero = ChurnOptions(0);
  EXPECT_THAT(AlertEngine::Create(zero).status().message(),
              HasSubstr("'for' is 0"));

  AlertEngine::Options unnamed = ChurnOptions(1);
  unnamed.rules[0].name.clear();
  EXPECT_THAT(AlertEngine::Create(unnamed).status().message(),
              HasSubstr("has no name"));

  AlertEngine::Options infinite = ChurnOptions(1);
  infinite.rules[0].threshold = std::numeric_limits<double>::infinity();
  EXPECT_EQ(AlertEngine::Create(infinite).status().code(),
            absl::StatusCode::kInvalidArgument);

  AlertEngine::Options drift = ChurnOptions(1);
  drift.drift_for_windows = 0;
  EXPECT_THAT(AlertEngine::Create(drift).status().message(),
              HasSubstr("drift_for_windows is 0"));
}

TEST(CheckRuleMetricTest, KnownFamiliesOnly) {
  const std::vector<std::string> features = {"age", "plan"};
  for (const char* metric :
       {"kpi.accuracy", "kpi.precision", "kpi.recall", "kpi.f1", "kpi.auc",
        "kpi.logloss", "kpi.rmse", "kpi.mae", "kpi.revenue.sum",
        "kpi.revenue.mean", "drift.age", "drift.plan", "drift.age.drift",
        "drift.prediction", "drift.prediction.drift", "latency.p50_ms",
        "latency.p99_ms", "rows"}) {
    EXPECT_TRUE(CheckRuleMetric(metric, features).ok()) << metric;
  }
  for (const char* metric :
       {"kpi.acuracy", "kpi.sum", "kpi..mean", "drift.height", "drift.",
        "latency.p95_ms", "accuracy", ""}) {
    const absl::Status status = CheckRuleMetric(metric, features);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << metric;
  }
  const absl::Status typo = CheckRuleMetric("kpi.acuracy", features);
  EXPECT_THAT(typo.message(),
              HasSubstr("alert rule metric 'kpi.acuracy' does not exist; "
                        "valid metrics: kpi.accuracy, "));
  EXPECT_THAT(typo.message(), HasSubstr("drift.age, drift.plan, "
                                        "drift.prediction"));
  EXPECT_THAT(typo.message(), HasSubstr("kpi.<name>.sum"));
}

}  // namespace
}  // namespace slipway
