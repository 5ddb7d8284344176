#include "data/postgres_connector.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/logging.h"
#include "core/status.h"
#include "data/secrets.h"

namespace slipway {
namespace {

// PostgreSQL caps a statement at 65535 parameters.
constexpr size_t kMaxParameters = 65535;

// Type OIDs from pg_type.dat; stable across PostgreSQL versions.
constexpr pqxx::oid kBoolOid = 16;
constexpr pqxx::oid kInt8Oid = 20;
constexpr pqxx::oid kInt2Oid = 21;
constexpr pqxx::oid kInt4Oid = 23;
constexpr pqxx::oid kOidOid = 26;
constexpr pqxx::oid kFloat4Oid = 700;
constexpr pqxx::oid kFloat8Oid = 701;
constexpr pqxx::oid kNumericOid = 1700;

DataType TypeOfOid(pqxx::oid oid) {
  switch (oid) {
    case kBoolOid:
      return DataType::kBool;
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid:
      return DataType::kInt64;
    case kFloat4Oid:
    case kFloat8Oid:
    case kNumericOid:
      return DataType::kFloat64;
    default:
      return DataType::kString;
  }
}

// A libpq key/value value in single quotes, backslash-escaped.
std::string QuoteConninfoValue(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

bool IsUri(std::string_view url) {
  return url.substr(0, 13) == "postgresql://" ||
         url.substr(0, 11) == "postgres://";
}

// libpq messages span lines ("ERROR: ...\nDETAIL: ..."); a Status message
// and a log field read better on one.
std::string OneLine(std::string_view text) {
  std::string out;
  bool space = false;
  for (const char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// One connection with everything needed to keep its password out of text.
class Session {
 public:
  static absl::StatusOr<std::unique_ptr<Session>> Connect(
      const PostgresConnection& options, const std::string& kind) {
    ASSIGN_OR_RETURN(std::string url,
                     ResolveSecret(options.url, kind + " connector url"));
    ASSIGN_OR_RETURN(
        std::string password,
        ResolveSecret(options.password, kind + " connector password"));
    auto session = std::unique_ptr<Session>(new Session());
    session->secrets_.push_back(password);
    if (url.empty()) {
      return absl::InvalidArgumentError(kind + ": no connection url");
    }
    std::string conninfo = url;
    const std::string timeout =
        std::to_string(std::max(1, options.connect_timeout_seconds));
    if (IsUri(url)) {
      conninfo += url.find('?') == std::string::npos ? "?" : "&";
      conninfo += "connect_timeout=" + timeout;
      if (!password.empty()) conninfo += "&password=" + PercentEncode(password);
    } else {
      conninfo += " connect_timeout=" + timeout;
      if (!password.empty()) {
        conninfo += " password=" + QuoteConninfoValue(password);
      }
    }
    // libpq's own parser finds a password however the URL spells it
    // (user info, query parameter, keyword, percent-encoded).
    char* parse_error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
    if (parsed == nullptr) {
      std::string message =
          parse_error == nullptr ? "out of memory" : parse_error;
      PQfreemem(parse_error);
      session->name_ = kind + " " + session->Scrub(RedactConnectionString(url));
      return absl::InvalidArgumentError(
          session->name_ +
          ": invalid connection url: " + session->Scrub(message));
    }
    for (PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
      if (std::string_view(o->keyword) == "password" && o->val != nullptr) {
        session->secrets_.emplace_back(o->val);
      }
    }
    PQconninfoFree(parsed);
    session->name_ = kind + " " + session->Scrub(RedactConnectionString(url));
    try {
      session->conn_ = std::make_unique<pqxx::connection>(conninfo);
      pqxx::nontransaction quiet(*session->conn_);
      // CREATE TABLE IF NOT EXISTS and friends would print NOTICEs to
      // stderr, outside the structured log.
      quiet.exec0("SET client_min_messages TO warning");
      quiet.commit();
    } catch (const std::exception& e) {
      return absl::UnavailableError(session->name_ + ": cannot connect: " +
                                    OneLine(session->Scrub(e.what())));
    }
    LogInfo("data.postgres.connected", {{"connector", session->name_}});
    return session;
  }

  // `text` with every known secret masked.
  std::string Scrub(std::string_view text) const {
    std::string out(text);
    for (const auto& secret : secrets_) out = Redact(out, secret);
    return out;
  }

  // An error from a libpqxx exception, "<who>: <what>: <server message>"
  // on one line: Unavailable when the connection broke, InvalidArgument
  // otherwise (the server refused the statement).
  absl::Status Error(const std::exception& e, const std::string& who,
                     const std::string& what) const {
    const std::string message =
        who + ": " + what + ": " + OneLine(Scrub(e.what()));
    if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
        dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
      return absl::UnavailableError(message);
    }
    return absl::InvalidArgumentError(message);
  }

  const std::string& name() const { return name_; }
  pqxx::connection& conn() { return *conn_; }

 private:
  Session() = default;

  std::vector<std::string> secrets_;
  std::string name_;  // "postgres postgresql://app:***@host/db"
  std::unique_ptr<pqxx::connection> conn_;
};

absl::StatusOr<Cell> ParseText(const char* text, size_t size, DataType type) {
  const std::string_view s(text, size);
  switch (type) {
    case DataType::kInt64: {
      int64_t v = 0;
      const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
      if (r.ec == std::errc() && r.ptr == s.data() + s.size()) return Cell(v);
      break;
    }
    case DataType::kFloat64: {
      double v = 0;
      const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
      if (r.ec == std::errc() && r.ptr == s.data() + s.size()) return Cell(v);
      break;
    }
    case DataType::kBool:
      if (s == "t" || s == "true") return Cell(true);
      if (s == "f" || s == "false") return Cell(false);
      break;
    case DataType::kString:
      return Cell(std::string(s));
  }
  return absl::InvalidArgumentError(
      "expected " + std::string(DataTypeName(type)) + ", got '" +
      std::string(s.substr(0, 40)) + "'");
}

class PostgresSource : public DataSource {
 public:
  PostgresSource(PostgresSourceOptions options,
                 std::unique_ptr<Session> session,
                 std::unique_ptr<pqxx::read_transaction> txn)
      : options_(std::move(options)),
        session_(std::move(session)),
        txn_(std::move(txn)) {
    if (options_.chunk_rows == 0) options_.chunk_rows = 1;
  }

  absl::StatusOr<std::optional<Table>> NextChunk() override {
    RETURN_IF_ERROR(status_);
    if (done_) return std::optional<Table>();
    absl::StatusOr<std::optional<Table>> chunk;
    try {
      chunk = Fetch();
    } catch (const std::exception& e) {
      chunk = session_->Error(e, Describe(),
                              "query, after row " + std::to_string(rows_));
    }
    if (!chunk.ok()) {
      status_ = chunk.status();
      txn_.reset();  // aborts
    }
    return chunk;
  }

  std::string Fingerprint() const override { return hasher_.HexDigest(); }
  std::string Describe() const override { return session_->name(); }

 private:
  absl::Status StartColumns(const pqxx::result& result) {
    std::vector<std::string> names;
    std::vector<std::optional<DataType>> types;
    for (pqxx::row_size_type c = 0; c < result.columns(); ++c) {
      names.emplace_back(result.column_name(c));
      const auto it = options_.column_types.find(names.back());
      types.emplace_back(it != options_.column_types.end()
                             ? it->second
                             : TypeOfOid(result.column_type(c)));
    }
    for (const auto& [name, type] : options_.column_types) {
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        return absl::InvalidArgumentError(Describe() +
                                          ": column_types names '" + name +
                                          "', which the query does not return");
      }
    }
    hasher_.AddColumns(names);
    for (const auto& type : types) column_types_.push_back(*type);
    builder_ = std::make_unique<ChunkBuilder>(names, std::move(types),
                                              ChunkBuilder::Options{});
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<Table>> Fetch() {
    const pqxx::result result =
        txn_->exec("FETCH FORWARD " + std::to_string(options_.chunk_rows) +
                   " FROM slipway_source");
    if (builder_ == nullptr) RETURN_IF_ERROR(StartColumns(result));
    if (result.empty()) {
      done_ = true;
      txn_->commit();
      txn_.reset();
      return std::optional<Table>();
    }
    for (const auto& record : result) {
      ++rows_;
      const std::string where = Describe() + ": row " + std::to_string(rows_);
      std::vector<Cell> row(record.size());
      for (pqxx::row_size_type c = 0; c < record.size(); ++c) {
        const pqxx::field field = record[c];
        if (field.is_null()) continue;
        auto cell = ParseText(field.c_str(), field.size(), column_types_[c]);
        if (!cell.ok()) {
          return absl::InvalidArgumentError(
              where + ": column '" + builder_->names()[c] + "' " +
              std::string(cell.status().message()));
        }
        row[c] = std::move(*cell);
      }
      hasher_.AddRow(row);
      RETURN_IF_ERROR(builder_->AddRow(std::move(row), where));
    }
    ASSIGN_OR_RETURN(Table table, builder_->TakeChunk());
    return std::optional<Table>(std::move(table));
  }

  PostgresSourceOptions options_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<pqxx::read_transaction> txn_;
  std::unique_ptr<ChunkBuilder> builder_;
  std::vector<DataType> column_types_;
  RowHasher hasher_;
  size_t rows_ = 0;
  bool done_ = false;
  absl::Status status_;  // the first failure; every later call returns it
};

const char* SqlType(DataType type) {
  switch (type) {
    case DataType::kInt64:
      return "bigint";
    case DataType::kFloat64:
      return "double precision";
    case DataType::kBool:
      return "boolean";
    case DataType::kString:
      return "text";
  }
  return "text";
}

class PostgresSink : public DataSink {
 public:
  PostgresSink(PostgresSinkOptions options, std::unique_ptr<Session> session,
               std::unique_ptr<pqxx::work> txn, std::string qualified_table)
      : options_(std::move(options)),
        session_(std::move(session)),
        txn_(std::move(txn)),
        qualified_table_(std::move(qualified_table)) {
    if (options_.batch_rows == 0) options_.batch_rows = 1;
  }

  absl::Status Write(const Table& chunk) override {
    RETURN_IF_ERROR(status_);
    if (finished_) {
      return absl::FailedPreconditionError(Describe() + ": already finished");
    }
    try {
      status_ = WriteRows(chunk);
    } catch (const std::exception& e) {
      status_ =
          session_->Error(e, Describe(),
                          "rows " + std::to_string(rows_ + batch_begin_ + 1) +
                              "-" + std::to_string(rows_ + batch_end_));
    }
    if (!status_.ok()) txn_.reset();  // rolls back
    return status_;
  }

  absl::Status Finish() override {
    RETURN_IF_ERROR(status_);
    if (finished_) {
      return absl::FailedPreconditionError(Describe() + ": already finished");
    }
    finished_ = true;
    try {
      txn_->commit();
    } catch (const std::exception& e) {
      status_ = session_->Error(e, Describe(), "commit");
      txn_.reset();
      return status_;
    }
    txn_.reset();
    LogInfo("data.postgres.committed",
            {{"connector", Describe()}, {"rows", std::to_string(rows_)}});
    return absl::OkStatus();
  }

  std::string Describe() const override {
    return session_->name() + " table " + options_.table;
  }

 private:
  void Start(const Table& chunk) {
    std::string sql = "CREATE TABLE IF NOT EXISTS " + qualified_table_ + " (";
    columns_sql_ = "(";
    for (size_t c = 0; c < chunk.num_columns(); ++c) {
      const std::string name = txn_->quote_name(chunk.column(c).name());
      if (c > 0) {
        sql += ", ";
        columns_sql_ += ", ";
      }
      sql += name + " " + SqlType(chunk.column(c).type());
      columns_sql_ += name;
    }
    sql += ")";
    columns_sql_ += ")";
    txn_->exec0(sql);
    const size_t columns = std::max<size_t>(chunk.num_columns(), 1);
    rows_per_insert_ = std::max<size_t>(
        1, std::min(options_.batch_rows, kMaxParameters / columns));
  }

  void InsertBatch(const Table& chunk, size_t begin, size_t end) {
    const size_t columns = chunk.num_columns();
    std::string sql =
        "INSERT INTO " + qualified_table_ + " " + columns_sql_ + " VALUES ";
    // Text of non-string cells; reserved so pointers into it stay valid.
    std::vector<std::string> texts;
    texts.reserve((end - begin) * columns);
    std::vector<const char*> params;
    params.reserve((end - begin) * columns);
    char number[32];
    size_t param = 1;
    for (size_t row = begin; row < end; ++row) {
      sql += row == begin ? "(" : ", (";
      for (size_t c = 0; c < columns; ++c, ++param) {
        if (c > 0) sql += ", ";
        sql += "$" + std::to_string(param);
        const Column& column = chunk.column(c);
        if (column.IsMissing(row)) {
          params.push_back(nullptr);
          continue;
        }
        switch (column.type()) {
          case DataType::kInt64: {
            const auto r = std::to_chars(number, number + sizeof(number),
                                         column.Int64At(row));
            texts.emplace_back(number, r.ptr);
            params.push_back(texts.back().c_str());
            break;
          }
          case DataType::kFloat64: {
            const double v = column.Float64At(row);
            if (std::isnan(v)) {
              texts.emplace_back("NaN");
            } else if (std::isinf(v)) {
              texts.emplace_back(v > 0 ? "Infinity" : "-Infinity");
            } else {
              const auto r = std::to_chars(number, number + sizeof(number), v);
              texts.emplace_back(number, r.ptr);
            }
            params.push_back(texts.back().c_str());
            break;
          }
          case DataType::kBool:
            params.push_back(column.BoolAt(row) ? "true" : "false");
            break;
          case DataType::kString:
            // Dictionary entries are std::strings: data() is terminated.
            params.push_back(column.StringAt(row).data());
            break;
        }
      }
      sql += ")";
    }
    txn_->exec_params0(sql, pqxx::prepare::make_dynamic_params(params));
  }

  absl::Status WriteRows(const Table& chunk) {
    batch_begin_ = 0;
    batch_end_ = chunk.num_rows();
    if (!first_.has_value()) {
      first_ = chunk.Take({});
      Start(chunk);
    } else {
      RETURN_IF_ERROR(CheckSameSchema(
          *first_, chunk, Describe() + " row " + std::to_string(rows_ + 1)));
    }
    if (chunk.num_columns() == 0) return absl::OkStatus();
    for (size_t begin = 0; begin < chunk.num_rows();
         begin += rows_per_insert_) {
      batch_begin_ = begin;
      batch_end_ = std::min(chunk.num_rows(), begin + rows_per_insert_);
      InsertBatch(chunk, batch_begin_, batch_end_);
    }
    rows_ += chunk.num_rows();
    return absl::OkStatus();
  }

  PostgresSinkOptions options_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<pqxx::work> txn_;
  std::string qualified_table_;
  std::string columns_sql_;     // ("a", "b", ...)
  std::optional<Table> first_;  // the first chunk's columns, no rows
  size_t rows_per_insert_ = 1;
  size_t rows_ = 0;
  // The rows of the chunk being inserted, for error messages.
  size_t batch_begin_ = 0;
  size_t batch_end_ = 0;
  bool finished_ = false;
  absl::Status status_;  // the first failure; every later call returns it
};

// The query without trailing semicolons, which DECLARE would refuse.
std::string TrimQuery(std::string query) {
  while (!query.empty() &&
         (query.back() == ';' ||
          std::isspace(static_cast<unsigned char>(query.back())))) {
    query.pop_back();
  }
  return query;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataSource>> OpenPostgresSource(
    const PostgresSourceOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Session> session,
                   Session::Connect(options.connection, "postgres"));
  const std::string query = TrimQuery(options.query);
  if (query.empty()) {
    return absl::InvalidArgumentError(session->name() + ": no query");
  }
  std::unique_ptr<pqxx::read_transaction> txn;
  try {
    txn = std::make_unique<pqxx::read_transaction>(session->conn());
    // A cursor keeps the result on the server: FETCH brings chunk_rows rows
    // at a time, so memory stays bounded however large the result.
    txn->exec0("DECLARE slipway_source NO SCROLL CURSOR FOR " + query);
  } catch (const std::exception& e) {
    return session->Error(e, session->name(), "query '" + query + "'");
  }
  return std::unique_ptr<DataSource>(
      new PostgresSource(options, std::move(session), std::move(txn)));
}

absl::StatusOr<std::unique_ptr<DataSink>> OpenPostgresSink(
    const PostgresSinkOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Session> session,
                   Session::Connect(options.connection, "postgres sink"));
  if (options.table.empty()) {
    return absl::InvalidArgumentError(session->name() + ": no table name");
  }
  std::unique_ptr<pqxx::work> txn;
  std::string qualified_table;
  try {
    txn = std::make_unique<pqxx::work>(session->conn());
    qualified_table = txn->quote_name(options.table);
    if (!options.schema.empty()) {
      qualified_table = txn->quote_name(options.schema) + "." + qualified_table;
    }
  } catch (const std::exception& e) {
    return session->Error(e, session->name(), "begin");
  }
  return std::unique_ptr<DataSink>(new PostgresSink(
      options, std::move(session), std::move(txn), std::move(qualified_table)));
}

}  // namespace slipway
