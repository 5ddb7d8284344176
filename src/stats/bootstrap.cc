#include "stats/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/status.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

constexpr EvaluationMetric kMetrics[] = {
    EvaluationMetric::kAuc,      EvaluationMetric::kLogLoss,
    EvaluationMetric::kAccuracy, EvaluationMetric::kRmse,
    EvaluationMetric::kMae,      EvaluationMetric::kR2};

constexpr int kMinResamples = 100;
constexpr double kProbabilityClip = 1e-15;  // as LogLoss in stats/metrics.h

// Row counts of one resample, indexed by slot (see the metrics below).
using Counts = std::vector<uint32_t>;

// The metric of both models on the rows weighted by a resample's counts.
struct ModelPair {
  double champion = 0;
  double challenger = 0;
};

// ---------------------------------------------------------------------------
// Resampling.

constexpr uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ULL;

uint64_t SplitMix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Draws resample `resample` (0-based) into `counts`: counts.size() slots
// drawn uniformly with replacement. The draws are outputs resample * n ..
// resample * n + n - 1 of the SplitMix64 sequence started at `seed`, each
// mapped to a slot by Lemire's multiply-shift (bias below n / 2^64), so any
// resample can be recomputed alone and no platform library is involved.
void DrawResample(uint64_t seed, uint64_t resample, Counts& counts) {
  const uint64_t n = counts.size();
  std::fill(counts.begin(), counts.end(), 0u);
  uint64_t state = seed + (resample * n) * kGoldenGamma;
  for (uint64_t j = 0; j < n; ++j) {
    state += kGoldenGamma;
    const uint64_t slot = static_cast<uint64_t>(
        (static_cast<unsigned __int128>(SplitMix64(state)) * n) >> 64);
    ++counts[slot];
  }
}

// The seed of the challenger's draws in an independent comparison. The
// champion's draws read the SplitMix64 sequence at seed + t * gamma for
// t = 1 .. resamples * rows; hashing the seed starts the challenger's at an
// unrelated point of that 2^64-long cycle, so the two streams share a draw
// with probability about resamples * (rows of both) / 2^64. The hash is a
// bijection: distinct seeds keep distinct challenger streams.
constexpr uint64_t kChallengerStream = 0x6a09e667f3bcc909ULL;

uint64_t ChallengerSeed(uint64_t seed) {
  return SplitMix64(seed ^ kChallengerStream);
}

// ---------------------------------------------------------------------------
// Metrics on weighted rows. Each metric keeps what it needs per row in the
// order it reads fastest, and assigns each row a slot; a resample's counts
// are indexed by slot. Slots are a permutation of rows, so drawing slots
// uniformly is drawing rows uniformly. A one-model metric's Evaluate gives
// its value on the weighted rows, empty where it is undefined; a paired
// kernel's gives both models' values on the same weighted rows.

// The mean of a per-row value (logloss, accuracy, mae), or the root of the
// mean of a per-row squared error (rmse). Slot = row.
class MeanMetric {
 public:
  MeanMetric(std::vector<double> values, bool root)
      : values_(std::move(values)), root_(root) {}

  std::optional<double> Evaluate(const Counts& counts) const {
    double sum = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      sum += static_cast<double>(counts[i]) * values_[i];
    }
    const double mean = sum / static_cast<double>(counts.size());
    return root_ ? std::sqrt(mean) : mean;
  }

 private:
  std::vector<double> values_;
  bool root_;
};

// 1 - SSE / SST with the weighted mean of the labels; labels constant over
// the drawn rows give 1 for a perfect fit and 0 otherwise, as R2 in
// stats/metrics.h. Slot = row.
class R2Metric {
 public:
  R2Metric(std::span<const double> labels, std::vector<double> squared_errors)
      : labels_(labels.begin(), labels.end()),
        squared_errors_(std::move(squared_errors)) {}

  std::optional<double> Evaluate(const Counts& counts) const {
    double sum = 0;
    double lowest = std::numeric_limits<double>::infinity();
    double highest = -lowest;
    for (size_t i = 0; i < counts.size(); ++i) {
      if (counts[i] == 0) continue;
      sum += counts[i] * labels_[i];
      lowest = std::min(lowest, labels_[i]);
      highest = std::max(highest, labels_[i]);
    }
    const double mean = sum / static_cast<double>(counts.size());
    double total = 0;
    double sse = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      const double w = counts[i];
      const double d = labels_[i] - mean;
      total += w * d * d;
      sse += w * squared_errors_[i];
    }
    if (lowest == highest) return sse == 0 ? 1.0 : 0.0;
    return 1 - sse / total;
  }

 private:
  std::vector<double> labels_;
  std::vector<double> squared_errors_;
};

// Both models' metric on the same weighted rows, for metrics whose slot is
// the row (MeanMetric, R2Metric).
template <typename Metric>
class PairedKernel {
 public:
  PairedKernel(Metric champion, Metric challenger)
      : champion_(std::move(champion)), challenger_(std::move(challenger)) {}

  std::optional<ModelPair> Evaluate(const Counts& counts) const {
    const std::optional<double> a = champion_.Evaluate(counts);
    const std::optional<double> b = challenger_.Evaluate(counts);
    if (!a.has_value() || !b.has_value()) return std::nullopt;
    return ModelPair{*a, *b};
  }

 private:
  Metric champion_;
  Metric challenger_;
};

// One model's rows in ascending score order, for a weighted Mann-Whitney
// statistic in one pass.
struct RankedRows {
  std::vector<uint8_t> positive;   // label of the k-th lowest score
  std::vector<uint8_t> new_score;  // 1 where the k-th score differs from
                                   // the one before (a tie group starts)
  std::vector<uint32_t> slot;      // slot of the k-th lowest score
};

RankedRows Rank(std::span<const double> labels, std::span<const double> scores,
                const std::vector<uint32_t>& slot_of_row) {
  const size_t n = labels.size();
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return scores[a] < scores[b];
  });
  RankedRows ranked;
  ranked.positive.resize(n);
  ranked.new_score.resize(n);
  ranked.slot.resize(n);
  for (size_t k = 0; k < n; ++k) {
    ranked.positive[k] = labels[order[k]] == 1.0;
    ranked.new_score[k] = k == 0 || scores[order[k]] != scores[order[k - 1]];
    ranked.slot[k] = slot_of_row[order[k]];
  }
  return ranked;
}

// AUC with integer row weights: each positive counts the negative weight
// strictly below its score plus half the negative weight tied with it,
// times its own weight (twice that, to stay in integers). Empty when the
// weighted rows hold one class only. `weight(k)` is the weight of the k-th
// lowest score.
template <typename Weight>
std::optional<double> WeightedAuc(const RankedRows& ranked, Weight weight) {
  const size_t n = ranked.positive.size();
  int64_t twice_u = 0;
  int64_t negatives_below = 0;
  int64_t positives = 0;
  int64_t group_positives = 0;
  int64_t group_negatives = 0;
  for (size_t k = 0; k < n; ++k) {
    if (ranked.new_score[k]) {
      twice_u += group_positives * (2 * negatives_below + group_negatives);
      negatives_below += group_negatives;
      positives += group_positives;
      group_positives = 0;
      group_negatives = 0;
    }
    const int64_t w = weight(k);
    const int64_t wp = w & -static_cast<int64_t>(ranked.positive[k]);
    group_positives += wp;
    group_negatives += w - wp;
  }
  twice_u += group_positives * (2 * negatives_below + group_negatives);
  negatives_below += group_negatives;
  positives += group_positives;
  if (positives == 0 || negatives_below == 0) return std::nullopt;
  return static_cast<double>(twice_u) / (2.0 * static_cast<double>(positives) *
                                         static_cast<double>(negatives_below));
}

// Slots are the champion's ascending score order, so the champion's pass
// reads the counts in sequence and only the challenger's gathers them.
class AucKernel {
 public:
  AucKernel(std::span<const double> labels, std::span<const double> champion,
            std::span<const double> challenger) {
    const size_t n = labels.size();
    std::vector<uint32_t> identity(n);
    std::iota(identity.begin(), identity.end(), 0u);
    champion_ = Rank(labels, champion, identity);
    // The champion's k-th lowest score is row champion_.slot[k]; it becomes
    // slot k.
    std::vector<uint32_t> slot_of_row(n);
    for (size_t k = 0; k < n; ++k) slot_of_row[champion_.slot[k]] = k;
    champion_.slot.clear();
    challenger_ = Rank(labels, challenger, slot_of_row);
  }

  std::optional<ModelPair> Evaluate(const Counts& counts) const {
    std::optional<double> a =
        WeightedAuc(champion_, [&](size_t k) { return counts[k]; });
    if (!a.has_value()) return std::nullopt;
    const uint32_t* slot = challenger_.slot.data();
    std::optional<double> b =
        WeightedAuc(challenger_, [&](size_t k) { return counts[slot[k]]; });
    return ModelPair{*a, *b};
  }

 private:
  RankedRows champion_;
  RankedRows challenger_;
};

// One model's AUC on its own rows. Slots are its ascending score order, so
// a pass reads the counts in sequence.
class AucMetric {
 public:
  AucMetric(std::span<const double> labels, std::span<const double> scores) {
    std::vector<uint32_t> identity(labels.size());
    std::iota(identity.begin(), identity.end(), 0u);
    ranked_ = Rank(labels, scores, identity);
    ranked_.slot.clear();
  }

  std::optional<double> Evaluate(const Counts& counts) const {
    return WeightedAuc(ranked_, [&](size_t k) { return counts[k]; });
  }

 private:
  RankedRows ranked_;
};

// ---------------------------------------------------------------------------
// Validation.

std::string FormatValue(double v) { return absl::StrFormat("%.17g", v); }

absl::Status CheckOptions(const BootstrapOptions& options) {
  if (!(options.confidence > 0 && options.confidence < 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("confidence is %s; it must be in (0, 1), e.g. 0.95",
                        FormatValue(options.confidence)));
  }
  if (options.resamples < kMinResamples) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "resamples is %d; a bootstrap interval needs at least %d (2000 is "
        "the default)",
        options.resamples, kMinResamples));
  }
  return absl::OkStatus();
}

// Counts and slots are 32-bit.
absl::Status CheckRowCount(size_t rows) {
  if (rows > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d rows; a comparison takes at most %d", rows,
                        std::numeric_limits<uint32_t>::max()));
  }
  return absl::OkStatus();
}

absl::Status CheckLabels(EvaluationMetric metric,
                         std::span<const double> labels) {
  const bool binary = IsClassificationMetric(metric);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (binary && labels[i] != 0.0 && labels[i] != 1.0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "label at row %d is %s; %s compares binary classifiers, so labels "
          "must be 0 or 1",
          i, FormatValue(labels[i]), EvaluationMetricName(metric)));
    }
    if (!std::isfinite(labels[i])) {
      return absl::InvalidArgumentError(
          absl::StrFormat("label at row %d is %s; labels must be finite", i,
                          FormatValue(labels[i])));
    }
  }
  return absl::OkStatus();
}

// `what` names the scores in the message: "champion score at row 3 ...".
absl::Status CheckScores(EvaluationMetric metric, std::string_view what,
                         std::span<const double> scores) {
  const bool probability = metric == EvaluationMetric::kLogLoss ||
                           metric == EvaluationMetric::kAccuracy;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s at row %d is %s; scores must be finite numbers",
                          what, i, FormatValue(scores[i])));
    }
    if (probability && (scores[i] < 0 || scores[i] > 1)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s at row %d is %s; %s takes the probability of class 1, "
          "in [0, 1]",
          what, i, FormatValue(scores[i]), EvaluationMetricName(metric)));
    }
  }
  return absl::OkStatus();
}

// For auc. REQUIRES: the labels are 0 or 1.
absl::Status CheckBothClasses(std::span<const double> labels) {
  const size_t positives = std::count(labels.begin(), labels.end(), 1.0);
  if (positives == 0 || positives == labels.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "every one of the %d labels is %d; auc needs rows of both classes",
        labels.size(), positives == 0 ? 0 : 1));
  }
  return absl::OkStatus();
}

// One model's own labelled rows, for an independent comparison.
absl::Status CheckSide(EvaluationMetric metric, std::span<const double> labels,
                       std::span<const double> scores) {
  if (labels.size() != scores.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%d labels and %d scores; the model must score every labelled row",
        labels.size(), scores.size()));
  }
  if (labels.empty()) {
    return absl::InvalidArgumentError(
        "no rows: comparing two models needs labelled rows scored by each");
  }
  RETURN_IF_ERROR(CheckRowCount(labels.size()));
  RETURN_IF_ERROR(CheckLabels(metric, labels));
  RETURN_IF_ERROR(CheckScores(metric, "score", scores));
  if (metric == EvaluationMetric::kAuc) {
    RETURN_IF_ERROR(CheckBothClasses(labels));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Per-row values of one model's scores.

// The loss (logloss), correctness (accuracy), squared error (rmse) or
// absolute error (mae) of each row, whose mean (or its root, for rmse) is
// the metric.
std::vector<double> PerRowValues(EvaluationMetric metric,
                                 std::span<const double> labels,
                                 std::span<const double> scores) {
  std::vector<double> values(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    const double y = labels[i];
    const double s = scores[i];
    switch (metric) {
      case EvaluationMetric::kLogLoss: {
        const double p = y == 1.0 ? s : 1 - s;
        values[i] =
            -std::log(std::clamp(p, kProbabilityClip, 1 - kProbabilityClip));
        break;
      }
      case EvaluationMetric::kAccuracy:
        values[i] = (s > 0.5) == (y == 1.0) ? 1.0 : 0.0;
        break;
      case EvaluationMetric::kRmse:
        values[i] = (y - s) * (y - s);
        break;
      default:  // mae
        values[i] = std::abs(y - s);
        break;
    }
  }
  return values;
}

std::vector<double> SquaredErrors(std::span<const double> labels,
                                  std::span<const double> scores) {
  std::vector<double> values(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    const double e = labels[i] - scores[i];
    values[i] = e * e;
  }
  return values;
}

// ---------------------------------------------------------------------------
// The interval.

// numpy.percentile(sorted, 100 * q) with its default linear interpolation.
// REQUIRES: `sorted` is ascending and not empty; 0 <= q <= 1.
double Percentile(const std::vector<double>& sorted, double q) {
  const double h = q * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(h));
  if (below + 1 >= sorted.size()) return sorted.back();
  const double fraction = h - static_cast<double>(below);
  return sorted[below] + fraction * (sorted[below + 1] - sorted[below]);
}

// Fills `result`'s metric, point estimates, interval, probability_better
// and resamples from both models' metric on all their rows (`point`) and on
// resample r = 0 .. options.resamples - 1 (`evaluate(r)`, empty where AUC is
// undefined). `rows` names the rows for the error of too few usable
// resamples.
template <typename EvaluateResample>
absl::Status Summarize(EvaluationMetric metric, const ModelPair& point,
                       EvaluateResample evaluate, std::string_view rows,
                       const BootstrapOptions& options,
                       MetricComparison& result) {
  result.metric = std::string(EvaluationMetricName(metric));
  result.confidence = options.confidence;
  const double sign = HigherIsBetter(metric) ? 1.0 : -1.0;
  result.champion = point.champion;
  result.challenger = point.challenger;
  result.difference = point.challenger - point.champion;
  result.gain = sign * result.difference;

  std::vector<double> gains;
  gains.reserve(options.resamples);
  for (int r = 0; r < options.resamples; ++r) {
    const std::optional<ModelPair> pair = evaluate(static_cast<uint64_t>(r));
    if (!pair.has_value()) continue;
    gains.push_back(sign * (pair->challenger - pair->champion));
  }
  if (gains.size() < static_cast<size_t>(kMinResamples)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "only %d of %d resamples of %s hold both classes; an %s interval "
        "needs at least %d: add labelled rows of the rarer class",
        gains.size(), options.resamples, rows, result.metric, kMinResamples));
  }
  std::sort(gains.begin(), gains.end());
  const double tail = (1 - options.confidence) / 2;
  result.lower = Percentile(gains, tail);
  result.upper = Percentile(gains, 1 - tail);
  const size_t better =
      gains.end() - std::upper_bound(gains.begin(), gains.end(), 0.0);
  result.probability_better =
      static_cast<double>(better) / static_cast<double>(gains.size());
  result.resamples = static_cast<int>(gains.size());
  return absl::OkStatus();
}

// Every resample draws the same rows for both models.
template <typename Kernel>
absl::StatusOr<MetricComparison> ResamplePaired(
    EvaluationMetric metric, const Kernel& kernel, size_t rows,
    const BootstrapOptions& options) {
  MetricComparison result;
  result.paired = true;
  result.rows = static_cast<int64_t>(rows);
  result.champion_rows = result.rows;
  result.challenger_rows = result.rows;
  Counts counts(rows, 1u);
  // The callers checked that the full rows define the metric.
  const ModelPair point = *kernel.Evaluate(counts);
  auto evaluate = [&](uint64_t r) {
    DrawResample(options.seed, r, counts);
    return kernel.Evaluate(counts);
  };
  RETURN_IF_ERROR(Summarize(metric, point, evaluate,
                            absl::StrFormat("the %d rows", rows), options,
                            result));
  return result;
}

// Every resample draws each model's rows from its own stream.
template <typename Metric>
absl::StatusOr<MetricComparison> ResampleIndependent(
    EvaluationMetric metric, const Metric& champion, size_t champion_rows,
    const Metric& challenger, size_t challenger_rows,
    const BootstrapOptions& options) {
  MetricComparison result;
  result.paired = false;
  result.champion_rows = static_cast<int64_t>(champion_rows);
  result.challenger_rows = static_cast<int64_t>(challenger_rows);
  result.rows = result.champion_rows + result.challenger_rows;
  Counts champion_counts(champion_rows, 1u);
  Counts challenger_counts(challenger_rows, 1u);
  // The callers checked that each side's rows define the metric.
  const ModelPair point{*champion.Evaluate(champion_counts),
                        *challenger.Evaluate(challenger_counts)};
  const uint64_t challenger_seed = ChallengerSeed(options.seed);
  // Each draw depends on (seed, r) alone, so skipping the challenger's draw
  // when the champion's side is undefined changes no other resample.
  auto evaluate = [&](uint64_t r) -> std::optional<ModelPair> {
    DrawResample(options.seed, r, champion_counts);
    const std::optional<double> a = champion.Evaluate(champion_counts);
    if (!a.has_value()) return std::nullopt;
    DrawResample(challenger_seed, r, challenger_counts);
    const std::optional<double> b = challenger.Evaluate(challenger_counts);
    if (!b.has_value()) return std::nullopt;
    return ModelPair{*a, *b};
  };
  RETURN_IF_ERROR(Summarize(
      metric, point, evaluate,
      absl::StrFormat("the %d champion rows and the %d challenger rows",
                      champion_rows, challenger_rows),
      options, result));
  return result;
}

// ---------------------------------------------------------------------------
// Reasons.

// "2,000".
std::string GroupDigits(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// Decimals that show the interval's width to two significant digits (at
// least one decimal and three when the interval is empty), so a gain of
// 0.0004 does not print as 0.000 and an rmse of 1234.5 not as 1234.500000.
int Decimals(double width) {
  if (!(width > 0)) return 3;
  const int d = 1 - static_cast<int>(std::floor(std::log10(width)));
  return std::clamp(d, 1, 12);
}

std::string Fixed(double v, int decimals) {
  std::string s = absl::StrFormat("%.*f", decimals, v);
  if (s.find_first_not_of("-0.") == std::string::npos)
    s = s.substr(s[0] == '-');
  return s;
}

}  // namespace

std::string_view EvaluationMetricName(EvaluationMetric metric) {
  switch (metric) {
    case EvaluationMetric::kAuc:
      return "auc";
    case EvaluationMetric::kLogLoss:
      return "logloss";
    case EvaluationMetric::kAccuracy:
      return "accuracy";
    case EvaluationMetric::kRmse:
      return "rmse";
    case EvaluationMetric::kMae:
      return "mae";
    case EvaluationMetric::kR2:
      return "r2";
  }
  return "unknown";
}

absl::StatusOr<EvaluationMetric> ParseEvaluationMetric(std::string_view name) {
  std::string valid;
  for (EvaluationMetric metric : kMetrics) {
    if (EvaluationMetricName(metric) == name) return metric;
    if (!valid.empty()) valid += ", ";
    valid += EvaluationMetricName(metric);
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "unknown metric '%s'; valid metrics: %s", std::string(name), valid));
}

bool HigherIsBetter(EvaluationMetric metric) {
  return metric == EvaluationMetric::kAuc ||
         metric == EvaluationMetric::kAccuracy ||
         metric == EvaluationMetric::kR2;
}

bool IsClassificationMetric(EvaluationMetric metric) {
  return metric == EvaluationMetric::kAuc ||
         metric == EvaluationMetric::kLogLoss ||
         metric == EvaluationMetric::kAccuracy;
}

nlohmann::json ToJson(const MetricComparison& comparison) {
  return nlohmann::json{
      {"metric", comparison.metric},
      {"paired", comparison.paired},
      {"rows", comparison.rows},
      {"champion_rows", comparison.champion_rows},
      {"challenger_rows", comparison.challenger_rows},
      {"champion", comparison.champion},
      {"challenger", comparison.challenger},
      {"difference", comparison.difference},
      {"gain", comparison.gain},
      {"lower", comparison.lower},
      {"upper", comparison.upper},
      {"confidence", comparison.confidence},
      {"probability_better", comparison.probability_better},
      {"resamples", comparison.resamples},
  };
}

absl::StatusOr<MetricComparison> ComparePaired(
    std::string_view metric_name, std::span<const double> labels,
    std::span<const double> champion_scores,
    std::span<const double> challenger_scores,
    const BootstrapOptions& options) {
  ASSIGN_OR_RETURN(const EvaluationMetric metric,
                   ParseEvaluationMetric(metric_name));
  RETURN_IF_ERROR(CheckOptions(options));
  if (labels.size() != champion_scores.size() ||
      labels.size() != challenger_scores.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%d labels, %d champion scores and %d challenger scores; both models "
        "must score every labelled row",
        labels.size(), champion_scores.size(), challenger_scores.size()));
  }
  if (labels.empty()) {
    return absl::InvalidArgumentError(
        "no rows: comparing two models needs labelled rows scored by both");
  }
  RETURN_IF_ERROR(CheckRowCount(labels.size()));
  RETURN_IF_ERROR(CheckLabels(metric, labels));
  RETURN_IF_ERROR(CheckScores(metric, "champion score", champion_scores));
  RETURN_IF_ERROR(CheckScores(metric, "challenger score", challenger_scores));

  const size_t n = labels.size();
  switch (metric) {
    case EvaluationMetric::kAuc:
      RETURN_IF_ERROR(CheckBothClasses(labels));
      return ResamplePaired(
          metric, AucKernel(labels, champion_scores, challenger_scores), n,
          options);
    case EvaluationMetric::kLogLoss:
    case EvaluationMetric::kAccuracy:
    case EvaluationMetric::kRmse:
    case EvaluationMetric::kMae: {
      const bool root = metric == EvaluationMetric::kRmse;
      return ResamplePaired(
          metric,
          PairedKernel<MeanMetric>(
              MeanMetric(PerRowValues(metric, labels, champion_scores), root),
              MeanMetric(PerRowValues(metric, labels, challenger_scores),
                         root)),
          n, options);
    }
    case EvaluationMetric::kR2:
      return ResamplePaired(
          metric,
          PairedKernel<R2Metric>(
              R2Metric(labels, SquaredErrors(labels, champion_scores)),
              R2Metric(labels, SquaredErrors(labels, challenger_scores))),
          n, options);
  }
  return absl::InternalError("unhandled metric");
}

absl::StatusOr<MetricComparison> CompareIndependent(
    std::string_view metric_name, std::span<const double> champion_labels,
    std::span<const double> champion_scores,
    std::span<const double> challenger_labels,
    std::span<const double> challenger_scores,
    const BootstrapOptions& options) {
  ASSIGN_OR_RETURN(const EvaluationMetric metric,
                   ParseEvaluationMetric(metric_name));
  RETURN_IF_ERROR(CheckOptions(options));
  RETURN_IF_ERROR(CheckSide(metric, champion_labels, champion_scores),
                  "champion rows");
  RETURN_IF_ERROR(CheckSide(metric, challenger_labels, challenger_scores),
                  "challenger rows");

  const size_t champion_rows = champion_labels.size();
  const size_t challenger_rows = challenger_labels.size();
  switch (metric) {
    case EvaluationMetric::kAuc:
      return ResampleIndependent(
          metric, AucMetric(champion_labels, champion_scores), champion_rows,
          AucMetric(challenger_labels, challenger_scores), challenger_rows,
          options);
    case EvaluationMetric::kLogLoss:
    case EvaluationMetric::kAccuracy:
    case EvaluationMetric::kRmse:
    case EvaluationMetric::kMae: {
      const bool root = metric == EvaluationMetric::kRmse;
      return ResampleIndependent(
          metric,
          MeanMetric(PerRowValues(metric, champion_labels, champion_scores),
                     root),
          champion_rows,
          MeanMetric(PerRowValues(metric, challenger_labels, challenger_scores),
                     root),
          challenger_rows, options);
    }
    case EvaluationMetric::kR2:
      return ResampleIndependent(
          metric,
          R2Metric(champion_labels,
                   SquaredErrors(champion_labels, champion_scores)),
          champion_rows,
          R2Metric(challenger_labels,
                   SquaredErrors(challenger_labels, challenger_scores)),
          challenger_rows, options);
  }
  return absl::InternalError("unhandled metric");
}

std::string_view PromotionDecisionName(PromotionDecision decision) {
  switch (decision) {
    case PromotionDecision::kPromote:
      return "promote";
    case PromotionDecision::kKeepChampion:
      return "keep_champion";
    case PromotionDecision::kInconclusive:
      return "inconclusive";
  }
  return "unknown";
}

PromotionVerdict DecidePromotion(const MetricComparison& comparison,
                                 double min_gain) {
  PromotionVerdict verdict;
  std::string_view comparison_text;
  if (comparison.lower > min_gain) {
    verdict.decision = PromotionDecision::kPromote;
    comparison_text = "exceeds";
  } else if (comparison.upper <= min_gain) {
    verdict.decision = PromotionDecision::kKeepChampion;
    comparison_text = "is at or below";
  } else {
    verdict.decision = PromotionDecision::kInconclusive;
    comparison_text = "is inconclusive against";
  }
  const int decimals = Decimals(comparison.upper - comparison.lower);
  const int value_decimals =
      std::max(decimals, Decimals(std::abs(comparison.difference)));
  // "2,000" when both models scored the same rows, else each side's count.
  const std::string rows =
      comparison.paired
          ? GroupDigits(comparison.rows)
          : absl::StrFormat("%s champion and %s challenger",
                            GroupDigits(comparison.champion_rows),
                            GroupDigits(comparison.challenger_rows));
  verdict.reason = absl::StrFormat(
      "%s gain %s (%s%% CI %s to %s) %s min_gain %s over %s labelled rows "
      "(challenger %s, champion %s)",
      comparison.metric, Fixed(comparison.gain, decimals),
      absl::StrFormat("%g", comparison.confidence * 100),
      Fixed(comparison.lower, decimals), Fixed(comparison.upper, decimals),
      comparison_text, absl::StrFormat("%g", min_gain), rows,
      Fixed(comparison.challenger, value_decimals),
      Fixed(comparison.champion, value_decimals));
  if (verdict.decision == PromotionDecision::kInconclusive) {
    verdict.reason += "; more labelled rows would narrow the interval";
  }
  return verdict;
}

}  // namespace slipway
