// Helpers over XGBoost's C API shared by the XGBoost model backend and the
// XGBoost trainer (src/train): return-code checking with XGBoost's own
// message, owning handles, the array-interface JSON for dense float data,
// and routing XGBoost's log lines into Slipway's log.
//
// Thread safety: XGBGetLastError is thread-local in XGBoost, so XgbCheck may
// run on any thread; the handles are plain owners (one owner each).
#ifndef SLIPWAY_MODELS_XGBOOST_API_H_
#define SLIPWAY_MODELS_XGBOOST_API_H_

#include <cstddef>
#include <vector>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "xgboost/c_api.h"

namespace slipway {

// OK when `rc` is 0; otherwise a status with `code` whose message is
// "<what>: <XGBoost's message>" (the first line, without XGBoost's
// timestamp and stack trace).
absl::Status XgbCheck(int rc, std::string_view what,
                      absl::StatusCode code = absl::StatusCode::kInternal);

struct XgbBoosterFree {
  void operator()(void* handle) const { XGBoosterFree(handle); }
};
struct XgbDMatrixFree {
  void operator()(void* handle) const { XGDMatrixFree(handle); }
};
using XgbBooster = std::unique_ptr<void, XgbBoosterFree>;
using XgbDMatrix = std::unique_ptr<void, XgbDMatrixFree>;

// `__array_interface__` JSON describing `rows` x `cols` row-major floats at
// `data`, for XGDMatrixCreateFromDense and XGBoosterPredictFromDense.
// `data` must stay alive while XGBoost uses the description.
std::string DenseArrayInterface(const float* data, size_t rows, size_t cols);

// The version of the linked XGBoost library, "1.7.4".
std::string XGBoostVersionText();

// What a loaded booster says about itself, asked through the C API (its
// JSON holds NaN split conditions for categorical splits, which a strict
// JSON parser refuses).
struct XgboostFacts {
  std::vector<std::string> feature_names;  // empty when saved without names
  std::vector<std::string> feature_types;  // "c": categorical, else numeric
  int64_t num_feature = 0;
  std::string objective;  // "binary:logistic", ...
  int64_t num_class = 0;  // 0 unless multiclass
};
absl::StatusOr<XgboostFacts> ReadXgboostFacts(void* booster);

// Sends XGBoost's log lines (warnings by default) to Slipway's structured
// log as event "xgboost.log" instead of raw stderr. Idempotent.
void RouteXgboostLogs();

}  // namespace slipway

#endif  // SLIPWAY_MODELS_XGBOOST_API_H_
