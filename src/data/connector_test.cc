#include "data/connector.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;

ChunkBuilder Inferring(std::vector<std::string> names, bool coerce = false) {
  std::vector<std::optional<DataType>> types(names.size());
  return ChunkBuilder(std::move(names), std::move(types),
                      ChunkBuilder::Options{.coerce_to_string = coerce});
}

TEST(ChunkBuilderTest, InfersTypesFromTheFirstChunk) {
  ChunkBuilder builder = Inferring({"i", "f", "b", "s", "none"});
  ASSERT_TRUE(builder
                  .AddRow({int64_t{1}, int64_t{2}, true, std::string("a"),
                           std::monostate()},
                          "row 1")
                  .ok());
  ASSERT_TRUE(
      builder
          .AddRow({int64_t{3}, 2.5, false, std::monostate(), std::monostate()},
                  "row 2")
          .ok());
  auto table = builder.TakeChunk();
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->num_rows(), 2u);
  EXPECT_EQ(table->column(0).type(), DataType::kInt64);
  EXPECT_EQ(table->column(1).type(), DataType::kFloat64);
  EXPECT_DOUBLE_EQ(table->column(1).Float64At(0), 2.0);
  EXPECT_EQ(table->column(2).type(), DataType::kBool);
  EXPECT_EQ(table->column(3).type(), DataType::kString);
  EXPECT_TRUE(table->column(3).IsMissing(1));
  EXPECT_EQ(table->column(4).type(), DataType::kFloat64);
  EXPECT_EQ(builder.pending_rows(), 0u);
}

TEST(ChunkBuilderTest, LaterChunksMustFitTheInferredTypes) {
  ChunkBuilder builder = Inferring({"n"});
  ASSERT_TRUE(builder.AddRow({int64_t{1}}, "f.jsonl:1").ok());
  ASSERT_TRUE(builder.TakeChunk().ok());
  // A whole number written as a real still fits an int64 column.
  ASSERT_TRUE(builder.AddRow({3.0}, "f.jsonl:2").ok());
  const absl::Status status = builder.AddRow({3.5}, "f.jsonl:3");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "f.jsonl:3: column 'n' expected int64, got 3.5");
}

TEST(ChunkBuilderTest, MixedKindsInTheFirstChunkAreAnErrorAtTheRow) {
  ChunkBuilder builder = Inferring({"n"});
  ASSERT_TRUE(builder.AddRow({int64_t{1}}, "f.jsonl:1").ok());
  const absl::Status status = builder.AddRow({std::string("x")}, "f.jsonl:2");
  EXPECT_EQ(std::string(status.message()),
            "f.jsonl:2: column 'n' holds 'x', earlier rows hold numbers");
}

TEST(ChunkBuilderTest, CoercingMakesMixedColumnsStrings) {
  ChunkBuilder builder = Inferring({"v"}, /*coerce=*/true);
  ASSERT_TRUE(builder.AddRow({int64_t{7}}, "row 1").ok());
  ASSERT_TRUE(builder.AddRow({std::string("x")}, "row 2").ok());
  auto table = builder.TakeChunk();
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->column(0).type(), DataType::kString);
  EXPECT_EQ(table->column(0).StringAt(0), "7");
  EXPECT_EQ(table->column(0).StringAt(1), "x");
}

TEST(RowHasherTest, SameRowsSameDigestDifferentRowsDifferent) {
  RowHasher a, b, c;
  for (RowHasher* h : {&a, &b, &c}) h->AddColumns({"x", "y"});
  a.AddRow({int64_t{1}, std::string("ab")});
  b.AddRow({int64_t{1}, std::string("ab")});
  c.AddRow({std::string("1"), std::string("ab")});
  EXPECT_EQ(a.HexDigest(), b.HexDigest());
  EXPECT_NE(a.HexDigest(), c.HexDigest());
}

}  // namespace
}  // namespace slipway
