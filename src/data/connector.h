// Connectors: where tables come from (DataSource) and where they go
// (DataSink), streamed in chunks of bounded size so an input larger than
// memory can be scored or loaded. Implementations: csv_connector.h,
// jsonl.h, sqlite_connector.h, postgres_connector.h; each has an options
// struct and an Open...() factory.
//
// Contract for every connector:
// - A source returns at most its chunk_rows rows per NextChunk(), every
//   chunk with the same column names and types; std::nullopt at the end.
//   After an error every further call returns that error.
// - Fingerprint() is the SHA-256 (lowercase hex) of what was read so far,
//   taken as it was read: a file's bytes, or a database's rows in a fixed
//   encoding (RowHasher). After the last chunk it identifies the input.
// - A sink accepts chunks with the same columns as its first; nothing it
//   wrote is visible until Finish() returns OK, and a sink destroyed before
//   that (or whose write failed) leaves no partial output behind.
// - Error messages name the connector, the file or table and the row, and
//   never hold a credential (see secrets.h); Describe() is safe to log.
//
// This header also holds the pieces connectors share: ChunkBuilder and
// RowHasher turn decoded cells into typed chunks and fingerprints (for
// sources with no fixed schema: JSON Lines, SQLite expressions), and
// StagedFile gives file sinks their all-or-nothing output.
//
// Thread safety: a source or sink is used by one thread at a time.
#ifndef SLIPWAY_DATA_CONNECTOR_H_
#define SLIPWAY_DATA_CONNECTOR_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/filesystem.h"
#include "core/hash.h"
#include "data/table.h"

namespace slipway {

class DataSource {
 public:
  virtual ~DataSource() = default;
  // The next chunk of at most chunk_rows rows; std::nullopt when done.
  virtual absl::StatusOr<std::optional<Table>> NextChunk() = 0;
  // SHA-256 (lowercase hex) of what was read so far.
  virtual std::string Fingerprint() const = 0;
  // "csv data/train.csv", "postgres postgresql://app:***@db/x query ..." —
  // credentials masked, safe for logs and run records.
  virtual std::string Describe() const = 0;
};

class DataSink {
 public:
  virtual ~DataSink() = default;
  // Appends `chunk`. REQUIRES: same column names and types as the first
  // chunk written (InvalidArgument otherwise).
  virtual absl::Status Write(const Table& chunk) = 0;
  // Commits everything written. Write() after Finish() fails.
  virtual absl::Status Finish() = 0;
  virtual std::string Describe() const = 0;
};

// Fails (InvalidArgument, starting with `where`) unless `chunk` has the
// names and types of `first`.
absl::Status CheckSameSchema(const Table& first, const Table& chunk,
                             std::string_view where);

// A value as a connector decoded it; std::monostate is a missing value.
using Cell = std::variant<std::monostate, int64_t, double, bool, std::string>;

// Builds chunks from rows of Cells. Columns with a fixed type convert each
// cell to it; the others take their type from the first chunk's values
// (all integers -> int64; integers and reals -> float64; bools -> bool;
// strings -> string; nothing but missing -> float64) and keep it after.
class ChunkBuilder {
 public:
  struct Options {
    // When true a value of another kind in a string column becomes its text
    // (SQL columns of unknown type) and a first chunk mixing kinds makes a
    // string column; when false both are errors (JSON Lines).
    bool coerce_to_string = false;
  };

  // `types[i]` fixed, or std::nullopt to infer. REQUIRES: same sizes.
  ChunkBuilder(std::vector<std::string> names,
               std::vector<std::optional<DataType>> types, Options options);

  const std::vector<std::string>& names() const { return names_; }

  // Appends one row. `where` locates it for errors ("data.jsonl:12", "row
  // 7"); the message is "<where>: column 'x' expected int64, got 3.5".
  // REQUIRES: row.size() == names().size().
  absl::Status AddRow(std::vector<Cell> row, std::string_view where);
  size_t pending_rows() const { return pending_rows_; }

  // The rows added since the last call, as a table. The first call fixes the
  // inferred types.
  absl::StatusOr<Table> TakeChunk();

 private:
  absl::Status Append(size_t column, Cell cell, std::string_view where);

  std::vector<std::string> names_;
  std::vector<std::optional<DataType>> types_;
  Options options_;
  bool types_fixed_ = false;
  // Rows of the first chunk, kept as cells until their types are known.
  std::vector<std::vector<Cell>> first_rows_;
  std::vector<std::string> first_where_;
  // Per column, the kinds of value (a bit each) the first chunk holds.
  std::vector<int> seen_kinds_;
  std::vector<Column> columns_;
  size_t pending_rows_ = 0;
};

// SHA-256 of rows in a fixed encoding (a tag byte per cell, then the value:
// integers and reals as decimal text, lengths before strings), so the same
// rows read the same way always give the same fingerprint.
class RowHasher {
 public:
  void AddColumns(const std::vector<std::string>& names);
  void AddRow(const std::vector<Cell>& row);
  std::string HexDigest() const { return sha_.HexDigest(); }

 private:
  Sha256 sha_;
};

// The text of a non-missing cell: integers in decimal, reals in shortest
// round-trip form, bools as true/false.
std::string CellText(const Cell& cell);

// A file written beside its destination ("<path>.partial-<pid>-<n>") and
// renamed over it by Commit(), after a sync: readers of `path` see the old
// file or the complete new one. Destroyed uncommitted, it removes the
// partial file. Errors start with `owner` ("csv sink out/scores.csv").
class StagedFile {
 public:
  static absl::StatusOr<std::unique_ptr<StagedFile>> Create(
      Filesystem* fs, const std::string& path, std::string owner);
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  absl::Status Append(std::string_view data);
  absl::Status Commit();

 private:
  StagedFile(Filesystem* fs, std::string path, std::string partial,
             std::string owner, std::unique_ptr<WritableFile> file);

  Filesystem* fs_;
  std::string path_;
  std::string partial_;
  std::string owner_;
  std::unique_ptr<WritableFile> file_;
  bool committed_ = false;
};

// The DataSink of every text-file connector: every chunk must have the
// first chunk's columns, the first failure is kept and returned by every
// later call, and Finish() commits the StagedFile. Subclasses only turn a
// chunk into text.
class StagedFileSink : public DataSink {
 public:
  StagedFileSink(std::string path, std::unique_ptr<StagedFile> file);

  absl::Status Write(const Table& chunk) final;
  absl::Status Finish() final;

 protected:
  const std::string& path() const { return path_; }
  // The text of `chunk`; `first` is true for the first chunk written.
  virtual std::string Format(const Table& chunk, bool first) = 0;

 private:
  std::string path_;
  std::unique_ptr<StagedFile> file_;
  std::optional<Table> first_;  // the first chunk's columns, no rows
  size_t rows_ = 0;
  bool finished_ = false;
  absl::Status status_;  // the first failure; every later call returns it
};

}  // namespace slipway

#endif  // SLIPWAY_DATA_CONNECTOR_H_
