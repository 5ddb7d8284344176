// FeatureTransform: the feature preparation of a model version (impute,
// one-hot or ordinal encoding, standardization), fitted once on the
// training rows and stored with the version, so training, evaluation,
// batch scoring and serving apply the identical transform.
//
// Two views of the features:
//   request features  what callers send: the raw feature columns with their
//                     types; a string feature lists the categories seen in
//                     training, sorted bytewise (as the trainer sorts).
//                     Rows encoded with these (features.h: NaN = missing,
//                     category = its code) are what Apply takes.
//   model features    what the model is trained on and predicts from, in
//                     model order: for each raw feature in the order given
//                     to Fit, its model-side columns. A numeric feature
//                     gives one float64 feature of the same name; a string
//                     feature gives one categorical (string) feature under
//                     native encoding, one float64 code under ordinal, or
//                     one float64 0/1 indicator "name=value" per kept
//                     category under one-hot.
//
// Per raw feature named in TransformOptions::columns (every feature when
// empty); the others pass through (numbers as they are, strings as native
// categorical features, missing stays missing):
//   numeric      missing -> the impute value (mean / median of the training
//                values, or fill_value), or stays missing (NaN) with kNone;
//                standardize: (x - mean) / stddev with the population
//                mean/stddev of the training column after imputation; a
//                stddev of 0 only centers the column.
//   categorical  a category not seen in training is indistinguishable from a
//                missing value in request-encoded rows, so both are treated
//                as missing: -> the impute value (the most frequent training
//                category, ties to the bytewise smallest, or fill_category),
//                or stays missing with kNone. The model categories are the
//                distinct training values after imputation, sorted bytewise
//                (exactly what the trainer finds in ApplyToTable's output).
//                native:  the value's code in those categories, NaN missing;
//                ordinal: the same code as a number;
//                one-hot: the max_categories most frequent of them (ties to
//                the smaller value), indicators in bytewise order; a rarer,
//                unseen or missing value sets no indicator.
// Arithmetic: Apply reads each raw number as the float the request encoding
// gives, computes in double and rounds the result to float once;
// ApplyToTable runs that same code, so both give identical model inputs.
//
// Thread safety: immutable after Fit / FromJson; every const method may run
// concurrently. Apply does not allocate once `out` has the capacity.
#ifndef SLIPWAY_MODELS_TRANSFORM_H_
#define SLIPWAY_MODELS_TRANSFORM_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/table.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"

namespace slipway {

// What to fit; the pipeline's TransformStepSpec carries the same fields.
struct TransformOptions {
  enum class NumericImpute { kNone, kMean, kMedian, kConstant };
  enum class CategoricalImpute { kNone, kMostFrequent, kConstant };
  enum class CategoricalEncoding { kNative, kOneHot, kOrdinal };

  NumericImpute impute_numeric = NumericImpute::kNone;
  CategoricalImpute impute_categorical = CategoricalImpute::kNone;
  double fill_value = 0;                  // impute_numeric kConstant
  std::string fill_category = "missing";  // impute_categorical kConstant
  CategoricalEncoding encode = CategoricalEncoding::kNative;
  int64_t max_categories = 50;  // one-hot: indicators kept per feature
  bool standardize = false;     // numeric features only
  // Raw features the options apply to; empty: every feature.
  std::vector<std::string> columns;
};

namespace transform_internal {
struct FeaturePlan;  // one raw feature's fitted state (transform.cc)
}  // namespace transform_internal

class FeatureTransform {
 public:
  FeatureTransform(const FeatureTransform& other);
  FeatureTransform(FeatureTransform&& other) noexcept;
  FeatureTransform& operator=(const FeatureTransform& other);
  FeatureTransform& operator=(FeatureTransform&& other) noexcept;
  ~FeatureTransform();

  // Fits on every row of `raw_train`. `features` names the raw feature
  // columns in model order; string columns are categorical, float64, int64
  // and bool columns numeric. InvalidArgument naming the feature or option
  // for: no features, a duplicate or absent feature column, a `columns`
  // entry that is not a feature, max_categories < 1, a non-finite
  // fill_value, mean/median/most-frequent imputation of a feature with no
  // training values, a non-finite mean or stddev, or a model feature name
  // ("color=red") that is taken by another feature or column.
  static absl::StatusOr<FeatureTransform> Fit(
      const Table& raw_train, const std::vector<std::string>& features,
      const TransformOptions& options);

  // {"version": 1, "features": [...]}: the fitted state, one object per raw
  // feature in model order:
  //   {"name", "type": float64|int64|bool, "impute": none|mean|median|constant,
  //    "impute_value": number (unless none),
  //    "standardize": {"mean", "stddev"} (when standardized)}
  //   {"name", "type": "string", "categories": [request categories],
  //    "impute": none|most_frequent|constant, "impute_value": string (unless
  //    none), "encode": native|ordinal|onehot,
  //    "model_categories": [native/ordinal codes, or one-hot indicators]}
  // FromJson checks every field and its consistency; InvalidArgument names
  // the field, e.g. "transform field 'features[1].impute': unknown numeric
  // impute strategy 'avg' (use none, mean, median, constant)".
  nlohmann::json ToJson() const;
  static absl::StatusOr<FeatureTransform> FromJson(const nlohmann::json& json);
  // FromJson of JSON text; a syntax error is InvalidArgument too.
  static absl::StatusOr<FeatureTransform> Parse(std::string_view json_text);

  // The raw features callers send, in the order Apply reads them.
  const std::vector<FeatureSpec>& request_features() const {
    return request_encoding_.features();
  }
  // The model's features in model order (categories for native ones).
  const std::vector<FeatureSpec>& model_features() const {
    return model_features_;
  }
  std::vector<std::string> ModelFeatureNames() const;

  // `raw` with each raw feature column replaced, in place, by its model
  // feature columns (numeric ones float64, native ones string); every other
  // column (target, id, ...) is copied untouched. InvalidArgument as
  // EncodeTable gives it (an absent feature column, strings for a numeric
  // feature), or when a model feature name is taken by another column.
  absl::StatusOr<Table> ApplyToTable(const Table& raw) const;

  // Transforms `num_rows` rows of request_features().size() floats, encoded
  // with the request features (EncodeTable(RequestSignature(..), raw)), into
  // `out` (resized to num_rows * model_features().size(), model order): the
  // floats EncodeTable(model signature, ApplyToTable(raw)) gives.
  void Apply(const float* raw_rows, size_t num_rows,
             std::vector<float>* out) const;

  // OK when `model_signature` lists exactly model_features() (names in
  // order, numeric vs categorical, the categories of categorical ones);
  // otherwise InvalidArgument naming the first difference.
  absl::Status CheckModelSignature(const Signature& model_signature) const;

 private:
  explicit FeatureTransform(std::vector<transform_internal::FeaturePlan> plans);

  std::vector<transform_internal::FeaturePlan> plans_;
  // Request features only (task and target unused): encodes raw tables.
  Signature request_encoding_;
  std::vector<FeatureSpec> model_features_;
};

// The signature callers see for a model served behind `transform`: the
// request features, with `model_signature`'s task, target, label type and
// class labels.
Signature RequestSignature(const FeatureTransform& transform,
                           const Signature& model_signature);

}  // namespace slipway

#endif  // SLIPWAY_MODELS_TRANSFORM_H_
