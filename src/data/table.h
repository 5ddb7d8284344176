// Table: the columnar, typed, in-memory data set every step passes along
// (ingest -> validate -> split -> train -> evaluate, and batch scoring).
//
// Each Column holds one type: float64, int64, bool, or string. String
// columns are dictionary-encoded (int32 codes into a per-column dictionary),
// so a categorical column with few distinct values costs 4 bytes a row.
// Every column tracks missing values in a validity bitmap; a missing cell
// holds a zero placeholder.
//
// Memory: a table holds its values once, plus the dictionaries and 1 bit a
// cell; ValueBytes() reports that total.
// Thread safety: const methods may be called concurrently; mutation needs
// exclusive access.
#ifndef SLIPWAY_DATA_TABLE_H_
#define SLIPWAY_DATA_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipway {

enum class DataType { kFloat64, kInt64, kBool, kString };

// "float64", "int64", "bool", "string".
std::string_view DataTypeName(DataType type);
// Parses a DataTypeName (also accepts "float", "double", "int", "integer",
// "boolean", "str", "category", "categorical").
absl::StatusOr<DataType> ParseDataType(std::string_view name);

class Column {
 public:
  Column(std::string name, DataType type);

  const std::string& name() const { return name_; }
  DataType type() const { return type_; }
  size_t size() const { return size_; }
  size_t missing_count() const { return missing_count_; }

  bool IsMissing(size_t row) const;
  // REQUIRES: the column has the accessor's type and row < size();
  // StringAt also requires !IsMissing(row).
  double Float64At(size_t row) const { return float64_[row]; }
  int64_t Int64At(size_t row) const { return int64_[row]; }
  bool BoolAt(size_t row) const { return bool_[row] != 0; }
  std::string_view StringAt(size_t row) const {
    return dictionary_[codes_[row]];
  }
  // Dictionary code of a string cell (0 for a missing cell).
  int32_t CodeAt(size_t row) const { return codes_[row]; }
  // Distinct strings of a string column, in order of first appearance.
  const std::vector<std::string>& dictionary() const { return dictionary_; }

  // The cell as a number: float64 as is, int64 converted, bool as 0/1; NaN
  // when missing. REQUIRES: type() != kString.
  double NumberAt(size_t row) const;

  void Reserve(size_t rows);
  void AppendMissing();
  // REQUIRES: the column has the appended value's type.
  void AppendFloat64(double value);
  void AppendInt64(int64_t value);
  void AppendBool(bool value);
  void AppendString(std::string_view value);

  // A new column with the given rows, in the given order (rows may repeat).
  Column Take(const std::vector<size_t>& rows) const;
  // Appends every cell of `other`. REQUIRES: same type.
  void AppendColumn(const Column& other);

  // Bytes held by values, dictionary and validity bitmap.
  size_t ValueBytes() const;

 private:
  void MarkValid(bool valid);

  std::string name_;
  DataType type_;
  size_t size_ = 0;
  size_t missing_count_ = 0;
  std::vector<uint64_t> validity_;  // bit i set: row i present
  std::vector<double> float64_;
  std::vector<int64_t> int64_;
  std::vector<uint8_t> bool_;
  std::vector<int32_t> codes_;
  std::vector<std::string> dictionary_;
  std::unordered_map<std::string, int32_t> dictionary_index_;
};

class Table {
 public:
  Table() = default;

  size_t num_rows() const;
  size_t num_columns() const { return columns_.size(); }
  const Column& column(size_t i) const { return columns_[i]; }
  Column& mutable_column(size_t i) { return columns_[i]; }
  const std::vector<Column>& columns() const { return columns_; }

  // Index of the column named `name`, or -1.
  int ColumnIndex(std::string_view name) const;
  // The column named `name`, or nullptr.
  const Column* FindColumn(std::string_view name) const;

  // Fails (InvalidArgument) when the name is taken or, for a non-empty
  // table, when the column's size differs from num_rows().
  absl::Status AddColumn(Column column);

  // A new table with the given rows of every column.
  Table Take(const std::vector<size_t>& rows) const;
  // Appends the rows of `other`, which must have the same column names and
  // types in the same order (InvalidArgument naming the first difference).
  absl::Status AppendRows(const Table& other);

  size_t ValueBytes() const;

 private:
  std::vector<Column> columns_;
};

}  // namespace slipway

#endif  // SLIPWAY_DATA_TABLE_H_
