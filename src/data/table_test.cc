#include "data/table.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;

Column StringColumn(const std::string& name,
                    const std::vector<std::string>& values) {
  // "?" stands for a missing cell.
  Column column(name, DataType::kString);
  for (const std::string& v : values) {
    if (v == "?") {
      column.AppendMissing();
    } else {
      column.AppendString(v);
    }
  }
  return column;
}

std::vector<std::string> Strings(const Column& column) {
  std::vector<std::string> out;
  for (size_t i = 0; i < column.size(); ++i) {
    out.push_back(column.IsMissing(i) ? "?" : std::string(column.StringAt(i)));
  }
  return out;
}

TEST(DataTypeTest, NamesRoundTripAndAliases) {
  for (DataType type : {DataType::kFloat64, DataType::kInt64, DataType::kBool,
                        DataType::kString}) {
    EXPECT_EQ(*ParseDataType(DataTypeName(type)), type);
  }
  EXPECT_EQ(*ParseDataType("double"), DataType::kFloat64);
  EXPECT_EQ(*ParseDataType("Integer"), DataType::kInt64);
  EXPECT_EQ(*ParseDataType("boolean"), DataType::kBool);
  EXPECT_EQ(*ParseDataType("categorical"), DataType::kString);
  absl::StatusOr<DataType> bad = ParseDataType("decimal");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "unknown data type 'decimal'; expected one of float64, int64, "
            "bool, string");
}

TEST(ColumnTest, NumericValuesAndMissingCells) {
  Column f("x", DataType::kFloat64);
  f.AppendFloat64(1.5);
  f.AppendMissing();
  f.AppendFloat64(-2);
  EXPECT_EQ(f.size(), 3u);
  EXPECT_EQ(f.missing_count(), 1u);
  EXPECT_FALSE(f.IsMissing(0));
  EXPECT_TRUE(f.IsMissing(1));
  EXPECT_EQ(f.Float64At(1), 0.0);  // the placeholder
  EXPECT_EQ(f.NumberAt(2), -2.0);
  EXPECT_TRUE(std::isnan(f.NumberAt(1)));

  Column i("n", DataType::kInt64);
  i.AppendInt64(int64_t{1} << 60);
  EXPECT_EQ(i.Int64At(0), int64_t{1} << 60);
  EXPECT_EQ(i.NumberAt(0), std::ldexp(1.0, 60));

  Column b("flag", DataType::kBool);
  b.AppendBool(true);
  b.AppendBool(false);
  b.AppendMissing();
  EXPECT_TRUE(b.BoolAt(0));
  EXPECT_EQ(b.NumberAt(0), 1.0);
  EXPECT_EQ(b.NumberAt(1), 0.0);
  EXPECT_TRUE(std::isnan(b.NumberAt(2)));
}

TEST(ColumnTest, ValidityCrossesWordBoundaries) {
  Column c("x", DataType::kInt64);
  for (int i = 0; i < 200; ++i) {
    if (i % 3 == 0) {
      c.AppendMissing();
    } else {
      c.AppendInt64(i);
    }
  }
  EXPECT_EQ(c.missing_count(), 67u);
  for (size_t i = 0; i < 200; ++i) {
    ASSERT_EQ(c.IsMissing(i), i % 3 == 0) << i;
    if (i % 3 != 0) {
      EXPECT_EQ(c.Int64At(i), static_cast<int64_t>(i));
    }
  }
}

TEST(ColumnTest, StringsAreDictionaryEncoded) {
  Column c = StringColumn(
      "city", {"paris", "oslo", "?", "paris",
               "a string long enough to leave the small string buffer"});
  EXPECT_THAT(c.dictionary(),
              ElementsAre("paris", "oslo",
                          "a string long enough to leave the small string "
                          "buffer"));
  EXPECT_EQ(c.CodeAt(0), 0);
  EXPECT_EQ(c.CodeAt(1), 1);
  EXPECT_EQ(c.CodeAt(2), 0);  // missing
  EXPECT_EQ(c.CodeAt(3), 0);
  EXPECT_EQ(c.CodeAt(4), 2);
  EXPECT_EQ(c.StringAt(3), "paris");
  EXPECT_EQ(c.missing_count(), 1u);
}

TEST(ColumnTest, AllMissingStringColumnHasEmptyDictionary) {
  Column c = StringColumn("city", {"?", "?"});
  EXPECT_TRUE(c.dictionary().empty());
  EXPECT_TRUE(c.IsMissing(0));
  EXPECT_EQ(c.CodeAt(1), 0);
}

TEST(ColumnTest, TakeRemapsTheDictionary) {
  Column c = StringColumn("city", {"paris", "oslo", "?", "rome"});
  Column taken = c.Take({3, 2, 3, 0});
  EXPECT_THAT(Strings(taken), ElementsAre("rome", "?", "rome", "paris"));
  EXPECT_THAT(taken.dictionary(), ElementsAre("rome", "paris"));
  EXPECT_EQ(taken.CodeAt(0), 0);
  EXPECT_EQ(taken.CodeAt(3), 1);
  EXPECT_EQ(taken.missing_count(), 1u);

  Column numbers("x", DataType::kFloat64);
  numbers.AppendFloat64(1);
  numbers.AppendMissing();
  numbers.AppendFloat64(3);
  Column picked = numbers.Take({2, 1, 0});
  EXPECT_EQ(picked.Float64At(0), 3.0);
  EXPECT_TRUE(picked.IsMissing(1));
  EXPECT_EQ(picked.Float64At(2), 1.0);
}

TEST(ColumnTest, AppendColumnMergesDictionaries) {
  Column a = StringColumn("city", {"paris", "?"});
  Column b = StringColumn("city", {"oslo", "paris", "?", "oslo"});
  a.AppendColumn(b);
  EXPECT_THAT(Strings(a),
              ElementsAre("paris", "?", "oslo", "paris", "?", "oslo"));
  EXPECT_THAT(a.dictionary(), ElementsAre("paris", "oslo"));
  EXPECT_EQ(a.missing_count(), 2u);
}

TEST(ColumnTest, ValueBytesCoversValuesAndBitmap) {
  Column c("x", DataType::kFloat64);
  c.Reserve(1000);
  for (int i = 0; i < 1000; ++i) c.AppendFloat64(i);
  EXPECT_EQ(c.ValueBytes(), 1000 * sizeof(double) + 16 * sizeof(uint64_t));

  Column s = StringColumn("s", {"a", "b", "a"});
  EXPECT_GE(s.ValueBytes(), 3 * sizeof(int32_t) + 2 * sizeof(std::string));
}

Table SmallTable() {
  Table t;
  Column id("id", DataType::kInt64);
  Column city = StringColumn("city", {"paris", "oslo", "?"});
  for (int i = 0; i < 3; ++i) id.AppendInt64(i);
  EXPECT_TRUE(t.AddColumn(std::move(id)).ok());
  EXPECT_TRUE(t.AddColumn(std::move(city)).ok());
  return t;
}

TEST(TableTest, AddAndFindColumns) {
  Table t = SmallTable();
  EXPECT_EQ(t.num_rows(), 3u);
  EXPECT_EQ(t.num_columns(), 2u);
  EXPECT_EQ(t.ColumnIndex("city"), 1);
  EXPECT_EQ(t.ColumnIndex("nope"), -1);
  EXPECT_EQ(t.FindColumn("id")->type(), DataType::kInt64);
  EXPECT_EQ(t.FindColumn("nope"), nullptr);
  EXPECT_EQ(Table().num_rows(), 0u);
}

TEST(TableTest, AddColumnRejectsDuplicateNameAndWrongLength) {
  Table t = SmallTable();
  absl::Status dup = t.AddColumn(Column("id", DataType::kInt64));
  EXPECT_EQ(dup.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dup.message(), "column 'id' is already in the table");
  absl::Status length = t.AddColumn(Column("age", DataType::kInt64));
  EXPECT_EQ(length.message(), "column 'age' has 0 rows, the table has 3");
}

TEST(TableTest, TakeAndAppendRows) {
  Table t = SmallTable();
  Table tail = t.Take({2, 1});
  EXPECT_EQ(tail.num_rows(), 2u);
  EXPECT_EQ(tail.column(0).Int64At(0), 2);
  EXPECT_TRUE(tail.column(1).IsMissing(0));

  ASSERT_TRUE(t.AppendRows(tail).ok());
  EXPECT_EQ(t.num_rows(), 5u);
  EXPECT_THAT(Strings(t.column(1)),
              ElementsAre("paris", "oslo", "?", "?", "oslo"));

  Table gathered;
  ASSERT_TRUE(gathered.AppendRows(tail).ok());
  ASSERT_TRUE(gathered.AppendRows(tail).ok());
  EXPECT_EQ(gathered.num_rows(), 4u);
}

TEST(TableTest, AppendRowsNamesTheFirstDifference) {
  Table t = SmallTable();
  Table renamed;
  ASSERT_TRUE(renamed.AddColumn(Column("id", DataType::kInt64)).ok());
  ASSERT_TRUE(renamed.AddColumn(Column("town", DataType::kString)).ok());
  EXPECT_EQ(t.AppendRows(renamed).message(),
            "cannot append rows: column 2 is 'city' in the table but 'town' "
            "in the appended rows");

  Table retyped;
  ASSERT_TRUE(retyped.AddColumn(Column("id", DataType::kFloat64)).ok());
  ASSERT_TRUE(retyped.AddColumn(Column("city", DataType::kString)).ok());
  EXPECT_EQ(t.AppendRows(retyped).message(),
            "cannot append rows: column 'id' is int64 in the table but "
            "float64 in the appended rows");

  Table narrow;
  ASSERT_TRUE(narrow.AddColumn(Column("id", DataType::kInt64)).ok());
  EXPECT_EQ(t.AppendRows(narrow).message(),
            "cannot append rows: the table has 2 columns, the appended rows "
            "have 1");
  EXPECT_EQ(t.num_rows(), 3u);  // unchanged by the failed appends
}

}  // namespace
}  // namespace slipway
