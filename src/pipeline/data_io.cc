#include "pipeline/data_io.h"

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "core/status.h"
#include "data/csv.h"
#include "data/csv_connector.h"
#include "data/jsonl.h"
#include "data/postgres_connector.h"
#include "data/sqlite_connector.h"

namespace slipway {
namespace {

std::string EntryName(const DataSourceSpec& spec) {
  return "data entry '" + spec.name + "' (" +
         std::string(ConnectorName(spec.connector)) + ")";
}

absl::Status MissingKey(const DataSourceSpec& spec, const std::string& what) {
  return absl::InvalidArgumentError(EntryName(spec) + " has no " + what);
}

// `path` as written in the spec, resolved against the spec's directory.
absl::StatusOr<std::string> ResolvedPath(const DataSourceSpec& spec,
                                         const std::string& source_dir) {
  if (spec.path.empty()) {
    return MissingKey(spec, "`path`; add path: FILE (relative to the spec)");
  }
  return ResolvePath(source_dir, spec.path);
}

std::map<std::string, DataType> ColumnTypes(const DataSourceSpec& spec) {
  std::map<std::string, DataType> types;
  for (const ColumnType& c : spec.types) types[c.column] = c.type;
  return types;
}

size_t ChunkRows(const DataSourceSpec& spec) {
  return spec.chunk_rows > 0 ? static_cast<size_t>(spec.chunk_rows) : 1;
}

size_t BatchRows(const DataSourceSpec& spec) {
  return spec.batch_rows > 0 ? static_cast<size_t>(spec.batch_rows) : 1;
}

// What a database source reads: its query, else every row of its table.
absl::StatusOr<std::string> SourceQuery(const DataSourceSpec& spec) {
  if (!spec.query.empty()) return spec.query;
  if (spec.table.empty()) {
    return MissingKey(spec, "`query` or `table` to read; add query: "
                            "\"SELECT ...\"");
  }
  std::string table = QuoteSqlIdentifier(spec.table);
  if (!spec.db_schema.empty()) {
    table = QuoteSqlIdentifier(spec.db_schema) + "." + table;
  }
  return "SELECT * FROM " + table;
}

absl::Status RequireTable(const DataSourceSpec& spec) {
  if (!spec.table.empty()) return absl::OkStatus();
  return MissingKey(spec, "`table` to write to; add table: NAME");
}

absl::StatusOr<PostgresConnection> Connection(const DataSourceSpec& spec) {
  if (spec.url.empty()) {
    return MissingKey(spec, "`url`; add url: \"postgresql://USER@HOST:PORT/"
                            "DB\" (or env:NAME)");
  }
  PostgresConnection connection;
  connection.url = spec.url;
  connection.password = spec.password;
  return connection;
}

// Creates the directory a file sink writes into.
absl::Status CreateParent(Filesystem* fs, const std::string& path) {
  return fs->CreateDirs(DirName(path));
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataSource>> OpenSpecSource(
    const DataSourceSpec& spec, const std::string& source_dir,
    Filesystem* fs) {
  switch (spec.connector) {
    case Connector::kCsv: {
      CsvSourceOptions options;
      ASSIGN_OR_RETURN(options.path, ResolvedPath(spec, source_dir));
      options.csv = CsvOptionsFor(spec);
      options.csv.chunk_rows = ChunkRows(spec);
      return OpenCsvSource(fs, options);
    }
    case Connector::kJsonl: {
      JsonlSourceOptions options;
      ASSIGN_OR_RETURN(options.path, ResolvedPath(spec, source_dir));
      options.chunk_rows = ChunkRows(spec);
      options.column_types = ColumnTypes(spec);
      return OpenJsonlSource(fs, options);
    }
    case Connector::kSqlite: {
      SqliteSourceOptions options;
      ASSIGN_OR_RETURN(options.path, ResolvedPath(spec, source_dir));
      ASSIGN_OR_RETURN(options.query, SourceQuery(spec));
      options.chunk_rows = ChunkRows(spec);
      options.column_types = ColumnTypes(spec);
      return OpenSqliteSource(options);
    }
    case Connector::kPostgres: {
      PostgresSourceOptions options;
      ASSIGN_OR_RETURN(options.connection, Connection(spec));
      ASSIGN_OR_RETURN(options.query, SourceQuery(spec));
      options.chunk_rows = ChunkRows(spec);
      options.column_types = ColumnTypes(spec);
      return OpenPostgresSource(options);
    }
  }
  return absl::InternalError(EntryName(spec) + ": unknown connector");
}

absl::StatusOr<std::unique_ptr<DataSink>> OpenSpecSink(
    const DataSourceSpec& spec, const std::string& source_dir,
    Filesystem* fs) {
  switch (spec.connector) {
    case Connector::kCsv: {
      CsvSinkOptions options;
      ASSIGN_OR_RETURN(options.path, ResolvedPath(spec, source_dir));
      RETURN_IF_ERROR(CreateParent(fs, options.path));
      return OpenCsvSink(fs, options);
    }
    case Connector::kJsonl: {
      JsonlSinkOptions options;
      ASSIGN_OR_RETURN(options.path, ResolvedPath(spec, source_dir));
      RETURN_IF_ERROR(CreateParent(fs, options.path));
      return OpenJsonlSink(fs, options);
    }
    case Connector::kSqlite: {
      SqliteSinkOptions options;
      ASSIGN_OR_RETURN(options.path, ResolvedPath(spec, source_dir));
      RETURN_IF_ERROR(RequireTable(spec));
      RETURN_IF_ERROR(CreateParent(fs, options.path));
      options.table = spec.table;
      options.batch_rows = BatchRows(spec);
      return OpenSqliteSink(options);
    }
    case Connector::kPostgres: {
      PostgresSinkOptions options;
      ASSIGN_OR_RETURN(options.connection, Connection(spec));
      RETURN_IF_ERROR(RequireTable(spec));
      options.table = spec.table;
      options.schema = spec.db_schema;
      options.batch_rows = BatchRows(spec);
      return OpenPostgresSink(options);
    }
  }
  return absl::InternalError(EntryName(spec) + ": unknown connector");
}

}  // namespace slipway
