#include "data/sqlite_connector.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/status.h"

namespace slipway {
namespace {

constexpr int kBusyTimeoutMs = 5000;

std::string Upper(const char* s) {
  std::string out = s == nullptr ? "" : s;
  for (char& c : out)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// SQLite's affinity rules (datatype3.html, 3.1), with BOOL split out.
std::optional<DataType> DeclaredType(const char* decltype_name) {
  if (decltype_name == nullptr) return std::nullopt;
  const std::string t = Upper(decltype_name);
  const auto has = [&t](const char* part) {
    return t.find(part) != std::string::npos;
  };
  if (has("INT")) return DataType::kInt64;
  if (has("BOOL")) return DataType::kBool;
  if (has("REAL") || has("FLOA") || has("DOUB") || has("NUMERIC") ||
      has("DECIMAL")) {
    return DataType::kFloat64;
  }
  return DataType::kString;
}

Cell ReadCell(sqlite3_stmt* stmt, int column) {
  switch (sqlite3_column_type(stmt, column)) {
    case SQLITE_INTEGER:
      return static_cast<int64_t>(sqlite3_column_int64(stmt, column));
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt, column);
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
      const auto* data =
          static_cast<const char*>(sqlite3_column_blob(stmt, column));
      const int n = sqlite3_column_bytes(stmt, column);
      return std::string(data == nullptr ? "" : data, n);
    }
    default:
      return std::monostate();
  }
}

class SqliteSource : public DataSource {
 public:
  SqliteSource(SqliteSourceOptions options, sqlite3* db, sqlite3_stmt* stmt,
               std::unique_ptr<ChunkBuilder> builder)
      : options_(std::move(options)),
        db_(db),
        stmt_(stmt),
        builder_(std::move(builder)) {
    if (options_.chunk_rows == 0) options_.chunk_rows = 1;
    hasher_.AddColumns(builder_->names());
  }
  ~SqliteSource() override {
    sqlite3_finalize(stmt_);
    sqlite3_close(db_);
  }

  absl::StatusOr<std::optional<Table>> NextChunk() override {
    RETURN_IF_ERROR(status_);
    auto chunk = ReadChunk();
    if (!chunk.ok()) status_ = chunk.status();
    return chunk;
  }

  std::string Fingerprint() const override { return hasher_.HexDigest(); }
  std::string Describe() const override { return "sqlite " + options_.path; }

 private:
  absl::StatusOr<std::optional<Table>> ReadChunk() {
    const int columns = sqlite3_column_count(stmt_);
    while (!done_ && builder_->pending_rows() < options_.chunk_rows) {
      const int rc = sqlite3_step(stmt_);
      if (rc == SQLITE_DONE) {
        done_ = true;
        break;
      }
      const std::string where =
          Describe() + ": row " + std::to_string(rows_ + 1);
      if (rc != SQLITE_ROW) {
        return absl::InternalError(where + ": " + sqlite3_errmsg(db_));
      }
      std::vector<Cell> row;
      row.reserve(columns);
      for (int c = 0; c < columns; ++c) row.push_back(ReadCell(stmt_, c));
      hasher_.AddRow(row);
      RETURN_IF_ERROR(builder_->AddRow(std::move(row), where));
      ++rows_;
    }
    if (builder_->pending_rows() == 0) return std::optional<Table>();
    ASSIGN_OR_RETURN(Table table, builder_->TakeChunk());
    return std::optional<Table>(std::move(table));
  }

  SqliteSourceOptions options_;
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::unique_ptr<ChunkBuilder> builder_;
  RowHasher hasher_;
  size_t rows_ = 0;
  bool done_ = false;
  absl::Status status_;  // the first failure; every later call returns it
};

const char* SqlType(DataType type) {
  switch (type) {
    case DataType::kInt64:
      return "INTEGER";
    case DataType::kFloat64:
      return "REAL";
    case DataType::kBool:
      return "BOOLEAN";
    case DataType::kString:
      return "TEXT";
  }
  return "TEXT";
}

class SqliteSink : public DataSink {
 public:
  SqliteSink(SqliteSinkOptions options, sqlite3* db)
      : options_(std::move(options)), db_(db) {
    if (options_.batch_rows == 0) options_.batch_rows = 1;
  }
  ~SqliteSink() override {
    if (in_transaction_) Exec("ROLLBACK").IgnoreError();
    sqlite3_close(db_);
  }

  absl::Status Write(const Table& chunk) override {
    RETURN_IF_ERROR(status_);
    if (finished_) {
      return absl::FailedPreconditionError(Describe() + ": already finished");
    }
    status_ = WriteRows(chunk);
    if (!status_.ok() && in_transaction_) {
      Exec("ROLLBACK").IgnoreError();
      in_transaction_ = false;
    }
    return status_;
  }

  absl::Status Finish() override {
    RETURN_IF_ERROR(status_);
    if (finished_) {
      return absl::FailedPreconditionError(Describe() + ": already finished");
    }
    finished_ = true;
    status_ = Exec("COMMIT");
    if (status_.ok()) {
      in_transaction_ = false;
    } else {
      Exec("ROLLBACK").IgnoreError();
      in_transaction_ = false;
    }
    return status_;
  }

  std::string Describe() const override {
    return "sqlite sink " + options_.path + " table " + options_.table;
  }

  absl::Status Begin() {
    RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    in_transaction_ = true;
    return absl::OkStatus();
  }

 private:
  absl::Status Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error == nullptr ? sqlite3_errmsg(db_) : error;
      sqlite3_free(error);
      return absl::InternalError(Describe() + ": " + message);
    }
    return absl::OkStatus();
  }

  std::string InsertSql(size_t rows, size_t columns) const {
    std::string sql =
        "INSERT INTO " + QuoteSqlIdentifier(options_.table) + " (";
    for (size_t c = 0; c < columns; ++c) {
      if (c > 0) sql += ", ";
      sql += QuoteSqlIdentifier(first_->column(c).name());
    }
    sql += ") VALUES ";
    std::string tuple = "(";
    for (size_t c = 0; c < columns; ++c) tuple += c == 0 ? "?" : ", ?";
    tuple += ")";
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) sql += ", ";
      sql += tuple;
    }
    return sql;
  }

  absl::Status Start(const Table& chunk) {
    first_ = chunk.Take({});
    std::string sql = "CREATE TABLE IF NOT EXISTS " +
                      QuoteSqlIdentifier(options_.table) + " (";
    for (size_t c = 0; c < chunk.num_columns(); ++c) {
      if (c > 0) sql += ", ";
      sql += QuoteSqlIdentifier(chunk.column(c).name()) + " " +
             SqlType(chunk.column(c).type());
    }
    sql += ")";
    RETURN_IF_ERROR(Exec(sql));
    const size_t max_params = static_cast<size_t>(
        sqlite3_limit(db_, SQLITE_LIMIT_VARIABLE_NUMBER, -1));
    const size_t columns = std::max<size_t>(chunk.num_columns(), 1);
    rows_per_insert_ = std::max<size_t>(
        1, std::min(options_.batch_rows, max_params / columns));
    return absl::OkStatus();
  }

  absl::Status InsertBatch(const Table& chunk, size_t begin, size_t end) {
    const size_t columns = chunk.num_columns();
    sqlite3_stmt* stmt = nullptr;
    const std::string sql = InsertSql(end - begin, columns);
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      return absl::InvalidArgumentError(Describe() + ": " +
                                        sqlite3_errmsg(db_));
    }
    int param = 1;
    for (size_t row = begin; row < end; ++row) {
      for (size_t c = 0; c < columns; ++c, ++param) {
        const Column& column = chunk.column(c);
        if (column.IsMissing(row)) {
          sqlite3_bind_null(stmt, param);
          continue;
        }
        switch (column.type()) {
          case DataType::kInt64:
            sqlite3_bind_int64(stmt, param, column.Int64At(row));
            break;
          case DataType::kFloat64:
            sqlite3_bind_double(stmt, param, column.Float64At(row));
            break;
          case DataType::kBool:
            sqlite3_bind_int(stmt, param, column.BoolAt(row) ? 1 : 0);
            break;
          case DataType::kString: {
            const std::string_view s = column.StringAt(row);
            // The table outlives the statement: no copy needed.
            sqlite3_bind_text(stmt, param, s.data(), static_cast<int>(s.size()),
                              SQLITE_STATIC);
            break;
          }
        }
      }
    }
    const int rc = sqlite3_step(stmt);
    absl::Status status;
    if (rc != SQLITE_DONE) {
      status = absl::InvalidArgumentError(
          Describe() + ": rows " + std::to_string(rows_ + begin + 1) + "-" +
          std::to_string(rows_ + end) + ": " + sqlite3_errmsg(db_));
    }
    sqlite3_finalize(stmt);
    return status;
  }

  absl::Status WriteRows(const Table& chunk) {
    if (!first_.has_value()) {
      RETURN_IF_ERROR(Start(chunk));
    } else {
      RETURN_IF_ERROR(CheckSameSchema(
          *first_, chunk, Describe() + " row " + std::to_string(rows_ + 1)));
    }
    if (chunk.num_columns() == 0) return absl::OkStatus();
    for (size_t begin = 0; begin < chunk.num_rows();
         begin += rows_per_insert_) {
      const size_t end = std::min(chunk.num_rows(), begin + rows_per_insert_);
      RETURN_IF_ERROR(InsertBatch(chunk, begin, end));
    }
    rows_ += chunk.num_rows();
    return absl::OkStatus();
  }

  SqliteSinkOptions options_;
  sqlite3* db_;
  std::optional<Table> first_;  // the first chunk's columns, no rows
  size_t rows_per_insert_ = 1;
  size_t rows_ = 0;
  bool in_transaction_ = false;
  bool finished_ = false;
  absl::Status status_;  // the first failure; every later call returns it
};

}  // namespace

std::string QuoteSqlIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

absl::StatusOr<std::unique_ptr<DataSource>> OpenSqliteSource(
    const SqliteSourceOptions& options) {
  const std::string name = "sqlite " + options.path;
  struct stat info;
  if (stat(options.path.c_str(), &info) != 0) {
    return absl::NotFoundError(name + ": database file not found");
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(options.path.c_str(), &db, SQLITE_OPEN_READONLY,
                      nullptr) != SQLITE_OK) {
    std::string message = db == nullptr ? "out of memory" : sqlite3_errmsg(db);
    sqlite3_close(db);
    return absl::UnavailableError(name + ": cannot open: " + message);
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, options.query.c_str(), -1, &stmt, nullptr) !=
          SQLITE_OK ||
      stmt == nullptr) {
    std::string message = stmt == nullptr && sqlite3_errcode(db) == SQLITE_OK
                              ? "empty query"
                              : sqlite3_errmsg(db);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return absl::InvalidArgumentError(name + ": query '" + options.query +
                                      "': " + message);
  }
  const int columns = sqlite3_column_count(stmt);
  if (columns == 0) {
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return absl::InvalidArgumentError(name + ": query '" + options.query +
                                      "' returns no columns");
  }
  std::vector<std::string> names;
  std::vector<std::optional<DataType>> types;
  for (int c = 0; c < columns; ++c) {
    const char* column_name = sqlite3_column_name(stmt, c);
    names.emplace_back(column_name == nullptr ? "" : column_name);
    const auto it = options.column_types.find(names.back());
    types.push_back(it != options.column_types.end()
                        ? std::optional<DataType>(it->second)
                        : DeclaredType(sqlite3_column_decltype(stmt, c)));
  }
  for (const auto& [column, type] : options.column_types) {
    if (std::find(names.begin(), names.end(), column) == names.end()) {
      sqlite3_finalize(stmt);
      sqlite3_close(db);
      return absl::InvalidArgumentError(name + ": column_types names '" +
                                        column +
                                        "', which the query does not return");
    }
  }
  auto builder = std::make_unique<ChunkBuilder>(
      std::move(names), std::move(types),
      ChunkBuilder::Options{.coerce_to_string = true});
  return std::unique_ptr<DataSource>(
      new SqliteSource(options, db, stmt, std::move(builder)));
}

absl::StatusOr<std::unique_ptr<DataSink>> OpenSqliteSink(
    const SqliteSinkOptions& options) {
  const std::string name =
      "sqlite sink " + options.path + " table " + options.table;
  if (options.table.empty()) {
    return absl::InvalidArgumentError(name + ": no table name");
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(options.path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      nullptr) != SQLITE_OK) {
    std::string message = db == nullptr ? "out of memory" : sqlite3_errmsg(db);
    sqlite3_close(db);
    return absl::UnavailableError(name + ": cannot open: " + message);
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  auto sink = std::make_unique<SqliteSink>(options, db);
  RETURN_IF_ERROR(sink->Begin());
  return std::unique_ptr<DataSink>(std::move(sink));
}

}  // namespace slipway
