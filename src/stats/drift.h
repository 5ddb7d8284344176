// Drift statistics: how far a serving window's distribution of a feature (or
// of the prediction) has moved from the training baseline.
//
// Two layers:
// - primitives on plain inputs: bucket counts (PSI, Jensen-Shannon,
//   chi-square) and weighted samples (Kolmogorov-Smirnov, Wasserstein);
// - feature-level comparisons of two profiles (stats/profile.h) that compute
//   every statistic that applies and decide, by a per-feature rule, whether
//   the feature drifted.
//
// Every statistic reproduces SciPy 1.10 (see docs/monitoring.md for the
// formulas and the SciPy function each one matches). Invalid input (no
// buckets, sizes that differ, negative or non-finite counts and weights, an
// empty sample) is InvalidArgument saying what to fix.
//
// Thread safety: every function is pure and safe to call concurrently.
#ifndef SLIPWAY_STATS_DRIFT_H_
#define SLIPWAY_STATS_DRIFT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "stats/profile.h"

namespace slipway {

// A sample as (value, weight) pairs. A value may repeat; its weights add up.
// Weights are finite and >= 0 with a positive total; values are finite.
using WeightedSample = std::vector<std::pair<double, double>>;

// Population stability index over matching buckets:
//   sum_i (a_i - e_i) * ln(a_i / e_i)
// where e_i and a_i are the bucket proportions of `expected` (baseline) and
// `actual` (window), each floored at `epsilon` so an empty bucket costs a
// large but finite amount instead of infinity. REQUIRES: 0 < epsilon < 1.
absl::StatusOr<double> PopulationStabilityIndex(
    const std::vector<int64_t>& expected, const std::vector<int64_t>& actual,
    double epsilon = 1e-4);

// Jensen-Shannon distance in base 2 (in [0, 1]): the square root of the
// Jensen-Shannon divergence of the two normalised count vectors, as
// scipy.spatial.distance.jensenshannon(a, b, base=2).
absl::StatusOr<double> JensenShannonDistance(const std::vector<int64_t>& a,
                                             const std::vector<int64_t>& b);

struct KsResult {
  double statistic = 0;  // sup |F_a - F_b| of the weighted empirical CDFs
  double pvalue = 1;     // two-sided
};

// Two-sample Kolmogorov-Smirnov test on weighted samples. The p-value is
// scipy.stats.ks_2samp(..., method='asymp'): the survival function of the
// two-sided one-sample statistic D_N (scipy.stats.kstwo, Simard & L'Ecuyer)
// at N = round(n*m / (n+m)), where n and m are the total weights of `a` and
// `b` (the row counts when every weight is 1).
absl::StatusOr<KsResult> KolmogorovSmirnov(const WeightedSample& a,
                                           const WeightedSample& b);

// First Wasserstein (earth mover's) distance between the weighted samples:
// the integral of |F_a - F_b|, as scipy.stats.wasserstein_distance(u_values,
// v_values, u_weights, v_weights).
absl::StatusOr<double> WassersteinDistance(const WeightedSample& a,
                                           const WeightedSample& b);

// WassersteinDistance(baseline, window) divided by the baseline's weighted
// population standard deviation, so that 0.1 means "the mass moved a tenth
// of a standard deviation on average" whatever the feature's unit. A constant
// baseline (standard deviation 0) divides by the range of both samples
// pooled instead; when the window holds the same constant as well the
// distance is 0.
absl::StatusOr<double> NormalizedWasserstein(const WeightedSample& baseline,
                                             const WeightedSample& window);

struct ChiSquareResult {
  double statistic = 0;
  double pvalue = 1;
  int dof = 0;
};

// Pearson's chi-square test of the window's category counts (`actual`)
// against the baseline's proportions (`expected`), as
// scipy.stats.chisquare(f_obs=actual, f_exp=expected * sum(actual) /
// sum(expected)). Categories that are empty in both are left out. Categories
// the baseline never saw (expected 0, actual > 0) are pooled into one bucket
// whose baseline count is 0.5 (half a row), so a new category weighs heavily
// but finitely. dof = buckets - 1; with a single bucket there is nothing to
// test and the result is statistic 0, p-value 1, dof 0.
absl::StatusOr<ChiSquareResult> ChiSquareTest(
    const std::vector<int64_t>& expected, const std::vector<int64_t>& actual);

// The regularised upper incomplete gamma function Q(a, x) = Gamma(a, x) /
// Gamma(a) (scipy.special.gammaincc): a series for x < a + 1, a continued
// fraction (modified Lentz) otherwise. The chi-square p-value is
// Q(dof / 2, statistic / 2). REQUIRES: a > 0, x >= 0.
double RegularizedUpperGamma(double a, double x);

// P(D_n >= d) for the two-sided one-sample Kolmogorov-Smirnov statistic of n
// observations (scipy.stats.kstwo.sf(d, n)). REQUIRES: n >= 1.
double KolmogorovSmirnovSurvival(int64_t n, double d);

// ---------------------------------------------------------------------------
// Feature-level drift.

// How a feature's drift is decided.
enum class DriftMethod {
  // By the baseline's size: a test (KS for numbers, chi-square for
  // categories, p-value below max_pvalue) when the baseline has at most
  // small_baseline_rows rows, else a distance (normalized Wasserstein for
  // numbers, Jensen-Shannon for categories). Tests on large samples flag
  // differences too small to matter; distances alone flag a small window's
  // sampling noise.
  kAuto,
  kPsi,  // PSI >= psi_alert
  kKs,   // numeric only: KS p-value < max_pvalue
  // numeric only: normalized Wasserstein > max_wasserstein, and the KS
  // p-value < distance_max_pvalue
  kWasserstein,
  kChiSquare,  // categorical only: chi-square p-value < max_pvalue
  // Jensen-Shannon distance > max_js, and the KS (numeric) or chi-square
  // (categorical) p-value < distance_max_pvalue
  kJensenShannon,
};

// "auto", "psi", "ks", "wasserstein", "chi2", "js".
std::string_view DriftMethodName(DriftMethod method);

struct DriftThresholds {
  DriftMethod method = DriftMethod::kAuto;
  int64_t small_baseline_rows = 1000;
  double max_pvalue = 0.05;
  double max_wasserstein = 0.1;
  double max_js = 0.1;
  // A distance is drift only when the matching test also rejects at this
  // level: undrifted windows of a few hundred rows reach a normalized
  // Wasserstein of 0.1 by chance alone (docs/monitoring.md, "False
  // alarms"), and the test bounds that rate by this value per window,
  // whatever the window's size: 50 windows stay free of false alarms with
  // probability 99.5%. A value above 1 turns the guard off.
  double distance_max_pvalue = 1e-4;
  // PSI levels: warn raises FeatureDrift::warn whatever the method; alert is
  // the drift level of the psi method.
  double psi_warn = 0.1;
  double psi_alert = 0.25;
  // A window with fewer non-missing values decides nothing (see
  // FeatureDrift::insufficient).
  int64_t min_window_rows = 30;
};

// Thresholds for every feature, with overrides by feature name (the
// prediction's profile is looked up by its name too).
struct DriftPolicy {
  DriftThresholds defaults;
  std::map<std::string, DriftThresholds, std::less<>> features;

  const DriftThresholds& For(std::string_view feature) const;
};

// The drift of one feature (or of the prediction) in a window. Statistics
// that do not apply to the feature's kind are absent, and so is every
// statistic when the window has no non-missing value.
struct FeatureDrift {
  std::string name;  // set by CompareProfiles
  bool numeric = true;
  std::optional<double> psi;          // over the baseline's bins / categories
  std::optional<double> js;           // Jensen-Shannon distance, base 2
  std::optional<double> ks;           // numeric: KS statistic of the sketches
  std::optional<double> ks_pvalue;    // numeric
  std::optional<double> wasserstein;  // numeric: normalized
  std::optional<double> chi2_pvalue;  // categorical
  double missing_fraction = 0;        // of the window's values
  DriftMethod method = DriftMethod::kAuto;  // the one applied, never kAuto
  // The statistic `method` decides on (a p-value for ks and chi2, where
  // lower means more drift; a distance otherwise).
  std::optional<double> score;
  // The window has fewer non-missing values than min_window_rows: drift
  // and warn stay false, whatever the statistics say.
  bool insufficient = false;
  bool drift = false;
  // drift, or PSI at or above psi_warn.
  bool warn = false;
};

// Compares a window to its baseline (the window made with
// baseline.EmptyLike(), or merged from such windows). PSI and Jensen-Shannon
// use the bins; KS and Wasserstein the two quantile sketches' Items(), so
// they carry the sketches' rank error (quantile_sketch.h): each CDF is off
// by at most RankError(k), the KS statistic by the sum of the two. The
// Wasserstein distance is normalized by the baseline's standard deviation
// (a constant baseline: by the range of both profiles pooled).
// InvalidArgument when the baseline has no values, the bins differ, or the
// method is chi2.
absl::StatusOr<FeatureDrift> CompareNumeric(const NumericProfile& baseline,
                                            const NumericProfile& window,
                                            const DriftThresholds& thresholds);

// Compares category counts over the buckets: each top-k baseline category,
// "other" (baseline categories outside the top-k) and "unseen" (categories
// the baseline never saw; ChiSquareTest pools it). InvalidArgument when the
// baseline has no values, the top-k categories differ, or the method is ks
// or wasserstein.
absl::StatusOr<FeatureDrift> CompareCategorical(
    const CategoricalProfile& baseline, const CategoricalProfile& window,
    const DriftThresholds& thresholds);

// Compares every feature of the baseline, and the prediction when the
// baseline has one, with policy.For(name). InvalidArgument naming the
// feature when the window lacks it or holds another kind.
absl::StatusOr<std::vector<FeatureDrift>> CompareProfiles(
    const ProfileSet& baseline, const ProfileSet& window,
    const DriftPolicy& policy);

// {"name", "kind": "numeric" | "categorical", "method", "score", "psi",
//  "js", "ks", "ks_pvalue", "wasserstein" | "chi2_pvalue",
//  "missing_fraction", "insufficient", "drift", "warn"}; absent statistics
// are left out.
nlohmann::json ToJson(const FeatureDrift& drift);

}  // namespace slipway

#endif  // SLIPWAY_STATS_DRIFT_H_
