// Evaluation of a model on labelled data (the test part of a split, or any
// table holding the signature's features and target), with the metrics of
// its task:
//   binary      {"auc", "logloss", "accuracy"}
//   multiclass  {"auc" (macro one-vs-rest), "logloss", "accuracy"}
//   regression  {"rmse", "mae", "r2"}
// plus "rows", "unseen_categories" and "missing_values" from encoding.
// "auc" is null when it is undefined: the data lacks a class (binary), or
// some class has no row or every row (multiclass).
//
// Thread safety: safe to call concurrently (Model::Predict is).
#ifndef SLIPWAY_TRAIN_EVALUATE_H_
#define SLIPWAY_TRAIN_EVALUATE_H_

#include "absl/status/statusor.h"
#include "data/table.h"
#include "models/model.h"
#include "nlohmann/json.hpp"
#include "stats/bootstrap.h"

namespace slipway {

// InvalidArgument for an empty table, a missing feature or target column,
// missing target values, or a label that is not one of the model's classes
// (naming the row).
absl::StatusOr<nlohmann::json> Evaluate(const Model& model, const Table& test);

// Compares two models of one task on the labelled rows of `holdout` with a
// paired bootstrap of `metric` (stats/bootstrap.h): each model predicts
// every row (a model encodes the rows with its own signature, so the two
// may use different features), and the labels come from the champion's
// target. InvalidArgument as Evaluate, for a multiclass model (the paired
// comparison takes binary classification and regression), for models of
// different tasks, and as ComparePaired.
absl::StatusOr<MetricComparison> CompareOnHoldout(
    const Model& champion, const Model& challenger, const Table& holdout,
    std::string_view metric, const BootstrapOptions& options);

}  // namespace slipway

#endif  // SLIPWAY_TRAIN_EVALUATE_H_
