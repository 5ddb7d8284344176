#include "serving/fast_json.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

Signature MixedSignature() {
  return Signature(Task::kBinaryClassification,
                   {{"x", DataType::kFloat64, {}},
                    {"flag", DataType::kBool, {}},
                    {"color", DataType::kString, {"red", "blue"}}},
                   "y", DataType::kInt64, {"0", "1"});
}

std::string Dumped(double value) { return nlohmann::json(value).dump(); }

std::string Appended(double value) {
  std::string out;
  AppendJsonDouble(value, &out);
  return out;
}

TEST(AppendJsonDoubleTest, WritesWhatNlohmannWrites) {
  for (double value :
       {0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 1e-5, 1.25e-4, 0.001, 123456.0, 1e15,
        1e16, 1.5e16, 1e100, -3.25e-300, 4.9e-324,
        std::numeric_limits<double>::max(), 0.30000001192092896}) {
    EXPECT_EQ(Appended(value), Dumped(value)) << value;
  }
  // Every value serving writes is a float32 widened to double.
  std::mt19937 random(7);
  std::uniform_int_distribution<uint32_t> bits;
  int compared = 0;
  while (compared < 20000) {
    const uint32_t raw = bits(random);
    float value;
    std::memcpy(&value, &raw, sizeof(value));
    if (!std::isfinite(value)) continue;
    ASSERT_EQ(Appended(value), Dumped(value)) << value;
    ++compared;
  }
}

TEST(AppendJsonDoubleTest, NonFiniteIsNull) {
  EXPECT_EQ(Appended(std::numeric_limits<double>::quiet_NaN()), "null");
  EXPECT_EQ(Appended(std::numeric_limits<double>::infinity()), "null");
}

TEST(AppendJsonStringTest, Escapes) {
  std::string out;
  AppendJsonString("a\"b\\c\n", &out);
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\"");
}

TEST(FastAppendJsonStringTest, WritesWhatAppendJsonStringWrites) {
  for (std::string_view text :
       {std::string_view(""), std::string_view("req-0193c1a2b3c4d5e6f7a8"),
        std::string_view("large"), std::string_view("a b~!"),
        std::string_view("quote\""), std::string_view("back\\slash"),
        std::string_view("tab\t"), std::string_view("nul\0x", 5),
        std::string_view("del\x7f"), std::string_view("caf\xc3\xa9"),
        std::string_view("bad\xff utf-8")}) {
    std::string fast = "prefix";
    FastAppendJsonString(text, &fast);
    std::string full = "prefix";
    AppendJsonString(text, &full);
    EXPECT_EQ(fast, full) << text;
  }
}

TEST(FastEncodePredictJsonTest, EncodesRecordsInFeatureOrder) {
  const Signature signature = MixedSignature();
  std::vector<float> values;
  size_t rows = 0;
  EncodeStats stats;
  ASSERT_TRUE(FastEncodePredictJson(
      signature,
      R"({"records": [{"x": 1.5, "flag": true, "color": "blue"},
                      {"color": "green", "x": null, "flag": 0}]})",
      &values, &rows, &stats));
  ASSERT_EQ(rows, 2u);
  ASSERT_EQ(values.size(), 6u);
  EXPECT_EQ(values[0], 1.5f);
  EXPECT_EQ(values[1], 1.0f);
  EXPECT_EQ(values[2], 1.0f);  // blue's code
  EXPECT_TRUE(std::isnan(values[3]));
  EXPECT_EQ(values[4], 0.0f);
  EXPECT_TRUE(std::isnan(values[5]));  // unseen
  EXPECT_EQ(stats.missing_values, 1);
  EXPECT_EQ(stats.unseen_categories, 1);
}

TEST(FastEncodePredictJsonTest, EncodesColumns) {
  const Signature signature = MixedSignature();
  std::vector<float> values;
  size_t rows = 0;
  EncodeStats stats;
  ASSERT_TRUE(FastEncodePredictJson(
      signature,
      R"({"columns": ["color", "x", "flag"], "data": [["red", 2, false]]})",
      &values, &rows, &stats));
  ASSERT_EQ(rows, 1u);
  EXPECT_EQ(values, (std::vector<float>{2.0f, 0.0f, 0.0f}));
}

// Each of these is either an error or a rarity the full path words or
// encodes; the fast path must decline them all.
TEST(FastEncodePredictJsonTest, DeclinesWhatTheFullPathAnswers) {
  const Signature signature = MixedSignature();
  for (const char* body : {
           R"({"records": [{"x": 1, "flag": true, "color": "red"})",  // syntax
           R"([])",
           R"({"records": []})",
           R"({"records": {}})",
           R"({"records": [{"x": 1, "flag": true}]})",  // missing feature
           R"({"records": [{"x": 1, "flag": true, "color": "red", "z": 1}]})",
           R"({"records": [{"x": "1", "flag": true, "color": "red"}]})",
           R"({"records": [{"x": 1, "flag": 2, "color": "red"}]})",
           R"({"records": [{"x": 1, "flag": true, "color": 7}]})",
           R"({"records": [{"x": 1, "x": 2, "flag": true, "color": "red"}]})",
           R"({"records": [], "records": []})",
           R"({"records": [{"x": 1e999, "flag": true, "color": "red"}]})",
           R"({"columns": ["x", "flag"], "data": [[1, true]]})",
           R"({"columns": ["x", "flag", "color"], "data": [[1, true]]})",
           R"({"columns": ["x", "flag", "color"], "data": []})",
           R"({"data": [[1, true, "red"]]})",
           R"({"nothing": 1})",
       }) {
    std::vector<float> values;
    size_t rows = 0;
    EncodeStats stats;
    EXPECT_FALSE(FastEncodePredictJson(signature, body, &values, &rows, &stats))
        << body;
  }
}

TEST(FastEncodeInferJsonTest, EncodesTensors) {
  const Signature signature = MixedSignature();
  std::vector<float> values;
  size_t rows = 0;
  EncodeStats stats;
  std::optional<std::string> id;
  std::vector<std::string> outputs;
  ASSERT_TRUE(FastEncodeInferJson(signature,
                                  R"({"id": "r1", "inputs": [
            {"name": "flag", "datatype": "BOOL", "shape": [2], "data": [true, null]},
            {"name": "x", "datatype": "FP64", "shape": [2, 1], "data": [[3], [4.5]]},
            {"name": "color", "datatype": "BYTES", "shape": [2], "data": ["red", "red"]}],
          "outputs": [{"name": "label"}]})",
                                  &values, &rows, &stats, &id, &outputs));
  ASSERT_EQ(rows, 2u);
  EXPECT_EQ(values[0], 3.0f);
  EXPECT_EQ(values[1], 1.0f);
  EXPECT_EQ(values[2], 0.0f);
  EXPECT_EQ(values[3], 4.5f);
  EXPECT_TRUE(std::isnan(values[4]));
  EXPECT_EQ(values[5], 0.0f);
  EXPECT_EQ(id, std::optional<std::string>("r1"));
  EXPECT_EQ(outputs, std::vector<std::string>{"label"});
  EXPECT_EQ(stats.missing_values, 1);
}

TEST(FastEncodeInferJsonTest, DeclinesWhatTheFullPathAnswers) {
  const Signature signature = MixedSignature();
  const std::string flag =
      R"({"name": "flag", "datatype": "BOOL", "shape": [1], "data": [true]})";
  const std::string color =
      R"({"name": "color", "datatype": "BYTES", "shape": [1], "data": ["red"]})";
  for (
      const std::string& body : {
          R"({"inputs": [)" + flag + "," + color + "]}",  // x missing
          R"({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "data": ["1"]},)" +
              flag + "," + color + "]}",
          R"({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1]},)" +
              flag + "," + color + "]}",
          R"({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1]},)" +
              flag + "," + color + "]}",
          R"({"inputs": [{"name": "x", "datatype": "FP99", "shape": [1], "data": [1]},)" +
              flag + "," + color + "]}",
          R"({"id": 7, "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]},)" +
              flag + "," + color + "]}",
          R"({"outputs": [{"name": "nope"}], "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]},)" +
              flag + "," + color + "]}",
          std::string(R"({"inputs": 1})"),
      }) {
    std::vector<float> values;
    size_t rows = 0;
    EncodeStats stats;
    std::optional<std::string> id;
    std::vector<std::string> outputs;
    EXPECT_FALSE(FastEncodeInferJson(signature, body, &values, &rows, &stats,
                                     &id, &outputs))
        << body;
  }
}

}  // namespace
}  // namespace slipway
