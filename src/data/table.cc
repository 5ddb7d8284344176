#include "data/table.h"

#include <cctype>
#include <limits>
#include <utility>

namespace slipway {
namespace {

// Heap bytes a std::string owns beyond its own object (0 while the short
// string optimisation keeps the characters inline).
size_t StringHeapBytes(const std::string& s) {
  return s.capacity() > std::string().capacity() ? s.capacity() + 1 : 0;
}

std::string Lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

std::string_view DataTypeName(DataType type) {
  switch (type) {
    case DataType::kFloat64:
      return "float64";
    case DataType::kInt64:
      return "int64";
    case DataType::kBool:
      return "bool";
    case DataType::kString:
      return "string";
  }
  return "unknown";
}

absl::StatusOr<DataType> ParseDataType(std::string_view name) {
  const std::string n = Lowercase(name);
  if (n == "float64" || n == "float" || n == "double") {
    return DataType::kFloat64;
  }
  if (n == "int64" || n == "int" || n == "integer") return DataType::kInt64;
  if (n == "bool" || n == "boolean") return DataType::kBool;
  if (n == "string" || n == "str" || n == "category" || n == "categorical") {
    return DataType::kString;
  }
  return absl::InvalidArgumentError(
      "unknown data type '" + std::string(name) +
      "'; expected one of float64, int64, bool, string");
}

Column::Column(std::string name, DataType type)
    : name_(std::move(name)), type_(type) {}

bool Column::IsMissing(size_t row) const {
  return (validity_[row / 64] >> (row % 64) & 1) == 0;
}

double Column::NumberAt(size_t row) const {
  if (IsMissing(row)) return std::numeric_limits<double>::quiet_NaN();
  switch (type_) {
    case DataType::kFloat64:
      return float64_[row];
    case DataType::kInt64:
      return static_cast<double>(int64_[row]);
    case DataType::kBool:
      return bool_[row] != 0 ? 1.0 : 0.0;
    case DataType::kString:
      break;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

void Column::Reserve(size_t rows) {
  validity_.reserve((rows + 63) / 64);
  switch (type_) {
    case DataType::kFloat64:
      float64_.reserve(rows);
      break;
    case DataType::kInt64:
      int64_.reserve(rows);
      break;
    case DataType::kBool:
      bool_.reserve(rows);
      break;
    case DataType::kString:
      codes_.reserve(rows);
      break;
  }
}

void Column::MarkValid(bool valid) {
  if (size_ % 64 == 0) validity_.push_back(0);
  if (valid) {
    validity_.back() |= uint64_t{1} << (size_ % 64);
  } else {
    ++missing_count_;
  }
  ++size_;
}

// A missing cell stores a zero placeholder in the value vector of the
// column's type, so that row i is always at index i. For a string column the
// placeholder is code 0, which is a real code once the dictionary has an
// entry and out of range while it is empty: callers check IsMissing() before
// StringAt(), as they must before any typed accessor.
void Column::AppendMissing() {
  switch (type_) {
    case DataType::kFloat64:
      float64_.push_back(0.0);
      break;
    case DataType::kInt64:
      int64_.push_back(0);
      break;
    case DataType::kBool:
      bool_.push_back(0);
      break;
    case DataType::kString:
      codes_.push_back(0);
      break;
  }
  MarkValid(false);
}

void Column::AppendFloat64(double value) {
  float64_.push_back(value);
  MarkValid(true);
}

void Column::AppendInt64(int64_t value) {
  int64_.push_back(value);
  MarkValid(true);
}

void Column::AppendBool(bool value) {
  bool_.push_back(value ? 1 : 0);
  MarkValid(true);
}

void Column::AppendString(std::string_view value) {
  // The index is keyed by std::string; reusing one key buffer per thread
  // keeps lookups of long strings free of a heap allocation per cell.
  thread_local std::string key;
  key.assign(value.data(), value.size());
  auto it = dictionary_index_.find(key);
  int32_t code;
  if (it != dictionary_index_.end()) {
    code = it->second;
  } else {
    code = static_cast<int32_t>(dictionary_.size());
    dictionary_.push_back(key);
    dictionary_index_.emplace(key, code);
  }
  codes_.push_back(code);
  MarkValid(true);
}

Column Column::Take(const std::vector<size_t>& rows) const {
  Column out(name_, type_);
  out.Reserve(rows.size());
  if (type_ == DataType::kString) {
    // Codes are remapped so the new dictionary holds only the strings the
    // taken rows use, in their order of first appearance.
    std::vector<int32_t> remap(dictionary_.size(), -1);
    for (size_t row : rows) {
      if (IsMissing(row)) {
        out.AppendMissing();
        continue;
      }
      int32_t& code = remap[codes_[row]];
      if (code < 0) {
        code = static_cast<int32_t>(out.dictionary_.size());
        out.dictionary_.push_back(dictionary_[codes_[row]]);
        out.dictionary_index_.emplace(dictionary_[codes_[row]], code);
      }
      out.codes_.push_back(code);
      out.MarkValid(true);
    }
    return out;
  }
  for (size_t row : rows) {
    const bool valid = !IsMissing(row);
    switch (type_) {
      case DataType::kFloat64:
        out.float64_.push_back(float64_[row]);
        break;
      case DataType::kInt64:
        out.int64_.push_back(int64_[row]);
        break;
      case DataType::kBool:
        out.bool_.push_back(bool_[row]);
        break;
      case DataType::kString:
        break;
    }
    out.MarkValid(valid);
  }
  return out;
}

void Column::AppendColumn(const Column& other) {
  std::vector<int32_t> remap;
  if (type_ == DataType::kString) {
    // `other`'s dictionary is in its order of first appearance, so interning
    // it in that order keeps this column's dictionary in first-appearance
    // order too.
    remap.reserve(other.dictionary_.size());
    for (const std::string& value : other.dictionary_) {
      auto [it, inserted] = dictionary_index_.emplace(
          value, static_cast<int32_t>(dictionary_.size()));
      if (inserted) dictionary_.push_back(value);
      remap.push_back(it->second);
    }
  }
  for (size_t row = 0; row < other.size_; ++row) {
    const bool valid = !other.IsMissing(row);
    switch (type_) {
      case DataType::kFloat64:
        float64_.push_back(other.float64_[row]);
        break;
      case DataType::kInt64:
        int64_.push_back(other.int64_[row]);
        break;
      case DataType::kBool:
        bool_.push_back(other.bool_[row]);
        break;
      case DataType::kString:
        codes_.push_back(valid ? remap[other.codes_[row]] : 0);
        break;
    }
    MarkValid(valid);
  }
}

size_t Column::ValueBytes() const {
  size_t bytes = validity_.capacity() * sizeof(uint64_t) +
                 float64_.capacity() * sizeof(double) +
                 int64_.capacity() * sizeof(int64_t) +
                 bool_.capacity() * sizeof(uint8_t) +
                 codes_.capacity() * sizeof(int32_t) +
                 dictionary_.capacity() * sizeof(std::string);
  // The index holds a second copy of every string, in one hash node each
  // (next pointer, key, code, cached hash), plus its bucket array.
  constexpr size_t kNodeBytes =
      sizeof(void*) + sizeof(std::string) + sizeof(int64_t) + sizeof(size_t);
  for (const std::string& value : dictionary_) {
    bytes += 2 * StringHeapBytes(value) + kNodeBytes;
  }
  if (!dictionary_index_.empty()) {
    bytes += dictionary_index_.bucket_count() * sizeof(void*);
  }
  return bytes;
}

size_t Table::num_rows() const {
  return columns_.empty() ? 0 : columns_.front().size();
}

int Table::ColumnIndex(std::string_view name) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].name() == name) return static_cast<int>(i);
  }
  return -1;
}

const Column* Table::FindColumn(std::string_view name) const {
  const int i = ColumnIndex(name);
  return i < 0 ? nullptr : &columns_[i];
}

absl::Status Table::AddColumn(Column column) {
  if (ColumnIndex(column.name()) >= 0) {
    return absl::InvalidArgumentError("column '" + column.name() +
                                      "' is already in the table");
  }
  if (!columns_.empty() && column.size() != num_rows()) {
    return absl::InvalidArgumentError(
        "column '" + column.name() + "' has " + std::to_string(column.size()) +
        " rows, the table has " + std::to_string(num_rows()));
  }
  columns_.push_back(std::move(column));
  return absl::OkStatus();
}

Table Table::Take(const std::vector<size_t>& rows) const {
  Table out;
  out.columns_.reserve(columns_.size());
  for (const Column& column : columns_) {
    out.columns_.push_back(column.Take(rows));
  }
  return out;
}

absl::Status Table::AppendRows(const Table& other) {
  // A table without columns takes the other's columns, so chunks can be
  // gathered into a default-constructed Table.
  if (columns_.empty()) {
    columns_ = other.columns_;
    return absl::OkStatus();
  }
  if (other.columns_.size() != columns_.size()) {
    return absl::InvalidArgumentError("cannot append rows: the table has " +
                                      std::to_string(columns_.size()) +
                                      " columns, the appended rows have " +
                                      std::to_string(other.columns_.size()));
  }
  for (size_t i = 0; i < columns_.size(); ++i) {
    const Column& mine = columns_[i];
    const Column& theirs = other.columns_[i];
    if (mine.name() != theirs.name()) {
      return absl::InvalidArgumentError(
          "cannot append rows: column " + std::to_string(i + 1) + " is '" +
          mine.name() + "' in the table but '" + theirs.name() +
          "' in the appended rows");
    }
    if (mine.type() != theirs.type()) {
      return absl::InvalidArgumentError(
          "cannot append rows: column '" + mine.name() + "' is " +
          std::string(DataTypeName(mine.type())) + " in the table but " +
          std::string(DataTypeName(theirs.type())) + " in the appended rows");
    }
  }
  for (size_t i = 0; i < columns_.size(); ++i) {
    columns_[i].AppendColumn(other.columns_[i]);
  }
  return absl::OkStatus();
}

size_t Table::ValueBytes() const {
  size_t bytes = 0;
  for (const Column& column : columns_) bytes += column.ValueBytes();
  return bytes;
}

}  // namespace slipway
