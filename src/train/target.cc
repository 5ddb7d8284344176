#include "train/target.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "models/features.h"

namespace slipway {

absl::StatusOr<const Column*> FindTarget(const Table& table,
                                         const std::string& target,
                                         const std::string& role) {
  const Column* column = table.FindColumn(target);
  if (column == nullptr) {
    return absl::InvalidArgumentError(role + " has no target column '" +
                                      target + "'");
  }
  return column;
}

absl::Status CheckTargetComplete(const Column& target,
                                 const std::string& role) {
  size_t bad = 0;
  size_t first_bad = 0;
  for (size_t row = 0; row < target.size(); ++row) {
    const bool missing =
        target.IsMissing(row) || (target.type() == DataType::kFloat64 &&
                                  !std::isfinite(target.Float64At(row)));
    if (missing) {
      if (bad == 0) first_bad = row;
      ++bad;
    }
  }
  if (bad == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      role + ": target '" + target.name() + "' is missing or not finite in " +
      std::to_string(bad) + " rows (first at row " + std::to_string(first_bad) +
      "); drop or fill those rows");
}

std::string LabelText(const Column& column, size_t row) {
  switch (column.type()) {
    case DataType::kString:
      return std::string(column.StringAt(row));
    case DataType::kInt64:
      return std::to_string(column.Int64At(row));
    case DataType::kBool:
      return column.BoolAt(row) ? "true" : "false";
    case DataType::kFloat64:
      return Float64CategoryText(column.Float64At(row));
  }
  return std::string();
}

std::vector<std::string> SortedDistinctValues(const Column& column) {
  std::vector<std::string> labels;
  switch (column.type()) {
    case DataType::kString: {
      // Mark dictionary entries in use: a table made by Take may keep
      // entries no row refers to.
      std::vector<bool> used(column.dictionary().size(), false);
      for (size_t row = 0; row < column.size(); ++row) {
        if (!column.IsMissing(row)) used[column.CodeAt(row)] = true;
      }
      for (size_t code = 0; code < used.size(); ++code) {
        if (used[code]) labels.push_back(column.dictionary()[code]);
      }
      std::sort(labels.begin(), labels.end());
      break;
    }
    case DataType::kInt64: {
      std::set<int64_t> values;
      for (size_t row = 0; row < column.size(); ++row) {
        if (!column.IsMissing(row)) values.insert(column.Int64At(row));
      }
      for (int64_t value : values) labels.push_back(std::to_string(value));
      break;
    }
    case DataType::kBool: {
      std::set<bool> values;
      for (size_t row = 0; row < column.size(); ++row) {
        if (!column.IsMissing(row)) values.insert(column.BoolAt(row));
      }
      for (bool value : values) labels.push_back(value ? "true" : "false");
      break;
    }
    case DataType::kFloat64:
      break;
  }
  return labels;
}

}  // namespace slipway
