#include "data/jsonl.h"

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

class JsonlTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    const std::string path = JoinPath(dir_.path(), "in.jsonl");
    EXPECT_TRUE(LocalFilesystem()->WriteFileAtomic(path, text).ok());
    return path;
  }

  // Every chunk, or the first error.
  absl::StatusOr<std::vector<Table>> ReadAll(const std::string& path,
                                             size_t chunk_rows) {
    auto source = OpenJsonlSource(LocalFilesystem(),
                                  {.path = path, .chunk_rows = chunk_rows});
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

  TempDir dir_;
  std::string fingerprint_;
};

TEST_F(JsonlTest, ReadsTypedChunksOfBoundedSize) {
  const std::string text =
      "\xEF\xBB\xBF{\"id\": 1, \"x\": 0.5, \"ok\": true, \"s\": \"a\"}\n"
      "{\"id\": 2, \"x\": 1, \"ok\": false, \"s\": null}\r\n"
      "\n"
      "{\"id\": 3, \"ok\": true, \"s\": \"b\"}\n"
      "{\"id\": 4, \"x\": 7, \"ok\": false, \"s\": \"a\"}";
  const std::string path = Write(text);
  auto chunks = ReadAll(path, 2);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  std::vector<size_t> sizes;
  for (const Table& t : *chunks) sizes.push_back(t.num_rows());
  EXPECT_THAT(sizes, ElementsAre(2, 2));
  const Table& first = (*chunks)[0];
  ASSERT_EQ(first.num_columns(), 4u);
  EXPECT_EQ(first.column(0).name(), "id");
  EXPECT_EQ(first.column(0).type(), DataType::kInt64);
  EXPECT_EQ(first.column(1).type(), DataType::kFloat64);
  EXPECT_EQ(first.column(2).type(), DataType::kBool);
  EXPECT_EQ(first.column(3).type(), DataType::kString);
  EXPECT_TRUE(first.column(3).IsMissing(1));
  const Table& second = (*chunks)[1];
  EXPECT_TRUE(second.column(1).IsMissing(0));  // absent key
  EXPECT_DOUBLE_EQ(second.column(1).Float64At(1), 7.0);
  EXPECT_EQ(fingerprint_, Sha256Hex(text));
}

TEST_F(JsonlTest, RealInAnIntegerColumnIsAnErrorWithItsLine) {
  const std::string path = Write("{\"n\": 1}\n{\"n\": 2}\n\n{\"n\": 2.5}\n");
  auto chunks = ReadAll(path, 2);
  EXPECT_EQ(chunks.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(chunks.status().message()),
            path + ":4: column 'n' expected int64, got 2.5");
}

TEST_F(JsonlTest, MixedKindsInTheFirstChunkNameTheLine) {
  const std::string path = Write("{\"n\": 1}\n{\"n\": \"one\"}\n");
  auto chunks = ReadAll(path, 10);
  EXPECT_EQ(std::string(chunks.status().message()),
            path + ":2: column 'n' holds 'one', earlier rows hold numbers");
}

TEST_F(JsonlTest, UnknownKeyAfterTheFirstChunkIsAnError) {
  const std::string path = Write("{\"a\": 1}\n{\"a\": 2, \"b\": 3}\n");
  auto chunks = ReadAll(path, 1);
  EXPECT_THAT(std::string(chunks.status().message()),
              HasSubstr(path + ":2: key 'b' is not a column"));
}

TEST_F(JsonlTest, InvalidJsonNestedValuesAndNonObjectsAreRefused) {
  auto bad = ReadAll(Write("{\"a\": 1}\n{\"a\": \n"), 10);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr(":2: invalid JSON"));
  auto nested = ReadAll(Write("{\"a\": {\"b\": 1}}\n"), 10);
  EXPECT_THAT(std::string(nested.status().message()),
              HasSubstr(":1: key 'a' holds object"));
  auto array = ReadAll(Write("[1, 2]\n"), 10);
  EXPECT_THAT(std::string(array.status().message()),
              HasSubstr(":1: expected a JSON object, got array"));
}

TEST_F(JsonlTest, ColumnTypesOverrideInference) {
  const std::string path = Write("{\"n\": 1}\n{\"n\": 2}\n");
  auto source = OpenJsonlSource(
      LocalFilesystem(),
      {.path = path, .column_types = {{"n", DataType::kFloat64}}});
  ASSERT_TRUE(source.ok());
  auto chunk = (*source)->NextChunk();
  ASSERT_TRUE(chunk.ok() && chunk->has_value());
  EXPECT_EQ((*chunk)->column(0).type(), DataType::kFloat64);
  auto unknown = OpenJsonlSource(
      LocalFilesystem(),
      {.path = path, .column_types = {{"m", DataType::kFloat64}}});
  ASSERT_TRUE(unknown.ok());
  EXPECT_THAT(std::string((*unknown)->NextChunk().status().message()),
              HasSubstr("column_types names 'm'"));
}

TEST_F(JsonlTest, SinkRoundTripsThroughTheSource) {
  Table table;
  Column id("id", DataType::kInt64);
  Column x("x", DataType::kFloat64);
  Column s("s \"quoted\"", DataType::kString);
  Column ok("ok", DataType::kBool);
  id.AppendInt64(1);
  x.AppendFloat64(3.0);
  s.AppendString("line\nbreak \"q\"");
  ok.AppendBool(true);
  id.AppendInt64(-2);
  x.AppendMissing();
  s.AppendMissing();
  ok.AppendBool(false);
  for (Column* c : {&id, &x, &s, &ok}) ASSERT_TRUE(table.AddColumn(*c).ok());

  const std::string out = JoinPath(dir_.path(), "out.jsonl");
  auto sink = OpenJsonlSink(LocalFilesystem(), {.path = out});
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE((*sink)->Write(table.Take({0})).ok());
  ASSERT_TRUE((*sink)->Write(table.Take({1})).ok());
  EXPECT_FALSE(LocalFilesystem()->Exists(out));
  ASSERT_TRUE((*sink)->Finish().ok());
  auto text = LocalFilesystem()->ReadFile(out);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "{\"id\":1,\"x\":3.0,\"s \\\"quoted\\\"\":\"line\\nbreak "
            "\\\"q\\\"\",\"ok\":true}\n"
            "{\"id\":-2,\"x\":null,\"s \\\"quoted\\\"\":null,\"ok\":false}\n");

  auto chunks = ReadAll(out, 10);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  const Table& back = (*chunks)[0];
  ASSERT_EQ(back.num_rows(), 2u);
  EXPECT_EQ(back.column(1).type(), DataType::kFloat64);
  EXPECT_EQ(back.column(2).name(), "s \"quoted\"");
  EXPECT_EQ(back.column(2).StringAt(0), "line\nbreak \"q\"");
  EXPECT_TRUE(back.column(2).IsMissing(1));
  EXPECT_EQ(back.column(0).Int64At(1), -2);
}

}  // namespace
}  // namespace slipway
