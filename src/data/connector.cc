#include "data/connector.h"

#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "core/status.h"

namespace slipway {
namespace {

enum Kind { kNone = 0, kInt = 1, kReal = 2, kBoolKind = 4, kStringKind = 8 };

int KindOf(const Cell& cell) {
  switch (cell.index()) {
    case 1:
      return kInt;
    case 2:
      return kReal;
    case 3:
      return kBoolKind;
    case 4:
      return kStringKind;
    default:
      return kNone;
  }
}

std::string KindName(int kind) {
  switch (kind) {
    case kInt:
    case kReal:
    case kInt | kReal:
      return "numbers";
    case kBoolKind:
      return "bools";
    default:
      return "strings";
  }
}

// The cell for an error message: strings quoted, at most 40 bytes of them.
std::string Shown(const Cell& cell) {
  if (const auto* s = std::get_if<std::string>(&cell)) {
    std::string shown = s->substr(0, 40);
    if (s->size() > 40) shown += "...";
    return "'" + shown + "'";
  }
  return CellText(cell);
}

}  // namespace

std::string CellText(const Cell& cell) {
  char buffer[32];
  switch (cell.index()) {
    case 1: {
      const auto r = std::to_chars(buffer, buffer + sizeof(buffer),
                                   std::get<int64_t>(cell));
      return std::string(buffer, r.ptr);
    }
    case 2: {
      const auto r = std::to_chars(buffer, buffer + sizeof(buffer),
                                   std::get<double>(cell));
      return std::string(buffer, r.ptr);
    }
    case 3:
      return std::get<bool>(cell) ? "true" : "false";
    case 4:
      return std::get<std::string>(cell);
    default:
      return "";
  }
}

absl::Status CheckSameSchema(const Table& first, const Table& chunk,
                             std::string_view where) {
  const std::string prefix(where);
  if (first.num_columns() != chunk.num_columns()) {
    return absl::InvalidArgumentError(
        prefix + ": chunk has " + std::to_string(chunk.num_columns()) +
        " columns, the first chunk had " + std::to_string(first.num_columns()));
  }
  for (size_t c = 0; c < first.num_columns(); ++c) {
    const Column& a = first.column(c);
    const Column& b = chunk.column(c);
    if (a.name() != b.name() || a.type() != b.type()) {
      return absl::InvalidArgumentError(
          prefix + ": chunk column " + std::to_string(c + 1) + " is '" +
          b.name() + "' (" + std::string(DataTypeName(b.type())) +
          "), the first chunk had '" + a.name() + "' (" +
          std::string(DataTypeName(a.type())) + ")");
    }
  }
  return absl::OkStatus();
}

ChunkBuilder::ChunkBuilder(std::vector<std::string> names,
                           std::vector<std::optional<DataType>> types,
                           Options options)
    : names_(std::move(names)), types_(std::move(types)), options_(options) {
  seen_kinds_.assign(names_.size(), kNone);
  types_fixed_ = true;
  for (const auto& type : types_) {
    if (!type.has_value()) types_fixed_ = false;
  }
  if (types_fixed_) {
    for (size_t c = 0; c < names_.size(); ++c) {
      columns_.emplace_back(names_[c], *types_[c]);
    }
  }
}

absl::Status ChunkBuilder::AddRow(std::vector<Cell> row,
                                  std::string_view where) {
  if (!types_fixed_) {
    // Kinds may conflict in an inferred column; report it on the row that
    // brings the conflict, while its location is at hand.
    for (size_t c = 0; c < row.size(); ++c) {
      if (types_[c].has_value()) continue;
      const int kind = KindOf(row[c]);
      if (kind == kNone) continue;
      const int earlier = seen_kinds_[c];
      const int numbers = kInt | kReal;
      const bool compatible = earlier == kNone || earlier == kind ||
                              ((earlier | kind) & ~numbers) == 0;
      if (!compatible && !options_.coerce_to_string) {
        return absl::InvalidArgumentError(
            std::string(where) + ": column '" + names_[c] + "' holds " +
            Shown(row[c]) + ", earlier rows hold " + KindName(earlier));
      }
      seen_kinds_[c] |= kind;
    }
    first_rows_.push_back(std::move(row));
    first_where_.emplace_back(where);
    ++pending_rows_;
    return absl::OkStatus();
  }
  for (size_t c = 0; c < row.size(); ++c) {
    RETURN_IF_ERROR(Append(c, std::move(row[c]), where));
  }
  ++pending_rows_;
  return absl::OkStatus();
}

absl::Status ChunkBuilder::Append(size_t c, Cell cell, std::string_view where) {
  Column& column = columns_[c];
  const int kind = KindOf(cell);
  if (kind == kNone) {
    column.AppendMissing();
    return absl::OkStatus();
  }
  switch (column.type()) {
    case DataType::kInt64:
      if (kind == kInt) {
        column.AppendInt64(std::get<int64_t>(cell));
        return absl::OkStatus();
      }
      if (kind == kReal) {
        const double v = std::get<double>(cell);
        // A writer may print a whole number as 3.0; accept it exactly.
        if (std::trunc(v) == v && v >= -9.2233720368547758e18 &&
            v < 9.2233720368547758e18) {
          column.AppendInt64(static_cast<int64_t>(v));
          return absl::OkStatus();
        }
      }
      break;
    case DataType::kFloat64:
      if (kind == kInt) {
        column.AppendFloat64(static_cast<double>(std::get<int64_t>(cell)));
        return absl::OkStatus();
      }
      if (kind == kReal) {
        column.AppendFloat64(std::get<double>(cell));
        return absl::OkStatus();
      }
      break;
    case DataType::kBool:
      if (kind == kBoolKind) {
        column.AppendBool(std::get<bool>(cell));
        return absl::OkStatus();
      }
      if (kind == kInt &&
          (std::get<int64_t>(cell) == 0 || std::get<int64_t>(cell) == 1)) {
        column.AppendBool(std::get<int64_t>(cell) == 1);
        return absl::OkStatus();
      }
      break;
    case DataType::kString:
      if (kind == kStringKind) {
        column.AppendString(std::get<std::string>(cell));
        return absl::OkStatus();
      }
      if (options_.coerce_to_string) {
        column.AppendString(CellText(cell));
        return absl::OkStatus();
      }
      break;
  }
  return absl::InvalidArgumentError(
      std::string(where) + ": column '" + column.name() + "' expected " +
      std::string(DataTypeName(column.type())) + ", got " + Shown(cell));
}

absl::StatusOr<Table> ChunkBuilder::TakeChunk() {
  if (!types_fixed_) {
    for (size_t c = 0; c < names_.size(); ++c) {
      if (types_[c].has_value()) continue;
      const int kinds = seen_kinds_[c];
      DataType type = DataType::kString;
      if (kinds == kNone || kinds == kReal || kinds == (kInt | kReal)) {
        type = DataType::kFloat64;
      } else if (kinds == kInt) {
        type = DataType::kInt64;
      } else if (kinds == kBoolKind) {
        type = DataType::kBool;
      }
      types_[c] = type;
    }
    types_fixed_ = true;
    for (size_t c = 0; c < names_.size(); ++c) {
      columns_.emplace_back(names_[c], *types_[c]);
      columns_.back().Reserve(first_rows_.size());
    }
    for (size_t r = 0; r < first_rows_.size(); ++r) {
      for (size_t c = 0; c < names_.size(); ++c) {
        RETURN_IF_ERROR(
            Append(c, std::move(first_rows_[r][c]), first_where_[r]));
      }
    }
    first_rows_.clear();
    first_rows_.shrink_to_fit();
    first_where_.clear();
    first_where_.shrink_to_fit();
  }
  Table table;
  for (size_t c = 0; c < names_.size(); ++c) {
    Column fresh(names_[c], *types_[c]);
    std::swap(fresh, columns_[c]);
    RETURN_IF_ERROR(table.AddColumn(std::move(fresh)));
  }
  pending_rows_ = 0;
  return table;
}

void RowHasher::AddColumns(const std::vector<std::string>& names) {
  for (const auto& name : names) {
    sha_.Update("n" + std::to_string(name.size()) + ":");
    sha_.Update(name);
  }
  sha_.Update("\n");
}

void RowHasher::AddRow(const std::vector<Cell>& row) {
  static constexpr char kTags[] = {'m', 'i', 'r', 'b', 's'};
  for (const Cell& cell : row) {
    const std::string text = CellText(cell);
    sha_.Update(std::string(1, kTags[cell.index()]) +
                std::to_string(text.size()) + ":");
    sha_.Update(text);
  }
  sha_.Update("\n");
}

absl::StatusOr<std::unique_ptr<StagedFile>> StagedFile::Create(
    Filesystem* fs, const std::string& path, std::string owner) {
  static std::atomic<int64_t> counter{0};
  std::string partial = path + ".partial-" + std::to_string(getpid()) + "-" +
                        std::to_string(counter.fetch_add(1));
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                   fs->OpenWritable(partial), owner);
  return std::unique_ptr<StagedFile>(new StagedFile(
      fs, path, std::move(partial), std::move(owner), std::move(file)));
}

StagedFile::StagedFile(Filesystem* fs, std::string path, std::string partial,
                       std::string owner, std::unique_ptr<WritableFile> file)
    : fs_(fs),
      path_(std::move(path)),
      partial_(std::move(partial)),
      owner_(std::move(owner)),
      file_(std::move(file)) {}

StagedFile::~StagedFile() {
  if (committed_) return;
  if (file_ != nullptr) file_->Close().IgnoreError();
  // Best effort: the partial file is garbage either way.
  fs_->RemoveFile(partial_).IgnoreError();
}

absl::Status StagedFile::Append(std::string_view data) {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(owner_ + ": already committed");
  }
  return Annotate(file_->Append(data), owner_);
}

absl::Status StagedFile::Commit() {
  if (file_ == nullptr) {
    return absl::FailedPreconditionError(owner_ + ": already committed");
  }
  RETURN_IF_ERROR(file_->Sync(), owner_);
  RETURN_IF_ERROR(file_->Close(), owner_);
  file_.reset();
  RETURN_IF_ERROR(fs_->Rename(partial_, path_), owner_);
  committed_ = true;
  return Annotate(fs_->SyncDir(DirName(path_)), owner_);
}

StagedFileSink::StagedFileSink(std::string path,
                               std::unique_ptr<StagedFile> file)
    : path_(std::move(path)), file_(std::move(file)) {}

absl::Status StagedFileSink::Write(const Table& chunk) {
  RETURN_IF_ERROR(status_);
  if (finished_) {
    return absl::FailedPreconditionError(Describe() + ": already finished");
  }
  const bool first = !first_.has_value();
  if (first) {
    first_ = chunk.Take({});
  } else {
    status_ = CheckSameSchema(*first_, chunk,
                              Describe() + " row " + std::to_string(rows_ + 1));
    RETURN_IF_ERROR(status_);
  }
  status_ = file_->Append(Format(chunk, first));
  rows_ += chunk.num_rows();
  return status_;
}

absl::Status StagedFileSink::Finish() {
  RETURN_IF_ERROR(status_);
  if (finished_) {
    return absl::FailedPreconditionError(Describe() + ": already finished");
  }
  finished_ = true;
  status_ = file_->Commit();
  return status_;
}

}  // namespace slipway
