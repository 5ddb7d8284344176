// PostgreSQL as a DataSource (the rows of a query, read through a server-
// side cursor chunk_rows at a time) and a DataSink (a table, appended to
// with multi-row parameterised INSERTs inside one transaction). Uses
// libpqxx; no libpqxx exception leaves this module.
//
// Credentials: `url` (a libpq URL "postgresql://user@host:port/db" or a
// key/value string "host=... dbname=...") and `password` are each either
// literal or "env:NAME" (secrets.h). The password is added to the
// connection only, never to any text: Describe(), every Status message and
// every log line carry the URL with its password masked, and the password
// itself (raw or percent-encoded) is replaced by "***" wherever a server or
// libpq message would repeat it.
//
// Types: int2/int4/int8/oid -> int64; float4/float8/numeric -> float64;
// bool -> bool; everything else (text, varchar, date, json...) -> string in
// PostgreSQL's text form. NULL is missing. column_types overrides, parsing
// the text form (a cell that does not parse is an error naming its row).
// Fingerprint() hashes the rows as read (RowHasher).
//
// Sink: CREATE TABLE IF NOT EXISTS with bigint, double precision, boolean
// and text columns named as in the first chunk (identifiers quoted, values
// always bound as parameters), then batch_rows rows per INSERT. Finish()
// commits; a failed write, or a sink destroyed unfinished, rolls back, so
// the table never holds part of a run.
//
// Errors: Unavailable when the server cannot be reached; InvalidArgument
// for a bad query or a row the table refuses ("postgres sink <url> table
// t: rows 1001-2000: ..."); messages start with the connector and the
// redacted URL.
//
// Thread safety: a source or sink is used by one thread at a time; each
// holds its own connection.
#ifndef SLIPWAY_DATA_POSTGRES_CONNECTOR_H_
#define SLIPWAY_DATA_POSTGRES_CONNECTOR_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "data/connector.h"
#include "data/table.h"

namespace slipway {

struct PostgresConnection {
  std::string url;       // literal or env:NAME
  std::string password;  // optional; literal or env:NAME
  int connect_timeout_seconds = 10;
};

struct PostgresSourceOptions {
  PostgresConnection connection;
  std::string query;  // e.g. "SELECT * FROM customers"
  size_t chunk_rows = 65536;
  // Per-column type, overriding the mapping from the column's SQL type.
  std::map<std::string, DataType> column_types;
};

absl::StatusOr<std::unique_ptr<DataSource>> OpenPostgresSource(
    const PostgresSourceOptions& options);

struct PostgresSinkOptions {
  PostgresConnection connection;
  std::string table;   // created if missing
  std::string schema;  // optional; the search path decides when empty
  size_t batch_rows = 1000;
};

absl::StatusOr<std::unique_ptr<DataSink>> OpenPostgresSink(
    const PostgresSinkOptions& options);

}  // namespace slipway

#endif  // SLIPWAY_DATA_POSTGRES_CONNECTOR_H_
