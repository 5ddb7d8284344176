// Bootstrap comparison of two models on labelled rows: how much better the
// challenger is than the champion on an evaluation metric, with a confidence
// interval, and the promotion decision a policy's (metric, min_gain,
// confidence) draws from it. Challenger evaluation before any traffic and
// canary and rollback comparisons from feedback both run on this.
//
// Two kinds, one result (MetricComparison) and one decision:
// - Paired (ComparePaired): both models are scored on the same rows, and
//   every resample draws the same rows (with replacement) for both, so the
//   variation the two models share (hard rows, easy rows) cancels out. This
//   is the holdout comparison.
// - Independent (CompareIndependent): each model is scored on its own rows
//   (each answered its share of live traffic and got feedback), and each
//   resample draws each side's rows independently, so the interval carries
//   both sides' sampling variation and is wider than a paired one would be.
//
// Thread safety: every function is pure and safe to call concurrently.
#ifndef SLIPWAY_STATS_BOOTSTRAP_H_
#define SLIPWAY_STATS_BOOTSTRAP_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace slipway {

// The evaluation metrics a promotion policy compares, with the names of the
// app spec's `evaluate.metrics` and `policy.promote.metric`.
enum class EvaluationMetric {
  kAuc,       // "auc": binary, scores of any scale (higher is better)
  kLogLoss,   // "logloss": binary, P(class 1) (lower is better)
  kAccuracy,  // "accuracy": binary, P(class 1) > 0.5 (higher is better)
  kRmse,      // "rmse": regression (lower is better)
  kMae,       // "mae": regression (lower is better)
  kR2,        // "r2": regression (higher is better)
};

// "auc", "logloss", "accuracy", "rmse", "mae", "r2".
std::string_view EvaluationMetricName(EvaluationMetric metric);

// InvalidArgument listing the valid names when `name` is none of them.
absl::StatusOr<EvaluationMetric> ParseEvaluationMetric(std::string_view name);

// True for auc, accuracy and r2; false for logloss, rmse and mae.
bool HigherIsBetter(EvaluationMetric metric);

// True for auc, logloss and accuracy (labels 0/1, scores P(class 1)).
bool IsClassificationMetric(EvaluationMetric metric);

struct BootstrapOptions {
  // At least 100. The interval's Monte Carlo error shrinks as
  // 1/sqrt(resamples): 2,000 puts each bound within a few percent of the
  // interval's width of its limit.
  int resamples = 2000;
  // Two-sided, in (0, 1).
  double confidence = 0.95;
  // The same seed, rows and scores give the same result on every platform.
  uint64_t seed = 1;
};

struct MetricComparison {
  std::string metric;  // its name, as EvaluationMetricName
  // True for ComparePaired (one set of rows scored by both models), false
  // for CompareIndependent (each model on its own rows).
  bool paired = true;
  // Paired: the shared row count, and champion_rows == challenger_rows ==
  // rows. Independent: each side's row count, and rows is their sum.
  int64_t rows = 0;
  int64_t champion_rows = 0;
  int64_t challenger_rows = 0;
  // The metric of each model on all its rows (as stats/metrics.h computes).
  double champion = 0;
  double challenger = 0;
  // challenger - champion, in the metric's units.
  double difference = 0;
  // `difference` signed so that a positive gain means the challenger is
  // better: the difference for auc, accuracy, r2; minus it otherwise.
  double gain = 0;
  // The percentile interval of the gain over the resamples, at `confidence`.
  double lower = 0;
  double upper = 0;
  double confidence = 0;
  // The fraction of resamples in which the gain is > 0.
  double probability_better = 0;
  // Resamples used: those requested, less the AUC resamples that drew rows
  // of one class only on some side (AUC is undefined there).
  int resamples = 0;
};

// {"metric", "paired", "rows", "champion_rows", "challenger_rows",
//  "champion", "challenger", "difference", "gain", "lower", "upper",
//  "confidence", "probability_better", "resamples"}.
nlohmann::json ToJson(const MetricComparison& comparison);

// Compares the challenger's scores with the champion's on `metric`
// ("auc", "logloss", "accuracy", "rmse", "mae", "r2").
//
// Classification metrics take labels 0/1 and scores P(class 1) (any finite
// score for auc); accuracy counts a row as predicted positive when its score
// is > 0.5. Regression metrics take finite labels and predictions.
//
// Each resample draws `rows` row indices uniformly with replacement (the
// same draw for both models), held as a count per row: every metric is then
// a weighted sum over the rows, and AUC a weighted Mann-Whitney statistic
// (tied scores count one half) over each model's scores sorted once, so a
// resample costs O(rows) for every metric. The draws come from a
// counter-based SplitMix64 stream keyed by `options.seed`, independent of
// any platform's random number library. The interval is the percentile
// interval of the resampled gains: their (1 - confidence) / 2 and
// (1 + confidence) / 2 quantiles, interpolated linearly between order
// statistics (numpy.percentile's default, as scipy.stats.bootstrap's
// method='percentile').
//
// InvalidArgument naming the problem when: the three vectors' sizes differ,
// there are no rows, the metric is unknown, a classification label is not
// 0/1, a logloss or accuracy score is outside [0, 1], a score or regression
// label is not finite, the confidence is not in (0, 1), resamples < 100, the
// rows hold one class only for auc, or fewer than 100 resamples hold both
// classes (too few rows of the rarer class for an AUC interval).
absl::StatusOr<MetricComparison> ComparePaired(
    std::string_view metric, std::span<const double> labels,
    std::span<const double> champion_scores,
    std::span<const double> challenger_scores,
    const BootstrapOptions& options = {});

// Compares two models each scored on its own labelled rows (a canary's share
// of traffic against the champion's): every resample draws
// champion_labels.size() rows with replacement from the champion's rows and,
// independently, challenger_labels.size() from the challenger's, and the gain
// is the challenger's metric minus the champion's (signed as in
// ComparePaired). Same metrics, checks, seed stream and percentile interval
// as ComparePaired: the champion's draws are those ComparePaired makes for
// rows of its size, and the challenger's come from a second SplitMix64
// stream keyed by a hash of `options.seed`. Each side's metric on a resample
// is a weighted sum over its own rows (AUC a weighted Mann-Whitney pass over
// that side's rows, sorted once), so a resample costs O(rows).
//
// InvalidArgument as ComparePaired, with the message naming the side
// ("challenger rows: label at row 3 is 2; ..."), and when a side has no
// rows or its labels and scores differ in size. AUC resamples that drew one
// class only on either side are skipped; fewer than 100 usable ones is
// InvalidArgument.
absl::StatusOr<MetricComparison> CompareIndependent(
    std::string_view metric, std::span<const double> champion_labels,
    std::span<const double> champion_scores,
    std::span<const double> challenger_labels,
    std::span<const double> challenger_scores,
    const BootstrapOptions& options = {});

enum class PromotionDecision {
  // The whole interval of the gain is above min_gain.
  kPromote,
  // The whole interval is at or below min_gain: the challenger does not
  // bring the required gain (it may be worse, equal, or better by less).
  kKeepChampion,
  // The interval holds min_gain: these rows cannot tell; more labelled rows
  // narrow the interval until one of the above holds.
  kInconclusive,
};

// "promote", "keep_champion", "inconclusive".
std::string_view PromotionDecisionName(PromotionDecision decision);

struct PromotionVerdict {
  PromotionDecision decision = PromotionDecision::kInconclusive;
  // The numbers behind the decision, for the audit log and the app's
  // history, e.g. "auc gain 0.021 (95% CI 0.008 to 0.034) exceeds min_gain
  // 0.005 over 2,000 labelled rows (challenger 0.861, champion 0.840)";
  // an independent comparison counts each side's rows: "... over 1,200
  // champion and 300 challenger labelled rows ...".
  std::string reason;
};

// Decides on `comparison` (paired or independent) against the policy's
// min_gain (>= 0, in the metric's units):
//   lower > min_gain   -> kPromote
//   upper <= min_gain  -> kKeepChampion
//   otherwise          -> kInconclusive
// Each of the first two is a one-sided decision at confidence
// (1 + comparison.confidence) / 2 (97.5% for a 95% interval). Identical
// models give the interval [0, 0] and keep the champion.
PromotionVerdict DecidePromotion(const MetricComparison& comparison,
                                 double min_gain);

}  // namespace slipway

#endif  // SLIPWAY_STATS_BOOTSTRAP_H_
