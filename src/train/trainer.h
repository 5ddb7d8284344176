// The built-in XGBoost trainer: a Table and a target column in, a native
// XGBoost JSON model and its Signature out.
//
// Features: numeric columns (float64, int64, bool) pass through; string
// columns become categorical features with XGBoost's native categorical
// splits, their categories fixed from the training rows (sorted, so the
// codes do not depend on row order). Missing cells are NaN. The model file
// records feature names and types ("q"/"c").
//
// Task: an explicit objective, or inferred from the target: string or bool
// targets, and int64 targets with at most 20 distinct values, are
// classification (2 classes binary:logistic, more multi:softprob), anything
// else is regression (reg:squarederror). Classes are sorted (numerically for
// int64, bytewise for strings); class index i is class_labels[i].
//
// Determinism: the same table, options and seed give byte-identical model
// files; with tree_method=hist the thread count does not change the result
// (trainer_test checks 1 vs 2 threads). XGBoost seeds its generator with 32
// bits; the 64-bit seed is folded (low ^ high) into them.
//
// Thread safety: TrainXgboost may run concurrently on different tables.
#ifndef SLIPWAY_TRAIN_TRAINER_H_
#define SLIPWAY_TRAIN_TRAINER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/table.h"
#include "models/model.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"

namespace slipway {

struct TrainOptions {
  // "binary:logistic", "multi:softprob", "reg:squarederror"; empty: inferred
  // from the target (see above).
  std::string objective;
  int rounds = 100;
  int max_depth = 6;
  double eta = 0.3;
  double subsample = 1;
  double colsample_bytree = 1;
  double min_child_weight = 1;
  double lambda = 1;
  double alpha = 0;
  uint64_t seed = 0;
  int threads = 0;  // 0 = all cores
  // Feature columns in model order; empty = every column but the target and
  // `exclude`, in table order.
  std::vector<std::string> features;
  // Columns never used as features (e.g. the id column); each must exist.
  std::vector<std::string> exclude;
  // When set and it becomes true, training stops after the current boosting
  // round and TrainXgboost returns Cancelled.
  const std::atomic<bool>* cancel = nullptr;
  // When set, called on the training thread after each boosting round with
  // the rounds done so far and the total (progress reports); keep it cheap.
  std::function<void(int done, int rounds)> on_round;
};

struct TrainedModel {
  std::string format = std::string(kXgboostJsonFormat);
  std::string model_bytes;  // native XGBoost JSON
  Signature signature;
  // The hyperparameters used, objective and num_class included.
  nlohmann::json params;
  int64_t rows = 0;  // training rows
};

// Trains on every row of `train`. InvalidArgument (naming the column,
// option or row) for a missing target column or target values, an unknown
// objective or one that does not fit the target, out-of-range options,
// unknown feature or exclude columns, or no features left.
absl::StatusOr<TrainedModel> TrainXgboost(const Table& train,
                                          const std::string& target,
                                          const TrainOptions& options);

}  // namespace slipway

#endif  // SLIPWAY_TRAIN_TRAINER_H_
