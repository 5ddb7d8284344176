#include "train/baseline.h"

#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "models/features.h"

namespace slipway {
namespace {

// The category text of a present cell, as EncodeCategory matches it.
std::string CategoryTextAt(const Column& column, size_t row) {
  switch (column.type()) {
    case DataType::kString:
      return std::string(column.StringAt(row));
    case DataType::kInt64:
      return Int64CategoryText(column.Int64At(row));
    case DataType::kBool:
      return BoolCategoryText(column.BoolAt(row));
    case DataType::kFloat64:
      return Float64CategoryText(column.Float64At(row));
  }
  return std::string();
}

absl::StatusOr<FeatureProfile> ProfileColumn(const FeatureSpec& feature,
                                             const Column& column) {
  FeatureProfile profile;
  profile.name = feature.name;
  int64_t missing = 0;
  if (feature.is_categorical()) {
    std::vector<std::string> texts;
    texts.reserve(column.size());
    for (size_t row = 0; row < column.size(); ++row) {
      if (column.IsMissing(row)) {
        ++missing;
      } else {
        texts.push_back(CategoryTextAt(column, row));
      }
    }
    std::vector<std::string_view> views(texts.begin(), texts.end());
    profile.profile = CategoricalProfile::Baseline(views, missing);
    return profile;
  }
  if (column.type() == DataType::kString) {
    return absl::InvalidArgumentError(
        "baseline profile: feature '" + feature.name +
        "' is numeric in the model's signature but its column holds strings");
  }
  std::vector<double> values;
  values.reserve(column.size());
  for (size_t row = 0; row < column.size(); ++row) {
    if (column.IsMissing(row)) {
      ++missing;
    } else {
      values.push_back(column.NumberAt(row));
    }
  }
  profile.profile = NumericProfile::Baseline(values, missing);
  return profile;
}

}  // namespace

absl::StatusOr<ProfileSet> BaselineProfile(const Model& model,
                                           const Table& rows) {
  const Signature& signature = model.signature();
  ProfileSet set;
  set.rows = static_cast<int64_t>(rows.num_rows());
  for (const FeatureSpec& feature : signature.features()) {
    const Column* column = rows.FindColumn(feature.name);
    if (column == nullptr) {
      return absl::InvalidArgumentError(
          "baseline profile: the training rows have no column '" +
          feature.name + "', a feature of the model's signature");
    }
    ASSIGN_OR_RETURN(FeatureProfile profile, ProfileColumn(feature, *column));
    set.features.push_back(std::move(profile));
  }

  std::vector<float> encoded;
  RETURN_IF_ERROR(EncodeTable(signature, rows, &encoded, nullptr),
                  "baseline profile");
  std::vector<float> predictions;
  RETURN_IF_ERROR(model.Predict(encoded.data(), rows.num_rows(), &predictions),
                  "baseline profile: predicting the training rows");
  FeatureProfile prediction;
  prediction.name = "prediction";
  const size_t width = signature.output_width();
  if (signature.task() == Task::kMulticlassClassification) {
    std::vector<std::string_view> labels;
    labels.reserve(rows.num_rows());
    for (size_t row = 0; row < rows.num_rows(); ++row) {
      const float* p = predictions.data() + row * width;
      size_t best = 0;
      for (size_t k = 1; k < width; ++k) {
        if (p[k] > p[best]) best = k;
      }
      labels.push_back(signature.class_labels()[best]);
    }
    prediction.profile = CategoricalProfile::Baseline(labels);
  } else {
    std::vector<double> values(predictions.begin(), predictions.end());
    prediction.profile = NumericProfile::Baseline(values);
  }
  set.prediction = std::move(prediction);
  return set;
}

}  // namespace slipway
