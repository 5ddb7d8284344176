#include "stats/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/status.h"

namespace slipway {
namespace {

constexpr double kProbabilityClip = 1e-15;

std::string FormatNumber(double v) {
  std::string s = std::to_string(v);
  // std::to_string prints six decimals; drop the trailing zeros.
  if (s.find('.') != std::string::npos) {
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

absl::Status CheckSizes(size_t labels, size_t predictions) {
  if (labels == 0) {
    return absl::InvalidArgumentError(
        "no rows: a metric needs at least one labelled prediction");
  }
  if (labels != predictions) {
    return absl::InvalidArgumentError("labels has " + std::to_string(labels) +
                                      " values but predictions has " +
                                      std::to_string(predictions) +
                                      "; pass one prediction per label");
  }
  return absl::OkStatus();
}

absl::Status CheckMatrix(size_t labels, size_t probabilities, int num_classes) {
  if (num_classes < 2) {
    return absl::InvalidArgumentError(
        "num_classes is " + std::to_string(num_classes) +
        "; a multiclass metric needs at least 2 classes");
  }
  if (labels == 0) {
    return absl::InvalidArgumentError(
        "no rows: a metric needs at least one labelled prediction");
  }
  const size_t expected = labels * static_cast<size_t>(num_classes);
  if (probabilities != expected) {
    return absl::InvalidArgumentError(
        "probabilities has " + std::to_string(probabilities) +
        " values, expected " + std::to_string(labels) + " rows x " +
        std::to_string(num_classes) + " classes = " + std::to_string(expected) +
        " (row-major)");
  }
  return absl::OkStatus();
}

absl::Status CheckBinaryLabels(std::span<const double> labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0.0 && labels[i] != 1.0) {
      return absl::InvalidArgumentError("label at row " + std::to_string(i) +
                                        " is " + FormatNumber(labels[i]) +
                                        "; binary labels must be 0 or 1");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckClassLabels(std::span<const double> labels, int num_classes) {
  for (size_t i = 0; i < labels.size(); ++i) {
    const double label = labels[i];
    if (!(label >= 0 && label < num_classes) || label != std::floor(label)) {
      return absl::InvalidArgumentError("label at row " + std::to_string(i) +
                                        " is " + FormatNumber(label) +
                                        "; class labels must be integers 0.." +
                                        std::to_string(num_classes - 1));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFiniteLabels(std::span<const double> labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!std::isfinite(labels[i])) {
      return absl::InvalidArgumentError("label at row " + std::to_string(i) +
                                        " is " + FormatNumber(labels[i]) +
                                        "; labels must be finite numbers");
    }
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status CheckPredictions(std::span<const T> predictions) {
  for (size_t i = 0; i < predictions.size(); ++i) {
    if (std::isnan(predictions[i])) {
      return absl::InvalidArgumentError("prediction " + std::to_string(i) +
                                        " is NaN");
    }
  }
  return absl::OkStatus();
}

// Mann-Whitney: the ranks of the positives summed, tied scores sharing the
// mean of their ranks; `positive(i)` and `score(i)` describe row i.
// REQUIRES: both classes occur among the n rows.
template <typename IsPositive, typename Score>
double RankAuc(size_t n, IsPositive positive, Score score) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return score(a) < score(b); });
  double positive_rank_sum = 0;
  size_t positives = 0;
  for (size_t begin = 0; begin < n;) {
    size_t end = begin + 1;
    while (end < n && score(order[end]) == score(order[begin])) ++end;
    // Ranks begin+1 .. end share their mean.
    const double mean_rank = static_cast<double>(begin + 1 + end) / 2;
    for (size_t i = begin; i < end; ++i) {
      if (positive(order[i])) {
        positive_rank_sum += mean_rank;
        ++positives;
      }
    }
    begin = end;
  }
  const double p = static_cast<double>(positives);
  const double u = positive_rank_sum - p * (p + 1) / 2;
  return u / (p * static_cast<double>(n - positives));
}

template <typename T>
absl::StatusOr<double> BinaryAucImpl(std::span<const double> labels,
                                     std::span<const T> scores) {
  RETURN_IF_ERROR(CheckSizes(labels.size(), scores.size()));
  RETURN_IF_ERROR(CheckBinaryLabels(labels));
  RETURN_IF_ERROR(CheckPredictions(scores));
  const size_t positives = std::count(labels.begin(), labels.end(), 1.0);
  if (positives == 0 || positives == labels.size()) {
    return absl::InvalidArgumentError(std::string("every label is ") +
                                      (positives == 0 ? "0" : "1") +
                                      "; AUC needs rows of both classes");
  }
  return RankAuc(
      labels.size(), [&](size_t i) { return labels[i] == 1.0; },
      [&](size_t i) { return scores[i]; });
}

template <typename T>
absl::StatusOr<double> MulticlassAucImpl(std::span<const double> labels,
                                         std::span<const T> probabilities,
                                         int num_classes) {
  RETURN_IF_ERROR(
      CheckMatrix(labels.size(), probabilities.size(), num_classes));
  RETURN_IF_ERROR(CheckClassLabels(labels, num_classes));
  RETURN_IF_ERROR(CheckPredictions(probabilities));
  const size_t k = static_cast<size_t>(num_classes);
  std::vector<size_t> counts(k, 0);
  for (double label : labels) ++counts[static_cast<size_t>(label)];
  for (size_t c = 0; c < k; ++c) {
    if (counts[c] == 0 || counts[c] == labels.size()) {
      return absl::InvalidArgumentError(
          "class " + std::to_string(c) +
          (counts[c] == 0 ? " never occurs" : " is every label") +
          "; one-vs-rest AUC needs rows in and out of each of the " +
          std::to_string(k) + " classes");
    }
  }
  double sum = 0;
  for (size_t c = 0; c < k; ++c) {
    sum += RankAuc(
        labels.size(),
        [&](size_t i) { return labels[i] == static_cast<double>(c); },
        [&](size_t i) { return probabilities[i * k + c]; });
  }
  return sum / static_cast<double>(k);
}

double ClippedLog(double p) {
  return std::log(std::clamp(p, kProbabilityClip, 1 - kProbabilityClip));
}

template <typename T>
absl::StatusOr<double> BinaryLogLossImpl(std::span<const double> labels,
                                         std::span<const T> p1) {
  RETURN_IF_ERROR(CheckSizes(labels.size(), p1.size()));
  RETURN_IF_ERROR(CheckBinaryLabels(labels));
  RETURN_IF_ERROR(CheckPredictions(p1));
  double sum = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const double p = p1[i];
    sum -= labels[i] == 1.0 ? ClippedLog(p) : ClippedLog(1 - p);
  }
  return sum / static_cast<double>(labels.size());
}

template <typename T>
absl::StatusOr<double> MulticlassLogLossImpl(std::span<const double> labels,
                                             std::span<const T> probabilities,
                                             int num_classes) {
  RETURN_IF_ERROR(
      CheckMatrix(labels.size(), probabilities.size(), num_classes));
  RETURN_IF_ERROR(CheckClassLabels(labels, num_classes));
  RETURN_IF_ERROR(CheckPredictions(probabilities));
  const size_t k = static_cast<size_t>(num_classes);
  double sum = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    sum -= ClippedLog(probabilities[i * k + static_cast<size_t>(labels[i])]);
  }
  return sum / static_cast<double>(labels.size());
}

template <typename T>
absl::StatusOr<double> BinaryAccuracyImpl(std::span<const double> labels,
                                          std::span<const T> p1) {
  RETURN_IF_ERROR(CheckSizes(labels.size(), p1.size()));
  RETURN_IF_ERROR(CheckBinaryLabels(labels));
  RETURN_IF_ERROR(CheckPredictions(p1));
  size_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const bool predicted_positive = p1[i] > 0.5;
    if (predicted_positive == (labels[i] == 1.0)) ++correct;
  }
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

template <typename T>
absl::StatusOr<double> MulticlassAccuracyImpl(std::span<const double> labels,
                                              std::span<const T> probabilities,
                                              int num_classes) {
  RETURN_IF_ERROR(
      CheckMatrix(labels.size(), probabilities.size(), num_classes));
  RETURN_IF_ERROR(CheckClassLabels(labels, num_classes));
  RETURN_IF_ERROR(CheckPredictions(probabilities));
  const size_t k = static_cast<size_t>(num_classes);
  size_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const T* row = probabilities.data() + i * k;
    const size_t predicted = std::max_element(row, row + k) - row;
    if (predicted == static_cast<size_t>(labels[i])) ++correct;
  }
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

template <typename T>
absl::Status CheckRegression(std::span<const double> labels,
                             std::span<const T> predictions) {
  RETURN_IF_ERROR(CheckSizes(labels.size(), predictions.size()));
  RETURN_IF_ERROR(CheckFiniteLabels(labels));
  return CheckPredictions(predictions);
}

template <typename T>
absl::StatusOr<double> RmseImpl(std::span<const double> labels,
                                std::span<const T> predictions) {
  RETURN_IF_ERROR(CheckRegression(labels, predictions));
  double sum = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const double e = labels[i] - static_cast<double>(predictions[i]);
    sum += e * e;
  }
  return std::sqrt(sum / static_cast<double>(labels.size()));
}

template <typename T>
absl::StatusOr<double> MaeImpl(std::span<const double> labels,
                               std::span<const T> predictions) {
  RETURN_IF_ERROR(CheckRegression(labels, predictions));
  double sum = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    sum += std::abs(labels[i] - static_cast<double>(predictions[i]));
  }
  return sum / static_cast<double>(labels.size());
}

template <typename T>
absl::StatusOr<double> R2Impl(std::span<const double> labels,
                              std::span<const T> predictions) {
  RETURN_IF_ERROR(CheckRegression(labels, predictions));
  const double n = static_cast<double>(labels.size());
  const double mean = std::accumulate(labels.begin(), labels.end(), 0.0) / n;
  double residual = 0;
  double total = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const double e = labels[i] - static_cast<double>(predictions[i]);
    const double d = labels[i] - mean;
    residual += e * e;
    total += d * d;
  }
  if (total == 0) return residual == 0 ? 1.0 : 0.0;
  return 1 - residual / total;
}

}  // namespace

absl::StatusOr<double> BinaryAuc(std::span<const double> labels,
                                 std::span<const double> scores) {
  return BinaryAucImpl(labels, scores);
}
absl::StatusOr<double> BinaryAuc(std::span<const double> labels,
                                 std::span<const float> scores) {
  return BinaryAucImpl(labels, scores);
}

absl::StatusOr<double> MulticlassAuc(std::span<const double> labels,
                                     std::span<const double> probabilities,
                                     int num_classes) {
  return MulticlassAucImpl(labels, probabilities, num_classes);
}
absl::StatusOr<double> MulticlassAuc(std::span<const double> labels,
                                     std::span<const float> probabilities,
                                     int num_classes) {
  return MulticlassAucImpl(labels, probabilities, num_classes);
}

absl::StatusOr<double> LogLoss(std::span<const double> labels,
                               std::span<const double> p1) {
  return BinaryLogLossImpl(labels, p1);
}
absl::StatusOr<double> LogLoss(std::span<const double> labels,
                               std::span<const float> p1) {
  return BinaryLogLossImpl(labels, p1);
}
absl::StatusOr<double> LogLoss(std::span<const double> labels,
                               std::span<const double> probabilities,
                               int num_classes) {
  return MulticlassLogLossImpl(labels, probabilities, num_classes);
}
absl::StatusOr<double> LogLoss(std::span<const double> labels,
                               std::span<const float> probabilities,
                               int num_classes) {
  return MulticlassLogLossImpl(labels, probabilities, num_classes);
}

absl::StatusOr<double> Accuracy(std::span<const double> labels,
                                std::span<const double> p1) {
  return BinaryAccuracyImpl(labels, p1);
}
absl::StatusOr<double> Accuracy(std::span<const double> labels,
                                std::span<const float> p1) {
  return BinaryAccuracyImpl(labels, p1);
}
absl::StatusOr<double> Accuracy(std::span<const double> labels,
                                std::span<const double> probabilities,
                                int num_classes) {
  return MulticlassAccuracyImpl(labels, probabilities, num_classes);
}
absl::StatusOr<double> Accuracy(std::span<const double> labels,
                                std::span<const float> probabilities,
                                int num_classes) {
  return MulticlassAccuracyImpl(labels, probabilities, num_classes);
}

absl::StatusOr<double> Rmse(std::span<const double> labels,
                            std::span<const double> predictions) {
  return RmseImpl(labels, predictions);
}
absl::StatusOr<double> Rmse(std::span<const double> labels,
                            std::span<const float> predictions) {
  return RmseImpl(labels, predictions);
}
absl::StatusOr<double> Mae(std::span<const double> labels,
                           std::span<const double> predictions) {
  return MaeImpl(labels, predictions);
}
absl::StatusOr<double> Mae(std::span<const double> labels,
                           std::span<const float> predictions) {
  return MaeImpl(labels, predictions);
}
absl::StatusOr<double> R2(std::span<const double> labels,
                          std::span<const double> predictions) {
  return R2Impl(labels, predictions);
}
absl::StatusOr<double> R2(std::span<const double> labels,
                          std::span<const float> predictions) {
  return R2Impl(labels, predictions);
}

}  // namespace slipway
