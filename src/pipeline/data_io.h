// Data entries of an app spec (AppSpec::data) opened as the connectors of
// data/: a DataSourceSpec becomes a DataSource (ingest, score, the feature
// gap check) or a DataSink (score, sink), whatever its connector.
//
// Mapping:
//   csv      -> OpenCsvSource / OpenCsvSink, reader options from
//               CsvOptionsFor; `path` is required.
//   jsonl    -> OpenJsonlSource / OpenJsonlSink; `path` is required.
//   sqlite   -> OpenSqliteSource (`query`, else `SELECT * FROM table`) /
//               OpenSqliteSink (`table` required); `path` is required.
//   postgres -> OpenPostgresSource (`query`, else `SELECT * FROM
//               [schema.]table`) / OpenPostgresSink (`table` required, in
//               `schema` when set); `url` is required, `password` optional.
// Every source reads `chunk_rows` rows a chunk and takes the entry's
// `types` as pinned column types; database sinks insert `batch_rows` rows
// a statement. Relative paths resolve against `source_dir` (the directory
// of the applied slipway.yaml); the parent directory of a file sink is
// created when missing.
//
// Errors: InvalidArgument naming the data entry and the missing key ("data
// entry 'scored' (sqlite) has no `table` to write to; add table: NAME"),
// otherwise the connector's own errors (NotFound for a missing file,
// Unavailable for a database that does not answer), which never hold a
// credential.
//
// Thread safety: the functions may be called concurrently; each returned
// source or sink is used by one thread at a time (data/connector.h).
#ifndef SLIPWAY_PIPELINE_DATA_IO_H_
#define SLIPWAY_PIPELINE_DATA_IO_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/filesystem.h"
#include "data/connector.h"
#include "pipeline/app_spec.h"

namespace slipway {

absl::StatusOr<std::unique_ptr<DataSource>> OpenSpecSource(
    const DataSourceSpec& spec, const std::string& source_dir,
    Filesystem* fs);

absl::StatusOr<std::unique_ptr<DataSink>> OpenSpecSink(
    const DataSourceSpec& spec, const std::string& source_dir,
    Filesystem* fs);

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_DATA_IO_H_
