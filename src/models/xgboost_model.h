// The XGBoost backend of Model: a Booster loaded from native XGBoost JSON,
// predicting in place from dense float rows (XGBoosterPredictFromDense).
//
// Thread safety: XGBoost documents prediction on one gbtree/dart Booster as
// thread-safe since 1.4 (doc/prediction.rst, "Thread Safety"). In 1.7 the
// output buffer and shape are per-thread entries of the Learner, and its
// lazy configuration is a double-checked lock, which Load triggers anyway
// with a probe prediction. Predict therefore runs concurrently without a
// lock. gblinear models are refused: 1.7 has no in-place prediction for
// them and its thread-safety statement does not cover them.
#ifndef SLIPWAY_MODELS_XGBOOST_MODEL_H_
#define SLIPWAY_MODELS_XGBOOST_MODEL_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "models/model.h"
#include "models/signature.h"

namespace slipway {

// Loads native XGBoost JSON `bytes` and checks them against `signature`:
// feature count and names (when the model records names), objective vs task
// (binary:logistic for binary, multi:softprob with one class per label for
// multiclass, no binary:/multi: objective for regression), and booster
// (gbtree or dart).
absl::StatusOr<std::unique_ptr<Model>> LoadXgboostJsonModel(
    std::string_view bytes, Signature signature);

}  // namespace slipway

#endif  // SLIPWAY_MODELS_XGBOOST_MODEL_H_
