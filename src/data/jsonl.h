// JSON Lines files (one JSON object per line) as a DataSource and a
// DataSink (connector.h).
//
// Source: the columns are the keys of the first chunk's objects, in order of
// first appearance; a key first seen later is an error (pin it in the first
// rows, or convert the file). Values map to types as: integers -> int64,
// integers and reals -> float64, true/false -> bool, strings -> string,
// null or an absent key -> missing; a column's type comes from the first
// chunk (column_types overrides) and later values must fit it. Nested
// objects and arrays are refused. Blank lines are skipped. Errors are
// InvalidArgument starting with "<path>:<line>: " (1-based physical line).
// Fingerprint() is the SHA-256 of the bytes read so far.
//
// Sink: one object per row with every column, missing (and non-finite
// float) cells as null; reals always carry a '.' or exponent so they read
// back as float64. Written to "<path>.partial-..." and renamed over `path`
// by Finish().
//
// Memory: the source holds one chunk and one 1 MiB read block.
// Thread safety: a source or sink is used by one thread at a time.
#ifndef SLIPWAY_DATA_JSONL_H_
#define SLIPWAY_DATA_JSONL_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/filesystem.h"
#include "data/connector.h"
#include "data/table.h"

namespace slipway {

struct JsonlSourceOptions {
  std::string path;
  // Rows per chunk; also the rows the columns and types come from.
  size_t chunk_rows = 65536;
  // Per-column type, overriding inference; every name must be a column.
  std::map<std::string, DataType> column_types;
};

// NotFound for a missing file.
absl::StatusOr<std::unique_ptr<DataSource>> OpenJsonlSource(
    Filesystem* fs, const JsonlSourceOptions& options);

struct JsonlSinkOptions {
  std::string path;
};

absl::StatusOr<std::unique_ptr<DataSink>> OpenJsonlSink(
    Filesystem* fs, const JsonlSinkOptions& options);

}  // namespace slipway

#endif  // SLIPWAY_DATA_JSONL_H_
