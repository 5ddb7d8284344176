#include "data/sqlite_connector.h"

#include <sqlite3.h>

#include <string>
#include <vector>

#include "core/filesystem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SqliteConnectorTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = JoinPath(dir_.path(), "db.sqlite"); }

  void Exec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  absl::StatusOr<std::vector<Table>> ReadAll(const std::string& query,
                                             size_t chunk_rows) {
    auto source = OpenSqliteSource(
        {.path = path_, .query = query, .chunk_rows = chunk_rows});
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

  Table Sample(int64_t first_id, int rows) {
    Table table;
    Column id("id", DataType::kInt64);
    Column score("score", DataType::kFloat64);
    Column flag("flag", DataType::kBool);
    Column name("na\"me", DataType::kString);
    for (int i = 0; i < rows; ++i) {
      id.AppendInt64(first_id + i);
      score.AppendFloat64(0.5 * i);
      flag.AppendBool(i % 2 == 0);
      if (i == 1) {
        name.AppendMissing();
      } else {
        name.AppendString("'); DROP TABLE t; --");
      }
    }
    for (Column* c : {&id, &score, &flag, &name}) {
      EXPECT_TRUE(table.AddColumn(*c).ok());
    }
    return table;
  }

  TempDir dir_;
  std::string path_;
  std::string fingerprint_;
};

TEST_F(SqliteConnectorTest, SourceMapsDeclaredTypesAndStreamsChunks) {
  Exec(
      "CREATE TABLE t (i INTEGER, big BIGINT, r REAL, d DOUBLE PRECISION, "
      "n NUMERIC, b BOOLEAN, s VARCHAR(10), dt DATE);"
      "INSERT INTO t VALUES (1, 10, 0.5, 1.5, 2, 1, 'a', '2024-01-01');"
      "INSERT INTO t VALUES (2, 20, 1.5, 2.5, 3, 0, NULL, '2024-01-02');"
      "INSERT INTO t VALUES (3, NULL, 2.5, 3.5, 4, 1, 'c', '2024-01-03');");
  auto chunks = ReadAll("SELECT * FROM t ORDER BY i", 2);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  std::vector<size_t> sizes;
  for (const Table& t : *chunks) sizes.push_back(t.num_rows());
  EXPECT_THAT(sizes, ElementsAre(2, 1));
  const Table& t = (*chunks)[0];
  const std::vector<DataType> want = {DataType::kInt64,   DataType::kInt64,
                                      DataType::kFloat64, DataType::kFloat64,
                                      DataType::kFloat64, DataType::kBool,
                                      DataType::kString,  DataType::kString};
  for (size_t c = 0; c < want.size(); ++c) {
    EXPECT_EQ(t.column(c).type(), want[c]) << t.column(c).name();
  }
  EXPECT_DOUBLE_EQ(t.column(4).Float64At(1), 3.0);
  EXPECT_TRUE(t.column(6).IsMissing(1));
  EXPECT_EQ(t.column(7).StringAt(0), "2024-01-01");
  EXPECT_TRUE((*chunks)[1].column(1).IsMissing(0));

  const std::string first = fingerprint_;
  ASSERT_TRUE(ReadAll("SELECT * FROM t ORDER BY i", 3).ok());
  EXPECT_EQ(fingerprint_, first);  // chunking does not change it
  ASSERT_TRUE(ReadAll("SELECT * FROM t ORDER BY i DESC", 3).ok());
  EXPECT_NE(fingerprint_, first);
}

TEST_F(SqliteConnectorTest, ExpressionColumnsAreInferred) {
  Exec("CREATE TABLE t (i INTEGER); INSERT INTO t VALUES (1), (2);");
  auto chunks = ReadAll(
      "SELECT i * 2 AS twice, i / 2.0 AS half, 'x' || i AS label FROM t", 10);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  const Table& t = (*chunks)[0];
  EXPECT_EQ(t.column(0).type(), DataType::kInt64);
  EXPECT_EQ(t.column(1).type(), DataType::kFloat64);
  EXPECT_EQ(t.column(2).type(), DataType::kString);
  EXPECT_EQ(t.column(2).StringAt(1), "x2");
}

TEST_F(SqliteConnectorTest, TextInAnIntegerColumnNamesTheRow) {
  Exec("CREATE TABLE t (i INTEGER); INSERT INTO t VALUES (1), ('abc');");
  auto chunks = ReadAll("SELECT i FROM t", 10);
  EXPECT_EQ(chunks.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      std::string(chunks.status().message()),
      "sqlite " + path_ + ": row 2: column 'i' expected int64, got 'abc'");
}

TEST_F(SqliteConnectorTest, MissingFileAndBadQuery) {
  auto missing = OpenSqliteSource({.path = path_, .query = "SELECT 1"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  Exec("CREATE TABLE t (i INTEGER);");
  auto bad = OpenSqliteSource({.path = path_, .query = "SELECT nope FROM t"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("no such column: nope"));
}

TEST_F(SqliteConnectorTest, SinkCreatesTheTableAndCommitsOnFinish) {
  auto sink =
      OpenSqliteSink({.path = path_, .table = "sco\"res", .batch_rows = 2});
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Write(Sample(1, 5)).ok());
  ASSERT_TRUE((*sink)->Write(Sample(6, 3)).ok());
  ASSERT_TRUE((*sink)->Finish().ok());
  sink->reset();

  auto chunks = ReadAll("SELECT * FROM \"sco\"\"res\" ORDER BY id", 100);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  const Table& t = (*chunks)[0];
  ASSERT_EQ(t.num_rows(), 8u);
  EXPECT_EQ(t.column(0).type(), DataType::kInt64);
  EXPECT_EQ(t.column(1).type(), DataType::kFloat64);
  EXPECT_EQ(t.column(2).type(), DataType::kBool);
  EXPECT_EQ(t.column(3).name(), "na\"me");
  EXPECT_EQ(t.column(3).StringAt(0), "'); DROP TABLE t; --");
  EXPECT_TRUE(t.column(3).IsMissing(1));
  EXPECT_EQ(t.column(0).Int64At(7), 8);
  EXPECT_DOUBLE_EQ(t.column(1).Float64At(4), 2.0);
}

TEST_F(SqliteConnectorTest, FailedWriteRollsBackEverything) {
  Exec(
      "CREATE TABLE scores (id INTEGER PRIMARY KEY, score REAL, flag BOOLEAN, "
      "\"na\"\"me\" TEXT);");
  auto sink =
      OpenSqliteSink({.path = path_, .table = "scores", .batch_rows = 2});
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE((*sink)->Write(Sample(1, 3)).ok());
  const absl::Status status = (*sink)->Write(Sample(3, 3));  // id 3 again
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("sqlite sink " + path_ +
                        " table scores: rows 4-5: "
                        "UNIQUE constraint failed"));
  EXPECT_EQ((*sink)->Finish().code(), status.code());
  sink->reset();
  auto chunks = ReadAll("SELECT * FROM scores", 10);
  ASSERT_TRUE(chunks.ok());
  EXPECT_TRUE(chunks->empty());
}

TEST_F(SqliteConnectorTest, AbandonedSinkLeavesNoTable) {
  {
    auto sink = OpenSqliteSink({.path = path_, .table = "scores"});
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->Write(Sample(1, 3)).ok());
  }
  auto source =
      OpenSqliteSource({.path = path_, .query = "SELECT * FROM scores"});
  EXPECT_THAT(std::string(source.status().message()),
              HasSubstr("no such table: scores"));
}

}  // namespace
}  // namespace slipway
