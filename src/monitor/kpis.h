// KPIs of a monitoring window: model quality and business values computed
// from the predictions of the window that received ground truth (the
// feedback join pairs each logged prediction with its label and the
// business values sent with it).
//
// Quality metrics by task (stats/metrics.h computes the shared ones):
// - binary classification (the prediction is P(class 1), class 1 is the
//   positive class, a row is predicted positive when P > 0.5): accuracy,
//   precision, recall, f1, auc, logloss;
// - multiclass (the prediction is one probability per class, the predicted
//   class their arg max, the lowest on a tie): accuracy, auc (macro one-vs-
//   rest), logloss, and precision, recall and f1 macro-averaged over the
//   classes that occur as a label or a prediction (a class never predicted
//   has precision 0, as scikit-learn's average="macro" with
//   zero_division=0);
// - regression: rmse, mae.
// A metric that the rows cannot define is left out, not an error: AUC with
// one class present, binary precision with no predicted positive, recall
// with no positive label, anything when there are no rows, every
// prediction metric when a prediction is not a number.
//
// Business values: for each name in any row's `kpis`, the sum and the mean
// over the rows that carry it (non-finite values are skipped).
//
// Thread safety: a pure function.
#ifndef SLIPWAY_MONITOR_KPIS_H_
#define SLIPWAY_MONITOR_KPIS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"

namespace slipway {

// One prediction joined with its ground truth.
struct LabeledPrediction {
  // What the model answered: signature.output_width() values.
  std::vector<float> prediction;
  // The true label as text: one of signature.class_labels() for
  // classification, a number ("12.5") for regression.
  std::string label;
  // Business values sent with the label ({"revenue": 12.5}).
  std::map<std::string, double> kpis;
};

// The KPIs of `rows`:
//   {"rows": n, "accuracy": ..., "precision": ..., "recall": ..., "f1": ...,
//    "auc": ..., "logloss": ..., "rmse": ..., "mae": ...,
//    "kpis": {"revenue": {"sum": ..., "mean": ...}}}
// with only the metrics of the signature's task that the rows define.
// InvalidArgument naming the row when a prediction has the wrong number of
// values, a classification label is not one of the model's classes, or a
// regression label is not a number.
absl::StatusOr<nlohmann::json> ComputeKpis(
    const std::vector<LabeledPrediction>& rows, const Signature& signature);

}  // namespace slipway

#endif  // SLIPWAY_MONITOR_KPIS_H_
