#include "data/jsonl.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/status.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kBlockBytes = 1 << 20;

class JsonlSource : public DataSource {
 public:
  JsonlSource(JsonlSourceOptions options, std::unique_ptr<SequentialFile> file)
      : options_(std::move(options)), file_(std::move(file)) {
    if (options_.chunk_rows == 0) options_.chunk_rows = 1;
  }

  absl::StatusOr<std::optional<Table>> NextChunk() override {
    RETURN_IF_ERROR(status_);
    auto chunk = ReadChunk();
    if (!chunk.ok()) status_ = chunk.status();
    return chunk;
  }

  std::string Fingerprint() const override { return sha_.HexDigest(); }
  std::string Describe() const override { return "jsonl " + options_.path; }

 private:
  std::string Where() const {
    return options_.path + ":" + std::to_string(line_number_);
  }

  // The next line without its terminator; std::nullopt at end of file.
  absl::StatusOr<std::optional<std::string>> ReadLine() {
    while (true) {
      const size_t newline = buffer_.find('\n', pos_);
      if (newline != std::string::npos) {
        std::string line = buffer_.substr(pos_, newline - pos_);
        pos_ = newline + 1;
        ++line_number_;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return std::optional<std::string>(std::move(line));
      }
      if (eof_) {
        if (pos_ >= buffer_.size()) return std::optional<std::string>();
        std::string line = buffer_.substr(pos_);
        pos_ = buffer_.size();
        ++line_number_;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return std::optional<std::string>(std::move(line));
      }
      buffer_.erase(0, pos_);
      pos_ = 0;
      const size_t old_size = buffer_.size();
      buffer_.resize(old_size + kBlockBytes);
      ASSIGN_OR_RETURN(size_t n, file_->Read(kBlockBytes, &buffer_[old_size]),
                       options_.path);
      buffer_.resize(old_size + n);
      sha_.Update(std::string_view(buffer_).substr(old_size, n));
      if (n == 0) eof_ = true;
      if (first_block_ && buffer_.size() >= 3 &&
          buffer_.compare(0, 3, "\xEF\xBB\xBF") == 0) {
        pos_ = 3;  // UTF-8 byte order mark
      }
      if (n > 0) first_block_ = false;
    }
  }

  // The next non-blank line parsed as an object; std::nullopt at the end.
  absl::StatusOr<std::optional<Json>> ReadObject() {
    while (true) {
      ASSIGN_OR_RETURN(std::optional<std::string> line, ReadLine());
      if (!line.has_value()) return std::optional<Json>();
      if (line->find_first_not_of(" \t") == std::string::npos) continue;
      Json value;
      try {
        value = Json::parse(*line);
      } catch (const Json::exception& e) {
        return absl::InvalidArgumentError(Where() +
                                          ": invalid JSON: " + e.what());
      }
      if (!value.is_object()) {
        return absl::InvalidArgumentError(Where() +
                                          ": expected a JSON object, got " +
                                          std::string(value.type_name()));
      }
      return std::optional<Json>(std::move(value));
    }
  }

  absl::StatusOr<std::vector<Cell>> ToCells(const Json& object) {
    std::vector<Cell> row(builder_->names().size());
    for (const auto& [key, value] : object.items()) {
      const auto it = column_index_.find(key);
      if (it == column_index_.end()) {
        return absl::InvalidArgumentError(
            Where() + ": key '" + key +
            "' is not a column (columns are the keys of the first " +
            std::to_string(options_.chunk_rows) + " rows)");
      }
      Cell& cell = row[it->second];
      switch (value.type()) {
        case Json::value_t::null:
          break;
        case Json::value_t::boolean:
          cell = value.get<bool>();
          break;
        case Json::value_t::number_integer:
          cell = value.get<int64_t>();
          break;
        case Json::value_t::number_unsigned: {
          const uint64_t u = value.get<uint64_t>();
          if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            cell = static_cast<double>(u);
          } else {
            cell = static_cast<int64_t>(u);
          }
          break;
        }
        case Json::value_t::number_float:
          cell = value.get<double>();
          break;
        case Json::value_t::string:
          cell = value.get<std::string>();
          break;
        default:
          return absl::InvalidArgumentError(
              Where() + ": key '" + key + "' holds " +
              std::string(value.type_name()) +
              "; JSON Lines columns hold numbers, strings, bools or null");
      }
    }
    return row;
  }

  // Reads the first chunk's objects to learn the columns.
  absl::Status StartColumns(std::vector<std::pair<Json, int64_t>>& first) {
    std::vector<std::string> names;
    for (const auto& [object, line] : first) {
      for (const auto& item : object.items()) {
        if (column_index_.emplace(item.key(), names.size()).second) {
          names.push_back(item.key());
        }
      }
    }
    for (const auto& [name, type] : options_.column_types) {
      if (column_index_.count(name) == 0) {
        return absl::InvalidArgumentError(
            options_.path + ": column_types names '" + name +
            "', which is not a key of the first " +
            std::to_string(options_.chunk_rows) + " rows");
      }
    }
    std::vector<std::optional<DataType>> types;
    for (const auto& name : names) {
      const auto it = options_.column_types.find(name);
      types.push_back(it == options_.column_types.end()
                          ? std::nullopt
                          : std::optional<DataType>(it->second));
    }
    builder_ = std::make_unique<ChunkBuilder>(
        std::move(names), std::move(types), ChunkBuilder::Options{});
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<Table>> ReadChunk() {
    if (builder_ == nullptr) {
      std::vector<std::pair<Json, int64_t>> first;
      while (first.size() < options_.chunk_rows) {
        ASSIGN_OR_RETURN(std::optional<Json> object, ReadObject());
        if (!object.has_value()) break;
        first.emplace_back(std::move(*object), line_number_);
      }
      if (first.empty()) return std::optional<Table>();
      RETURN_IF_ERROR(StartColumns(first));
      const int64_t resume_line = line_number_;
      for (auto& [object, line] : first) {
        line_number_ = line;
        ASSIGN_OR_RETURN(std::vector<Cell> row, ToCells(object));
        RETURN_IF_ERROR(builder_->AddRow(std::move(row), Where()));
      }
      line_number_ = resume_line;
    } else {
      while (builder_->pending_rows() < options_.chunk_rows) {
        ASSIGN_OR_RETURN(std::optional<Json> object, ReadObject());
        if (!object.has_value()) break;
        ASSIGN_OR_RETURN(std::vector<Cell> row, ToCells(*object));
        RETURN_IF_ERROR(builder_->AddRow(std::move(row), Where()));
      }
      if (builder_->pending_rows() == 0) return std::optional<Table>();
    }
    ASSIGN_OR_RETURN(Table table, builder_->TakeChunk());
    return std::optional<Table>(std::move(table));
  }

  JsonlSourceOptions options_;
  std::unique_ptr<SequentialFile> file_;
  Sha256 sha_;
  std::string buffer_;
  size_t pos_ = 0;
  bool eof_ = false;
  bool first_block_ = true;
  int64_t line_number_ = 0;
  std::map<std::string, size_t> column_index_;
  std::unique_ptr<ChunkBuilder> builder_;
  absl::Status status_;  // the first failure; every later call returns it
};

class JsonlSink : public StagedFileSink {
 public:
  using StagedFileSink::StagedFileSink;

  std::string Describe() const override { return "jsonl sink " + path(); }

 private:
  std::string Format(const Table& chunk, bool first) override {
    if (first) {
      for (const Column& column : chunk.columns()) {
        std::string key;
        AppendJsonString(column.name(), &key);
        keys_.push_back(std::move(key));
      }
    }
    std::string out;
    char number[32];
    for (size_t row = 0; row < chunk.num_rows(); ++row) {
      out.push_back('{');
      for (size_t c = 0; c < chunk.num_columns(); ++c) {
        if (c > 0) out.push_back(',');
        out += keys_[c];
        out.push_back(':');
        const Column& column = chunk.column(c);
        if (column.IsMissing(row)) {
          out += "null";
          continue;
        }
        switch (column.type()) {
          case DataType::kFloat64: {
            const double v = column.Float64At(row);
            if (!std::isfinite(v)) {
              out += "null";
              break;
            }
            const auto r = std::to_chars(number, number + sizeof(number), v);
            const std::string_view text(number, r.ptr - number);
            out += text;
            if (text.find_first_of(".e") == std::string_view::npos) {
              out += ".0";
            }
            break;
          }
          case DataType::kInt64: {
            const auto r = std::to_chars(number, number + sizeof(number),
                                         column.Int64At(row));
            out.append(number, r.ptr);
            break;
          }
          case DataType::kBool:
            out += column.BoolAt(row) ? "true" : "false";
            break;
          case DataType::kString:
            AppendJsonString(column.StringAt(row), &out);
            break;
        }
      }
      out += "}\n";
    }
    return out;
  }

  std::vector<std::string> keys_;  // column names as JSON strings
};

}  // namespace

absl::StatusOr<std::unique_ptr<DataSource>> OpenJsonlSource(
    Filesystem* fs, const JsonlSourceOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<SequentialFile> file,
                   fs->OpenSequential(options.path));
  return std::unique_ptr<DataSource>(new JsonlSource(options, std::move(file)));
}

absl::StatusOr<std::unique_ptr<DataSink>> OpenJsonlSink(
    Filesystem* fs, const JsonlSinkOptions& options) {
  ASSIGN_OR_RETURN(
      std::unique_ptr<StagedFile> file,
      StagedFile::Create(fs, options.path, "jsonl sink " + options.path));
  return std::unique_ptr<DataSink>(
      new JsonlSink(options.path, std::move(file)));
}

}  // namespace slipway
