#include "models/transform.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/features.h"
#include "models/model.h"
#include "nlohmann/json.hpp"
#include "train/trainer.h"

namespace slipway {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using NumericImpute = TransformOptions::NumericImpute;
using CategoricalImpute = TransformOptions::CategoricalImpute;
using CategoricalEncoding = TransformOptions::CategoricalEncoding;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Cells: NaN is a missing number.
Column Floats(const std::string& name, const std::vector<double>& values) {
  Column column(name, DataType::kFloat64);
  for (double value : values) {
    if (std::isnan(value)) {
      column.AppendMissing();
    } else {
      column.AppendFloat64(value);
    }
  }
  return column;
}

// Cells: "" is a missing string.
Column Strings(const std::string& name,
               const std::vector<std::string>& values) {
  Column column(name, DataType::kString);
  for (const std::string& value : values) {
    if (value.empty()) {
      column.AppendMissing();
    } else {
      column.AppendString(value);
    }
  }
  return column;
}

Table MakeTable(std::vector<Column> columns) {
  Table table;
  for (Column& column : columns) {
    EXPECT_TRUE(table.AddColumn(std::move(column)).ok());
  }
  return table;
}

// Transforms `raw` the way serving does: request encoding, then Apply.
std::vector<float> ServeRows(const FeatureTransform& transform,
                             const Table& raw) {
  const Signature request = RequestSignature(
      transform, Signature(Task::kRegression, {}, "y", DataType::kFloat64, {}));
  std::vector<float> encoded;
  EXPECT_TRUE(EncodeTable(request, raw, &encoded, nullptr).ok());
  std::vector<float> out;
  transform.Apply(encoded.data(), raw.num_rows(), &out);
  return out;
}

// Bitwise equal, every NaN equal to every NaN.
bool SameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return false;
  }
  return true;
}

FeatureTransform FitOrDie(const Table& table,
                          const std::vector<std::string>& features,
                          const TransformOptions& options) {
  absl::StatusOr<FeatureTransform> transform =
      FeatureTransform::Fit(table, features, options);
  EXPECT_TRUE(transform.ok()) << transform.status();
  return *std::move(transform);
}

std::string FitError(const Table& table,
                     const std::vector<std::string>& features,
                     const TransformOptions& options) {
  absl::StatusOr<FeatureTransform> transform =
      FeatureTransform::Fit(table, features, options);
  EXPECT_FALSE(transform.ok());
  EXPECT_EQ(transform.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(transform.status().message());
}

// ------------------------------------------------------------- numeric

Table NumericTable() {
  return MakeTable({Floats("x", {1, 2, NAN, 6}), Floats("y", {0, 1, 0, 1})});
}

TEST(TransformNumericTest, ImputeStrategies) {
  const Table table = NumericTable();
  TransformOptions options;
  EXPECT_TRUE(SameFloats(ServeRows(FitOrDie(table, {"x"}, options), table),
                         {1, 2, kNaN, 6}));
  options.impute_numeric = NumericImpute::kMean;
  EXPECT_TRUE(SameFloats(ServeRows(FitOrDie(table, {"x"}, options), table),
                         {1, 2, 3, 6}));
  options.impute_numeric = NumericImpute::kMedian;
  EXPECT_TRUE(SameFloats(ServeRows(FitOrDie(table, {"x"}, options), table),
                         {1, 2, 2, 6}));
  options.impute_numeric = NumericImpute::kConstant;
  options.fill_value = -1;
  EXPECT_TRUE(SameFloats(ServeRows(FitOrDie(table, {"x"}, options), table),
                         {1, 2, -1, 6}));
}

TEST(TransformNumericTest, StandardizeUsesImputedColumn) {
  const Table table = NumericTable();
  TransformOptions options;
  options.impute_numeric = NumericImpute::kMean;
  options.standardize = true;
  const FeatureTransform transform = FitOrDie(table, {"x"}, options);
  // Imputed column {1, 2, 3, 6}: mean 3, population variance 14/4.
  const double stddev = std::sqrt(3.5);
  std::vector<float> expected;
  for (double v : {1.0, 2.0, 3.0, 6.0}) {
    expected.push_back(static_cast<float>((v - 3) / stddev));
  }
  EXPECT_TRUE(SameFloats(ServeRows(transform, table), expected));
  const json fitted = transform.ToJson()["features"][0];
  EXPECT_EQ(fitted["impute"], "mean");
  EXPECT_EQ(fitted["impute_value"], 3.0);
  EXPECT_EQ(fitted["standardize"]["mean"], 3.0);
  EXPECT_DOUBLE_EQ(fitted["standardize"]["stddev"].get<double>(), stddev);
}

TEST(TransformNumericTest, StandardizeWithoutImputeKeepsMissing) {
  const Table table = NumericTable();
  TransformOptions options;
  options.standardize = true;
  const FeatureTransform transform = FitOrDie(table, {"x"}, options);
  // Present values {1, 2, 6}: mean 3, variance 14/3.
  const double stddev = std::sqrt(14.0 / 3);
  EXPECT_TRUE(SameFloats(
      ServeRows(transform, table),
      {static_cast<float>(-2 / stddev), static_cast<float>(-1 / stddev), kNaN,
       static_cast<float>(3 / stddev)}));
}

TEST(TransformNumericTest, ConstantColumnIsOnlyCentered) {
  Column ints("n", DataType::kInt64);
  Column flags("b", DataType::kBool);
  for (int i = 0; i < 4; ++i) {
    ints.AppendInt64(7);
    flags.AppendBool(i % 2 == 0);
  }
  const Table table = MakeTable({std::move(ints), std::move(flags)});
  TransformOptions options;
  options.standardize = true;
  const FeatureTransform transform = FitOrDie(table, {"n", "b"}, options);
  EXPECT_THAT(transform.ModelFeatureNames(), ElementsAre("n", "b"));
  // n: mean 7, stddev 0 -> x - 7; b: {1, 0, 1, 0}, mean 0.5, stddev 0.5.
  EXPECT_TRUE(
      SameFloats(ServeRows(transform, table), {0, 1, 0, -1, 0, 1, 0, -1}));
  EXPECT_EQ(transform.request_features()[0].type, DataType::kInt64);
  EXPECT_EQ(transform.request_features()[1].type, DataType::kBool);
  EXPECT_EQ(transform.model_features()[0].type, DataType::kFloat64);
}

// ---------------------------------------------------------- categorical

Table ColorTable() {
  return MakeTable(
      {Strings("color", {"red", "blue", "red", "", "green", "red", "blue"}),
       Floats("y", {1, 0, 1, 0, 1, 0, 1})});
}

TEST(TransformCategoricalTest, NativeKeepsTrainingCategories) {
  const Table table = ColorTable();
  const FeatureTransform transform = FitOrDie(table, {"color"}, {});
  ASSERT_EQ(transform.request_features().size(), 1u);
  EXPECT_THAT(transform.request_features()[0].categories,
              ElementsAre("blue", "green", "red"));
  ASSERT_EQ(transform.model_features().size(), 1u);
  EXPECT_TRUE(transform.model_features()[0].is_categorical());
  EXPECT_THAT(transform.model_features()[0].categories,
              ElementsAre("blue", "green", "red"));
  EXPECT_TRUE(
      SameFloats(ServeRows(transform, table), {2, 0, 2, kNaN, 1, 2, 0}));
}

TEST(TransformCategoricalTest, MostFrequentImpute) {
  const Table table = ColorTable();
  TransformOptions options;
  options.impute_categorical = CategoricalImpute::kMostFrequent;
  const FeatureTransform transform = FitOrDie(table, {"color"}, options);
  EXPECT_EQ(transform.ToJson()["features"][0]["impute_value"], "red");
  EXPECT_TRUE(SameFloats(ServeRows(transform, table), {2, 0, 2, 2, 1, 2, 0}));
}

TEST(TransformCategoricalTest, MostFrequentTiesGoToSmallestValue) {
  const Table table = MakeTable({Strings("c", {"b", "a", "b", "a", ""})});
  TransformOptions options;
  options.impute_categorical = CategoricalImpute::kMostFrequent;
  const FeatureTransform transform = FitOrDie(table, {"c"}, options);
  EXPECT_EQ(transform.ToJson()["features"][0]["impute_value"], "a");
}

TEST(TransformCategoricalTest, ConstantImputeAddsItsCategory) {
  const Table table = ColorTable();
  TransformOptions options;
  options.impute_categorical = CategoricalImpute::kConstant;
  options.fill_category = "none";
  const FeatureTransform transform = FitOrDie(table, {"color"}, options);
  EXPECT_THAT(transform.model_features()[0].categories,
              ElementsAre("blue", "green", "none", "red"));
  // Request categories stay the training values.
  EXPECT_THAT(transform.request_features()[0].categories,
              ElementsAre("blue", "green", "red"));
  EXPECT_TRUE(SameFloats(ServeRows(transform, table), {3, 0, 3, 2, 1, 3, 0}));
}

TEST(TransformCategoricalTest, Ordinal) {
  const Table table = ColorTable();
  TransformOptions options;
  options.encode = CategoricalEncoding::kOrdinal;
  const FeatureTransform transform = FitOrDie(table, {"color"}, options);
  EXPECT_FALSE(transform.model_features()[0].is_categorical());
  EXPECT_TRUE(
      SameFloats(ServeRows(transform, table), {2, 0, 2, kNaN, 1, 2, 0}));
  const absl::StatusOr<Table> out = transform.ApplyToTable(table);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->FindColumn("color")->type(), DataType::kFloat64);
}

TEST(TransformCategoricalTest, OneHotKeepsMostFrequent) {
  const Table table = ColorTable();
  TransformOptions options;
  options.encode = CategoricalEncoding::kOneHot;
  options.max_categories = 2;
  const FeatureTransform transform = FitOrDie(table, {"color"}, options);
  EXPECT_THAT(transform.ModelFeatureNames(),
              ElementsAre("color=blue", "color=red"));
  // green (rare) and the missing cell set no indicator.
  EXPECT_TRUE(SameFloats(ServeRows(transform, table),
                         {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0}));
}

TEST(TransformCategoricalTest, OneHotWithImputeAndTies) {
  const Table table = MakeTable({Strings("c", {"b", "a", "c", "", ""})});
  TransformOptions options;
  options.encode = CategoricalEncoding::kOneHot;
  options.impute_categorical = CategoricalImpute::kConstant;
  options.fill_category = "z";
  options.max_categories = 2;
  // After imputation: z 2, then a, b, c 1 each: z and a (ties by value).
  const FeatureTransform transform = FitOrDie(table, {"c"}, options);
  EXPECT_THAT(transform.ModelFeatureNames(), ElementsAre("c=a", "c=z"));
  EXPECT_THAT(ServeRows(transform, table),
              ElementsAre(0, 0, 1, 0, 0, 0, 0, 1, 0, 1));
}

TEST(TransformCategoricalTest, UnseenCategoryIsTreatedAsMissing) {
  TransformOptions options;
  options.impute_categorical = CategoricalImpute::kMostFrequent;
  options.encode = CategoricalEncoding::kOneHot;
  const FeatureTransform transform = FitOrDie(ColorTable(), {"color"}, options);
  const Table scoring = MakeTable({Strings("color", {"purple", "", "green"})});
  // blue, green, red indicators; purple and missing -> red.
  EXPECT_TRUE(
      SameFloats(ServeRows(transform, scoring), {0, 0, 1, 0, 0, 1, 0, 1, 0}));
}

TEST(TransformTest, ColumnsLimitTheOptions) {
  const Table table =
      MakeTable({Floats("x", {1, NAN, 3}), Strings("c", {"a", "", "b"}),
                 Floats("z", {NAN, 2, 2})});
  TransformOptions options;
  options.impute_numeric = NumericImpute::kConstant;
  options.fill_value = 9;
  options.impute_categorical = CategoricalImpute::kConstant;
  options.encode = CategoricalEncoding::kOneHot;
  options.columns = {"z"};
  const FeatureTransform transform = FitOrDie(table, {"x", "c", "z"}, options);
  EXPECT_THAT(transform.ModelFeatureNames(), ElementsAre("x", "c", "z"));
  EXPECT_TRUE(transform.model_features()[1].is_categorical());
  EXPECT_TRUE(SameFloats(ServeRows(transform, table),
                         {1, 0, 9, kNaN, kNaN, 2, 3, 1, 2}));
}

TEST(TransformTest, ApplyToTableReplacesFeaturesInPlace) {
  Column id("id", DataType::kInt64);
  for (int64_t i = 0; i < 7; ++i) id.AppendInt64(100 + i);
  Table table = ColorTable();
  ASSERT_TRUE(table.AddColumn(std::move(id)).ok());
  TransformOptions options;
  options.encode = CategoricalEncoding::kOneHot;
  options.impute_categorical = CategoricalImpute::kMostFrequent;
  const FeatureTransform transform = FitOrDie(table, {"color"}, options);
  const absl::StatusOr<Table> out = transform.ApplyToTable(table);
  ASSERT_TRUE(out.ok()) << out.status();
  std::vector<std::string> names;
  for (const Column& column : out->columns()) names.push_back(column.name());
  EXPECT_THAT(names,
              ElementsAre("color=blue", "color=green", "color=red", "y", "id"));
  ASSERT_EQ(out->num_rows(), 7u);
  EXPECT_EQ(out->FindColumn("id")->type(), DataType::kInt64);
  EXPECT_EQ(out->FindColumn("id")->Int64At(6), 106);
  EXPECT_EQ(out->FindColumn("y")->Float64At(4), 1);
  EXPECT_EQ(out->FindColumn("color=red")->Float64At(3), 1);  // imputed

  const absl::StatusOr<Table> absent =
      transform.ApplyToTable(MakeTable({Floats("y", {1})}));
  ASSERT_FALSE(absent.ok());
  EXPECT_THAT(std::string(absent.status().message()),
              HasSubstr("feature 'color' is missing"));
}

TEST(TransformTest, FitErrorsNameTheProblem) {
  const Table table =
      MakeTable({Floats("x", {NAN, NAN}), Strings("c", {"", ""}),
                 Strings("d", {"a", "b"}), Floats("d=a", {1, 2})});
  TransformOptions options;
  EXPECT_THAT(FitError(table, {}, options), HasSubstr("no features"));
  EXPECT_THAT(FitError(table, {"x", "x"}, options),
              HasSubstr("'x' is listed twice"));
  EXPECT_THAT(FitError(table, {"nope"}, options),
              HasSubstr("feature 'nope' is missing"));
  options.columns = {"d=a"};
  EXPECT_THAT(FitError(table, {"x"}, options),
              HasSubstr("'columns': 'd=a' is not a feature"));
  options.columns.clear();
  options.max_categories = 0;
  EXPECT_THAT(FitError(table, {"x"}, options), HasSubstr("max_categories"));
  options.max_categories = 5;
  options.impute_numeric = NumericImpute::kMedian;
  EXPECT_THAT(FitError(table, {"x"}, options),
              HasSubstr("feature 'x' has no values"));
  options.impute_numeric = NumericImpute::kConstant;
  options.fill_value = NAN;
  EXPECT_THAT(FitError(table, {"x"}, options), HasSubstr("fill_value"));
  options = TransformOptions();
  options.impute_categorical = CategoricalImpute::kMostFrequent;
  EXPECT_THAT(FitError(table, {"c"}, options),
              HasSubstr("feature 'c' has no values"));
  options = TransformOptions();
  options.encode = CategoricalEncoding::kOneHot;
  EXPECT_THAT(FitError(table, {"d"}, options),
              HasSubstr("model feature 'd=a' has the name of the training "
                        "data's column 'd=a'"));
  EXPECT_THAT(FitError(table, {"d", "d=a"}, options),
              HasSubstr("gives model feature 'd=a'"));
}

// ----------------------------------------------------------------- JSON

TEST(TransformJsonTest, RoundTrip) {
  Table table = ColorTable();
  ASSERT_TRUE(
      table.AddColumn(Floats("x", {0.1, 0.7, NAN, 1e9, -3.3, 2, 2})).ok());
  TransformOptions options;
  options.impute_numeric = NumericImpute::kMean;
  options.impute_categorical = CategoricalImpute::kConstant;
  options.encode = CategoricalEncoding::kOneHot;
  options.standardize = true;
  const FeatureTransform transform = FitOrDie(table, {"x", "color"}, options);
  const json written = transform.ToJson();
  EXPECT_EQ(written["version"], 1);
  absl::StatusOr<FeatureTransform> read =
      FeatureTransform::Parse(written.dump());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->ToJson(), written);
  EXPECT_EQ(read->ModelFeatureNames(), transform.ModelFeatureNames());
  EXPECT_TRUE(SameFloats(ServeRows(*read, table), ServeRows(transform, table)));
}

json ValidTransformJson() {
  return json::parse(R"({"version": 1, "features": [
    {"name": "x", "type": "float64", "impute": "mean", "impute_value": 2.5,
     "standardize": {"mean": 2.5, "stddev": 1.5}},
    {"name": "c", "type": "string", "categories": ["a", "b"],
     "impute": "constant", "impute_value": "z", "encode": "onehot",
     "model_categories": ["a", "z"]}]})");
}

std::string JsonError(const json& value) {
  absl::StatusOr<FeatureTransform> transform =
      FeatureTransform::FromJson(value);
  EXPECT_FALSE(transform.ok()) << value.dump();
  EXPECT_EQ(transform.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(transform.status().message());
}

TEST(TransformJsonTest, BadJsonNamesTheField) {
  ASSERT_TRUE(FeatureTransform::FromJson(ValidTransformJson()).ok());
  EXPECT_THAT(std::string(FeatureTransform::Parse("{nope").status().message()),
              HasSubstr("not valid JSON"));
  EXPECT_THAT(JsonError(json::array()), HasSubstr("expected a JSON object"));

  struct Case {
    std::string pointer;  // JSON pointer of the edit
    json value;           // null: remove the field
    std::string message;
  };
  const std::vector<Case> cases = {
      {"/version", 2, "field 'version': unsupported version 2"},
      {"/version", nullptr, "field 'version': missing"},
      {"/features", json::array(), "field 'features': expected a non-empty"},
      {"/extra", 1, "field 'extra': unknown field"},
      {"/features/0/name", nullptr, "field 'features[0].name': missing"},
      {"/features/0/type", "decimal", "field 'features[0].type'"},
      {"/features/0/impute", "avg",
       "field 'features[0].impute': unknown numeric impute strategy 'avg'"},
      {"/features/0/impute_value", "2.5",
       "field 'features[0].impute_value': expected a number"},
      {"/features/0/standardize/stddev", -1,
       "field 'features[0].standardize.stddev': must not be negative"},
      {"/features/0/standardize/scale", 1,
       "field 'features[0].standardize.scale': unknown field"},
      {"/features/0/categories", json::array({"a"}),
       "field 'features[0].categories': unknown field"},
      {"/features/1/name", "x",
       "field 'features[1].name': duplicate feature name 'x'"},
      {"/features/1/categories/1", "a",
       "field 'features[1].categories[1]': duplicate value 'a'"},
      {"/features/1/impute", "most_common",
       "field 'features[1].impute': unknown categorical impute strategy"},
      {"/features/1/impute_value", nullptr,
       "field 'features[1].impute_value': missing"},
      {"/features/1/encode", "binary",
       "field 'features[1].encode': unknown encoding 'binary'"},
      {"/features/1/model_categories/1", "q",
       "field 'features[1].model_categories[1]': 'q' is neither"},
      {"/features/1/model_categories", nullptr,
       "field 'features[1].model_categories': missing"},
  };
  for (const Case& c : cases) {
    json value = ValidTransformJson();
    const json::json_pointer pointer(c.pointer);
    if (c.value.is_null()) {
      value[pointer.parent_pointer()].erase(pointer.back());
    } else {
      value[pointer] = c.value;
    }
    EXPECT_THAT(JsonError(value), HasSubstr(c.message)) << c.pointer;
  }

  json impute_none = ValidTransformJson();
  impute_none["features"][0]["impute"] = "none";
  EXPECT_THAT(JsonError(impute_none),
              HasSubstr("'features[0].impute_value': present although"));

  json clash = ValidTransformJson();
  clash["features"][0]["name"] = "c=a";
  EXPECT_THAT(JsonError(clash),
              HasSubstr("'features[1]': gives model feature 'c=a'"));
}

// ------------------------------------------- Apply == ApplyToTable, random

// A table of `rows` rows: f (float64), i (int64), b (bool), s and t (string)
// features, each ~20% missing, and a 0/1 int64 target y. Strings come from
// `alphabet` values; a scoring table uses a larger one, so it holds
// categories training never saw.
Table RandomTable(std::mt19937_64& rng, size_t rows, int alphabet) {
  std::uniform_real_distribution<double> unit(0, 1);
  Column f("f", DataType::kFloat64);
  Column i("i", DataType::kInt64);
  Column b("b", DataType::kBool);
  Column s("s", DataType::kString);
  Column t("t", DataType::kString);
  Column y("y", DataType::kInt64);
  for (size_t row = 0; row < rows; ++row) {
    auto missing = [&] { return unit(rng) < 0.2; };
    if (missing())
      f.AppendMissing();
    else
      f.AppendFloat64(unit(rng) * 200 - 50);
    if (missing())
      i.AppendMissing();
    else
      i.AppendInt64(rng() % 1000 - 300);
    if (missing())
      b.AppendMissing();
    else
      b.AppendBool(rng() % 2 == 0);
    if (missing()) {
      s.AppendMissing();
    } else {
      s.AppendString("s" + std::to_string(rng() % alphabet));
    }
    if (missing()) {
      t.AppendMissing();
    } else {
      t.AppendString(std::to_string(rng() % (2 * alphabet)));
    }
    y.AppendInt64(static_cast<int64_t>(rng() % 2));
  }
  return MakeTable({std::move(y), std::move(f), std::move(s), std::move(i),
                    std::move(b), std::move(t)});
}

// The transform's contract computed cell by cell from the raw table and
// the fitted JSON, independently of transform.cc. Categorical features must
// be string columns in `raw`.
std::vector<float> ReferenceRows(const json& fitted, const Table& raw) {
  std::vector<std::vector<float>> columns;  // model columns
  for (const json& feature : fitted["features"]) {
    const Column& column = *raw.FindColumn(feature["name"].get<std::string>());
    const bool imputes = feature["impute"] != "none";
    if (feature["type"] != "string") {
      std::vector<float> out;
      for (size_t row = 0; row < column.size(); ++row) {
        double x = static_cast<float>(column.NumberAt(row));
        if (std::isnan(x) && imputes) x = feature["impute_value"];
        if (feature.contains("standardize")) {
          const double stddev = feature["standardize"]["stddev"];
          x = (x - feature["standardize"]["mean"].get<double>()) /
              (stddev > 0 ? stddev : 1);
        }
        out.push_back(static_cast<float>(x));
      }
      columns.push_back(std::move(out));
      continue;
    }
    const auto categories =
        feature["categories"].get<std::vector<std::string>>();
    const auto model =
        feature["model_categories"].get<std::vector<std::string>>();
    std::vector<std::string> values;  // "" = none
    for (size_t row = 0; row < column.size(); ++row) {
      std::string value;
      if (!column.IsMissing(row)) value = column.StringAt(row);
      if (std::find(categories.begin(), categories.end(), value) ==
          categories.end()) {
        value = imputes ? feature["impute_value"].get<std::string>() : "";
      }
      values.push_back(value);
    }
    if (feature["encode"] == "onehot") {
      for (const std::string& category : model) {
        std::vector<float> out;
        for (const std::string& value : values) {
          out.push_back(value == category ? 1.0f : 0.0f);
        }
        columns.push_back(std::move(out));
      }
      continue;
    }
    std::vector<float> out;
    for (const std::string& value : values) {
      const auto it = std::find(model.begin(), model.end(), value);
      out.push_back(it == model.end() ? kNaN
                                      : static_cast<float>(it - model.begin()));
    }
    columns.push_back(std::move(out));
  }
  std::vector<float> rows;
  for (size_t row = 0; row < raw.num_rows(); ++row) {
    for (const std::vector<float>& column : columns)
      rows.push_back(column[row]);
  }
  return rows;
}

std::vector<TransformOptions> OptionCombinations() {
  std::vector<TransformOptions> all;
  for (NumericImpute numeric :
       {NumericImpute::kNone, NumericImpute::kMean, NumericImpute::kMedian,
        NumericImpute::kConstant}) {
    for (CategoricalImpute categorical :
         {CategoricalImpute::kNone, CategoricalImpute::kMostFrequent,
          CategoricalImpute::kConstant}) {
      for (CategoricalEncoding encode :
           {CategoricalEncoding::kNative, CategoricalEncoding::kOneHot,
            CategoricalEncoding::kOrdinal}) {
        for (bool standardize : {false, true}) {
          TransformOptions options;
          options.impute_numeric = numeric;
          options.impute_categorical = categorical;
          options.fill_value = 0.25;
          options.fill_category = "s0";  // also a real category
          options.encode = encode;
          options.max_categories = 4;
          options.standardize = standardize;
          if (standardize && numeric == NumericImpute::kMean) {
            options.columns = {"f", "s", "b"};
          }
          all.push_back(options);
        }
      }
    }
  }
  return all;
}

TEST(TransformParityTest, ApplyEqualsEncodingTheTransformedTable) {
  std::mt19937_64 rng(42);
  const std::vector<std::string> features = {"f", "s", "i", "b", "t"};
  int checked = 0;
  for (const TransformOptions& options : OptionCombinations()) {
    const Table train = RandomTable(rng, 300, 6);
    const FeatureTransform transform = FitOrDie(train, features, options);
    absl::StatusOr<Table> transformed_train = transform.ApplyToTable(train);
    ASSERT_TRUE(transformed_train.ok()) << transformed_train.status();

    // The model signature is whatever the trainer finds in the transformed
    // training table; it must be the transform's model features.
    TrainOptions train_options;
    train_options.rounds = 2;
    train_options.threads = 1;
    train_options.features = transform.ModelFeatureNames();
    absl::StatusOr<TrainedModel> trained =
        TrainXgboost(*transformed_train, "y", train_options);
    ASSERT_TRUE(trained.ok()) << trained.status();
    ASSERT_TRUE(transform.CheckModelSignature(trained->signature).ok())
        << transform.CheckModelSignature(trained->signature);

    // Scoring rows with unseen categories, and the int feature as float64
    // (as a differently inferred CSV would give it).
    Table scoring = RandomTable(rng, 200, 9);
    const Column& ints = *scoring.FindColumn("i");
    Column as_float("i", DataType::kFloat64);
    for (size_t row = 0; row < ints.size(); ++row) {
      if (ints.IsMissing(row)) {
        as_float.AppendMissing();
      } else {
        as_float.AppendFloat64(static_cast<double>(ints.Int64At(row)) + 0.5);
      }
    }
    scoring.mutable_column(scoring.ColumnIndex("i")) = std::move(as_float);

    absl::StatusOr<Table> transformed = transform.ApplyToTable(scoring);
    ASSERT_TRUE(transformed.ok()) << transformed.status();
    std::vector<float> expected;
    ASSERT_TRUE(
        EncodeTable(trained->signature, *transformed, &expected, nullptr).ok());
    const std::vector<float> served = ServeRows(transform, scoring);
    EXPECT_TRUE(SameFloats(served, expected)) << transform.ToJson().dump();
    EXPECT_TRUE(SameFloats(served, ReferenceRows(transform.ToJson(), scoring)))
        << transform.ToJson().dump();
    ++checked;
  }
  EXPECT_EQ(checked, 72);
}

// -------------------------------------------------- LoadModel(transform)

struct TrainedTransform {
  FeatureTransform transform;
  TrainedModel trained;
};

TrainedTransform TrainOnTransformed(const Table& train,
                                    const TransformOptions& options) {
  FeatureTransform transform =
      FitOrDie(train, {"f", "s", "i", "b", "t"}, options);
  absl::StatusOr<Table> transformed = transform.ApplyToTable(train);
  EXPECT_TRUE(transformed.ok()) << transformed.status();
  TrainOptions train_options;
  train_options.rounds = 20;
  train_options.threads = 1;
  train_options.features = transform.ModelFeatureNames();
  absl::StatusOr<TrainedModel> trained =
      TrainXgboost(*transformed, "y", train_options);
  EXPECT_TRUE(trained.ok()) << trained.status();
  return {std::move(transform), *std::move(trained)};
}

TEST(TransformedModelTest, PredictsRawRowsLikeTheTransformedTable) {
  std::mt19937_64 rng(7);
  const Table train = RandomTable(rng, 500, 6);
  const Table scoring = RandomTable(rng, 300, 9);
  for (CategoricalEncoding encode :
       {CategoricalEncoding::kNative, CategoricalEncoding::kOneHot,
        CategoricalEncoding::kOrdinal}) {
    TransformOptions options;
    options.impute_numeric = NumericImpute::kMedian;
    options.impute_categorical = CategoricalImpute::kMostFrequent;
    options.encode = encode;
    options.standardize = true;
    const TrainedTransform model = TrainOnTransformed(train, options);

    absl::StatusOr<std::unique_ptr<Model>> plain =
        LoadModel(model.trained.format, model.trained.model_bytes,
                  model.trained.signature);
    ASSERT_TRUE(plain.ok()) << plain.status();
    absl::StatusOr<Table> transformed = model.transform.ApplyToTable(scoring);
    ASSERT_TRUE(transformed.ok()) << transformed.status();
    std::vector<float> model_rows;
    ASSERT_TRUE(
        EncodeTable((*plain)->signature(), *transformed, &model_rows, nullptr)
            .ok());
    std::vector<float> expected;
    ASSERT_TRUE((*plain)
                    ->Predict(model_rows.data(), scoring.num_rows(), &expected)
                    .ok());

    absl::StatusOr<std::unique_ptr<Model>> served =
        LoadModel(model.trained.format, model.trained.model_bytes,
                  model.trained.signature, model.transform.ToJson().dump());
    ASSERT_TRUE(served.ok()) << served.status();
    const Signature& request = (*served)->signature();
    EXPECT_EQ(request.task(), Task::kBinaryClassification);
    EXPECT_EQ(request.target(), "y");
    EXPECT_EQ(request.class_labels(), model.trained.signature.class_labels());
    ASSERT_EQ(request.features().size(), 5u);
    EXPECT_EQ(request.features()[1].name, "s");
    EXPECT_EQ(request.features()[2].type, DataType::kInt64);
    EXPECT_EQ((*served)->format(), model.trained.format);

    std::vector<float> raw_rows;
    ASSERT_TRUE(EncodeTable(request, scoring, &raw_rows, nullptr).ok());
    // Several threads, each with its own transform buffer, and a smaller
    // batch after a larger one.
    std::vector<std::vector<float>> got(3);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < got.size(); ++t) {
      threads.emplace_back([&, t] {
        std::vector<float> first;
        EXPECT_TRUE((*served)
                        ->Predict(raw_rows.data(), scoring.num_rows(), &first)
                        .ok());
        EXPECT_TRUE((*served)->Predict(raw_rows.data(), 10, &got[t]).ok());
        EXPECT_TRUE(SameFloats(first, expected));
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (const std::vector<float>& out : got) {
      EXPECT_TRUE(SameFloats(
          out, std::vector<float>(expected.begin(), expected.begin() + 10)));
    }
  }
}

TEST(TransformedModelTest, LoadRefusesAMismatchedOrBrokenTransform) {
  std::mt19937_64 rng(3);
  const Table train = RandomTable(rng, 200, 5);
  TransformOptions options;
  options.encode = CategoricalEncoding::kOneHot;
  const TrainedTransform model = TrainOnTransformed(train, options);

  options.encode = CategoricalEncoding::kNative;
  const FeatureTransform other =
      FitOrDie(train, {"f", "s", "i", "b", "t"}, options);
  absl::StatusOr<std::unique_ptr<Model>> mismatched =
      LoadModel(model.trained.format, model.trained.model_bytes,
                model.trained.signature, other.ToJson().dump());
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mismatched.status().message()),
              HasSubstr("the model's transform: the transform gives"));

  absl::StatusOr<std::unique_ptr<Model>> broken =
      LoadModel(model.trained.format, model.trained.model_bytes,
                model.trained.signature, R"({"version": 1})");
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(std::string(broken.status().message()),
              HasSubstr("transform field 'features': missing"));
}

}  // namespace
}  // namespace slipway
