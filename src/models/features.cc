#include "models/features.h"

#include <charconv>
#include <limits>
#include <set>
#include <string>

namespace slipway {
namespace {

constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();

// Text of a non-missing numeric cell, for a categorical feature.
std::string CellCategoryText(const Column& column, size_t row) {
  switch (column.type()) {
    case DataType::kInt64:
      return Int64CategoryText(column.Int64At(row));
    case DataType::kBool:
      return BoolCategoryText(column.BoolAt(row));
    case DataType::kFloat64:
      return Float64CategoryText(column.Float64At(row));
    case DataType::kString:
      return std::string(column.StringAt(row));
  }
  return std::string();
}

// Fills column `feature` of the row-major output from a categorical column.
void EncodeCategoricalColumn(const Signature& signature, int feature,
                             const Column& column, size_t num_features,
                             float* out, EncodeStats* stats) {
  const size_t rows = column.size();
  if (column.type() == DataType::kString) {
    // Look each dictionary entry up once instead of once per row.
    const std::vector<std::string>& dictionary = column.dictionary();
    std::vector<int32_t> code_of_entry(dictionary.size());
    for (size_t i = 0; i < dictionary.size(); ++i) {
      code_of_entry[i] = signature.CategoryCode(feature, dictionary[i]);
    }
    for (size_t row = 0; row < rows; ++row) {
      float& cell = out[row * num_features + feature];
      if (column.IsMissing(row)) {
        cell = kMissing;
        ++stats->missing_values;
        continue;
      }
      const int32_t code = code_of_entry[column.CodeAt(row)];
      if (code < 0) {
        cell = kUnseenCategory;
        ++stats->unseen_categories;
      } else {
        cell = static_cast<float>(code);
      }
    }
    return;
  }
  for (size_t row = 0; row < rows; ++row) {
    float& cell = out[row * num_features + feature];
    if (column.IsMissing(row)) {
      cell = kMissing;
      ++stats->missing_values;
      continue;
    }
    cell = EncodeCategory(signature, feature, CellCategoryText(column, row),
                          stats);
  }
}

void EncodeNumericColumn(int feature, const Column& column, size_t num_features,
                         float* out, EncodeStats* stats) {
  const size_t rows = column.size();
  for (size_t row = 0; row < rows; ++row) {
    float& cell = out[row * num_features + feature];
    if (column.IsMissing(row)) {
      cell = kMissing;
      ++stats->missing_values;
    } else {
      cell = static_cast<float>(column.NumberAt(row));
    }
  }
}

}  // namespace

std::string Int64CategoryText(int64_t value) { return std::to_string(value); }

std::string Float64CategoryText(double value) {
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string BoolCategoryText(bool value) { return value ? "true" : "false"; }

std::vector<std::string> CategoryTexts(const Column& column) {
  std::vector<std::string> out;
  if (column.type() == DataType::kString) {
    std::set<std::string> seen;
    for (size_t row = 0; row < column.size(); ++row) {
      if (!column.IsMissing(row)) seen.emplace(column.StringAt(row));
    }
    out.assign(seen.begin(), seen.end());
    return out;
  }
  std::set<double> numbers;
  std::set<int64_t> integers;
  for (size_t row = 0; row < column.size(); ++row) {
    if (column.IsMissing(row)) continue;
    if (column.type() == DataType::kInt64) {
      integers.insert(column.Int64At(row));
    } else {
      numbers.insert(column.NumberAt(row));
    }
  }
  for (int64_t value : integers) out.push_back(Int64CategoryText(value));
  for (double value : numbers) {
    out.push_back(column.type() == DataType::kBool
                      ? BoolCategoryText(value != 0)
                      : Float64CategoryText(value));
  }
  return out;
}

float EncodeCategory(const Signature& signature, int feature,
                     std::string_view value, EncodeStats* stats) {
  const int32_t code = signature.CategoryCode(feature, value);
  if (code >= 0) return static_cast<float>(code);
  if (stats != nullptr) ++stats->unseen_categories;
  return kUnseenCategory;
}

absl::Status EncodeTable(const Signature& signature, const Table& table,
                         std::vector<float>* out_row_major,
                         EncodeStats* stats) {
  const std::vector<FeatureSpec>& features = signature.features();
  // Resolve every column first so a bad table leaves the output untouched.
  std::vector<const Column*> columns;
  columns.reserve(features.size());
  for (const FeatureSpec& spec : features) {
    const Column* column = table.FindColumn(spec.name);
    if (column == nullptr) {
      return absl::InvalidArgumentError(
          "feature '" + spec.name +
          "' is missing: the data has no column with that name");
    }
    if (!spec.is_categorical() && column->type() == DataType::kString) {
      return absl::InvalidArgumentError(
          "feature '" + spec.name + "' is numeric (" +
          std::string(DataTypeName(spec.type)) +
          ") but its column holds strings; send numbers for it");
    }
    columns.push_back(column);
  }

  EncodeStats local_stats;
  const size_t rows = table.num_rows();
  const size_t width = features.size();
  out_row_major->assign(rows * width, kMissing);
  float* out = out_row_major->data();
  for (size_t f = 0; f < width; ++f) {
    const int feature = static_cast<int>(f);
    if (features[f].is_categorical()) {
      EncodeCategoricalColumn(signature, feature, *columns[f], width, out,
                              &local_stats);
    } else {
      EncodeNumericColumn(feature, *columns[f], width, out, &local_stats);
    }
  }
  if (stats != nullptr) {
    stats->unseen_categories += local_stats.unseen_categories;
    stats->missing_values += local_stats.missing_values;
  }
  return absl::OkStatus();
}

}  // namespace slipway
