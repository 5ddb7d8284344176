// Model quality metrics: pure functions of labels and predictions, shared by
// training evaluation, the challenger/champion comparison and the KPI
// windows that monitoring computes from ground-truth feedback.
//
// Conventions:
// - Binary labels are 0 or 1; binary predictions are the probability of
//   class 1 (or any score, for AUC).
// - Multiclass labels are class indices 0..K-1 stored as doubles;
//   multiclass predictions are a row-major n x K probability matrix.
// - Predictions come as double or float spans (XGBoost predicts floats), so
//   callers never copy them.
// - Invalid input (empty, mismatched sizes, a label out of range, a single
//   class where AUC needs two) is InvalidArgument saying what to fix.
//
// Thread safety: every function is pure and safe to call concurrently.
#ifndef SLIPWAY_STATS_METRICS_H_
#define SLIPWAY_STATS_METRICS_H_

#include <span>

#include "absl/status/statusor.h"

namespace slipway {

// Area under the ROC curve: the probability that a random positive scores
// above a random negative, ties counting one half (Mann-Whitney U).
absl::StatusOr<double> BinaryAuc(std::span<const double> labels,
                                 std::span<const double> scores);
absl::StatusOr<double> BinaryAuc(std::span<const double> labels,
                                 std::span<const float> scores);

// Macro-averaged one-vs-rest AUC over `num_classes` classes; every class
// needs at least one row in and one row out of it.
absl::StatusOr<double> MulticlassAuc(std::span<const double> labels,
                                     std::span<const double> probabilities,
                                     int num_classes);
absl::StatusOr<double> MulticlassAuc(std::span<const double> labels,
                                     std::span<const float> probabilities,
                                     int num_classes);

// Mean negative log-likelihood; probabilities are clipped to
// [1e-15, 1 - 1e-15] so a confident mistake costs about 34.5, not infinity.
absl::StatusOr<double> LogLoss(std::span<const double> labels,
                               std::span<const double> p1);
absl::StatusOr<double> LogLoss(std::span<const double> labels,
                               std::span<const float> p1);
// Multiclass: the clipped probability of each row's true class. Rows are
// not renormalised.
absl::StatusOr<double> LogLoss(std::span<const double> labels,
                               std::span<const double> probabilities,
                               int num_classes);
absl::StatusOr<double> LogLoss(std::span<const double> labels,
                               std::span<const float> probabilities,
                               int num_classes);

// Binary: a row is predicted positive when p1 > 0.5 (XGBoost's "error"
// metric uses the same cut).
absl::StatusOr<double> Accuracy(std::span<const double> labels,
                                std::span<const double> p1);
absl::StatusOr<double> Accuracy(std::span<const double> labels,
                                std::span<const float> p1);
// Multiclass: the predicted class is the arg max of the row (the lowest
// index on a tie).
absl::StatusOr<double> Accuracy(std::span<const double> labels,
                                std::span<const double> probabilities,
                                int num_classes);
absl::StatusOr<double> Accuracy(std::span<const double> labels,
                                std::span<const float> probabilities,
                                int num_classes);

// Regression.
absl::StatusOr<double> Rmse(std::span<const double> labels,
                            std::span<const double> predictions);
absl::StatusOr<double> Rmse(std::span<const double> labels,
                            std::span<const float> predictions);
absl::StatusOr<double> Mae(std::span<const double> labels,
                           std::span<const double> predictions);
absl::StatusOr<double> Mae(std::span<const double> labels,
                           std::span<const float> predictions);
// Coefficient of determination. Constant labels give 1 for a perfect fit
// and 0 otherwise (as scikit-learn does), never a division by zero.
absl::StatusOr<double> R2(std::span<const double> labels,
                          std::span<const double> predictions);
absl::StatusOr<double> R2(std::span<const double> labels,
                          std::span<const float> predictions);

}  // namespace slipway

#endif  // SLIPWAY_STATS_METRICS_H_
