// SQLite databases as a DataSource (the rows of a query) and a DataSink (a
// table, appended to inside one transaction). Uses the SQLite C API.
//
// Source: column types come from the declared types of the query's result
// columns, by SQLite's affinity rules: a name containing INT -> int64;
// BOOL -> bool; REAL, FLOA, DOUB, NUMERIC or DECIMAL -> float64; anything
// else (TEXT, VARCHAR, BLOB, DATE...) -> string, via the value's text. A
// result column with no declared type (an expression) takes its type from
// the first chunk's values, a column mixing kinds becoming string. NULL is
// missing. A value that does not fit its column (text in an INTEGER column)
// is InvalidArgument "sqlite <path>: row <n>: column 'x' expected int64,
// got 'abc'". Fingerprint() hashes the rows as read (RowHasher).
//
// Sink: creates the table if it is missing (INTEGER, REAL, BOOLEAN, TEXT
// columns named as in the first chunk), then inserts batch_rows rows per
// multi-row INSERT with bound parameters, all inside one transaction that
// Finish() commits. A failed write rolls the transaction back, as does
// destroying the sink unfinished: the table never holds part of a run.
// Identifiers are double-quoted (embedded quotes doubled); values are
// never spliced into SQL.
//
// Thread safety: a source or sink is used by one thread at a time; each
// holds its own connection.
#ifndef SLIPWAY_DATA_SQLITE_CONNECTOR_H_
#define SLIPWAY_DATA_SQLITE_CONNECTOR_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "data/connector.h"
#include "data/table.h"

namespace slipway {

struct SqliteSourceOptions {
  std::string path;   // the database file; opened read-only
  std::string query;  // e.g. "SELECT * FROM customers"
  size_t chunk_rows = 65536;
  // Per-column type, overriding the declared or inferred one.
  std::map<std::string, DataType> column_types;
};

// NotFound when the file does not exist; InvalidArgument when the query
// does not compile (with SQLite's message).
absl::StatusOr<std::unique_ptr<DataSource>> OpenSqliteSource(
    const SqliteSourceOptions& options);

struct SqliteSinkOptions {
  std::string path;   // created if missing
  std::string table;  // created if missing
  size_t batch_rows = 500;
};

absl::StatusOr<std::unique_ptr<DataSink>> OpenSqliteSink(
    const SqliteSinkOptions& options);

// An identifier in double quotes with embedded quotes doubled (SQLite and
// PostgreSQL agree): "my ""odd"" name".
std::string QuoteSqlIdentifier(std::string_view name);

}  // namespace slipway

#endif  // SLIPWAY_DATA_SQLITE_CONNECTOR_H_
