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

namespace slipway {

// InvalidArgument for an empty table, a missing feature or target column,
// missing target values, or a label that is not one of the model's classes
// (naming the row).
absl::StatusOr<nlohmann::json> Evaluate(const Model& model, const Table& test);

}  // namespace slipway

#endif  // SLIPWAY_TRAIN_EVALUATE_H_
