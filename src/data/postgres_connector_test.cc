#include "data/postgres_connector.h"

#include <cmath>
#include <cstdlib>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "core/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/postgres_server.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class PostgresConnectorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!PostgresServer::Available()) return;
    auto server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    setenv("SLIPWAY_PG_TEST_PASSWORD", server_->password().c_str(), 1);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!PostgresServer::Available()) {
      GTEST_SKIP() << "PostgreSQL 15 is not installed";
    }
    ASSERT_NE(server_, nullptr);
  }

  // The connection the way an app spec would write it.
  static PostgresConnection Connection() {
    return {.url = server_->Url(), .password = "env:SLIPWAY_PG_TEST_PASSWORD"};
  }

  // Runs SQL as the superuser, outside the connectors.
  static pqxx::result Admin(const std::string& sql) {
    pqxx::connection conn(server_->SuperuserConninfo());
    pqxx::work txn(conn);
    pqxx::result result = txn.exec(sql);
    txn.commit();
    return result;
  }

  absl::StatusOr<std::vector<Table>> ReadAll(const std::string& query,
                                             size_t chunk_rows) {
    auto source = OpenPostgresSource(
        {.connection = Connection(), .query = query, .chunk_rows = chunk_rows});
    if (!source.ok()) return source.status();
    std::vector<Table> chunks;
    while (true) {
      auto chunk = (*source)->NextChunk();
      if (!chunk.ok()) return chunk.status();
      if (!chunk->has_value()) break;
      chunks.push_back(std::move(**chunk));
    }
    fingerprint_ = (*source)->Fingerprint();
    return chunks;
  }

  static Table Sample(int64_t first_id, int rows) {
    Table table;
    Column id("id", DataType::kInt64);
    Column score("sco re", DataType::kFloat64);
    Column flag("flag", DataType::kBool);
    Column name("na\"me", DataType::kString);
    for (int i = 0; i < rows; ++i) {
      id.AppendInt64(first_id + i);
      score.AppendFloat64(0.25 * i);
      flag.AppendBool(i % 2 == 0);
      if (i == 1) {
        name.AppendMissing();
      } else {
        name.AppendString("'); DROP TABLE t; -- \xC3\xA9");
      }
    }
    for (Column* c : {&id, &score, &flag, &name}) {
      EXPECT_TRUE(table.AddColumn(*c).ok());
    }
    return table;
  }

  static PostgresServer* server_;
  std::string fingerprint_;
};

PostgresServer* PostgresConnectorTest::server_ = nullptr;

TEST_F(PostgresConnectorTest, SinkThenSourceRoundTripsInBoundedChunks) {
  auto sink = OpenPostgresSink(
      {.connection = Connection(), .table = "round \"trip\"", .batch_rows = 3});
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Write(Sample(1, 7)).ok());
  ASSERT_TRUE((*sink)->Write(Sample(8, 4)).ok());
  // Uncommitted rows are invisible to other sessions.
  EXPECT_EQ(Admin("SELECT count(*) FROM pg_tables WHERE tablename = "
                  "'round \"trip\"'")[0][0]
                .as<int>(),
            0);
  ASSERT_TRUE((*sink)->Finish().ok());
  EXPECT_EQ(
      Admin("SELECT count(*) FROM \"round \"\"trip\"\"\"")[0][0].as<int>(), 11);

  auto chunks = ReadAll("SELECT * FROM \"round \"\"trip\"\"\" ORDER BY id;", 4);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  std::vector<size_t> sizes;
  for (const Table& t : *chunks) sizes.push_back(t.num_rows());
  EXPECT_THAT(sizes, ElementsAre(4, 4, 3));
  const Table& t = (*chunks)[0];
  EXPECT_EQ(t.column(0).type(), DataType::kInt64);
  EXPECT_EQ(t.column(1).name(), "sco re");
  EXPECT_EQ(t.column(1).type(), DataType::kFloat64);
  EXPECT_EQ(t.column(2).type(), DataType::kBool);
  EXPECT_EQ(t.column(3).name(), "na\"me");
  EXPECT_EQ(t.column(3).StringAt(0), "'); DROP TABLE t; -- \xC3\xA9");
  EXPECT_TRUE(t.column(3).IsMissing(1));
  EXPECT_DOUBLE_EQ(t.column(1).Float64At(3), 0.75);
  EXPECT_FALSE(t.column(2).BoolAt(1));

  const std::string first = fingerprint_;
  ASSERT_TRUE(
      ReadAll("SELECT * FROM \"round \"\"trip\"\"\" ORDER BY id", 100).ok());
  EXPECT_EQ(fingerprint_, first);
  ASSERT_TRUE(
      ReadAll("SELECT * FROM \"round \"\"trip\"\"\" ORDER BY id DESC", 100)
          .ok());
  EXPECT_NE(fingerprint_, first);
}

TEST_F(PostgresConnectorTest, SqlTypesMapToDataTypes) {
  Admin(
      "DROP TABLE IF EXISTS typed; CREATE TABLE typed (a smallint, b integer, "
      "c bigint, d real, e double precision, f numeric(10,2), g boolean, "
      "h text, i varchar(5), j date);"
      "GRANT SELECT ON typed TO " +
      server_->user() +
      ";"
      "INSERT INTO typed VALUES (1, 2, 3, 0.5, 1.25, 12.34, true, 'x', 'y', "
      "'2024-02-03'), (NULL, NULL, NULL, 'NaN', NULL, NULL, NULL, NULL, NULL, "
      "NULL);");
  auto chunks = ReadAll("SELECT * FROM typed", 10);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  const Table& t = (*chunks)[0];
  const std::vector<DataType> want = {DataType::kInt64,   DataType::kInt64,
                                      DataType::kInt64,   DataType::kFloat64,
                                      DataType::kFloat64, DataType::kFloat64,
                                      DataType::kBool,    DataType::kString,
                                      DataType::kString,  DataType::kString};
  ASSERT_EQ(t.num_columns(), want.size());
  for (size_t c = 0; c < want.size(); ++c) {
    EXPECT_EQ(t.column(c).type(), want[c]) << t.column(c).name();
    if (c != 3) {
      EXPECT_TRUE(t.column(c).IsMissing(1)) << t.column(c).name();
    }
  }
  EXPECT_DOUBLE_EQ(t.column(5).Float64At(0), 12.34);
  EXPECT_TRUE(std::isnan(t.column(3).Float64At(1)));
  EXPECT_EQ(t.column(9).StringAt(0), "2024-02-03");

  auto bad = OpenPostgresSource({.connection = Connection(),
                                 .query = "SELECT h FROM typed",
                                 .column_types = {{"h", DataType::kInt64}}});
  ASSERT_TRUE(bad.ok()) << bad.status();
  auto chunk = (*bad)->NextChunk();
  EXPECT_EQ(chunk.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(chunk.status().message()),
              HasSubstr(": row 1: column 'h' expected int64, got 'x'"));
}

TEST_F(PostgresConnectorTest, FailedWriteLeavesNothingBehind) {
  Admin(
      "DROP TABLE IF EXISTS guarded; CREATE TABLE guarded (id bigint "
      "PRIMARY KEY, \"sco re\" double precision, flag boolean, "
      "\"na\"\"me\" text); GRANT ALL ON guarded TO " +
      server_->user());
  auto sink = OpenPostgresSink(
      {.connection = Connection(), .table = "guarded", .batch_rows = 2});
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Write(Sample(1, 4)).ok());
  const absl::Status status = (*sink)->Write(Sample(4, 4));  // id 4 again
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("table guarded: rows 5-6: "));
  EXPECT_THAT(std::string(status.message()), HasSubstr("duplicate key"));
  EXPECT_EQ((*sink)->Finish().code(), status.code());
  EXPECT_EQ(Admin("SELECT count(*) FROM guarded")[0][0].as<int>(), 0);
}

TEST_F(PostgresConnectorTest, AbandonedSinkRollsBack) {
  {
    auto sink =
        OpenPostgresSink({.connection = Connection(), .table = "abandoned"});
    ASSERT_TRUE(sink.ok()) << sink.status();
    ASSERT_TRUE((*sink)->Write(Sample(1, 3)).ok());
  }
  EXPECT_EQ(Admin("SELECT count(*) FROM pg_tables WHERE tablename = "
                  "'abandoned'")[0][0]
                .as<int>(),
            0);
}

TEST_F(PostgresConnectorTest, BadQueryIsInvalidArgument) {
  auto source = OpenPostgresSource(
      {.connection = Connection(), .query = "SELECT nope FROM nowhere"});
  EXPECT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(source.status().message()),
              HasSubstr("relation \"nowhere\" does not exist"));
}

TEST_F(PostgresConnectorTest, UnsetEnvironmentVariableIsNamed) {
  unsetenv("SLIPWAY_PG_TEST_UNSET");
  auto source =
      OpenPostgresSource({.connection = {.url = "env:SLIPWAY_PG_TEST_UNSET"},
                          .query = "SELECT 1"});
  EXPECT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(source.status().message()),
            "environment variable SLIPWAY_PG_TEST_UNSET is not set "
            "(referenced by postgres connector url)");
}

// Acceptance: a password given through env: appears in no Status message
// and no log line, whether the connection works or fails.
TEST_F(PostgresConnectorTest, PasswordNeverAppearsInMessagesOrLogs) {
  const std::string password = server_->password();
  const std::string port = std::to_string(server_->port());
  // Port 1: nothing listens there.
  const std::string dead_url = "postgresql://" + server_->user() + ":" +
                               password + "@127.0.0.1:1/" + server_->database();
  setenv("SLIPWAY_PG_TEST_DEAD_URL", dead_url.c_str(), 1);
  const std::string wrong_password_url =
      "postgresql://" + server_->user() + ":" + password +
      "x@127.0.0.1:" + port + "/" + server_->database();
  setenv("SLIPWAY_PG_TEST_WRONG_URL", wrong_password_url.c_str(), 1);

  SetLogLevel(LogLevel::kDebug);
  ::testing::internal::CaptureStderr();
  std::vector<std::string> messages;
  {
    // Works: logs the connection.
    auto sink =
        OpenPostgresSink({.connection = Connection(), .table = "logged"});
    ASSERT_TRUE(sink.ok()) << sink.status();
    messages.push_back((*sink)->Describe());
    ASSERT_TRUE((*sink)->Write(Sample(1, 2)).ok());
    ASSERT_TRUE((*sink)->Finish().ok());
  }
  auto refused = OpenPostgresSource(
      {.connection = {.url = "env:SLIPWAY_PG_TEST_DEAD_URL",
                      .password = "env:SLIPWAY_PG_TEST_PASSWORD"},
       .query = "SELECT 1"});
  auto wrong = OpenPostgresSink(
      {.connection = {.url = "env:SLIPWAY_PG_TEST_WRONG_URL"}, .table = "t"});
  auto keyword = OpenPostgresSource(
      {.connection = {.url = "host=127.0.0.1 port=1 dbname=x user=u",
                      .password = "env:SLIPWAY_PG_TEST_PASSWORD"},
       .query = "SELECT 1"});
  const std::string logs = ::testing::internal::GetCapturedStderr();
  SetLogLevel(LogLevel::kInfo);

  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("postgres postgresql://" + server_->user() +
                        ":***@127.0.0.1:1/" + server_->database() +
                        ": cannot connect"));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(wrong.status().message()),
              HasSubstr("password authentication failed"));
  EXPECT_EQ(keyword.status().code(), absl::StatusCode::kUnavailable);
  messages.emplace_back(refused.status().message());
  messages.emplace_back(wrong.status().message());
  messages.emplace_back(keyword.status().message());

  EXPECT_THAT(logs, HasSubstr("data.postgres.connected"));
  EXPECT_THAT(logs, Not(HasSubstr(password)));
  for (const auto& message : messages) {
    EXPECT_THAT(message, Not(HasSubstr(password)));
  }
}

}  // namespace
}  // namespace slipway
