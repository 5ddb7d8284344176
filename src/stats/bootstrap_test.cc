#include "stats/bootstrap.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "stats/metrics.h"
#include "testing/python_reference.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;
using V = std::vector<double>;

// Reference intervals from SciPy 1.10 / NumPy 1.24 / scikit-learn 1.2 under
// /usr/bin/python3, computed while the test runs on the very rows the C++
// code sees: scipy.stats.bootstrap paired for ComparePaired and unpaired
// (each sample resampled on its own) for CompareIndependent. Per-row losses are
// recomputed in Python from the labels and scores, so the reference checks
// those too. Each answer is [lower, upper, gain, probability_better].
constexpr char kReferenceScript[] = R"PY(
import json, sys
import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

def gain_statistic(metric):
    # Signed so that > 0 means the challenger (b) is better.
    if metric == "accuracy":
        return lambda a, b, axis=-1: b.mean(axis=axis) - a.mean(axis=axis)
    if metric == "logloss":
        return lambda a, b, axis=-1: a.mean(axis=axis) - b.mean(axis=axis)
    if metric == "rmse":
        return lambda a, b, axis=-1: (np.sqrt(a.mean(axis=axis)) -
                                      np.sqrt(b.mean(axis=axis)))
    raise ValueError(metric)

def per_row(metric, y, s):
    if metric == "accuracy":
        return ((s > 0.5) == (y == 1)).astype(float)
    if metric == "logloss":
        p = np.clip(np.where(y == 1, s, 1 - s), 1e-15, 1 - 1e-15)
        return -np.log(p)
    if metric == "rmse":
        return (y - s) ** 2
    raise ValueError(metric)

def answer(r):
    s1 = np.asarray(r["champion"]); s2 = np.asarray(r["challenger"])
    if r["op"] == "scipy_independent":
        a = per_row(r["metric"], np.asarray(r["champion_labels"]), s1)
        b = per_row(r["metric"], np.asarray(r["challenger_labels"]), s2)
        stat = gain_statistic(r["metric"])
        res = stats.bootstrap((a, b), stat, paired=False, vectorized=True,
                              n_resamples=r["resamples"], batch=1000,
                              method="percentile", confidence_level=0.95,
                              random_state=np.random.default_rng(r["seed"]))
        ci = res.confidence_interval
        return [float(ci.low), float(ci.high), float(stat(a, b)), -1.0]
    y = np.asarray(r["labels"])
    if r["op"] == "scipy":
        a = per_row(r["metric"], y, s1); b = per_row(r["metric"], y, s2)
        stat = gain_statistic(r["metric"])
        res = stats.bootstrap((a, b), stat, paired=True, vectorized=True,
                              n_resamples=r["resamples"], batch=1000,
                              method="percentile", confidence_level=0.95,
                              random_state=np.random.default_rng(r["seed"]))
        ci = res.confidence_interval
        return [float(ci.low), float(ci.high), float(stat(a, b)), -1.0]
    if r["op"] == "auc":
        rng = np.random.default_rng(r["seed"])
        n = len(y); gains = []
        for _ in range(r["resamples"]):
            i = rng.integers(0, n, n)
            if y[i].min() == y[i].max():
                continue
            gains.append(roc_auc_score(y[i], s2[i]) - roc_auc_score(y[i], s1[i]))
        gains = np.asarray(gains)
        return [float(np.percentile(gains, 2.5)), float(np.percentile(gains, 97.5)),
                float(roc_auc_score(y, s2) - roc_auc_score(y, s1)),
                float(np.mean(gains > 0))]
    raise ValueError(r["op"])

with open(sys.argv[1]) as f:
    requests = json.load(f)
with open(sys.argv[2], "w") as f:
    json.dump([answer(r) for r in requests], f)
)PY";

// Runs every request through kReferenceScript and returns the answers in
// order. Fails the test (and returns nothing) when Python does not answer.
std::vector<std::vector<double>> PythonReference(
    const nlohmann::json& requests) {
  absl::StatusOr<std::vector<std::vector<double>>> answers =
      RunPythonReference(kReferenceScript, requests, 240000);
  if (!answers.ok()) {
    ADD_FAILURE() << answers.status().message();
    return {};
  }
  return *std::move(answers);
}

// Labelled rows scored by two models.
struct Dataset {
  std::vector<double> labels;
  std::vector<double> champion;
  std::vector<double> challenger;
};

double Sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

// y ~ Bernoulli(sigmoid(2z)); each model sees z through its own noise, so
// the model with less noise is the better one on every metric.
Dataset Classification(uint64_t seed, int rows, double champion_noise,
                       double challenger_noise) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform;
  Dataset d;
  for (int i = 0; i < rows; ++i) {
    const double z = normal(rng);
    d.labels.push_back(uniform(rng) < Sigmoid(2 * z) ? 1.0 : 0.0);
    d.champion.push_back(Sigmoid(2 * (z + champion_noise * normal(rng))));
    d.challenger.push_back(Sigmoid(2 * (z + challenger_noise * normal(rng))));
  }
  return d;
}

// y = x + N(0, 0.5); each model predicts x with its own noise.
Dataset Regression(uint64_t seed, int rows, double champion_noise,
                   double challenger_noise) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Dataset d;
  for (int i = 0; i < rows; ++i) {
    const double x = normal(rng);
    d.labels.push_back(x + 0.5 * normal(rng));
    d.champion.push_back(x + champion_noise * normal(rng));
    d.challenger.push_back(x + challenger_noise * normal(rng));
  }
  return d;
}

absl::StatusOr<MetricComparison> Compare(std::string_view metric,
                                         const Dataset& d,
                                         const BootstrapOptions& options = {}) {
  return ComparePaired(metric, d.labels, d.champion, d.challenger, options);
}

nlohmann::json Request(std::string_view op, std::string_view metric,
                       const Dataset& d, int resamples, int seed) {
  return {{"op", op},
          {"metric", metric},
          {"labels", d.labels},
          {"champion", d.champion},
          {"challenger", d.challenger},
          {"resamples", resamples},
          {"seed", seed}};
}

// ---------------------------------------------------------------------------

TEST(EvaluationMetricTest, NamesAndDirections) {
  for (std::string_view name :
       {"auc", "logloss", "accuracy", "rmse", "mae", "r2"}) {
    absl::StatusOr<EvaluationMetric> metric = ParseEvaluationMetric(name);
    ASSERT_TRUE(metric.ok()) << metric.status();
    EXPECT_EQ(EvaluationMetricName(*metric), name);
  }
  EXPECT_TRUE(HigherIsBetter(EvaluationMetric::kAuc));
  EXPECT_TRUE(HigherIsBetter(EvaluationMetric::kAccuracy));
  EXPECT_TRUE(HigherIsBetter(EvaluationMetric::kR2));
  EXPECT_FALSE(HigherIsBetter(EvaluationMetric::kLogLoss));
  EXPECT_FALSE(HigherIsBetter(EvaluationMetric::kRmse));
  EXPECT_FALSE(HigherIsBetter(EvaluationMetric::kMae));
}

// The point estimates are stats/metrics.h's metric of each model: the
// weighted kernels with every weight 1 reproduce the unweighted metrics.
TEST(ComparePairedTest, PointEstimatesAreTheModuleMetrics) {
  // Scores rounded to two decimals so AUC has many ties.
  Dataset c = Classification(7, 3000, 1.0, 0.6);
  for (double& s : c.champion) s = std::round(s * 100) / 100;
  const Dataset r = Regression(8, 3000, 0.8, 0.4);
  struct Case {
    std::string_view metric;
    const Dataset* data;
    absl::StatusOr<double> (*fn)(std::span<const double>,
                                 std::span<const double>);
  };
  const Case cases[] = {
      {"auc", &c, &BinaryAuc},     {"logloss", &c, &LogLoss},
      {"accuracy", &c, &Accuracy}, {"rmse", &r, &Rmse},
      {"mae", &r, &Mae},           {"r2", &r, &R2},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.metric);
    absl::StatusOr<MetricComparison> result = Compare(k.metric, *k.data);
    ASSERT_TRUE(result.ok()) << result.status();
    const double champion = *k.fn(k.data->labels, k.data->champion);
    const double challenger = *k.fn(k.data->labels, k.data->challenger);
    EXPECT_NEAR(result->champion, champion, 1e-12);
    EXPECT_NEAR(result->challenger, challenger, 1e-12);
    EXPECT_EQ(result->metric, k.metric);
    EXPECT_TRUE(result->paired);
    EXPECT_EQ(result->rows, 3000);
    EXPECT_EQ(result->champion_rows, 3000);
    EXPECT_EQ(result->challenger_rows, 3000);
    EXPECT_DOUBLE_EQ(result->difference, result->challenger - result->champion);
    const bool higher = HigherIsBetter(*ParseEvaluationMetric(k.metric));
    EXPECT_DOUBLE_EQ(result->gain,
                     higher ? result->difference : -result->difference);
    // The challenger has less noise: better on every metric.
    EXPECT_GT(result->gain, 0);
    EXPECT_LE(result->lower, result->gain);
    EXPECT_GE(result->upper, result->gain);
    EXPECT_EQ(result->resamples, 2000);
    EXPECT_DOUBLE_EQ(result->confidence, 0.95);
  }
}

// Against scipy.stats.bootstrap(paired=True, method='percentile') with 20,000
// resamples on both sides. Each bound is a 2.5% or 97.5% quantile of B
// resampled gains; its Monte Carlo standard deviation is about
// sqrt(q (1 - q) / B) / density, which for a roughly normal gain of standard
// deviation sd is sqrt(0.025 * 0.975 / 20000) / (0.058 / sd) = 0.019 sd =
// 0.0048 of the interval's width (3.92 sd) at B = 20,000. The difference of
// two independent estimates has sd 0.0068 width, so 0.1 width is about 15
// sd: never a false failure, while an unpaired or mis-signed interval, or a
// wrong quantile, moves a bound by far more than that.
TEST(ComparePairedTest, MatchesScipyPairedPercentileBootstrap) {
  const Dataset c = Classification(11, 1000, 1.0, 0.6);
  const Dataset r = Regression(12, 1000, 0.8, 0.6);
  const std::vector<std::pair<std::string_view, const Dataset*>> cases = {
      {"accuracy", &c}, {"logloss", &c}, {"rmse", &r}};
  nlohmann::json requests = nlohmann::json::array();
  for (const auto& [metric, data] : cases) {
    requests.push_back(Request("scipy", metric, *data, 20000, 5));
  }
  const std::vector<std::vector<double>> answers = PythonReference(requests);
  ASSERT_EQ(answers.size(), cases.size());
  BootstrapOptions options;
  options.resamples = 20000;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].first);
    absl::StatusOr<MetricComparison> result =
        Compare(cases[i].first, *cases[i].second, options);
    ASSERT_TRUE(result.ok()) << result.status();
    const double low = answers[i][0];
    const double high = answers[i][1];
    const double width = high - low;
    EXPECT_NEAR(result->gain, answers[i][2], 1e-12);
    EXPECT_NEAR(result->lower, low, 0.1 * width);
    EXPECT_NEAR(result->upper, high, 0.1 * width);
    std::cout << cases[i].first << ": ours [" << result->lower << ", "
              << result->upper << "], scipy [" << low << ", " << high
              << "]; bounds off by " << std::abs(result->lower - low) / width
              << " and " << std::abs(result->upper - high) / width
              << " of the width\n";
  }
}

// AUC against a NumPy paired bootstrap calling sklearn's roc_auc_score on
// each of 2,000 resamples (NumPy's generator, seed 3). With B = 2,000 the
// reference's bounds carry a Monte Carlo sd of about 0.015 of the width (see
// above), ours with 20,000 resamples 0.0048: the difference has sd 0.016
// width, and 0.1 width is 6 sd. probability_better is a proportion over
// 2,000 resamples: sd at most sqrt(0.25 / 2000) = 0.011, so 0.05 is 4.5 sd.
TEST(ComparePairedTest, AucMatchesNumpyPairedBootstrap) {
  const Dataset c = Classification(13, 1000, 0.8, 0.7);
  const std::vector<std::vector<double>> answers = PythonReference(
      nlohmann::json::array({Request("auc", "auc", c, 2000, 3)}));
  ASSERT_EQ(answers.size(), 1u);
  BootstrapOptions options;
  options.resamples = 20000;
  absl::StatusOr<MetricComparison> result = Compare("auc", c, options);
  ASSERT_TRUE(result.ok()) << result.status();
  const double low = answers[0][0];
  const double high = answers[0][1];
  const double width = high - low;
  EXPECT_NEAR(result->gain, answers[0][2], 1e-12);
  EXPECT_NEAR(result->lower, low, 0.1 * width);
  EXPECT_NEAR(result->upper, high, 0.1 * width);
  EXPECT_NEAR(result->probability_better, answers[0][3], 0.05);
  // The models are close: the interval should hold both signs.
  EXPECT_LT(result->lower, 0);
  EXPECT_GT(result->upper, 0);
  std::cout << "auc: ours [" << result->lower << ", " << result->upper
            << "] P(better) " << result->probability_better << ", numpy ["
            << low << ", " << high << "] P(better) " << answers[0][3]
            << "; bounds off by " << std::abs(result->lower - low) / width
            << " and " << std::abs(result->upper - high) / width
            << " of the width\n";
}

// Across 200 independent datasets of 500 rows, the 95% interval covers the
// population gain (from 1e6 rows, whose own error, about 0.0003 for the AUC
// gain, is negligible next to the intervals' half-width of about 0.02) in
// 90% to 99% of them. 200 draws of a 95% event: sd 1.5%, so the range is
// -3.3 to +2.6 sd; a percentile interval slightly undercovers at this size.
TEST(ComparePairedTest, IntervalsCoverThePopulationGain) {
  struct Case {
    std::string_view metric;
    Dataset (*make)(uint64_t, int, double, double);
    double champion_noise;
    double challenger_noise;
    absl::StatusOr<double> (*fn)(std::span<const double>,
                                 std::span<const double>);
  };
  const Case cases[] = {
      {"auc", &Classification, 1.0, 0.6, &BinaryAuc},
      {"rmse", &Regression, 0.8, 0.6, &Rmse},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.metric);
    const Dataset population =
        k.make(1, 1000000, k.champion_noise, k.challenger_noise);
    const double sign =
        HigherIsBetter(*ParseEvaluationMetric(k.metric)) ? 1 : -1;
    const double truth =
        sign * (*k.fn(population.labels, population.challenger) -
                *k.fn(population.labels, population.champion));
    int covered = 0;
    for (uint64_t seed = 100; seed < 300; ++seed) {
      const Dataset d = k.make(seed, 500, k.champion_noise, k.challenger_noise);
      BootstrapOptions options;
      options.seed = seed;
      absl::StatusOr<MetricComparison> result = Compare(k.metric, d, options);
      ASSERT_TRUE(result.ok()) << result.status();
      if (result->lower <= truth && truth <= result->upper) ++covered;
    }
    std::cout << k.metric << ": population gain " << truth << ", covered by "
              << covered << " of 200 intervals\n";
    EXPECT_GE(covered, 180);
    EXPECT_LE(covered, 198);
  }
}

TEST(ComparePairedTest, IdenticalModelsKeepTheChampion) {
  const Dataset c = Classification(21, 2000, 0.8, 0.8);
  for (std::string_view metric : {"auc", "logloss", "accuracy"}) {
    SCOPED_TRACE(metric);
    absl::StatusOr<MetricComparison> result =
        ComparePaired(metric, c.labels, c.champion, c.champion);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->gain, 0);
    EXPECT_EQ(result->difference, 0);
    EXPECT_EQ(result->lower, 0);
    EXPECT_EQ(result->upper, 0);
    EXPECT_EQ(result->probability_better, 0);
    for (double min_gain : {0.0, 0.005}) {
      const PromotionVerdict verdict = DecidePromotion(*result, min_gain);
      EXPECT_EQ(verdict.decision, PromotionDecision::kKeepChampion);
      EXPECT_THAT(verdict.reason, HasSubstr("gain 0.000 (95% CI 0.000 to "
                                            "0.000) is at or below min_gain"));
    }
  }
}

TEST(ComparePairedTest, EquallyGoodModelsAreInconclusive) {
  // Different noise draws at the same level: neither is better.
  const Dataset c = Classification(22, 2000, 0.8, 0.8);
  absl::StatusOr<MetricComparison> result = Compare("auc", c);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LT(result->lower, 0);
  EXPECT_GT(result->upper, 0);
  const PromotionVerdict verdict = DecidePromotion(*result, 0);
  EXPECT_EQ(verdict.decision, PromotionDecision::kInconclusive);
  EXPECT_THAT(verdict.reason, HasSubstr("is inconclusive against min_gain 0 "
                                        "over 2,000 labelled rows"));
  EXPECT_THAT(verdict.reason, HasSubstr("more labelled rows"));
}

TEST(ComparePairedTest, MuchBetterChallengerIsPromoted) {
  const Dataset c = Classification(23, 2000, 1.5, 0.3);
  absl::StatusOr<MetricComparison> result = Compare("auc", c);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->lower, 0.05);
  EXPECT_EQ(result->probability_better, 1);
  const PromotionVerdict verdict = DecidePromotion(*result, 0.005);
  EXPECT_EQ(verdict.decision, PromotionDecision::kPromote);
  EXPECT_THAT(verdict.reason, HasSubstr("auc gain "));
  EXPECT_THAT(verdict.reason,
              HasSubstr("exceeds min_gain 0.005 over 2,000 labelled rows"));
}

TEST(ComparePairedTest, MuchWorseChallengerKeepsTheChampion) {
  const Dataset r = Regression(24, 2000, 0.3, 1.0);
  absl::StatusOr<MetricComparison> result = Compare("rmse", r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->difference, 0);  // rmse went up
  EXPECT_LT(result->upper, 0);       // so the gain is negative
  EXPECT_EQ(result->probability_better, 0);
  const PromotionVerdict verdict = DecidePromotion(*result, 0.01);
  EXPECT_EQ(verdict.decision, PromotionDecision::kKeepChampion);
  EXPECT_THAT(verdict.reason, HasSubstr("rmse gain -"));
  EXPECT_THAT(verdict.reason,
              HasSubstr("is at or below min_gain 0.01 over 2,000 labelled "
                        "rows (challenger "));
}

MetricComparison Handmade(double gain, double lower, double upper) {
  MetricComparison c;
  c.metric = "auc";
  c.rows = 2000;
  c.champion = 0.840;
  c.challenger = 0.840 + gain;
  c.difference = gain;
  c.gain = gain;
  c.lower = lower;
  c.upper = upper;
  c.confidence = 0.95;
  c.resamples = 2000;
  return c;
}

TEST(DecidePromotionTest, ReasonNamesTheNumbers) {
  EXPECT_EQ(DecidePromotion(Handmade(0.021, 0.008, 0.034), 0.005).reason,
            "auc gain 0.021 (95% CI 0.008 to 0.034) exceeds min_gain 0.005 "
            "over 2,000 labelled rows (challenger 0.861, champion 0.840)");
  EXPECT_EQ(DecidePromotion(Handmade(-0.03, -0.045, -0.016), 0.005).reason,
            "auc gain -0.030 (95% CI -0.045 to -0.016) is at or below "
            "min_gain 0.005 over 2,000 labelled rows (challenger 0.810, "
            "champion 0.840)");
  // A narrow interval gets the decimals to show it.
  EXPECT_EQ(DecidePromotion(Handmade(0.0004, 0.0001, 0.0007), 0).reason,
            "auc gain 0.00040 (95% CI 0.00010 to 0.00070) exceeds min_gain 0 "
            "over 2,000 labelled rows (challenger 0.84040, champion 0.84000)");
}

TEST(DecidePromotionTest, BoundariesFollowTheDocumentedRule) {
  // Promote only when the whole interval is above min_gain.
  EXPECT_EQ(DecidePromotion(Handmade(0.02, 0.01, 0.03), 0.01).decision,
            PromotionDecision::kInconclusive);
  EXPECT_EQ(DecidePromotion(Handmade(0.02, 0.0101, 0.03), 0.01).decision,
            PromotionDecision::kPromote);
  // Keep the champion when the whole interval is at or below min_gain,
  // including a challenger better than the champion by less than min_gain.
  EXPECT_EQ(DecidePromotion(Handmade(0.005, 0.001, 0.01), 0.01).decision,
            PromotionDecision::kKeepChampion);
  EXPECT_EQ(DecidePromotion(Handmade(0.005, 0.001, 0.0101), 0.01).decision,
            PromotionDecision::kInconclusive);
  EXPECT_EQ(DecidePromotion(Handmade(0.0, -0.01, 0.01), 0).decision,
            PromotionDecision::kInconclusive);
  EXPECT_EQ(PromotionDecisionName(PromotionDecision::kPromote), "promote");
  EXPECT_EQ(PromotionDecisionName(PromotionDecision::kKeepChampion),
            "keep_champion");
  EXPECT_EQ(PromotionDecisionName(PromotionDecision::kInconclusive),
            "inconclusive");
}

TEST(ComparePairedTest, DeterministicForASeed) {
  const Dataset c = Classification(31, 1500, 1.0, 0.7);
  BootstrapOptions options;
  options.seed = 42;
  absl::StatusOr<MetricComparison> a = Compare("auc", c, options);
  absl::StatusOr<MetricComparison> b = Compare("auc", c, options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(ToJson(*a), ToJson(*b));
  EXPECT_EQ(a->lower, b->lower);
  EXPECT_EQ(a->upper, b->upper);
  EXPECT_EQ(a->probability_better, b->probability_better);

  options.seed = 43;
  absl::StatusOr<MetricComparison> other = Compare("auc", c, options);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->gain, a->gain);
  EXPECT_NE(other->lower, a->lower);
  EXPECT_NE(other->upper, a->upper);
  // 2,000 resamples: each bound's Monte Carlo sd is about 0.015 of the
  // width, 0.021 for a difference of two; 0.1 is 4.7 sd.
  const double width = a->upper - a->lower;
  EXPECT_NEAR(other->lower, a->lower, 0.1 * width);
  EXPECT_NEAR(other->upper, a->upper, 0.1 * width);
}

TEST(ComparePairedTest, ToJsonCarriesEveryField) {
  const Dataset r = Regression(32, 500, 0.8, 0.6);
  absl::StatusOr<MetricComparison> result = Compare("mae", r);
  ASSERT_TRUE(result.ok()) << result.status();
  const nlohmann::json json = ToJson(*result);
  EXPECT_EQ(json["metric"], "mae");
  EXPECT_EQ(json["paired"], true);
  EXPECT_EQ(json["rows"], 500);
  EXPECT_EQ(json["champion_rows"], 500);
  EXPECT_EQ(json["challenger_rows"], 500);
  EXPECT_EQ(json["champion"], result->champion);
  EXPECT_EQ(json["challenger"], result->challenger);
  EXPECT_EQ(json["difference"], result->difference);
  EXPECT_EQ(json["gain"], result->gain);
  EXPECT_EQ(json["lower"], result->lower);
  EXPECT_EQ(json["upper"], result->upper);
  EXPECT_EQ(json["confidence"], 0.95);
  EXPECT_EQ(json["probability_better"], result->probability_better);
  EXPECT_EQ(json["resamples"], 2000);
  EXPECT_EQ(json.size(), 14u);
}

TEST(ComparePairedTest, SkipsAucResamplesWithOneClass) {
  // One positive in 20 rows: a resample misses it with probability
  // (19/20)^20 = 0.358, so about 1,283 of 2,000 resamples hold both classes
  // (binomial sd 21).
  std::vector<double> labels(20, 0.0);
  labels[3] = 1;
  std::vector<double> champion(20);
  std::vector<double> challenger(20);
  for (int i = 0; i < 20; ++i) {
    champion[i] = 0.05 * i;
    challenger[i] = 1 - 0.05 * i;
  }
  absl::StatusOr<MetricComparison> result =
      ComparePaired("auc", labels, champion, challenger);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->resamples, 1180);
  EXPECT_LT(result->resamples, 1390);

  // Two rows, one of each class: half the resamples hold both, too few of
  // 150 for an interval.
  BootstrapOptions options;
  options.resamples = 150;
  absl::StatusOr<MetricComparison> few =
      ComparePaired("auc", V{0.0, 1.0}, V{0.2, 0.7}, V{0.3, 0.6}, options);
  ASSERT_FALSE(few.ok());
  EXPECT_EQ(few.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(few.status().message(),
              HasSubstr("of 150 resamples of the 2 rows hold both classes"));
  EXPECT_THAT(few.status().message(), HasSubstr("add labelled rows"));
}

void ExpectInvalid(const absl::StatusOr<MetricComparison>& result,
                   std::string_view message) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr(std::string(message)));
}

TEST(ComparePairedTest, RejectsInvalidInput) {
  const std::vector<double> y = {0, 1, 0, 1};
  const std::vector<double> a = {0.1, 0.8, 0.3, 0.6};
  const std::vector<double> b = {0.2, 0.7, 0.4, 0.9};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();

  ExpectInvalid(ComparePaired("auc", y, a, V{0.1, 0.2}),
                "4 labels, 4 champion scores and 2 challenger scores; both "
                "models must score every labelled row");
  ExpectInvalid(ComparePaired("auc", y, V{0.1}, b),
                "4 labels, 1 champion scores and 4 challenger scores");
  ExpectInvalid(ComparePaired("auc", {}, {}, {}), "no rows");
  ExpectInvalid(ComparePaired("f1", y, a, b),
                "unknown metric 'f1'; valid metrics: auc, logloss, accuracy, "
                "rmse, mae, r2");
  ExpectInvalid(ComparePaired("accuracy", V{0, 2, 0, 1}, a, b),
                "label at row 1 is 2; accuracy compares binary classifiers, "
                "so labels must be 0 or 1");
  ExpectInvalid(ComparePaired("logloss", V{0, 1, nan, 1}, a, b),
                "label at row 2 is nan");
  ExpectInvalid(ComparePaired("rmse", V{0, 1, inf, 1}, a, b),
                "label at row 2 is inf; labels must be finite");
  ExpectInvalid(ComparePaired("auc", y, V{0.1, nan, 0.3, 0.6}, b),
                "champion score at row 1 is nan; scores must be finite");
  ExpectInvalid(ComparePaired("mae", y, a, V{0.1, 0.2, -inf, 0.6}),
                "challenger score at row 2 is -inf; scores must be finite");
  ExpectInvalid(ComparePaired("logloss", y, a, V{0.1, 1.5, 0.3, 0.6}),
                "challenger score at row 1 is 1.5; logloss takes the "
                "probability of class 1, in [0, 1]");
  ExpectInvalid(ComparePaired("auc", V{1, 1, 1, 1}, a, b),
                "every one of the 4 labels is 1; auc needs rows of both "
                "classes");

  for (double confidence : {0.0, 1.0, -0.5, 95.0, nan}) {
    BootstrapOptions options;
    options.confidence = confidence;
    ExpectInvalid(ComparePaired("auc", y, a, b, options),
                  "; it must be in (0, 1), e.g. 0.95");
  }
  BootstrapOptions options;
  options.confidence = 95;
  ExpectInvalid(ComparePaired("auc", y, a, b, options), "confidence is 95;");
  options = {};
  options.resamples = 99;
  ExpectInvalid(ComparePaired("auc", y, a, b, options),
                "resamples is 99; a bootstrap interval needs at least 100");
  // auc takes scores of any scale.
  EXPECT_TRUE(ComparePaired("auc", y, V{-3, 4, 0, 7}, b).ok());
}

// ---------------------------------------------------------------------------
// Independent comparisons: each model on its own rows.

// One model's own labelled rows.
struct Side {
  std::vector<double> labels;
  std::vector<double> scores;
};

// Labels a fair coin; the model puts 0.75 on the right class with
// probability p, else on the wrong one. In the population accuracy is p,
// logloss -(p ln 0.75 + (1 - p) ln 0.25), and AUC p as well (a positive
// outranks a negative when both are right, p^2, and ties it when one is,
// 2p(1 - p), counting one half).
Side TwoLevel(uint64_t seed, int rows, double p) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform;
  Side side;
  for (int i = 0; i < rows; ++i) {
    const double y = uniform(rng) < 0.5 ? 1.0 : 0.0;
    const bool right = uniform(rng) < p;
    side.labels.push_back(y);
    side.scores.push_back((y == 1.0) == right ? 0.75 : 0.25);
  }
  return side;
}

double TwoLevelLogLoss(double p) {
  return -(p * std::log(0.75) + (1 - p) * std::log(0.25));
}

// Labels a fair coin; scores N(d * label, 1): binormal, population AUC
// Phi(d / sqrt(2)).
Side Binormal(uint64_t seed, int rows, double d) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform;
  std::normal_distribution<double> normal;
  Side side;
  for (int i = 0; i < rows; ++i) {
    const double y = uniform(rng) < 0.5 ? 1.0 : 0.0;
    side.labels.push_back(y);
    side.scores.push_back(d * y + normal(rng));
  }
  return side;
}

double BinormalAuc(double d) { return 0.5 * std::erfc(-d / 2); }

// Labels N(0, 1); predictions label + N(0, sigma): population RMSE sigma.
Side Gaussian(uint64_t seed, int rows, double sigma) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Side side;
  for (int i = 0; i < rows; ++i) {
    const double y = normal(rng);
    side.labels.push_back(y);
    side.scores.push_back(y + sigma * normal(rng));
  }
  return side;
}

absl::StatusOr<MetricComparison> CompareSides(
    std::string_view metric, const Side& champion, const Side& challenger,
    const BootstrapOptions& options = {}) {
  return CompareIndependent(metric, champion.labels, champion.scores,
                            challenger.labels, challenger.scores, options);
}

// A population of one model's scores whose metric is known exactly.
struct Population {
  Side (*draw)(uint64_t seed, int rows, double parameter);
  double parameter;
  double metric;
};

// A known gain: the challenger (accuracy 0.80, or the better binormal
// separation, or the smaller error) against the champion (0.70, ...).
struct KnownGain {
  std::string_view metric;
  Population champion;
  Population challenger;
  double gain;  // signed as MetricComparison::gain
};

std::vector<KnownGain> KnownGains() {
  return {
      {"accuracy", {&TwoLevel, 0.70, 0.70}, {&TwoLevel, 0.80, 0.80}, 0.10},
      {"auc", {&TwoLevel, 0.70, 0.70}, {&TwoLevel, 0.80, 0.80}, 0.10},
      {"auc",
       {&Binormal, 1.0, BinormalAuc(1.0)},
       {&Binormal, 1.5, BinormalAuc(1.5)},
       BinormalAuc(1.5) - BinormalAuc(1.0)},
      {"logloss",
       {&TwoLevel, 0.70, TwoLevelLogLoss(0.70)},
       {&TwoLevel, 0.80, TwoLevelLogLoss(0.80)},
       TwoLevelLogLoss(0.70) - TwoLevelLogLoss(0.80)},
      {"rmse", {&Gaussian, 1.0, 1.0}, {&Gaussian, 0.8, 0.8}, 0.2},
  };
}

// On a small fixed data set with ties and sides of different sizes, the
// point values are stats/metrics.h's metric of each side on its own rows.
TEST(CompareIndependentTest, PointEstimatesAreEachSidesMetric) {
  Side champion = TwoLevel(51, 40, 0.7);
  Side challenger = Binormal(52, 25, 1.0);
  for (double& s : challenger.scores) s = Sigmoid(std::round(s * 4) / 4);
  const Side champion_r = Gaussian(53, 40, 0.9);
  const Side challenger_r = Gaussian(54, 25, 0.6);
  struct Case {
    std::string_view metric;
    const Side* champion;
    const Side* challenger;
    absl::StatusOr<double> (*fn)(std::span<const double>,
                                 std::span<const double>);
  };
  const Case cases[] = {
      {"auc", &champion, &challenger, &BinaryAuc},
      {"logloss", &champion, &challenger, &LogLoss},
      {"accuracy", &champion, &challenger, &Accuracy},
      {"rmse", &champion_r, &challenger_r, &Rmse},
      {"mae", &champion_r, &challenger_r, &Mae},
      {"r2", &champion_r, &challenger_r, &R2},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.metric);
    absl::StatusOr<MetricComparison> result =
        CompareSides(k.metric, *k.champion, *k.challenger);
    ASSERT_TRUE(result.ok()) << result.status();
    const double champion_value = *k.fn(k.champion->labels, k.champion->scores);
    const double challenger_value =
        *k.fn(k.challenger->labels, k.challenger->scores);
    EXPECT_NEAR(result->champion, champion_value, 1e-12);
    EXPECT_NEAR(result->challenger, challenger_value, 1e-12);
    EXPECT_EQ(result->metric, k.metric);
    EXPECT_FALSE(result->paired);
    EXPECT_EQ(result->champion_rows, 40);
    EXPECT_EQ(result->challenger_rows, 25);
    EXPECT_EQ(result->rows, 65);
    EXPECT_DOUBLE_EQ(result->difference, result->challenger - result->champion);
    const bool higher = HigherIsBetter(*ParseEvaluationMetric(k.metric));
    EXPECT_DOUBLE_EQ(result->gain,
                     higher ? result->difference : -result->difference);
    EXPECT_LE(result->lower, result->upper);
  }
}

// 1,000 rows a side from populations whose metrics are known exactly: the
// 95% interval holds the population gain and excludes 0 (each gain is about
// 5 standard errors of the difference).
TEST(CompareIndependentTest, IntervalsHoldKnownPopulationGains) {
  uint64_t seed = 60;
  for (const KnownGain& k : KnownGains()) {
    SCOPED_TRACE(std::string(k.metric) + " " +
                 std::to_string(k.champion.parameter) + " vs " +
                 std::to_string(k.challenger.parameter));
    const Side champion = k.champion.draw(++seed, 1000, k.champion.parameter);
    const Side challenger =
        k.challenger.draw(++seed, 1000, k.challenger.parameter);
    absl::StatusOr<MetricComparison> result =
        CompareSides(k.metric, champion, challenger);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_LE(result->lower, k.gain);
    EXPECT_GE(result->upper, k.gain);
    EXPECT_GT(result->lower, 0);
    EXPECT_EQ(result->resamples, 2000);
    std::cout << k.metric << ": population gain " << k.gain << ", estimate "
              << result->gain << " [" << result->lower << ", " << result->upper
              << "]\n";
  }
}

// Against scipy.stats.bootstrap(paired=False, method='percentile'), which
// resamples each sample on its own, with 20,000 resamples on both sides and
// sides of 800 and 300 rows. Each bound's Monte Carlo sd is about 0.005 of
// the interval's width (see MatchesScipyPairedPercentileBootstrap), so 0.1
// width is about 15 sd of the difference; a paired draw, a shared stream or
// the wrong side's size moves a bound by far more.
TEST(CompareIndependentTest, MatchesScipyUnpairedPercentileBootstrap) {
  const Side champion_c = TwoLevel(71, 800, 0.7);
  const Side challenger_c = Binormal(72, 300, 1.2);
  Side challenger_p = challenger_c;
  for (double& s : challenger_p.scores) s = Sigmoid(s - 0.6);
  const Side champion_r = Gaussian(73, 800, 1.0);
  const Side challenger_r = Gaussian(74, 300, 0.8);
  struct Case {
    std::string_view metric;
    const Side* champion;
    const Side* challenger;
  };
  const Case cases[] = {{"accuracy", &champion_c, &challenger_p},
                        {"logloss", &champion_c, &challenger_p},
                        {"rmse", &champion_r, &challenger_r}};
  nlohmann::json requests = nlohmann::json::array();
  for (const Case& k : cases) {
    requests.push_back({{"op", "scipy_independent"},
                        {"metric", k.metric},
                        {"champion_labels", k.champion->labels},
                        {"champion", k.champion->scores},
                        {"challenger_labels", k.challenger->labels},
                        {"challenger", k.challenger->scores},
                        {"resamples", 20000},
                        {"seed", 6}});
  }
  const std::vector<std::vector<double>> answers = PythonReference(requests);
  ASSERT_EQ(answers.size(), std::size(cases));
  BootstrapOptions options;
  options.resamples = 20000;
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& k = cases[i];
    SCOPED_TRACE(k.metric);
    absl::StatusOr<MetricComparison> result =
        CompareSides(k.metric, *k.champion, *k.challenger, options);
    ASSERT_TRUE(result.ok()) << result.status();
    const double low = answers[i][0];
    const double high = answers[i][1];
    const double width = high - low;
    EXPECT_NEAR(result->gain, answers[i][2], 1e-12);
    EXPECT_NEAR(result->lower, low, 0.1 * width);
    EXPECT_NEAR(result->upper, high, 0.1 * width);
    std::cout << k.metric << ": ours [" << result->lower << ", "
              << result->upper << "], scipy [" << low << ", " << high
              << "]; bounds off by " << std::abs(result->lower - low) / width
              << " and " << std::abs(result->upper - high) / width
              << " of the width\n";
  }
}

// Across 200 replications of 400 champion and 200 challenger rows, the 95%
// interval (400 resamples each) covers the known population gain in 90% to
// 99% of them: 200 draws of a 95% event have sd 1.5%, so the range is -3.3
// to +2.6 sd.
TEST(CompareIndependentTest, IntervalsCoverTheKnownGain) {
  for (const KnownGain& k : KnownGains()) {
    SCOPED_TRACE(std::string(k.metric) + " " +
                 std::to_string(k.champion.parameter));
    int covered = 0;
    for (uint64_t replication = 0; replication < 200; ++replication) {
      const Side champion =
          k.champion.draw(1000 + 2 * replication, 400, k.champion.parameter);
      const Side challenger = k.challenger.draw(1001 + 2 * replication, 200,
                                                k.challenger.parameter);
      BootstrapOptions options;
      options.resamples = 400;
      options.seed = replication;
      absl::StatusOr<MetricComparison> result =
          CompareSides(k.metric, champion, challenger, options);
      ASSERT_TRUE(result.ok()) << result.status();
      if (result->lower <= k.gain && k.gain <= result->upper) ++covered;
    }
    std::cout << k.metric << " (" << k.champion.parameter << " vs "
              << k.challenger.parameter << "): population gain " << k.gain
              << ", covered by " << covered << " of 200 intervals\n";
    EXPECT_GE(covered, 180);
    EXPECT_LE(covered, 198);
  }
}

// Both sides the same rows and scores: were the challenger's draws the
// champion's, every resample would give a gain of 0.
TEST(CompareIndependentTest, SidesDrawFromDifferentStreams) {
  const Side side = TwoLevel(81, 500, 0.75);
  for (std::string_view metric : {"accuracy", "auc"}) {
    SCOPED_TRACE(metric);
    absl::StatusOr<MetricComparison> result = CompareSides(metric, side, side);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->gain, 0);
    EXPECT_LT(result->lower, -0.02);
    EXPECT_GT(result->upper, 0.02);
    EXPECT_GT(result->probability_better, 0.3);
    EXPECT_LT(result->probability_better, 0.7);
    EXPECT_EQ(DecidePromotion(*result, 0).decision,
              PromotionDecision::kInconclusive);
  }
}

// 1,000 champion rows against a canary's 100: the interval is as wide as the
// smaller side makes it, and the reason counts each side.
TEST(CompareIndependentTest, UnequalSides) {
  const Side champion = TwoLevel(91, 1000, 0.7);
  const Side small = TwoLevel(92, 100, 0.8);
  const Side large = TwoLevel(93, 1000, 0.8);
  absl::StatusOr<MetricComparison> unequal =
      CompareSides("accuracy", champion, small);
  absl::StatusOr<MetricComparison> equal =
      CompareSides("accuracy", champion, large);
  ASSERT_TRUE(unequal.ok()) << unequal.status();
  ASSERT_TRUE(equal.ok()) << equal.status();
  EXPECT_EQ(unequal->champion_rows, 1000);
  EXPECT_EQ(unequal->challenger_rows, 100);
  EXPECT_EQ(unequal->rows, 1100);
  // Standard error of the gain: sqrt(0.21/1000 + 0.16/100) = 0.0425 against
  // sqrt(0.21/1000 + 0.16/1000) = 0.0192, a ratio of 2.2.
  const double ratio =
      (unequal->upper - unequal->lower) / (equal->upper - equal->lower);
  EXPECT_GT(ratio, 1.8);
  EXPECT_LT(ratio, 2.7);
  EXPECT_LE(unequal->lower, 0.10);
  EXPECT_GE(unequal->upper, 0.10);
  const PromotionVerdict verdict = DecidePromotion(*unequal, 0);
  EXPECT_THAT(verdict.reason,
              HasSubstr("over 1,000 champion and 100 challenger labelled "
                        "rows (challenger "));
  const nlohmann::json json = ToJson(*unequal);
  EXPECT_EQ(json["paired"], false);
  EXPECT_EQ(json["rows"], 1100);
  EXPECT_EQ(json["champion_rows"], 1000);
  EXPECT_EQ(json["challenger_rows"], 100);
  EXPECT_EQ(json.size(), 14u);
}

TEST(CompareIndependentTest, ReasonCountsEachSide) {
  MetricComparison c = Handmade(0.021, 0.008, 0.034);
  c.paired = false;
  c.champion_rows = 1200;
  c.challenger_rows = 300;
  c.rows = 1500;
  EXPECT_EQ(DecidePromotion(c, 0.005).reason,
            "auc gain 0.021 (95% CI 0.008 to 0.034) exceeds min_gain 0.005 "
            "over 1,200 champion and 300 challenger labelled rows "
            "(challenger 0.861, champion 0.840)");
}

TEST(CompareIndependentTest, DeterministicForASeed) {
  const Side champion = Binormal(101, 600, 1.0);
  const Side challenger = Binormal(102, 300, 1.2);
  BootstrapOptions options;
  options.seed = 42;
  absl::StatusOr<MetricComparison> a =
      CompareSides("auc", champion, challenger, options);
  absl::StatusOr<MetricComparison> b =
      CompareSides("auc", champion, challenger, options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(ToJson(*a), ToJson(*b));
  options.seed = 43;
  absl::StatusOr<MetricComparison> other =
      CompareSides("auc", champion, challenger, options);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->gain, a->gain);
  EXPECT_NE(other->lower, a->lower);
  EXPECT_NE(other->upper, a->upper);
}

TEST(CompareIndependentTest, SkipsAucResamplesWithOneClassOnEitherSide) {
  // The champion's 20 rows hold one positive: a resample misses it with
  // probability (19/20)^20 = 0.358. The challenger's 200 balanced rows
  // practically always hold both. About 1,283 of 2,000 resamples remain
  // (binomial sd 21).
  std::vector<double> labels(20, 0.0);
  labels[3] = 1;
  std::vector<double> scores(20);
  for (int i = 0; i < 20; ++i) scores[i] = 0.05 * i;
  const Side challenger = Binormal(111, 200, 1.0);
  absl::StatusOr<MetricComparison> result = CompareIndependent(
      "auc", labels, scores, challenger.labels, challenger.scores);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->resamples, 1180);
  EXPECT_LT(result->resamples, 1390);
  // Sides swapped: the same count of usable resamples, from the other
  // stream.
  absl::StatusOr<MetricComparison> swapped = CompareIndependent(
      "auc", challenger.labels, challenger.scores, labels, scores);
  ASSERT_TRUE(swapped.ok()) << swapped.status();
  EXPECT_GT(swapped->resamples, 1180);
  EXPECT_LT(swapped->resamples, 1390);

  // A challenger of two rows, one of each class: half the resamples hold
  // both, too few of 150.
  BootstrapOptions options;
  options.resamples = 150;
  ExpectInvalid(CompareIndependent("auc", challenger.labels, challenger.scores,
                                   V{0.0, 1.0}, V{0.3, 0.6}, options),
                "of 150 resamples of the 200 champion rows and the 2 "
                "challenger rows hold both classes");
}

TEST(CompareIndependentTest, RejectsInvalidInputNamingTheSide) {
  const std::vector<double> y = {0, 1, 0, 1};
  const std::vector<double> a = {0.1, 0.8, 0.3, 0.6};
  const std::vector<double> b = {0.2, 0.7, 0.4, 0.9, 0.5};
  const std::vector<double> yb = {1, 0, 0, 1, 1};
  const double nan = std::numeric_limits<double>::quiet_NaN();

  ExpectInvalid(CompareIndependent("auc", {}, {}, yb, b),
                "champion rows: no rows: comparing two models needs labelled "
                "rows scored by each");
  ExpectInvalid(CompareIndependent("rmse", y, a, {}, {}),
                "challenger rows: no rows");
  ExpectInvalid(CompareIndependent("auc", y, a, yb, V{0.1, 0.2}),
                "challenger rows: 5 labels and 2 scores; the model must score "
                "every labelled row");
  ExpectInvalid(CompareIndependent("auc", y, V{0.1}, yb, b),
                "champion rows: 4 labels and 1 scores");
  ExpectInvalid(CompareIndependent("auc", y, a, V{1, 1, 1, 1, 1}, b),
                "challenger rows: every one of the 5 labels is 1; auc needs "
                "rows of both classes");
  ExpectInvalid(CompareIndependent("auc", V{0, 0, 0, 0}, a, yb, b),
                "champion rows: every one of the 4 labels is 0");
  ExpectInvalid(CompareIndependent("accuracy", y, a, V{1, 0, 2, 1, 1}, b),
                "challenger rows: label at row 2 is 2; accuracy compares "
                "binary classifiers, so labels must be 0 or 1");
  ExpectInvalid(CompareIndependent("mae", y, V{0.1, nan, 0.3, 0.6}, yb, b),
                "champion rows: score at row 1 is nan; scores must be finite");
  ExpectInvalid(
      CompareIndependent("logloss", y, a, yb, V{0.2, 0.7, 1.5, 0.9, 0.5}),
      "challenger rows: score at row 2 is 1.5; logloss takes the "
      "probability of class 1, in [0, 1]");
  ExpectInvalid(CompareIndependent("f1", y, a, yb, b), "unknown metric 'f1'");
  BootstrapOptions options;
  options.confidence = 1;
  ExpectInvalid(CompareIndependent("auc", y, a, yb, b, options),
                "confidence is 1; it must be in (0, 1)");
  options = {};
  options.resamples = 99;
  ExpectInvalid(CompareIndependent("auc", y, a, yb, b, options),
                "resamples is 99; a bootstrap interval needs at least 100");
}

// One AUC comparison of 100,000 rows with 2,000 resamples; the time is
// printed, not asserted (the machine is shared).
TEST(ComparePairedTest, HundredThousandRowsAuc) {
  const Dataset c = Classification(41, 100000, 1.0, 0.8);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<MetricComparison> result = Compare("auc", c);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->resamples, 2000);
  EXPECT_GT(result->lower, 0);
  std::cout << "auc, 100,000 rows x 2,000 resamples: " << seconds << " s\n";
  RecordProperty("seconds", std::to_string(seconds));
}

}  // namespace
}  // namespace slipway
