#include "models/transform.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/status.h"
#include "models/features.h"

namespace slipway {
namespace transform_internal {

struct FeaturePlan {
  std::string name;
  DataType type = DataType::kFloat64;
  std::vector<std::string> categories;  // request categories (strings)
  // Numeric features.
  TransformOptions::NumericImpute numeric_impute =
      TransformOptions::NumericImpute::kNone;
  double impute_number = 0;
  bool standardize = false;
  double mean = 0;
  double stddev = 0;
  // Categorical features. model_categories: the native/ordinal codes, or the
  // one-hot indicators, in order.
  TransformOptions::CategoricalImpute categorical_impute =
      TransformOptions::CategoricalImpute::kNone;
  std::string impute_category;
  TransformOptions::CategoricalEncoding encoding =
      TransformOptions::CategoricalEncoding::kNative;
  std::vector<std::string> model_categories;
  // Derived by the FeatureTransform constructor: the first model column, and
  // request code -> index into model_categories (-1: none), the same for a
  // missing value.
  size_t model_offset = 0;
  std::vector<int32_t> target_of_code;
  int32_t target_of_missing = -1;

  bool is_categorical() const { return type == DataType::kString; }
  bool imputes_category() const {
    return categorical_impute != TransformOptions::CategoricalImpute::kNone;
  }
};

}  // namespace transform_internal

namespace {

using nlohmann::json;
using transform_internal::FeaturePlan;
using NumericImpute = TransformOptions::NumericImpute;
using CategoricalImpute = TransformOptions::CategoricalImpute;
using CategoricalEncoding = TransformOptions::CategoricalEncoding;

constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();
constexpr int kFormatVersion = 1;

// ----------------------------------------------------------- option names

std::string_view NumericImputeName(NumericImpute impute) {
  switch (impute) {
    case NumericImpute::kNone:
      return "none";
    case NumericImpute::kMean:
      return "mean";
    case NumericImpute::kMedian:
      return "median";
    case NumericImpute::kConstant:
      return "constant";
  }
  return "none";
}

std::string_view CategoricalImputeName(CategoricalImpute impute) {
  switch (impute) {
    case CategoricalImpute::kNone:
      return "none";
    case CategoricalImpute::kMostFrequent:
      return "most_frequent";
    case CategoricalImpute::kConstant:
      return "constant";
  }
  return "none";
}

std::string_view EncodingName(CategoricalEncoding encoding) {
  switch (encoding) {
    case CategoricalEncoding::kNative:
      return "native";
    case CategoricalEncoding::kOneHot:
      return "onehot";
    case CategoricalEncoding::kOrdinal:
      return "ordinal";
  }
  return "native";
}

// Names of the model columns `plan` produces, in order.
std::vector<std::string> ModelNamesOf(const FeaturePlan& plan) {
  if (plan.is_categorical() && plan.encoding == CategoricalEncoding::kOneHot) {
    std::vector<std::string> names;
    for (const std::string& category : plan.model_categories) {
      names.push_back(plan.name + "=" + category);
    }
    return names;
  }
  return {plan.name};
}

// The first model column name that repeats across `plans`, with the index of
// the plan that repeats it; index -1 when all names are distinct.
std::pair<int, std::string> FirstDuplicateModelName(
    const std::vector<FeaturePlan>& plans) {
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < plans.size(); ++i) {
    for (std::string& name : ModelNamesOf(plans[i])) {
      if (!seen.insert(name).second) {
        return {static_cast<int>(i), std::move(name)};
      }
    }
  }
  return {-1, std::string()};
}

// ------------------------------------------------------------------ Fit

// Distinct non-missing values of a string column, sorted bytewise, as the
// trainer fixes categories.
std::vector<std::string> SortedCategories(const Column& column) {
  std::vector<bool> used(column.dictionary().size(), false);
  for (size_t row = 0; row < column.size(); ++row) {
    if (!column.IsMissing(row)) used[column.CodeAt(row)] = true;
  }
  std::vector<std::string> categories;
  for (size_t code = 0; code < used.size(); ++code) {
    if (used[code]) categories.push_back(column.dictionary()[code]);
  }
  std::sort(categories.begin(), categories.end());
  return categories;
}

absl::Status CheckFitOptions(const Table& raw_train,
                             const std::vector<std::string>& features,
                             const TransformOptions& options) {
  if (features.empty()) {
    return absl::InvalidArgumentError(
        "transform: no features to fit; name at least one feature column");
  }
  std::unordered_set<std::string> names;
  for (const std::string& name : features) {
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError("transform: feature '" + name +
                                        "' is listed twice; list it once");
    }
    if (raw_train.FindColumn(name) == nullptr) {
      return absl::InvalidArgumentError(
          "transform: feature '" + name +
          "' is missing: the training data has no column with that name");
    }
  }
  for (const std::string& name : options.columns) {
    if (names.count(name) == 0) {
      return absl::InvalidArgumentError(
          "transform option 'columns': '" + name +
          "' is not a feature; name feature columns only");
    }
  }
  if (options.max_categories < 1) {
    return absl::InvalidArgumentError(
        "transform option 'max_categories' must be at least 1, got " +
        std::to_string(options.max_categories));
  }
  if (!std::isfinite(options.fill_value)) {
    return absl::InvalidArgumentError(
        "transform option 'fill_value' must be a finite number");
  }
  return absl::OkStatus();
}

// The request encoding of column `feature` of a row-major matrix.
std::vector<float> MatrixColumn(const std::vector<float>& matrix, size_t width,
                                size_t feature) {
  const size_t rows = width == 0 ? 0 : matrix.size() / width;
  std::vector<float> values(rows);
  for (size_t row = 0; row < rows; ++row) {
    values[row] = matrix[row * width + feature];
  }
  return values;
}

double Median(std::vector<double> values) {
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + mid, values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  const double lower = *std::max_element(values.begin(), values.begin() + mid);
  return (lower + upper) / 2;
}

absl::Status FitNumeric(const std::vector<float>& cells,
                        const TransformOptions& options, FeaturePlan* plan) {
  std::vector<double> present;
  for (float cell : cells) {
    if (!std::isnan(cell)) present.push_back(cell);
  }
  plan->numeric_impute = options.impute_numeric;
  switch (options.impute_numeric) {
    case NumericImpute::kNone:
      break;
    case NumericImpute::kConstant:
      plan->impute_number = options.fill_value;
      break;
    case NumericImpute::kMean:
    case NumericImpute::kMedian: {
      if (present.empty()) {
        return absl::InvalidArgumentError(
            "transform: feature '" + plan->name +
            "' has no values in the training data to impute its " +
            std::string(NumericImputeName(options.impute_numeric)) +
            " from; impute it with a constant or drop the feature");
      }
      double sum = 0;
      for (double value : present) sum += value;
      plan->impute_number = options.impute_numeric == NumericImpute::kMean
                                ? sum / static_cast<double>(present.size())
                                : Median(present);
      break;
    }
  }
  if (!options.standardize) return absl::OkStatus();

  // Statistics of the column as the model sees it before scaling: imputed
  // cells count with their impute value.
  std::vector<double> values = std::move(present);
  if (plan->numeric_impute != NumericImpute::kNone) {
    values.resize(cells.size(), plan->impute_number);
  }
  plan->standardize = true;
  if (values.empty()) return absl::OkStatus();
  double sum = 0;
  for (double value : values) sum += value;
  const double mean = sum / static_cast<double>(values.size());
  double squares = 0;
  for (double value : values) squares += (value - mean) * (value - mean);
  const double stddev = std::sqrt(squares / static_cast<double>(values.size()));
  if (!std::isfinite(mean) || !std::isfinite(stddev)) {
    return absl::InvalidArgumentError(
        "transform: feature '" + plan->name +
        "' has infinite or too large values in the training data, so it "
        "cannot be standardized; clean the column or leave it out of "
        "'columns'");
  }
  plan->mean = mean;
  plan->stddev = stddev;
  return absl::OkStatus();
}

absl::Status FitCategorical(const std::vector<float>& cells,
                            const TransformOptions& options,
                            FeaturePlan* plan) {
  std::vector<int64_t> counts(plan->categories.size(), 0);
  int64_t missing = 0;
  for (float cell : cells) {
    if (std::isnan(cell)) {
      ++missing;
    } else {
      ++counts[static_cast<size_t>(cell)];
    }
  }
  plan->categorical_impute = options.impute_categorical;
  plan->encoding = options.encode;
  switch (options.impute_categorical) {
    case CategoricalImpute::kNone:
      break;
    case CategoricalImpute::kConstant:
      plan->impute_category = options.fill_category;
      break;
    case CategoricalImpute::kMostFrequent: {
      if (plan->categories.empty()) {
        return absl::InvalidArgumentError(
            "transform: feature '" + plan->name +
            "' has no values in the training data to find its most frequent "
            "category; impute it with a constant or drop the feature");
      }
      // max_element keeps the first maximum: the bytewise smallest value.
      const size_t best = static_cast<size_t>(
          std::max_element(counts.begin(), counts.end()) - counts.begin());
      plan->impute_category = plan->categories[best];
      break;
    }
  }

  // The training column after imputation, as value -> count.
  std::map<std::string, int64_t> imputed;
  for (size_t code = 0; code < counts.size(); ++code) {
    imputed[plan->categories[code]] += counts[code];
  }
  if (plan->imputes_category() && missing > 0) {
    imputed[plan->impute_category] += missing;
  }
  if (plan->encoding != CategoricalEncoding::kOneHot) {
    for (const auto& [value, count] : imputed) {
      plan->model_categories.push_back(value);
    }
    return absl::OkStatus();
  }
  std::vector<std::pair<std::string, int64_t>> ranked(imputed.begin(),
                                                      imputed.end());
  std::stable_sort(
      ranked.begin(), ranked.end(),
      [](const auto& a, const auto& b) { return a.second > b.second; });
  const size_t kept =
      std::min(ranked.size(), static_cast<size_t>(options.max_categories));
  for (size_t i = 0; i < kept; ++i) {
    plan->model_categories.push_back(ranked[i].first);
  }
  std::sort(plan->model_categories.begin(), plan->model_categories.end());
  return absl::OkStatus();
}

// ---------------------------------------------------------------- Apply

void ApplyNumeric(const FeaturePlan& plan, float raw, float* out) {
  double value = raw;
  if (std::isnan(value)) {
    if (plan.numeric_impute == NumericImpute::kNone) {
      *out = kMissing;
      return;
    }
    value = plan.impute_number;
  }
  if (plan.standardize) {
    value = (value - plan.mean) / (plan.stddev > 0 ? plan.stddev : 1.0);
  }
  *out = static_cast<float>(value);
}

void ApplyCategorical(const FeaturePlan& plan, float raw, float* out) {
  // Request codes are 0..K-1; anything else (NaN) is missing or unseen. A
  // known category without a target is a one-hot category not kept.
  const int32_t target =
      raw >= 0 && raw < static_cast<float>(plan.target_of_code.size())
          ? plan.target_of_code[static_cast<size_t>(raw)]
          : plan.target_of_missing;
  if (plan.encoding == CategoricalEncoding::kOneHot) {
    std::fill(out, out + plan.model_categories.size(), 0.0f);
    if (target >= 0) out[target] = 1.0f;
    return;
  }
  *out = target >= 0 ? static_cast<float>(target) : kMissing;
}

// ------------------------------------------------------------------ JSON

absl::Status FieldError(const std::string& field, const std::string& problem) {
  return absl::InvalidArgumentError("transform field '" + field +
                                    "': " + problem);
}

std::string TypeOf(const json& value) { return std::string(value.type_name()); }

absl::Status CheckKeys(const json& object, const std::string& path,
                       const std::set<std::string>& allowed) {
  for (const auto& [key, value] : object.items()) {
    if (allowed.count(key) == 0) {
      std::string list;
      for (const std::string& name : allowed) {
        list += (list.empty() ? "" : ", ") + name;
      }
      return FieldError(path.empty() ? key : path + "." + key,
                        "unknown field (known: " + list + ")");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<const json*> Required(const json& object, const std::string& key,
                                     const std::string& path) {
  auto it = object.find(key);
  if (it == object.end()) return FieldError(path, "missing");
  return &*it;
}

absl::StatusOr<std::string> StringField(const json& object,
                                        const std::string& key,
                                        const std::string& path) {
  ASSIGN_OR_RETURN(const json* value, Required(object, key, path));
  if (!value->is_string()) {
    return FieldError(path, "expected a string, got " + TypeOf(*value));
  }
  return value->get<std::string>();
}

absl::StatusOr<double> FiniteNumberField(const json& object,
                                         const std::string& key,
                                         const std::string& path) {
  ASSIGN_OR_RETURN(const json* value, Required(object, key, path));
  if (!value->is_number()) {
    return FieldError(path, "expected a number, got " + TypeOf(*value));
  }
  const double number = value->get<double>();
  if (!std::isfinite(number)) return FieldError(path, "not a finite number");
  return number;
}

absl::StatusOr<std::vector<std::string>> DistinctStringsField(
    const json& object, const std::string& key, const std::string& path) {
  ASSIGN_OR_RETURN(const json* value, Required(object, key, path));
  if (!value->is_array()) {
    return FieldError(path,
                      "expected an array of strings, got " + TypeOf(*value));
  }
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < value->size(); ++i) {
    const std::string element = path + "[" + std::to_string(i) + "]";
    const json& item = (*value)[i];
    if (!item.is_string()) {
      return FieldError(element, "expected a string, got " + TypeOf(item));
    }
    std::string text = item.get<std::string>();
    if (!seen.insert(text).second) {
      return FieldError(element, "duplicate value '" + text + "'");
    }
    out.push_back(std::move(text));
  }
  return out;
}

template <typename Enum>
absl::StatusOr<Enum> ParseName(const std::string& text,
                               std::initializer_list<Enum> choices,
                               std::string_view (*name_of)(Enum),
                               const std::string& path, const char* what) {
  std::string list;
  for (Enum choice : choices) {
    if (text == name_of(choice)) return choice;
    list += (list.empty() ? "" : ", ") + std::string(name_of(choice));
  }
  return FieldError(path, "unknown " + std::string(what) + " '" + text +
                              "' (use " + list + ")");
}

absl::Status NumericFromJson(const json& value, const std::string& path,
                             FeaturePlan* plan) {
  RETURN_IF_ERROR(CheckKeys(
      value, path, {"name", "type", "impute", "impute_value", "standardize"}));
  ASSIGN_OR_RETURN(std::string impute,
                   StringField(value, "impute", path + ".impute"));
  ASSIGN_OR_RETURN(
      plan->numeric_impute,
      ParseName<NumericImpute>(
          impute,
          {NumericImpute::kNone, NumericImpute::kMean, NumericImpute::kMedian,
           NumericImpute::kConstant},
          &NumericImputeName, path + ".impute", "numeric impute strategy"));
  if (plan->numeric_impute != NumericImpute::kNone) {
    ASSIGN_OR_RETURN(
        plan->impute_number,
        FiniteNumberField(value, "impute_value", path + ".impute_value"));
  } else if (value.contains("impute_value")) {
    return FieldError(path + ".impute_value",
                      "present although impute is 'none'");
  }
  auto standardize = value.find("standardize");
  if (standardize == value.end()) return absl::OkStatus();
  const std::string spath = path + ".standardize";
  if (!standardize->is_object()) {
    return FieldError(spath, "expected an object {\"mean\", \"stddev\"}, got " +
                                 TypeOf(*standardize));
  }
  RETURN_IF_ERROR(CheckKeys(*standardize, spath, {"mean", "stddev"}));
  plan->standardize = true;
  ASSIGN_OR_RETURN(plan->mean,
                   FiniteNumberField(*standardize, "mean", spath + ".mean"));
  ASSIGN_OR_RETURN(plan->stddev, FiniteNumberField(*standardize, "stddev",
                                                   spath + ".stddev"));
  if (plan->stddev < 0) {
    return FieldError(spath + ".stddev", "must not be negative");
  }
  return absl::OkStatus();
}

absl::Status CategoricalFromJson(const json& value, const std::string& path,
                                 FeaturePlan* plan) {
  RETURN_IF_ERROR(CheckKeys(value, path,
                            {"name", "type", "categories", "impute",
                             "impute_value", "encode", "model_categories"}));
  ASSIGN_OR_RETURN(
      plan->categories,
      DistinctStringsField(value, "categories", path + ".categories"));
  ASSIGN_OR_RETURN(std::string impute,
                   StringField(value, "impute", path + ".impute"));
  ASSIGN_OR_RETURN(
      plan->categorical_impute,
      ParseName<CategoricalImpute>(
          impute,
          {CategoricalImpute::kNone, CategoricalImpute::kMostFrequent,
           CategoricalImpute::kConstant},
          &CategoricalImputeName, path + ".impute",
          "categorical impute strategy"));
  if (plan->imputes_category()) {
    ASSIGN_OR_RETURN(
        plan->impute_category,
        StringField(value, "impute_value", path + ".impute_value"));
  } else if (value.contains("impute_value")) {
    return FieldError(path + ".impute_value",
                      "present although impute is 'none'");
  }
  ASSIGN_OR_RETURN(std::string encode,
                   StringField(value, "encode", path + ".encode"));
  ASSIGN_OR_RETURN(
      plan->encoding,
      ParseName<CategoricalEncoding>(
          encode,
          {CategoricalEncoding::kNative, CategoricalEncoding::kOneHot,
           CategoricalEncoding::kOrdinal},
          &EncodingName, path + ".encode", "encoding"));
  ASSIGN_OR_RETURN(plan->model_categories,
                   DistinctStringsField(value, "model_categories",
                                        path + ".model_categories"));
  // Every model category is a training value or the impute value: anything
  // else could never be produced.
  const std::unordered_set<std::string> known(plan->categories.begin(),
                                              plan->categories.end());
  for (size_t i = 0; i < plan->model_categories.size(); ++i) {
    const std::string& category = plan->model_categories[i];
    if (known.count(category) == 0 &&
        !(plan->imputes_category() && category == plan->impute_category)) {
      return FieldError(
          path + ".model_categories[" + std::to_string(i) + "]",
          "'" + category + "' is neither in 'categories' nor the impute value");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<FeaturePlan> PlanFromJson(const json& value,
                                         const std::string& path) {
  if (!value.is_object()) {
    return FieldError(
        path,
        "expected an object {\"name\", \"type\", ...}, got " + TypeOf(value));
  }
  FeaturePlan plan;
  ASSIGN_OR_RETURN(plan.name, StringField(value, "name", path + ".name"));
  if (plan.name.empty()) return FieldError(path + ".name", "empty name");
  ASSIGN_OR_RETURN(std::string type_name,
                   StringField(value, "type", path + ".type"));
  absl::StatusOr<DataType> type = ParseDataType(type_name);
  if (!type.ok()) {
    return FieldError(path + ".type", std::string(type.status().message()));
  }
  plan.type = *type;
  if (plan.is_categorical()) {
    RETURN_IF_ERROR(CategoricalFromJson(value, path, &plan));
  } else {
    RETURN_IF_ERROR(NumericFromJson(value, path, &plan));
  }
  return plan;
}

json PlanToJson(const FeaturePlan& plan) {
  json out = {{"name", plan.name},
              {"type", std::string(DataTypeName(plan.type))}};
  if (plan.is_categorical()) {
    out["categories"] = plan.categories;
    out["impute"] = std::string(CategoricalImputeName(plan.categorical_impute));
    if (plan.imputes_category()) out["impute_value"] = plan.impute_category;
    out["encode"] = std::string(EncodingName(plan.encoding));
    out["model_categories"] = plan.model_categories;
    return out;
  }
  out["impute"] = std::string(NumericImputeName(plan.numeric_impute));
  if (plan.numeric_impute != NumericImpute::kNone) {
    out["impute_value"] = plan.impute_number;
  }
  if (plan.standardize) {
    out["standardize"] = {{"mean", plan.mean}, {"stddev", plan.stddev}};
  }
  return out;
}

}  // namespace

// ------------------------------------------------------- FeatureTransform

FeatureTransform::FeatureTransform(const FeatureTransform& other) = default;
FeatureTransform::FeatureTransform(FeatureTransform&& other) noexcept = default;
FeatureTransform& FeatureTransform::operator=(const FeatureTransform& other) =
    default;
FeatureTransform& FeatureTransform::operator=(
    FeatureTransform&& other) noexcept = default;
FeatureTransform::~FeatureTransform() = default;

FeatureTransform::FeatureTransform(std::vector<FeaturePlan> plans)
    : plans_(std::move(plans)) {
  std::vector<FeatureSpec> request;
  size_t offset = 0;
  for (FeaturePlan& plan : plans_) {
    plan.model_offset = offset;
    request.push_back({plan.name, plan.type, plan.categories});
    if (!plan.is_categorical()) {
      model_features_.push_back({plan.name, DataType::kFloat64, {}});
      ++offset;
      continue;
    }
    std::unordered_map<std::string, int32_t> index;
    for (size_t i = 0; i < plan.model_categories.size(); ++i) {
      index.emplace(plan.model_categories[i], static_cast<int32_t>(i));
    }
    auto target = [&index](const std::string& value) {
      auto it = index.find(value);
      return it == index.end() ? int32_t{-1} : it->second;
    };
    plan.target_of_code.clear();
    for (const std::string& category : plan.categories) {
      plan.target_of_code.push_back(target(category));
    }
    plan.target_of_missing =
        plan.imputes_category() ? target(plan.impute_category) : -1;
    switch (plan.encoding) {
      case CategoricalEncoding::kNative:
        model_features_.push_back(
            {plan.name, DataType::kString, plan.model_categories});
        break;
      case CategoricalEncoding::kOrdinal:
        model_features_.push_back({plan.name, DataType::kFloat64, {}});
        break;
      case CategoricalEncoding::kOneHot:
        for (std::string& name : ModelNamesOf(plan)) {
          model_features_.push_back({std::move(name), DataType::kFloat64, {}});
        }
        break;
    }
    offset += plan.encoding == CategoricalEncoding::kOneHot
                  ? plan.model_categories.size()
                  : 1;
  }
  request_encoding_ = Signature(Task::kRegression, std::move(request),
                                std::string(), DataType::kFloat64, {});
}

absl::StatusOr<FeatureTransform> FeatureTransform::Fit(
    const Table& raw_train, const std::vector<std::string>& features,
    const TransformOptions& options) {
  RETURN_IF_ERROR(CheckFitOptions(raw_train, features, options));
  const std::unordered_set<std::string> selected(options.columns.begin(),
                                                 options.columns.end());
  std::vector<FeaturePlan> plans;
  std::vector<FeatureSpec> request;
  for (const std::string& name : features) {
    const Column& column = *raw_train.FindColumn(name);
    FeaturePlan plan;
    plan.name = name;
    plan.type = column.type();
    if (plan.is_categorical()) plan.categories = SortedCategories(column);
    request.push_back({plan.name, plan.type, plan.categories});
    plans.push_back(std::move(plan));
  }
  const Signature request_encoding(Task::kRegression, std::move(request),
                                   std::string(), DataType::kFloat64, {});
  std::vector<float> matrix;
  RETURN_IF_ERROR(EncodeTable(request_encoding, raw_train, &matrix, nullptr),
                  "transform");

  const TransformOptions pass_through;
  for (size_t f = 0; f < plans.size(); ++f) {
    FeaturePlan& plan = plans[f];
    const TransformOptions& own =
        selected.empty() || selected.count(plan.name) > 0 ? options
                                                          : pass_through;
    const std::vector<float> cells = MatrixColumn(matrix, plans.size(), f);
    if (plan.is_categorical()) {
      RETURN_IF_ERROR(FitCategorical(cells, own, &plan));
    } else {
      RETURN_IF_ERROR(FitNumeric(cells, own, &plan));
    }
  }

  auto [duplicate_of, duplicate] = FirstDuplicateModelName(plans);
  if (duplicate_of >= 0) {
    return absl::InvalidArgumentError(
        "transform: feature '" + plans[duplicate_of].name +
        "' gives model feature '" + duplicate +
        "', which another feature already gives; rename one of them");
  }
  FeatureTransform transform(std::move(plans));
  for (const Column& column : raw_train.columns()) {
    if (transform.request_encoding_.FeatureIndex(column.name()) >= 0) continue;
    for (const FeatureSpec& spec : transform.model_features_) {
      if (spec.name == column.name()) {
        return absl::InvalidArgumentError(
            "transform: model feature '" + spec.name +
            "' has the name of the training data's column '" + column.name() +
            "'; rename that column or leave it out of the data");
      }
    }
  }
  return transform;
}

std::vector<std::string> FeatureTransform::ModelFeatureNames() const {
  std::vector<std::string> names;
  names.reserve(model_features_.size());
  for (const FeatureSpec& spec : model_features_) names.push_back(spec.name);
  return names;
}

void FeatureTransform::Apply(const float* raw_rows, size_t num_rows,
                             std::vector<float>* out) const {
  const size_t in_width = plans_.size();
  const size_t out_width = model_features_.size();
  out->resize(num_rows * out_width);
  float* dst = out->data();
  for (size_t row = 0; row < num_rows; ++row) {
    const float* in = raw_rows + row * in_width;
    float* model_row = dst + row * out_width;
    for (size_t f = 0; f < in_width; ++f) {
      const FeaturePlan& plan = plans_[f];
      if (plan.is_categorical()) {
        ApplyCategorical(plan, in[f], model_row + plan.model_offset);
      } else {
        ApplyNumeric(plan, in[f], model_row + plan.model_offset);
      }
    }
  }
}

absl::StatusOr<Table> FeatureTransform::ApplyToTable(const Table& raw) const {
  std::vector<float> request_rows;
  RETURN_IF_ERROR(EncodeTable(request_encoding_, raw, &request_rows, nullptr),
                  "transform");
  const size_t rows = raw.num_rows();
  std::vector<float> model_rows;
  Apply(request_rows.data(), rows, &model_rows);

  const size_t width = model_features_.size();
  auto model_column = [&](size_t m) {
    const FeatureSpec& spec = model_features_[m];
    Column column(spec.name, spec.type);
    column.Reserve(rows);
    for (size_t row = 0; row < rows; ++row) {
      const float value = model_rows[row * width + m];
      if (std::isnan(value)) {
        column.AppendMissing();
      } else if (spec.is_categorical()) {
        column.AppendString(spec.categories[static_cast<size_t>(value)]);
      } else {
        column.AppendFloat64(value);
      }
    }
    return column;
  };

  Table out;
  for (const Column& column : raw.columns()) {
    const int feature = request_encoding_.FeatureIndex(column.name());
    if (feature < 0) {
      RETURN_IF_ERROR(out.AddColumn(column), "transform output");
      continue;
    }
    const FeaturePlan& plan = plans_[feature];
    const size_t count = ModelNamesOf(plan).size();
    for (size_t m = plan.model_offset; m < plan.model_offset + count; ++m) {
      RETURN_IF_ERROR(out.AddColumn(model_column(m)), "transform output");
    }
  }
  return out;
}

absl::Status FeatureTransform::CheckModelSignature(
    const Signature& model_signature) const {
  const std::vector<FeatureSpec>& actual = model_signature.features();
  if (actual.size() != model_features_.size()) {
    return absl::InvalidArgumentError(
        "the transform gives " + std::to_string(model_features_.size()) +
        " model features but the model takes " + std::to_string(actual.size()) +
        "; train the model on the transform's output");
  }
  for (size_t i = 0; i < actual.size(); ++i) {
    const FeatureSpec& want = model_features_[i];
    const FeatureSpec& got = actual[i];
    const std::string where = "model feature " + std::to_string(i) + " ('" +
                              want.name + "' from the transform)";
    if (got.name != want.name) {
      return absl::InvalidArgumentError(
          where + " is named '" + got.name +
          "' in the model; train the model on the transform's output");
    }
    if (got.is_categorical() != want.is_categorical()) {
      return absl::InvalidArgumentError(
          where + " is " + (want.is_categorical() ? "categorical" : "numeric") +
          " in the transform but not in the model; train the model on the "
          "transform's output");
    }
    if (want.is_categorical() && got.categories != want.categories) {
      return absl::InvalidArgumentError(
          where +
          " has different categories in the model than in the transform; "
          "train the model on the transform's output");
    }
  }
  return absl::OkStatus();
}

nlohmann::json FeatureTransform::ToJson() const {
  json features = json::array();
  for (const FeaturePlan& plan : plans_) features.push_back(PlanToJson(plan));
  return json{{"version", kFormatVersion}, {"features", std::move(features)}};
}

absl::StatusOr<FeatureTransform> FeatureTransform::FromJson(
    const nlohmann::json& value) {
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        "transform: expected a JSON object {\"version\": 1, \"features\": "
        "[...]}, got " +
        TypeOf(value));
  }
  RETURN_IF_ERROR(CheckKeys(value, "", {"version", "features"}));
  ASSIGN_OR_RETURN(const json* version, Required(value, "version", "version"));
  if (!version->is_number_integer() ||
      version->get<int64_t>() != kFormatVersion) {
    return FieldError("version", "unsupported version " + version->dump() +
                                     "; this build reads version " +
                                     std::to_string(kFormatVersion));
  }
  ASSIGN_OR_RETURN(const json* features,
                   Required(value, "features", "features"));
  if (!features->is_array() || features->empty()) {
    return FieldError("features",
                      "expected a non-empty array of features, got " +
                          (features->is_array() ? std::string("an empty array")
                                                : TypeOf(*features)));
  }
  std::vector<FeaturePlan> plans;
  std::unordered_set<std::string> names;
  for (size_t i = 0; i < features->size(); ++i) {
    const std::string path = "features[" + std::to_string(i) + "]";
    ASSIGN_OR_RETURN(FeaturePlan plan, PlanFromJson((*features)[i], path));
    if (!names.insert(plan.name).second) {
      return FieldError(path + ".name",
                        "duplicate feature name '" + plan.name + "'");
    }
    plans.push_back(std::move(plan));
  }
  auto [duplicate_of, duplicate] = FirstDuplicateModelName(plans);
  if (duplicate_of >= 0) {
    return FieldError("features[" + std::to_string(duplicate_of) + "]",
                      "gives model feature '" + duplicate +
                          "', which an earlier feature already gives");
  }
  return FeatureTransform(std::move(plans));
}

absl::StatusOr<FeatureTransform> FeatureTransform::Parse(
    std::string_view json_text) {
  json value = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return absl::InvalidArgumentError(
        "transform: not valid JSON; write it with FeatureTransform::ToJson");
  }
  return FromJson(value);
}

Signature RequestSignature(const FeatureTransform& transform,
                           const Signature& model_signature) {
  return Signature(model_signature.task(), transform.request_features(),
                   model_signature.target(), model_signature.label_type(),
                   model_signature.class_labels());
}

}  // namespace slipway
