// CSV in and out: RFC 4180 files (quoted fields with embedded delimiters,
// newlines and doubled quotes; CRLF or LF; optional final newline; a UTF-8
// byte order mark is skipped) read into a typed Table, and a Table written
// back as CSV.
//
// Types are inferred per column from the non-missing cells: all int64 ->
// int64, else all float64 -> float64, else all true/false (any case) ->
// bool, else string; a column with no value at all is float64.
// CsvOptions::column_types overrides the inference for named columns.
// Numbers and booleans may carry surrounding spaces or tabs; a bool column
// also takes 1 and 0 (inference still calls a 0/1 column int64).
//
// Blank lines (no characters at all) are skipped. A header cell left empty
// (as pandas writes its unnamed index) names its column "column_<n>".
//
// Errors are InvalidArgument and start with "<path>:<line>:<column>: ",
// where <path> is the path or source name as the caller gave it, <line> is
// the 1-based physical line in the input (skipped and header lines count)
// and <column> is the 1-based field number on that record. An error about a
// whole record gives only the line ("<path>:<line>: "); one about the
// options gives only the path. A file that does not exist is NotFound.
//
// Memory: ReadCsv makes two passes over the file, reading 1 MiB blocks; the
// first infers types and counts rows, the second parses straight into
// columns reserved to the exact row count, so loading takes at most twice
// Table::ValueBytes() (csv_memory_test measures it).
//
// Thread safety: the functions are safe to call concurrently; a CsvReader is
// used by one thread at a time.
#ifndef SLIPWAY_DATA_CSV_H_
#define SLIPWAY_DATA_CSV_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/filesystem.h"
#include "data/table.h"

namespace slipway {

struct CsvOptions {
  char delimiter = ',';
  bool header = true;
  // Physical lines skipped, without parsing them, before the header (or the
  // first data record when header is false).
  int skip_lines = 0;
  // Column names; required when header is false, refused when it is true.
  std::vector<std::string> column_names;
  // Per-column type, overriding inference; every name must be a column.
  std::map<std::string, DataType> column_types;
  // Cells equal to one of these (exactly, before any trimming) are missing.
  std::vector<std::string> missing_values = {"",    "NA",   "N/A",  "NaN",
                                             "nan", "null", "NULL", "None"};
  // Rows per CsvReader::NextChunk(); also the rows CsvReader infers from.
  size_t chunk_rows = 65536;
};

struct CsvData {
  Table table;
  // SHA-256 (lowercase hex) of the file's bytes as they were parsed.
  std::string sha256;
  int64_t rows = 0;
};

// Reads the whole file at `path` into a Table.
absl::StatusOr<CsvData> ReadCsv(Filesystem* fs, const std::string& path,
                                const CsvOptions& options = {});

// Parses CSV text held in memory (an HTTP body); `source_name` (for example
// "request body") takes the place of the path in error messages.
absl::StatusOr<Table> ParseCsv(std::string_view text,
                               std::string_view source_name,
                               const CsvOptions& options = {});

// The table as CSV: a header line, then one line per row, "\n"-terminated,
// fields quoted when they hold a comma, a quote, CR or LF; missing cells are
// empty. Floats are written in their shortest round-trip form. A present
// string equal to a missing marker (such as "" or "NA") reads back as
// missing.
std::string WriteCsv(const Table& table);
// WriteCsv without the header line, for a sink that streams chunk by chunk.
std::string WriteCsvRows(const Table& table);

// Streams a CSV file chunk by chunk, for inputs larger than memory. Open()
// reads the header and infers the types from the first chunk_rows rows
// (unless overridden); a later cell that does not fit its column's type is
// an InvalidArgument error with its line and column. After an error every
// further NextChunk() returns that error.
class CsvReader {
 public:
  static absl::StatusOr<std::unique_ptr<CsvReader>> Open(
      Filesystem* fs, const std::string& path, const CsvOptions& options = {});
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  const std::vector<std::string>& column_names() const { return names_; }
  const std::vector<DataType>& column_types() const { return types_; }

  // The next at most chunk_rows rows; std::nullopt once the file is done.
  absl::StatusOr<std::optional<Table>> NextChunk();

  // SHA-256 (lowercase hex) of the bytes read so far; the whole file's once
  // NextChunk() has returned std::nullopt.
  std::string sha256() const;

 private:
  class Impl;
  CsvReader(std::unique_ptr<Impl> impl, std::vector<std::string> names,
            std::vector<DataType> types);

  std::unique_ptr<Impl> impl_;
  std::vector<std::string> names_;
  std::vector<DataType> types_;
};

}  // namespace slipway

#endif  // SLIPWAY_DATA_CSV_H_
