#include "stats/drift.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "stats/profile.h"
#include "stats/quantile_sketch.h"
#include "testing/python_reference.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;
using Counts = std::vector<int64_t>;

// Reference values come from SciPy 1.10 / NumPy 1.24 under /usr/bin/python3,
// computed while the test runs on the very inputs the C++ code sees. Each
// request is {"op": ..., arguments}; the answer is a list of numbers.
constexpr char kReferenceScript[] = R"PY(
import json, sys
import numpy as np
from scipy import special, stats
from scipy.spatial import distance

def weighted_std(values, weights):
    mean = np.average(values, weights=weights)
    return np.sqrt(np.average((values - mean) ** 2, weights=weights))

def answer(r):
    op = r["op"]
    if op == "psi":
        e = np.asarray(r["expected"], float); a = np.asarray(r["actual"], float)
        e = np.maximum(e / e.sum(), r["epsilon"]); a = np.maximum(a / a.sum(), r["epsilon"])
        return [float(np.sum((a - e) * np.log(a / e)))]
    if op == "js":
        return [float(distance.jensenshannon(r["a"], r["b"], base=2))]
    if op == "ks":
        # Integer weights: each value repeated weight times.
        a = np.repeat(r["a"], np.asarray(r["wa"], int))
        b = np.repeat(r["b"], np.asarray(r["wb"], int))
        res = stats.ks_2samp(a, b, method="asymp")
        return [float(res.statistic), float(res.pvalue)]
    if op == "kstwo":
        return [float(stats.kstwo.sf(d, r["n"])) for d in r["d"]]
    if op == "wasserstein":
        u = np.asarray(r["a"]); v = np.asarray(r["b"])
        w = stats.wasserstein_distance(u, v, r["wa"], r["wb"])
        return [float(w), float(w / weighted_std(u, np.asarray(r["wa"])))]
    if op == "chi2":
        # The documented rule: drop categories empty in both, pool the
        # categories the baseline never saw into one bucket of baseline
        # count 0.5.
        e = np.asarray(r["expected"], float); a = np.asarray(r["actual"], float)
        keep = e > 0
        e2 = list(e[keep]); a2 = list(a[keep])
        unseen = a[~keep].sum()
        if unseen > 0:
            e2.append(0.5); a2.append(unseen)
        e2 = np.asarray(e2); a2 = np.asarray(a2)
        res = stats.chisquare(a2, e2 * a2.sum() / e2.sum())
        return [float(res.statistic), float(res.pvalue), len(a2) - 1]
    if op == "raw":
        a = np.asarray(r["a"]); b = np.asarray(r["b"])
        return [float(stats.ks_2samp(a, b, method="asymp").statistic),
                float(stats.wasserstein_distance(a, b) / np.std(a))]
    if op == "gammaincc":
        return [float(special.gammaincc(a, x)) for a, x in zip(r["a"], r["x"])]
    raise ValueError(op)

with open(sys.argv[1]) as f:
    requests = json.load(f)
with open(sys.argv[2], "w") as f:
    json.dump([answer(r) for r in requests], f)
)PY";

// Runs every request through kReferenceScript and returns the answers in
// order. Fails the test (and returns nothing) when Python does not answer.
std::vector<std::vector<double>> ScipyReference(
    const nlohmann::json& requests) {
  absl::StatusOr<std::vector<std::vector<double>>> answers =
      RunPythonReference(kReferenceScript, requests, 120000);
  if (!answers.ok()) {
    ADD_FAILURE() << answers.status().message();
    return {};
  }
  return *std::move(answers);
}

std::vector<double> Normal(std::mt19937_64& rng, int n, double mean,
                           double sd) {
  std::normal_distribution<double> dist(mean, sd);
  std::vector<double> values(n);
  for (double& v : values) v = dist(rng);
  return values;
}

WeightedSample Unweighted(const std::vector<double>& values) {
  WeightedSample sample;
  for (double v : values) sample.emplace_back(v, 1.0);
  return sample;
}

nlohmann::json KsRequest(const WeightedSample& a, const WeightedSample& b) {
  nlohmann::json r = {{"op", "ks"}};
  for (const auto& [value, weight] : a) {
    r["a"].push_back(value);
    r["wa"].push_back(weight);
  }
  for (const auto& [value, weight] : b) {
    r["b"].push_back(value);
    r["wb"].push_back(weight);
  }
  return r;
}

nlohmann::json WassersteinRequest(const WeightedSample& a,
                                  const WeightedSample& b) {
  nlohmann::json r = KsRequest(a, b);
  r["op"] = "wasserstein";
  return r;
}

// Bucket counts of `values` over the edges (-inf, e0), [e0, e1), ...,
// [e_last, inf).
Counts Histogram(const std::vector<double>& values,
                 const std::vector<double>& edges) {
  Counts counts(edges.size() + 1, 0);
  for (double v : values) {
    size_t bucket = 0;
    while (bucket < edges.size() && v >= edges[bucket]) ++bucket;
    ++counts[bucket];
  }
  return counts;
}

// The sample pairs every test compares: same distribution, a mean shift, a
// variance change, and integer-weighted samples.
struct SamplePair {
  std::string name;
  WeightedSample a;
  WeightedSample b;
};

std::vector<SamplePair> Pairs() {
  std::mt19937_64 rng(20261127);
  std::vector<SamplePair> pairs;
  const std::vector<double> base = Normal(rng, 2000, 0, 1);
  pairs.push_back({"identical", Unweighted(base), Unweighted(base)});
  pairs.push_back({"same distribution", Unweighted(base),
                   Unweighted(Normal(rng, 700, 0, 1))});
  pairs.push_back(
      {"mean shift", Unweighted(base), Unweighted(Normal(rng, 500, 0.3, 1))});
  pairs.push_back({"variance change", Unweighted(base),
                   Unweighted(Normal(rng, 800, 0, 1.5))});
  pairs.push_back({"small samples", Unweighted(Normal(rng, 40, 0, 1)),
                   Unweighted(Normal(rng, 25, 0.4, 1))});
  // Rounded values so ties occur within and across the samples.
  std::vector<double> rounded_a = Normal(rng, 300, 0, 1);
  std::vector<double> rounded_b = Normal(rng, 200, 0.2, 1);
  for (double& v : rounded_a) v = std::round(v * 4) / 4;
  for (double& v : rounded_b) v = std::round(v * 4) / 4;
  pairs.push_back({"ties", Unweighted(rounded_a), Unweighted(rounded_b)});
  std::uniform_int_distribution<int> weight(1, 5);
  WeightedSample wa;
  WeightedSample wb;
  for (double v : Normal(rng, 400, 0, 1)) wa.emplace_back(v, weight(rng));
  for (double v : Normal(rng, 300, 0.25, 1.2)) wb.emplace_back(v, weight(rng));
  pairs.push_back({"weighted", wa, wb});
  return pairs;
}

TEST(KolmogorovSmirnovTest, MatchesScipyKs2sampAsymp) {
  const std::vector<SamplePair> pairs = Pairs();
  nlohmann::json requests = nlohmann::json::array();
  for (const SamplePair& p : pairs) requests.push_back(KsRequest(p.a, p.b));
  const auto reference = ScipyReference(requests);
  ASSERT_EQ(reference.size(), pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    SCOPED_TRACE(pairs[i].name);
    absl::StatusOr<KsResult> ks = KolmogorovSmirnov(pairs[i].a, pairs[i].b);
    ASSERT_TRUE(ks.ok()) << ks.status();
    EXPECT_NEAR(ks->statistic, reference[i][0], 1e-12);
    EXPECT_NEAR(ks->pvalue, reference[i][1], 1e-6);
  }
  // Identical samples: no distance, nothing to reject.
  EXPECT_EQ(KolmogorovSmirnov(pairs[0].a, pairs[0].b)->statistic, 0.0);
  EXPECT_EQ(KolmogorovSmirnov(pairs[0].a, pairs[0].b)->pvalue, 1.0);
  // The mean shift of 0.3 sd over 500 rows is far beyond chance.
  EXPECT_LT(KolmogorovSmirnov(pairs[2].a, pairs[2].b)->pvalue, 1e-4);
}

TEST(KolmogorovSmirnovTest, SurvivalMatchesScipyKstwoOnEveryBranch) {
  // n and d chosen to reach each of SciPy's branches: Ruben-Gambino at both
  // ends, the exact Smirnov sum (d >= 0.5 and n d^2 >= 2.2), the Durbin
  // matrix (small n, or n d^1.5 <= 1.4) and the Pelz-Good expansion.
  const std::vector<int64_t> sizes = {
      1, 2, 5, 20, 60, 140, 141, 455, 833, 5000, 100000, 100001, 250000};
  const std::vector<double> ds = {0.001, 0.004, 0.01, 0.02, 0.03, 0.05,
                                  0.07,  0.1,   0.15, 0.2,  0.3,  0.45,
                                  0.5,   0.6,   0.9,  0.99};
  nlohmann::json requests = nlohmann::json::array();
  for (int64_t n : sizes) {
    requests.push_back({{"op", "kstwo"}, {"n", n}, {"d", ds}});
  }
  const auto reference = ScipyReference(requests);
  ASSERT_EQ(reference.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    for (size_t j = 0; j < ds.size(); ++j) {
      EXPECT_NEAR(KolmogorovSmirnovSurvival(sizes[i], ds[j]), reference[i][j],
                  1e-9)
          << "n=" << sizes[i] << " d=" << ds[j];
    }
  }
}

TEST(WassersteinTest, MatchesScipyWassersteinDistance) {
  const std::vector<SamplePair> pairs = Pairs();
  nlohmann::json requests = nlohmann::json::array();
  for (const SamplePair& p : pairs) {
    requests.push_back(WassersteinRequest(p.a, p.b));
  }
  const auto reference = ScipyReference(requests);
  ASSERT_EQ(reference.size(), pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    SCOPED_TRACE(pairs[i].name);
    absl::StatusOr<double> w = WassersteinDistance(pairs[i].a, pairs[i].b);
    ASSERT_TRUE(w.ok()) << w.status();
    EXPECT_NEAR(*w, reference[i][0], 1e-9 * std::max(1.0, reference[i][0]));
    absl::StatusOr<double> normalized =
        NormalizedWasserstein(pairs[i].a, pairs[i].b);
    ASSERT_TRUE(normalized.ok()) << normalized.status();
    EXPECT_NEAR(*normalized, reference[i][1], 1e-9);
  }
  EXPECT_EQ(*WassersteinDistance(pairs[0].a, pairs[0].b), 0.0);
}

TEST(WassersteinTest, ConstantBaselineUsesThePooledRange) {
  const WeightedSample constant = {{2.0, 1}, {2.0, 3}};
  EXPECT_EQ(*NormalizedWasserstein(constant, {{2.0, 5}}), 0.0);
  // W1 = 0.5 * |3 - 2| = 0.5 over the pooled range 2..3.
  EXPECT_DOUBLE_EQ(*NormalizedWasserstein(constant, {{2.0, 1}, {3.0, 1}}), 0.5);
}

TEST(PopulationStabilityIndexTest, MatchesNumpyFormula) {
  std::mt19937_64 rng(7);
  const std::vector<double> edges = {-1.5, -1, -0.5, 0, 0.5, 1, 1.5};
  const std::vector<double> base = Normal(rng, 5000, 0, 1);
  const Counts expected = Histogram(base, edges);
  const std::vector<Counts> windows = {
      expected,
      Histogram(Normal(rng, 1000, 0, 1), edges),
      Histogram(Normal(rng, 1000, 0.5, 1), edges),
      Histogram(Normal(rng, 1000, 0, 2), edges),
      {0, 0, 0, 10, 0, 0, 0, 0},  // empty buckets hit the floor
  };
  nlohmann::json requests = nlohmann::json::array();
  for (const Counts& w : windows) {
    requests.push_back({{"op", "psi"},
                        {"expected", expected},
                        {"actual", w},
                        {"epsilon", 1e-4}});
  }
  const auto reference = ScipyReference(requests);
  ASSERT_EQ(reference.size(), windows.size());
  for (size_t i = 0; i < windows.size(); ++i) {
    EXPECT_NEAR(*PopulationStabilityIndex(expected, windows[i]),
                reference[i][0], 1e-9 * std::max(1.0, reference[i][0]))
        << "window " << i;
  }
  EXPECT_EQ(*PopulationStabilityIndex(expected, expected), 0.0);
  EXPECT_LT(*PopulationStabilityIndex(expected, windows[1]), 0.1);
  EXPECT_GT(*PopulationStabilityIndex(expected, windows[2]), 0.25);
}

TEST(JensenShannonTest, MatchesScipyBase2) {
  const std::vector<std::pair<Counts, Counts>> cases = {
      {{10, 20, 30}, {10, 20, 30}},
      {{10, 20, 30}, {30, 20, 10}},
      {{5, 0, 5}, {0, 10, 0}},  // disjoint supports: distance 1
      {{400, 300, 200, 100, 0}, {350, 320, 180, 90, 60}},
  };
  nlohmann::json requests = nlohmann::json::array();
  for (const auto& [a, b] : cases) {
    requests.push_back({{"op", "js"}, {"a", a}, {"b", b}});
  }
  const auto reference = ScipyReference(requests);
  ASSERT_EQ(reference.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_NEAR(*JensenShannonDistance(cases[i].first, cases[i].second),
                reference[i][0], 1e-12)
        << "case " << i;
  }
  EXPECT_EQ(*JensenShannonDistance({10, 20, 30}, {1, 2, 3}), 0.0);
  EXPECT_NEAR(*JensenShannonDistance({5, 0, 5}, {0, 10, 0}), 1.0, 1e-12);
}

TEST(ChiSquareTest, MatchesScipyChisquareWithNewCategoryPooled) {
  const std::vector<std::pair<Counts, Counts>> cases = {
      {{500, 300, 200}, {50, 30, 20}},              // same proportions
      {{500, 300, 200}, {40, 30, 30}},              // mild shift
      {{500, 300, 200, 0}, {30, 30, 30, 10}},       // a category never seen
      {{500, 300, 0, 200, 0}, {45, 25, 3, 20, 2}},  // two unseen, pooled
      {{500, 0, 300, 200}, {50, 0, 30, 20}},        // empty in both: left out
      {{700, 250, 50}, {0, 300, 200}},              // strong shift
  };
  nlohmann::json requests = nlohmann::json::array();
  for (const auto& [e, a] : cases) {
    requests.push_back({{"op", "chi2"}, {"expected", e}, {"actual", a}});
  }
  const auto reference = ScipyReference(requests);
  ASSERT_EQ(reference.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    absl::StatusOr<ChiSquareResult> chi =
        ChiSquareTest(cases[i].first, cases[i].second);
    ASSERT_TRUE(chi.ok()) << chi.status();
    EXPECT_NEAR(chi->statistic, reference[i][0],
                1e-9 * std::max(1.0, reference[i][0]));
    EXPECT_NEAR(chi->pvalue, reference[i][1], 1e-10);
    EXPECT_EQ(chi->dof, static_cast<int>(reference[i][2]));
  }
  EXPECT_GT(ChiSquareTest(cases[0].first, cases[0].second)->pvalue, 0.99);
  EXPECT_LT(ChiSquareTest(cases[2].first, cases[2].second)->pvalue, 1e-6);
}

TEST(ChiSquareTest, SingleBucketHasNothingToTest) {
  absl::StatusOr<ChiSquareResult> chi = ChiSquareTest({100, 0}, {7, 0});
  ASSERT_TRUE(chi.ok());
  EXPECT_EQ(chi->dof, 0);
  EXPECT_EQ(chi->statistic, 0.0);
  EXPECT_EQ(chi->pvalue, 1.0);
}

TEST(RegularizedUpperGammaTest, MatchesScipyGammaincc) {
  std::vector<double> as;
  std::vector<double> xs;
  for (double a : {0.5, 1.0, 1.5, 2.5, 4.5, 10.0, 49.5, 500.0}) {
    for (double x : {0.0, 1e-3, 0.1, 0.5, 1.0, 2.0, 5.0, 9.0, 11.0, 30.0, 60.0,
                     100.0, 480.0, 520.0, 700.0}) {
      as.push_back(a);
      xs.push_back(x);
    }
  }
  const auto reference = ScipyReference(
      nlohmann::json::array({{{"op", "gammaincc"}, {"a", as}, {"x", xs}}}));
  ASSERT_EQ(reference.size(), 1u);
  for (size_t i = 0; i < as.size(); ++i) {
    EXPECT_NEAR(RegularizedUpperGamma(as[i], xs[i]), reference[0][i], 1e-10)
        << "a=" << as[i] << " x=" << xs[i];
  }
}

TEST(DriftPrimitivesTest, InvalidInputNamesTheProblem) {
  EXPECT_THAT(PopulationStabilityIndex({}, {}).status().message(),
              HasSubstr("no buckets"));
  EXPECT_THAT(PopulationStabilityIndex({1, 2}, {1, 2, 3}).status().message(),
              HasSubstr("has 2 buckets but PSI actual has 3"));
  EXPECT_THAT(PopulationStabilityIndex({1, -2}, {1, 2}).status().message(),
              HasSubstr("bucket 1 is -2"));
  EXPECT_THAT(PopulationStabilityIndex({1, 2}, {1, 2}, 0).status().message(),
              HasSubstr("epsilon"));
  EXPECT_THAT(JensenShannonDistance({0, 0}, {1, 2}).status().message(),
              HasSubstr("add up to 0"));
  EXPECT_THAT(ChiSquareTest({3}, {1, 2}).status().message(),
              HasSubstr("same buckets"));
  EXPECT_THAT(KolmogorovSmirnov({}, {{1, 1}}).status().message(),
              HasSubstr("KS first sample is empty"));
  EXPECT_THAT(WassersteinDistance({{1, 1}}, {{NAN, 1}}).status().message(),
              HasSubstr("second sample value 0 is not finite"));
  EXPECT_THAT(KolmogorovSmirnov({{1, -1}}, {{1, 1}}).status().message(),
              HasSubstr("weight 0 is -1"));
  EXPECT_THAT(NormalizedWasserstein({{1, 0}}, {{1, 1}}).status().message(),
              HasSubstr("weights add up to 0"));
  EXPECT_EQ(PopulationStabilityIndex({}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Feature-level drift on profiles.

NumericProfile WindowOf(const NumericProfile& baseline,
                        const std::vector<double>& values) {
  NumericProfile window = baseline.EmptyLike();
  for (double v : values) window.Add(v);
  return window;
}

// Sketch-based KS and Wasserstein against SciPy on the raw rows: each
// sketch's CDF is within RankError(k) of the exact one, so the KS statistic
// is within the sum of the two, and W1 = integral |F_a - F_b| within that
// sum times the pooled range (divided by the baseline's sd once normalized).
void ExpectWithinSketchBounds(const FeatureDrift& drift,
                              const std::vector<double>& baseline,
                              const std::vector<double>& window,
                              const std::vector<double>& reference,
                              double baseline_sd) {
  const double rank_error =
      2 * QuantileSketch::RankError(QuantileSketch::kDefaultK);
  const auto [lo_a, hi_a] =
      std::minmax_element(baseline.begin(), baseline.end());
  const auto [lo_b, hi_b] = std::minmax_element(window.begin(), window.end());
  const double range = std::max(*hi_a, *hi_b) - std::min(*lo_a, *lo_b);
  EXPECT_NEAR(*drift.ks, reference[0], rank_error);
  EXPECT_NEAR(*drift.wasserstein, reference[1],
              rank_error * range / baseline_sd);
}

TEST(CompareNumericTest, NoDriftThenMeanShiftWithinSketchError) {
  std::mt19937_64 rng(42);
  const std::vector<double> base = Normal(rng, 5000, 0, 1);
  const std::vector<double> same = Normal(rng, 1000, 0, 1);
  const std::vector<double> shifted = Normal(rng, 1000, 0.5, 1);
  const NumericProfile baseline = NumericProfile::Baseline(base);
  const DriftThresholds defaults;

  absl::StatusOr<FeatureDrift> calm =
      CompareNumeric(baseline, WindowOf(baseline, same), defaults);
  ASSERT_TRUE(calm.ok()) << calm.status();
  absl::StatusOr<FeatureDrift> moved =
      CompareNumeric(baseline, WindowOf(baseline, shifted), defaults);
  ASSERT_TRUE(moved.ok()) << moved.status();

  // 5,000 baseline rows: the normalized Wasserstein rule decides.
  EXPECT_EQ(calm->method, DriftMethod::kWasserstein);
  EXPECT_FALSE(calm->drift);
  EXPECT_FALSE(calm->insufficient);
  EXPECT_TRUE(moved->drift);
  EXPECT_TRUE(moved->warn);
  EXPECT_EQ(moved->score, moved->wasserstein);
  EXPECT_GT(*moved->psi, 0.1);
  EXPECT_LT(*calm->psi, 0.1);
  EXPECT_FALSE(moved->chi2_pvalue.has_value());

  const auto reference = ScipyReference(
      nlohmann::json::array({{{"op", "raw"}, {"a", base}, {"b", same}},
                             {{"op", "raw"}, {"a", base}, {"b", shifted}}}));
  ASSERT_EQ(reference.size(), 2u);
  ExpectWithinSketchBounds(*calm, base, same, reference[0], baseline.Stddev());
  ExpectWithinSketchBounds(*moved, base, shifted, reference[1],
                           baseline.Stddev());
  RecordProperty("ks_error_calm", std::to_string(*calm->ks - reference[0][0]));
  RecordProperty("ks_error_moved",
                 std::to_string(*moved->ks - reference[1][0]));
  RecordProperty("wasserstein_error_calm",
                 std::to_string(*calm->wasserstein - reference[0][1]));
  RecordProperty("wasserstein_error_moved",
                 std::to_string(*moved->wasserstein - reference[1][1]));

  // PSI and Jensen-Shannon are exact on the bins.
  EXPECT_EQ(*moved->psi, *PopulationStabilityIndex(
                             baseline.bins, WindowOf(baseline, shifted).bins));
  EXPECT_EQ(*moved->js, *JensenShannonDistance(
                            baseline.bins, WindowOf(baseline, shifted).bins));
}

TEST(CompareNumericTest, SmallBaselineUsesTheKsTest) {
  std::mt19937_64 rng(5);
  const NumericProfile baseline =
      NumericProfile::Baseline(Normal(rng, 150, 10, 2));
  // While count <= k the sketches are exact, so the KS result is SciPy's.
  const std::vector<double> shifted = Normal(rng, 120, 11, 2);
  absl::StatusOr<FeatureDrift> drift =
      CompareNumeric(baseline, WindowOf(baseline, shifted), DriftThresholds());
  ASSERT_TRUE(drift.ok()) << drift.status();
  EXPECT_EQ(drift->method, DriftMethod::kKs);
  EXPECT_EQ(drift->score, drift->ks_pvalue);
  EXPECT_LT(*drift->ks_pvalue, 0.05);
  EXPECT_TRUE(drift->drift);
}

TEST(CompareNumericTest, SmallWindowDecidesNothing) {
  std::mt19937_64 rng(9);
  const NumericProfile baseline =
      NumericProfile::Baseline(Normal(rng, 2000, 0, 1));
  NumericProfile window = WindowOf(baseline, Normal(rng, 20, 3, 1));
  window.AddMissing();
  absl::StatusOr<FeatureDrift> drift =
      CompareNumeric(baseline, window, DriftThresholds());
  ASSERT_TRUE(drift.ok()) << drift.status();
  EXPECT_TRUE(drift->insufficient);
  EXPECT_FALSE(drift->drift);
  EXPECT_FALSE(drift->warn);
  EXPECT_GT(*drift->wasserstein, 1.0);  // computed, just not acted on
  EXPECT_DOUBLE_EQ(drift->missing_fraction, 1.0 / 21);

  absl::StatusOr<FeatureDrift> empty =
      CompareNumeric(baseline, baseline.EmptyLike(), DriftThresholds());
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->insufficient);
  EXPECT_FALSE(empty->psi.has_value());
  EXPECT_FALSE(empty->score.has_value());
}

TEST(CompareNumericTest, RefusesForeignBinsAndCategoricalMethods) {
  std::mt19937_64 rng(3);
  const NumericProfile baseline =
      NumericProfile::Baseline(Normal(rng, 500, 0, 1));
  const NumericProfile other = NumericProfile::Baseline(Normal(rng, 500, 0, 1));
  EXPECT_THAT(
      CompareNumeric(baseline, other, DriftThresholds()).status().message(),
      HasSubstr("bins differ"));
  DriftThresholds chi2;
  chi2.method = DriftMethod::kChiSquare;
  EXPECT_THAT(CompareNumeric(baseline, WindowOf(baseline, {1, 2}), chi2)
                  .status()
                  .message(),
              HasSubstr("drift method chi2 does not apply to a numeric"));
  EXPECT_THAT(CompareNumeric(NumericProfile::Baseline({}),
                             NumericProfile::Baseline({}), DriftThresholds())
                  .status()
                  .message(),
              HasSubstr("baseline profile has no values"));
}

std::vector<std::string> Categories(std::mt19937_64& rng, int n,
                                    const std::vector<std::string>& names,
                                    const std::vector<double>& weights) {
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  std::vector<std::string> values(n);
  for (std::string& v : values) v = names[pick(rng)];
  return values;
}

CategoricalProfile CategoricalBaseline(const std::vector<std::string>& values) {
  std::vector<std::string_view> views(values.begin(), values.end());
  return CategoricalProfile::Baseline(views);
}

CategoricalProfile CategoricalWindow(const CategoricalProfile& baseline,
                                     const std::vector<std::string>& values) {
  CategoricalProfile window = baseline.EmptyLike();
  for (const std::string& v : values) window.Add(v);
  return window;
}

TEST(CompareCategoricalTest, NewCategoryIsDriftByJensenShannonAndChiSquare) {
  std::mt19937_64 rng(11);
  const std::vector<std::string> names = {"red", "green", "blue", "violet"};
  const std::vector<double> weights = {0.5, 0.3, 0.15, 0.05};
  const std::vector<std::string> with_new = {"red", "green", "blue", "violet",
                                             "ochre"};
  const std::vector<double> shifted_weights = {0.35, 0.25, 0.15, 0.05, 0.2};

  const CategoricalProfile large =
      CategoricalBaseline(Categories(rng, 5000, names, weights));
  const CategoricalProfile calm_window =
      CategoricalWindow(large, Categories(rng, 1000, names, weights));
  const CategoricalProfile new_window = CategoricalWindow(
      large, Categories(rng, 1000, with_new, shifted_weights));
  absl::StatusOr<FeatureDrift> calm =
      CompareCategorical(large, calm_window, DriftThresholds());
  absl::StatusOr<FeatureDrift> moved =
      CompareCategorical(large, new_window, DriftThresholds());
  ASSERT_TRUE(calm.ok()) << calm.status();
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(calm->method, DriftMethod::kJensenShannon);
  EXPECT_FALSE(calm->drift);
  EXPECT_TRUE(moved->drift);
  EXPECT_GT(*moved->js, 0.1);
  EXPECT_FALSE(moved->ks.has_value());
  EXPECT_EQ(new_window.unseen,
            1000 - new_window.counts.at("red") - new_window.counts.at("green") -
                new_window.counts.at("blue") - new_window.counts.at("violet"));

  // The bucket vector is (top-k categories in name order, other, unseen),
  // so the chi-square p-value is ChiSquareTest's on it, itself checked
  // against SciPy above.
  std::vector<int64_t> expected;
  std::vector<int64_t> actual;
  for (const auto& [name, count] : large.counts) {
    expected.push_back(count);
    actual.push_back(new_window.counts.at(name));
  }
  expected.insert(expected.end(), {large.other, large.unseen});
  actual.insert(actual.end(), {new_window.other, new_window.unseen});
  EXPECT_EQ(*moved->chi2_pvalue, ChiSquareTest(expected, actual)->pvalue);
  EXPECT_EQ(*moved->psi, *PopulationStabilityIndex(expected, actual));

  // A baseline of at most 1,000 rows decides by chi-square.
  const CategoricalProfile small =
      CategoricalBaseline(Categories(rng, 800, names, weights));
  absl::StatusOr<FeatureDrift> small_calm = CompareCategorical(
      small, CategoricalWindow(small, Categories(rng, 400, names, weights)),
      DriftThresholds());
  absl::StatusOr<FeatureDrift> small_moved = CompareCategorical(
      small,
      CategoricalWindow(small, Categories(rng, 400, with_new, shifted_weights)),
      DriftThresholds());
  ASSERT_TRUE(small_calm.ok()) << small_calm.status();
  ASSERT_TRUE(small_moved.ok()) << small_moved.status();
  EXPECT_EQ(small_moved->method, DriftMethod::kChiSquare);
  EXPECT_EQ(small_moved->score, small_moved->chi2_pvalue);
  EXPECT_TRUE(small_moved->drift);
  EXPECT_FALSE(small_calm->drift);

  DriftThresholds ks;
  ks.method = DriftMethod::kKs;
  EXPECT_THAT(CompareCategorical(large, calm_window, ks).status().message(),
              HasSubstr("does not apply to a categorical feature"));
}

TEST(CompareProfilesTest, PerFeatureOverridesAndJson) {
  std::mt19937_64 rng(17);
  ProfileSet baseline;
  baseline.features.push_back(
      {"age", NumericProfile::Baseline(Normal(rng, 3000, 40, 10))});
  baseline.features.push_back(
      {"plan", CategoricalBaseline(
                   Categories(rng, 3000, {"basic", "pro"}, {0.7, 0.3}))});
  baseline.prediction =
      FeatureProfile{"p1", NumericProfile::Baseline(Normal(rng, 3000, 0, 1))};
  ProfileSet window = baseline.EmptyLike();
  auto& age = std::get<NumericProfile>(window.Find("age")->profile);
  for (double v : Normal(rng, 600, 43, 10)) age.Add(v);
  auto& plan = std::get<CategoricalProfile>(window.Find("plan")->profile);
  for (const std::string& v :
       Categories(rng, 600, {"basic", "pro"}, {0.7, 0.3})) {
    plan.Add(v);
  }
  auto& p1 = std::get<NumericProfile>(window.prediction->profile);
  for (double v : Normal(rng, 600, 0, 1)) p1.Add(v);

  DriftPolicy policy;
  DriftThresholds tolerant;
  tolerant.max_wasserstein = 0.5;  // age may move by up to half an sd
  policy.features["age"] = tolerant;

  absl::StatusOr<std::vector<FeatureDrift>> drifts =
      CompareProfiles(baseline, window, policy);
  ASSERT_TRUE(drifts.ok()) << drifts.status();
  ASSERT_EQ(drifts->size(), 3u);
  EXPECT_EQ((*drifts)[0].name, "age");
  EXPECT_FALSE((*drifts)[0].drift);
  EXPECT_EQ((*drifts)[1].name, "plan");
  EXPECT_FALSE((*drifts)[1].drift);
  EXPECT_EQ((*drifts)[2].name, "p1");
  EXPECT_FALSE((*drifts)[2].drift);
  // Under the defaults the 0.3 sd shift of age is drift.
  absl::StatusOr<std::vector<FeatureDrift>> defaults =
      CompareProfiles(baseline, window, DriftPolicy());
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE((*defaults)[0].drift);

  const nlohmann::json age_json = ToJson((*drifts)[0]);
  for (const char* key : {"psi", "js", "ks", "ks_pvalue", "wasserstein",
                          "missing_fraction", "drift"}) {
    EXPECT_TRUE(age_json.contains(key)) << key;
  }
  EXPECT_FALSE(age_json.contains("chi2_pvalue"));
  EXPECT_EQ(age_json["method"], "wasserstein");
  EXPECT_EQ(age_json["score"], age_json["wasserstein"]);
  const nlohmann::json plan_json = ToJson((*drifts)[1]);
  for (const char* key :
       {"psi", "js", "chi2_pvalue", "missing_fraction", "drift"}) {
    EXPECT_TRUE(plan_json.contains(key)) << key;
  }
  EXPECT_FALSE(plan_json.contains("ks"));
  EXPECT_FALSE(plan_json.contains("wasserstein"));

  ProfileSet missing_feature = window;
  missing_feature.features.pop_back();
  EXPECT_THAT(
      CompareProfiles(baseline, missing_feature, policy).status().message(),
      HasSubstr("no profile of 'plan'"));
}

// Undrifted windows must not raise drift. Windows of N(0,1) rows against
// 5,000-row N(0,1) baselines with the defaults (normalized Wasserstein > 0.1
// with KS p < 1e-4): 5 baselines x 10 windows of 500 rows, 50 seeds of one
// such window, and 50 windows of 100 rows: no alarm. The same windows under
// the bare rules (Wasserstein > 0.1 alone, KS p < 0.05) and a 1,000-row
// baseline (where the defaults use KS p < 0.05) are counted and recorded:
// the p < 0.05 rules are bounded by the 99.9% quantile of Binomial(50, 0.05),
// 9.
TEST(DriftFalseAlarmTest, DefaultsRaiseNoAlarmOnUndriftedWindows) {
  DriftThresholds bare_wasserstein;
  bare_wasserstein.distance_max_pvalue = 2;
  DriftThresholds ks_test;
  ks_test.method = DriftMethod::kKs;
  int alarms = 0;
  int warnings = 0;
  int bare_wasserstein_alarms = 0;
  int ks_alarms = 0;
  double max_wasserstein = 0;
  double min_ks_pvalue = 1;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::mt19937_64 rng(1000 + seed);
    const NumericProfile baseline =
        NumericProfile::Baseline(Normal(rng, 5000, 0, 1));
    for (int w = 0; w < 10; ++w) {
      const NumericProfile window = WindowOf(baseline, Normal(rng, 500, 0, 1));
      const FeatureDrift drift =
          *CompareNumeric(baseline, window, DriftThresholds());
      alarms += drift.drift;
      warnings += drift.warn;
      max_wasserstein = std::max(max_wasserstein, *drift.wasserstein);
      min_ks_pvalue = std::min(min_ks_pvalue, *drift.ks_pvalue);
      bare_wasserstein_alarms +=
          CompareNumeric(baseline, window, bare_wasserstein)->drift;
      ks_alarms += CompareNumeric(baseline, window, ks_test)->drift;
    }
  }
  int seeded_alarms = 0;
  int seeded_bare_alarms = 0;
  int small_window_alarms = 0;
  int small_window_bare_alarms = 0;
  int small_baseline_alarms = 0;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    std::mt19937_64 rng(seed);
    const NumericProfile baseline =
        NumericProfile::Baseline(Normal(rng, 5000, 0, 1));
    const NumericProfile window = WindowOf(baseline, Normal(rng, 500, 0, 1));
    seeded_alarms += CompareNumeric(baseline, window, DriftThresholds())->drift;
    seeded_bare_alarms +=
        CompareNumeric(baseline, window, bare_wasserstein)->drift;
    const NumericProfile small = WindowOf(baseline, Normal(rng, 100, 0, 1));
    small_window_alarms +=
        CompareNumeric(baseline, small, DriftThresholds())->drift;
    small_window_bare_alarms +=
        CompareNumeric(baseline, small, bare_wasserstein)->drift;
    const NumericProfile small_baseline =
        NumericProfile::Baseline(Normal(rng, 1000, 0, 1));
    small_baseline_alarms +=
        CompareNumeric(small_baseline,
                       WindowOf(small_baseline, Normal(rng, 500, 0, 1)),
                       DriftThresholds())
            ->drift;
  }
  RecordProperty("alarms", alarms);
  RecordProperty("warnings", warnings);
  RecordProperty("max_normalized_wasserstein", std::to_string(max_wasserstein));
  RecordProperty("min_ks_pvalue", std::to_string(min_ks_pvalue));
  RecordProperty("bare_wasserstein_alarms", bare_wasserstein_alarms);
  RecordProperty("ks_p005_alarms", ks_alarms);
  RecordProperty("seeded_alarms", seeded_alarms);
  RecordProperty("seeded_bare_wasserstein_alarms", seeded_bare_alarms);
  RecordProperty("small_window_alarms", small_window_alarms);
  RecordProperty("small_window_bare_wasserstein_alarms",
                 small_window_bare_alarms);
  RecordProperty("small_baseline_ks_alarms", small_baseline_alarms);
  EXPECT_EQ(alarms, 0);
  EXPECT_EQ(warnings, 0);
  EXPECT_EQ(seeded_alarms, 0);
  EXPECT_EQ(small_window_alarms, 0);
  EXPECT_LE(ks_alarms, 9);
  EXPECT_LE(small_baseline_alarms, 9);
}

// The same for a categorical feature with 40 categories (Zipf-like
// frequencies): over that many buckets a window of 500 rows has a
// Jensen-Shannon distance near 0.1 by chance alone; with the chi-square
// guard no window is drift.
TEST(DriftFalseAlarmTest, ManyCategoriesRaiseNoAlarm) {
  std::vector<std::string> names;
  std::vector<double> weights;
  for (int i = 1; i <= 40; ++i) {
    std::string name = "c";
    name += std::to_string(i);
    names.push_back(name);
    weights.push_back(1.0 / i);
  }
  DriftThresholds bare_js;
  bare_js.distance_max_pvalue = 2;
  int alarms = 0;
  int bare_alarms = 0;
  double max_js = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::mt19937_64 rng(seed);
    const CategoricalProfile baseline =
        CategoricalBaseline(Categories(rng, 5000, names, weights));
    for (int w = 0; w < 10; ++w) {
      const CategoricalProfile window =
          CategoricalWindow(baseline, Categories(rng, 500, names, weights));
      const FeatureDrift drift =
          *CompareCategorical(baseline, window, DriftThresholds());
      alarms += drift.drift;
      max_js = std::max(max_js, *drift.js);
      bare_alarms += CompareCategorical(baseline, window, bare_js)->drift;
    }
  }
  RecordProperty("alarms", alarms);
  RecordProperty("bare_js_alarms", bare_alarms);
  RecordProperty("max_js", std::to_string(max_js));
  EXPECT_EQ(alarms, 0);
}

// The guard keeps real shifts: a 0.5 sd mean shift in windows of 500 rows
// is drift every time; a 0.3 sd shift is counted and recorded.
TEST(DriftFalseAlarmTest, DefaultsDetectMeanShiftsInWindowsOf500Rows) {
  std::mt19937_64 rng(2026);
  const NumericProfile baseline =
      NumericProfile::Baseline(Normal(rng, 5000, 0, 1));
  int half_sd = 0;
  int three_tenths_sd = 0;
  for (int w = 0; w < 10; ++w) {
    half_sd +=
        CompareNumeric(baseline, WindowOf(baseline, Normal(rng, 500, 0.5, 1)),
                       DriftThresholds())
            ->drift;
    three_tenths_sd +=
        CompareNumeric(baseline, WindowOf(baseline, Normal(rng, 500, 0.3, 1)),
                       DriftThresholds())
            ->drift;
  }
  RecordProperty("detected_0_5_sd", half_sd);
  RecordProperty("detected_0_3_sd", three_tenths_sd);
  EXPECT_EQ(half_sd, 10);
}

}  // namespace
}  // namespace slipway
