#include "pipeline/data_io.h"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/filesystem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/postgres_server.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Table Sample() {
  Column id("id", DataType::kInt64);
  Column score("score", DataType::kFloat64);
  Column plan("plan", DataType::kString);
  for (int64_t i = 0; i < 5; ++i) {
    id.AppendInt64(i);
    score.AppendFloat64(0.5 * static_cast<double>(i));
    plan.AppendString(i % 2 == 0 ? "basic" : "pro");
  }
  Table table;
  EXPECT_TRUE(table.AddColumn(std::move(id)).ok());
  EXPECT_TRUE(table.AddColumn(std::move(score)).ok());
  EXPECT_TRUE(table.AddColumn(std::move(plan)).ok());
  return table;
}

void WriteAll(const DataSourceSpec& spec, const std::string& dir) {
  auto sink = OpenSpecSink(spec, dir, LocalFilesystem());
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Write(Sample()).ok());
  ASSERT_TRUE((*sink)->Finish().ok());
}

// Every chunk of the source, and the row count of each.
std::pair<Table, std::vector<size_t>> ReadAll(const DataSourceSpec& spec,
                                              const std::string& dir) {
  auto source = OpenSpecSource(spec, dir, LocalFilesystem());
  EXPECT_TRUE(source.ok()) << source.status();
  Table all;
  std::vector<size_t> sizes;
  if (!source.ok()) return {std::move(all), sizes};
  while (true) {
    auto chunk = (*source)->NextChunk();
    EXPECT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk.ok() || !chunk->has_value()) break;
    sizes.push_back((*chunk)->num_rows());
    EXPECT_TRUE(all.AppendRows(**chunk).ok());
  }
  return {std::move(all), sizes};
}

void ExpectSample(const Table& table) {
  ASSERT_EQ(table.num_rows(), 5u);
  ASSERT_NE(table.FindColumn("plan"), nullptr);
  ASSERT_EQ(table.FindColumn("id")->type(), DataType::kInt64);
  ASSERT_EQ(table.FindColumn("score")->type(), DataType::kFloat64);
  EXPECT_EQ(table.FindColumn("id")->Int64At(4), 4);
  EXPECT_EQ(table.FindColumn("score")->Float64At(3), 1.5);
  EXPECT_EQ(table.FindColumn("plan")->StringAt(1), "pro");
}

DataSourceSpec Entry(std::string name, Connector connector) {
  DataSourceSpec spec;
  spec.name = std::move(name);
  spec.connector = connector;
  return spec;
}

TEST(DataIoTest, CsvResolvesRelativePathsAndCreatesTheSinkDirectory) {
  TempDir dir;
  DataSourceSpec spec = Entry("scores", Connector::kCsv);
  spec.path = "out/nested/scores.csv";
  spec.chunk_rows = 2;
  WriteAll(spec, dir.path());
  EXPECT_TRUE(LocalFilesystem()->Exists(dir.path() + "/out/nested/scores.csv"));
  auto [table, sizes] = ReadAll(spec, dir.path());
  ExpectSample(table);
  EXPECT_THAT(sizes, ElementsAre(2, 2, 1));
}

TEST(DataIoTest, CsvTakesAbsolutePathsAndPinnedTypes) {
  TempDir dir;
  DataSourceSpec spec = Entry("scores", Connector::kCsv);
  spec.path = dir.path() + "/scores.csv";
  WriteAll(spec, "/elsewhere");
  spec.types = {ColumnType{"id", DataType::kFloat64}};
  auto [table, sizes] = ReadAll(spec, "/elsewhere");
  ASSERT_EQ(table.num_rows(), 5u);
  ASSERT_EQ(table.FindColumn("id")->type(), DataType::kFloat64);
  EXPECT_EQ(table.FindColumn("id")->Float64At(4), 4.0);
}

TEST(DataIoTest, JsonlRoundTrips) {
  TempDir dir;
  DataSourceSpec spec = Entry("events", Connector::kJsonl);
  spec.path = "events.jsonl";
  spec.chunk_rows = 3;
  WriteAll(spec, dir.path());
  auto [table, sizes] = ReadAll(spec, dir.path());
  ExpectSample(table);
  EXPECT_THAT(sizes, ElementsAre(3, 2));
}

TEST(DataIoTest, SqliteReadsTheQueryOrElseTheWholeTable) {
  TempDir dir;
  DataSourceSpec spec = Entry("local", Connector::kSqlite);
  spec.path = "shop.db";
  spec.table = "scores";
  spec.batch_rows = 2;
  WriteAll(spec, dir.path());
  auto [table, sizes] = ReadAll(spec, dir.path());
  ExpectSample(table);

  spec.query = "SELECT id FROM scores WHERE plan = 'pro' ORDER BY id";
  auto [pro, pro_sizes] = ReadAll(spec, dir.path());
  ASSERT_EQ(pro.num_rows(), 2u);
  EXPECT_EQ(pro.num_columns(), 1u);
  EXPECT_EQ(pro.column(0).Int64At(1), 3);
}

TEST(DataIoTest, MissingKeysAreNamed) {
  DataSourceSpec csv = Entry("train", Connector::kCsv);
  auto source = OpenSpecSource(csv, "/tmp", LocalFilesystem());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(source.status().message(),
              HasSubstr("data entry 'train' (csv) has no `path`"));

  DataSourceSpec sqlite = Entry("local", Connector::kSqlite);
  sqlite.path = "shop.db";
  source = OpenSpecSource(sqlite, "/tmp", LocalFilesystem());
  EXPECT_THAT(source.status().message(),
              HasSubstr("data entry 'local' (sqlite) has no `query` or "
                        "`table` to read"));
  auto sink = OpenSpecSink(sqlite, "/tmp", LocalFilesystem());
  EXPECT_EQ(sink.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sink.status().message(), HasSubstr("no `table` to write to"));

  DataSourceSpec postgres = Entry("sales", Connector::kPostgres);
  postgres.table = "scores";
  sink = OpenSpecSink(postgres, "/tmp", LocalFilesystem());
  EXPECT_THAT(sink.status().message(),
              HasSubstr("data entry 'sales' (postgres) has no `url`"));
  postgres.url = "postgresql://app@127.0.0.1:1/shop";
  postgres.table.clear();
  sink = OpenSpecSink(postgres, "/tmp", LocalFilesystem());
  EXPECT_THAT(sink.status().message(), HasSubstr("no `table` to write to"));
}

TEST(DataIoTest, MissingFileIsNotFound) {
  TempDir dir;
  DataSourceSpec spec = Entry("train", Connector::kCsv);
  spec.path = "absent.csv";
  auto source = OpenSpecSource(spec, dir.path(), LocalFilesystem());
  EXPECT_EQ(source.status().code(), absl::StatusCode::kNotFound);
}

TEST(DataIoTest, PostgresTableSinkThenSchemaQualifiedSource) {
  if (!PostgresServer::Available()) {
    GTEST_SKIP() << "PostgreSQL 15 is not installed";
  }
  auto server = PostgresServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  setenv("SLIPWAY_DATA_IO_TEST_PW", (*server)->password().c_str(), 1);
  DataSourceSpec spec = Entry("scored", Connector::kPostgres);
  spec.url = (*server)->Url();
  spec.password = "env:SLIPWAY_DATA_IO_TEST_PW";
  spec.table = "churn_scores";
  spec.db_schema = "public";
  spec.chunk_rows = 4;
  WriteAll(spec, "");
  auto [table, sizes] = ReadAll(spec, "");
  EXPECT_THAT(sizes, ElementsAre(4, 1));
  spec.query = "SELECT * FROM churn_scores ORDER BY id";
  auto [ordered, ordered_sizes] = ReadAll(spec, "");
  ExpectSample(ordered);
}

}  // namespace
}  // namespace slipway
