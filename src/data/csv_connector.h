// CSV files as a DataSource and a DataSink (connector.h), wrapping
// CsvReader and WriteCsvRows (csv.h): the source streams chunk_rows rows at
// a time with types from the first chunk and fingerprints the bytes read;
// the sink streams chunks into "<path>.partial-..." and renames it over
// `path` on Finish(), so a failed run leaves no half-written file.
//
// Thread safety: a source or sink is used by one thread at a time.
#ifndef SLIPWAY_DATA_CSV_CONNECTOR_H_
#define SLIPWAY_DATA_CSV_CONNECTOR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/filesystem.h"
#include "data/connector.h"
#include "data/csv.h"

namespace slipway {

struct CsvSourceOptions {
  std::string path;
  // Parsing options; csv.chunk_rows bounds the rows of each chunk and
  // csv.column_types pins column types.
  CsvOptions csv;
};

// NotFound for a missing file; parse errors as in csv.h (they start with
// "<path>:<line>:<field>: ").
absl::StatusOr<std::unique_ptr<DataSource>> OpenCsvSource(
    Filesystem* fs, const CsvSourceOptions& options);

struct CsvSinkOptions {
  std::string path;
};

// Creates the partial file now; the parent directory must exist.
absl::StatusOr<std::unique_ptr<DataSink>> OpenCsvSink(
    Filesystem* fs, const CsvSinkOptions& options);

}  // namespace slipway

#endif  // SLIPWAY_DATA_CSV_CONNECTOR_H_
