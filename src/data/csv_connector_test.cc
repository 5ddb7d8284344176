#include "data/csv_connector.h"

#include <string>
#include <vector>

#include "core/filesystem.h"
#include "core/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CsvConnectorTest, SourceStreamsBoundedChunksAndFingerprintsTheBytes) {
  TempDir dir;
  const std::string path = JoinPath(dir.path(), "in.csv");
  const std::string text =
      "id,score,name\n1,0.5,a\n2,1.5,b\n3,2,c\n4,3,d\n5,4,e\n";
  ASSERT_TRUE(LocalFilesystem()->WriteFileAtomic(path, text).ok());

  CsvSourceOptions options{.path = path};
  options.csv.chunk_rows = 2;
  auto source = OpenCsvSource(LocalFilesystem(), options);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ((*source)->Describe(), "csv " + path);
  std::vector<size_t> sizes;
  while (true) {
    auto chunk = (*source)->NextChunk();
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk->has_value()) break;
    sizes.push_back((*chunk)->num_rows());
    EXPECT_EQ((*chunk)->column(0).type(), DataType::kInt64);
    EXPECT_EQ((*chunk)->column(1).type(), DataType::kFloat64);
  }
  EXPECT_THAT(sizes, ElementsAre(2, 2, 1));
  EXPECT_EQ((*source)->Fingerprint(), Sha256Hex(text));
}

TEST(CsvConnectorTest, MissingFileIsNotFound) {
  TempDir dir;
  auto source = OpenCsvSource(LocalFilesystem(),
                              {.path = JoinPath(dir.path(), "absent.csv")});
  EXPECT_EQ(source.status().code(), absl::StatusCode::kNotFound);
}

TEST(CsvConnectorTest, SinkWritesNothingVisibleUntilFinish) {
  TempDir dir;
  const std::string in = JoinPath(dir.path(), "in.csv");
  const std::string out = JoinPath(dir.path(), "out.csv");
  const std::string text = "id,label\n1,x\n2,\"y,z\"\n3,\n";
  ASSERT_TRUE(LocalFilesystem()->WriteFileAtomic(in, text).ok());
  CsvSourceOptions options{.path = in};
  options.csv.chunk_rows = 2;
  auto source = OpenCsvSource(LocalFilesystem(), options);
  ASSERT_TRUE(source.ok());
  auto sink = OpenCsvSink(LocalFilesystem(), {.path = out});
  ASSERT_TRUE(sink.ok()) << sink.status();
  while (true) {
    auto chunk = (*source)->NextChunk();
    ASSERT_TRUE(chunk.ok());
    if (!chunk->has_value()) break;
    ASSERT_TRUE((*sink)->Write(**chunk).ok());
  }
  EXPECT_FALSE(LocalFilesystem()->Exists(out));
  ASSERT_TRUE((*sink)->Finish().ok());
  auto written = LocalFilesystem()->ReadFile(out);
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(*written, text);
  EXPECT_EQ((*sink)->Write(Table()).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CsvConnectorTest, AbandonedSinkLeavesNoFile) {
  TempDir dir;
  const std::string out = JoinPath(dir.path(), "out.csv");
  {
    auto sink = OpenCsvSink(LocalFilesystem(), {.path = out});
    ASSERT_TRUE(sink.ok());
    Table table;
    Column id("id", DataType::kInt64);
    id.AppendInt64(1);
    ASSERT_TRUE(table.AddColumn(id).ok());
    ASSERT_TRUE((*sink)->Write(table).ok());
  }
  auto entries = LocalFilesystem()->ListDir(dir.path());
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty());
}

TEST(CsvConnectorTest, SinkRefusesAChunkWithOtherColumns) {
  TempDir dir;
  auto sink =
      OpenCsvSink(LocalFilesystem(), {.path = JoinPath(dir.path(), "o.csv")});
  ASSERT_TRUE(sink.ok());
  Table first, second;
  Column a("a", DataType::kInt64);
  a.AppendInt64(1);
  Column b("a", DataType::kString);
  b.AppendString("x");
  ASSERT_TRUE(first.AddColumn(a).ok());
  ASSERT_TRUE(second.AddColumn(b).ok());
  ASSERT_TRUE((*sink)->Write(first).ok());
  const absl::Status status = (*sink)->Write(second);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("o.csv row 2: chunk column 1 is 'a' (string), the "
                        "first chunk had 'a' (int64)"));
}

}  // namespace
}  // namespace slipway
