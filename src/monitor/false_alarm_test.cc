// The monitoring acceptance at the library level: undrifted traffic raises
// no drift alert with the defaults, and a shifted feature raises one alert
// that names it, through the path serving and the monitor tick take:
// WindowProfiler -> CompareProfiles -> AddDriftMetrics -> AlertEngine.
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/signature.h"
#include "monitor/alerts.h"
#include "monitor/window_profiler.h"
#include "stats/drift.h"
#include "stats/profile.h"
#include "testing/fake_clock.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;

constexpr size_t kBaselineRows = 5000;
constexpr size_t kWindowRows = 500;
constexpr int kWindows = 10;
constexpr size_t kBatch = 25;  // rows per Observe, as a batching server
constexpr int64_t kWindowMicros = 300'000'000;

// Five numeric features of different shapes (normal, skewed, uniform,
// discrete, partly missing) and two categorical ones (6 categories, and 40
// with frequencies proportional to 1/i), all as a model's request encodes
// them.
const std::vector<std::string> kRegions = [] {
  std::vector<std::string> regions;
  for (int i = 0; i < 40; ++i) {
    std::string region = "r";
    region += std::to_string(i);
    regions.push_back(region);
  }
  return regions;
}();

Signature SyntheticSignature() {
  std::vector<FeatureSpec> features = {
      {"age", DataType::kFloat64, {}},
      {"income", DataType::kFloat64, {}},
      {"tenure", DataType::kFloat64, {}},
      {"visits", DataType::kInt64, {}},
      {"score", DataType::kFloat64, {}},
      {"plan", DataType::kString,
       {"basic", "plus", "pro", "team", "edu", "legacy"}},
      {"region", DataType::kString, kRegions},
  };
  return Signature(Task::kBinaryClassification, std::move(features), "churned",
                   DataType::kInt64, {"0", "1"});
}

constexpr size_t kFeatures = 7;

// Encoded rows of the synthetic population; `age_shift` moves age's mean.
class Traffic {
 public:
  explicit Traffic(uint32_t seed) : rng_(seed) {}

  // Appends `n` rows and their predictions.
  void Rows(size_t n, float age_shift, std::vector<float>* rows,
            std::vector<float>* predictions) {
    for (size_t i = 0; i < n; ++i) {
      const float age = static_cast<float>(age_(rng_)) + age_shift;
      const float income = static_cast<float>(income_(rng_));
      const float tenure = static_cast<float>(tenure_(rng_));
      const float visits = static_cast<float>(visits_(rng_));
      const float score = missing_(rng_) < 0.05
                              ? std::numeric_limits<float>::quiet_NaN()
                              : static_cast<float>(score_(rng_));
      const float plan = static_cast<float>(plan_(rng_));
      const float region = static_cast<float>(region_(rng_));
      rows->insert(rows->end(),
                   {age, income, tenure, visits, score, plan, region});
      const double z = 0.04 * (age - 40) - 0.02 * tenure + 0.3 * visits - 1;
      predictions->push_back(static_cast<float>(1 / (1 + std::exp(-z))));
    }
  }

 private:
  static std::vector<double> RegionWeights() {
    std::vector<double> w;
    for (int i = 1; i <= 40; ++i) w.push_back(1.0 / i);
    return w;
  }

  std::mt19937_64 rng_;
  std::normal_distribution<double> age_{40, 12};
  std::lognormal_distribution<double> income_{10, 0.5};
  std::uniform_real_distribution<double> tenure_{0, 72};
  std::poisson_distribution<int> visits_{3};
  std::normal_distribution<double> score_{0, 1};
  std::uniform_real_distribution<double> missing_{0, 1};
  std::discrete_distribution<int> plan_{40, 25, 15, 10, 7, 3};
  std::discrete_distribution<int> region_ = [] {
    const std::vector<double> w = RegionWeights();
    return std::discrete_distribution<int>(w.begin(), w.end());
  }();
};

// The training baseline of `rows`, as train/baseline.h profiles it:
// numbers by value, categories by their text.
ProfileSet BaselineOf(const Signature& signature,
                      const std::vector<float>& rows,
                      const std::vector<float>& predictions) {
  ProfileSet baseline;
  const size_t n = predictions.size();
  baseline.rows = static_cast<int64_t>(n);
  for (size_t f = 0; f < kFeatures; ++f) {
    const FeatureSpec& spec = signature.features()[f];
    if (spec.is_categorical()) {
      std::vector<std::string_view> texts;
      for (size_t r = 0; r < n; ++r) {
        texts.push_back(
            spec.categories[static_cast<size_t>(rows[r * kFeatures + f])]);
      }
      baseline.features.push_back(
          {spec.name, CategoricalProfile::Baseline(texts)});
    } else {
      std::vector<double> values;
      int64_t missing = 0;
      for (size_t r = 0; r < n; ++r) {
        const float v = rows[r * kFeatures + f];
        if (std::isnan(v)) {
          ++missing;
        } else {
          values.push_back(v);
        }
      }
      baseline.features.push_back(
          {spec.name, NumericProfile::Baseline(values, missing)});
    }
  }
  const std::vector<double> p(predictions.begin(), predictions.end());
  baseline.prediction = FeatureProfile{"prediction", NumericProfile::Baseline(p)};
  return baseline;
}

// One window of traffic through the serving and monitoring path; returns
// "rule:state" per alert transition.
std::vector<std::string> CloseWindow(Traffic& traffic, float age_shift,
                                     const ProfileSet& baseline,
                                     WindowProfiler& profiler,
                                     AlertEngine& engine, FakeClock& clock) {
  std::vector<float> rows;
  std::vector<float> predictions;
  traffic.Rows(kWindowRows, age_shift, &rows, &predictions);
  for (size_t r = 0; r < kWindowRows; r += kBatch) {
    profiler.Observe(rows.data() + r * kFeatures, kBatch,
                     predictions.data() + r, 1, nullptr);
  }
  const ProfileSet window = profiler.Collect();
  EXPECT_EQ(window.rows, static_cast<int64_t>(kWindowRows));
  auto drift = CompareProfiles(baseline, window, DriftPolicy());
  EXPECT_TRUE(drift.ok()) << drift.status();
  if (!drift.ok()) return {"error"};
  WindowMetrics metrics = {{"rows", static_cast<double>(window.rows)}};
  AddDriftMetrics(*drift, &metrics);
  clock.Advance(kWindowMicros);
  std::vector<std::string> transitions;
  for (const Alert& alert : engine.Evaluate(metrics, clock.NowMicros())) {
    transitions.push_back(alert.rule + ":" +
                          std::string(AlertStateName(alert.state)));
  }
  return transitions;
}

TEST(FalseAlarmTest, UndriftedWindowsRaiseNoAlertAndAShiftNamesItsFeature) {
  const Signature signature = SyntheticSignature();
  std::vector<std::string> feature_names;
  for (const FeatureSpec& spec : signature.features()) {
    feature_names.push_back(spec.name);
  }
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    Traffic traffic(seed);
    std::vector<float> rows;
    std::vector<float> predictions;
    traffic.Rows(kBaselineRows, 0, &rows, &predictions);
    const ProfileSet baseline = BaselineOf(signature, rows, predictions);

    auto profiler = WindowProfiler::Create(baseline, signature);
    ASSERT_TRUE(profiler.ok()) << profiler.status();
    AlertEngine::Options options;
    options.app = "synthetic";
    options.features = feature_names;
    auto engine = AlertEngine::Create(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    FakeClock clock;

    for (int w = 0; w < kWindows; ++w) {
      SCOPED_TRACE(::testing::Message() << "undrifted window " << w);
      EXPECT_THAT(
          CloseWindow(traffic, 0, baseline, **profiler, *engine, clock),
          ElementsAre());
    }
    // Age moves by half a standard deviation: only its rule fires (the
    // prediction, which depends on age, has no implicit rule).
    EXPECT_THAT(CloseWindow(traffic, 6, baseline, **profiler, *engine, clock),
                ElementsAre("drift:age:firing"));
    EXPECT_THAT(CloseWindow(traffic, 6, baseline, **profiler, *engine, clock),
                ElementsAre());
    // Traffic back to normal: the alert resolves.
    EXPECT_THAT(CloseWindow(traffic, 0, baseline, **profiler, *engine, clock),
                ElementsAre("drift:age:resolved"));
  }
}

}  // namespace
}  // namespace slipway
