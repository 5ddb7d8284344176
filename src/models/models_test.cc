#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/features.h"
#include "models/model.h"
#include "models/signature.h"
#include "models/xgboost_api.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Signature BinarySignature() {
  FeatureSpec age{"age", DataType::kFloat64, {}};
  FeatureSpec plan{"plan", DataType::kString, {"basic", "gold", "pro"}};
  FeatureSpec active{"active", DataType::kBool, {}};
  return Signature(Task::kBinaryClassification, {age, plan, active}, "churned",
                   DataType::kInt64, {"0", "1"});
}

// ---------------------------------------------------------------- signature

TEST(SignatureTest, AccessorsAndLookups) {
  const Signature s = BinarySignature();
  EXPECT_EQ(s.task(), Task::kBinaryClassification);
  EXPECT_TRUE(s.is_classification());
  EXPECT_EQ(s.output_width(), 1);
  EXPECT_EQ(s.FeatureIndex("plan"), 1);
  EXPECT_EQ(s.FeatureIndex("nope"), -1);
  EXPECT_EQ(s.CategoryCode(1, "gold"), 1);
  EXPECT_EQ(s.CategoryCode(1, "platinum"), -1);
  EXPECT_EQ(s.CategoryCode(0, "gold"), -1);  // numeric feature
  EXPECT_EQ(s.CategoryCode(7, "gold"), -1);  // out of range

  const Signature multi(Task::kMulticlassClassification,
                        {{"x", DataType::kFloat64, {}}}, "species",
                        DataType::kString, {"a", "b", "c"});
  EXPECT_EQ(multi.output_width(), 3);
}

TEST(SignatureTest, TaskNamesRoundTrip) {
  for (Task task : {Task::kBinaryClassification,
                    Task::kMulticlassClassification, Task::kRegression}) {
    auto parsed = ParseTask(TaskName(task));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, task);
  }
  EXPECT_THAT(std::string(ParseTask("clustering").status().message()),
              HasSubstr("unknown task 'clustering'"));
}

TEST(SignatureTest, JsonRoundTrip) {
  const Signature s = BinarySignature();
  const json j = s.ToJson();
  EXPECT_EQ(j["task"], "binary_classification");
  EXPECT_EQ(j["target"], "churned");
  EXPECT_EQ(j["label_type"], "int64");
  EXPECT_EQ(j["class_labels"], json({"0", "1"}));
  EXPECT_EQ(j["features"][1], json({{"name", "plan"},
                                    {"type", "string"},
                                    {"categories", {"basic", "gold", "pro"}}}));
  EXPECT_FALSE(j["features"][0].contains("categories"));

  auto back = Signature::FromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), j);
  EXPECT_EQ(back->CategoryCode(1, "pro"), 2);
  EXPECT_EQ(back->FeatureIndex("active"), 2);

  const Signature regression(Task::kRegression, {{"x", DataType::kInt64, {}}},
                             "price", DataType::kFloat64, {});
  auto regression_back = Signature::FromJson(regression.ToJson());
  ASSERT_TRUE(regression_back.ok()) << regression_back.status();
  EXPECT_EQ(regression_back->ToJson(), regression.ToJson());
}

// Each case: a mutation of a valid signature and the text the error must
// contain.
TEST(SignatureTest, FromJsonRejectsBadFieldsWithPreciseMessages) {
  const json good = BinarySignature().ToJson();
  struct Case {
    std::string name;
    json value;
    std::string expected;
  };
  std::vector<Case> cases;
  auto with = [&](auto mutate) {
    json j = good;
    mutate(j);
    return j;
  };
  cases.push_back({"not an object", json::array(), "expected a JSON object"});
  cases.push_back({"missing task", with([](json& j) { j.erase("task"); }),
                   "field 'task': missing"});
  cases.push_back({"task not a string", with([](json& j) { j["task"] = 3; }),
                   "field 'task': expected a string, got number"});
  cases.push_back({"unknown task", with([](json& j) { j["task"] = "ranking"; }),
                   "unknown task 'ranking'"});
  cases.push_back({"empty target", with([](json& j) { j["target"] = ""; }),
                   "field 'target': empty name"});
  cases.push_back({"bad label type",
                   with([](json& j) { j["label_type"] = "complex"; }),
                   "field 'label_type'"});
  cases.push_back({"three labels for binary", with([](json& j) {
                     j["class_labels"] = {"a", "b", "c"};
                   }),
                   "needs exactly 2 labels, got 3"});
  cases.push_back({"duplicate label", with([](json& j) {
                     j["class_labels"] = {"a", "a"};
                   }),
                   "field 'class_labels[1]': duplicate value 'a'"});
  cases.push_back({"label not a string", with([](json& j) {
                     j["class_labels"] = {"a", 1};
                   }),
                   "field 'class_labels[1]': expected a string"});
  cases.push_back({"regression with labels",
                   with([](json& j) { j["task"] = "regression"; }),
                   "a regression signature has no class labels"});
  cases.push_back({"no features", with([](json& j) { j.erase("features"); }),
                   "field 'features': missing"});
  cases.push_back({"empty features",
                   with([](json& j) { j["features"] = json::array(); }),
                   "field 'features': expected a non-empty array"});
  cases.push_back({"feature without name",
                   with([](json& j) { j["features"][2].erase("name"); }),
                   "field 'features[2].name': missing"});
  cases.push_back({"feature with bad type",
                   with([](json& j) { j["features"][0]["type"] = "tensor"; }),
                   "field 'features[0].type'"});
  cases.push_back({"categorical without categories",
                   with([](json& j) { j["features"][1].erase("categories"); }),
                   "field 'features[1].categories': missing"});
  cases.push_back({"categories on a numeric feature", with([](json& j) {
                     j["features"][0]["categories"] = {"a"};
                   }),
                   "only string features have categories; 'age' is float64"});
  cases.push_back({"duplicate category", with([](json& j) {
                     j["features"][1]["categories"] = {"x", "y", "x"};
                   }),
                   "field 'features[1].categories[2]': duplicate value 'x'"});
  cases.push_back({"duplicate feature",
                   with([](json& j) { j["features"][2]["name"] = "age"; }),
                   "field 'features[2].name': duplicate feature name 'age'"});
  cases.push_back({"feature is the target",
                   with([](json& j) { j["features"][0]["name"] = "churned"; }),
                   "feature 'churned' is also the target"});
  for (const Case& c : cases) {
    auto result = Signature::FromJson(c.value);
    ASSERT_FALSE(result.ok()) << c.name;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
        << c.name;
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(c.expected))
        << c.name;
  }
}

// ----------------------------------------------------------------- encoding

Table EncodingTable() {
  Column id("id", DataType::kString);
  Column age("age", DataType::kInt64);
  Column plan("plan", DataType::kString);
  Column active("active", DataType::kBool);
  // Row 0: all present. Row 1: unseen plan. Row 2: missing cells.
  id.AppendString("a");
  id.AppendString("b");
  id.AppendString("c");
  age.AppendInt64(41);
  age.AppendInt64(7);
  age.AppendMissing();
  plan.AppendString("pro");
  plan.AppendString("platinum");
  plan.AppendMissing();
  active.AppendBool(true);
  active.AppendBool(false);
  active.AppendMissing();
  Table table;
  // Columns in a different order than the signature, plus an extra one.
  EXPECT_TRUE(table.AddColumn(std::move(id)).ok());
  EXPECT_TRUE(table.AddColumn(std::move(active)).ok());
  EXPECT_TRUE(table.AddColumn(std::move(plan)).ok());
  EXPECT_TRUE(table.AddColumn(std::move(age)).ok());
  return table;
}

TEST(EncodeTest, EncodesByNameWithUnseenAndMissingAsNaN) {
  std::vector<float> out;
  EncodeStats stats;
  ASSERT_TRUE(
      EncodeTable(BinarySignature(), EncodingTable(), &out, &stats).ok());
  ASSERT_EQ(out.size(), 9u);
  EXPECT_EQ(out[0], 41.0f);
  EXPECT_EQ(out[1], 2.0f);  // "pro"
  EXPECT_EQ(out[2], 1.0f);  // true
  EXPECT_EQ(out[3], 7.0f);
  EXPECT_TRUE(std::isnan(out[4]));  // unseen "platinum"
  EXPECT_TRUE(IsUnseenCategory(out[4]));
  EXPECT_EQ(out[5], 0.0f);
  EXPECT_TRUE(std::isnan(out[6]));
  EXPECT_FALSE(IsUnseenCategory(out[6]));  // missing, not unseen
  EXPECT_TRUE(std::isnan(out[7]));
  EXPECT_TRUE(std::isnan(out[8]));
  EXPECT_EQ(stats.unseen_categories, 1);
  EXPECT_EQ(stats.missing_values, 3);

  // Stats accumulate over calls; null stats are allowed.
  ASSERT_TRUE(
      EncodeTable(BinarySignature(), EncodingTable(), &out, &stats).ok());
  EXPECT_EQ(stats.unseen_categories, 2);
  ASSERT_TRUE(
      EncodeTable(BinarySignature(), EncodingTable(), &out, nullptr).ok());
}

TEST(EncodeTest, NumbersForACategoricalFeatureMatchTheirText) {
  const Signature s(Task::kRegression,
                    {{"zip", DataType::kString, {"7", "2.5", "true", "90210"}}},
                    "y", DataType::kFloat64, {});
  Column ints("zip", DataType::kInt64);
  ints.AppendInt64(90210);
  ints.AppendInt64(7);
  ints.AppendInt64(8);
  Table int_table;
  ASSERT_TRUE(int_table.AddColumn(std::move(ints)).ok());
  std::vector<float> out;
  EncodeStats stats;
  ASSERT_TRUE(EncodeTable(s, int_table, &out, &stats).ok());
  EXPECT_EQ(out[0], 3.0f);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_EQ(stats.unseen_categories, 1);

  Column doubles("zip", DataType::kFloat64);
  doubles.AppendFloat64(7.0);
  doubles.AppendFloat64(2.5);
  Column bools("zip", DataType::kBool);
  bools.AppendBool(true);
  bools.AppendBool(true);
  Table double_table;
  ASSERT_TRUE(double_table.AddColumn(std::move(doubles)).ok());
  ASSERT_TRUE(EncodeTable(s, double_table, &out, nullptr).ok());
  EXPECT_THAT(out, ElementsAre(0.0f, 1.0f));
  Table bool_table;
  ASSERT_TRUE(bool_table.AddColumn(std::move(bools)).ok());
  ASSERT_TRUE(EncodeTable(s, bool_table, &out, nullptr).ok());
  EXPECT_THAT(out, ElementsAre(2.0f, 2.0f));

  EXPECT_EQ(Int64CategoryText(-12), "-12");
  EXPECT_EQ(Float64CategoryText(7.0), "7");
  EXPECT_EQ(Float64CategoryText(0.1), "0.1");
  EXPECT_EQ(BoolCategoryText(false), "false");
}

TEST(EncodeTest, MissingOrMistypedColumnsNameTheFeature) {
  Table table = EncodingTable();
  const Signature needs_income(
      Task::kRegression,
      {{"age", DataType::kInt64, {}}, {"income", DataType::kFloat64, {}}}, "y",
      DataType::kFloat64, {});
  std::vector<float> out = {1.0f};
  absl::Status status = EncodeTable(needs_income, table, &out, nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("feature 'income'"));
  EXPECT_THAT(out, ElementsAre(1.0f));  // untouched on error

  const Signature numeric_id(Task::kRegression,
                             {{"id", DataType::kFloat64, {}}}, "y",
                             DataType::kFloat64, {});
  status = EncodeTable(numeric_id, table, &out, nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("feature 'id' is numeric (float64) but its column "
                        "holds strings"));
}

TEST(EncodeTest, EncodeCategoryForOneValue) {
  const Signature s = BinarySignature();
  EncodeStats stats;
  EXPECT_EQ(EncodeCategory(s, 1, "basic", &stats), 0.0f);
  EXPECT_EQ(EncodeCategory(s, 1, "gold", &stats), 1.0f);
  EXPECT_TRUE(std::isnan(EncodeCategory(s, 1, "diamond", &stats)));
  EXPECT_TRUE(std::isnan(EncodeCategory(s, 1, "", nullptr)));
  EXPECT_EQ(stats.unseen_categories, 1);
}

TEST(EncodeTest, EmptyTableGivesNoValues) {
  Table table;
  for (const char* name : {"age", "plan", "active"}) {
    ASSERT_TRUE(table
                    .AddColumn(Column(name, std::string(name) == "plan"
                                                ? DataType::kString
                                                : DataType::kFloat64))
                    .ok());
  }
  std::vector<float> out = {1.0f, 2.0f};
  ASSERT_TRUE(EncodeTable(BinarySignature(), table, &out, nullptr).ok());
  EXPECT_TRUE(out.empty());
}

// ------------------------------------------------------------ load/predict

// A booster trained here through the C API, kept open so tests can compare
// Model::Predict with XGBoost's own DMatrix prediction on the same trees.
struct TrainedBooster {
  std::string json_bytes;
  XgbBooster booster;
  std::vector<float> rows;  // the training matrix, row-major
  size_t num_rows = 0;
};

// 300 rows of (x numeric, c categorical with 4 codes); some cells missing.
// The label depends on c through a non-ordinal set, so the trees need
// categorical splits.
TrainedBooster TrainSmallBooster(const std::string& objective, int num_class,
                                 bool with_names,
                                 const std::string& booster = "gbtree") {
  TrainedBooster out;
  out.num_rows = 300;
  std::vector<float> labels;
  for (size_t i = 0; i < out.num_rows; ++i) {
    const float x = static_cast<float>((i * 37) % 100) / 100.0f;
    const float c = static_cast<float>((i * 7) % 4);
    out.rows.push_back(i % 17 == 0 ? NAN : x);
    out.rows.push_back(i % 23 == 0 ? NAN : c);
    const bool odd_group = c == 1.0f || c == 2.0f;
    if (objective == "binary:logistic") {
      labels.push_back(odd_group ? 1.0f : 0.0f);
    } else if (objective == "multi:softprob") {
      labels.push_back(odd_group ? 2.0f : (x > 0.5f ? 1.0f : 0.0f));
    } else {
      labels.push_back((odd_group ? 5.0f : 0.0f) + 2.0f * x);
    }
  }
  const std::string array =
      DenseArrayInterface(out.rows.data(), out.num_rows, 2);
  DMatrixHandle dmatrix_handle = nullptr;
  EXPECT_EQ(XGDMatrixCreateFromDense(array.c_str(), "{\"missing\":NaN}",
                                     &dmatrix_handle),
            0)
      << XGBGetLastError();
  XgbDMatrix dmatrix(dmatrix_handle);
  const char* names[] = {"x", "c"};
  const char* types[] = {"q", "c"};
  // gblinear has no categorical support: it sees the codes as numbers.
  if (booster != "gblinear") {
    EXPECT_EQ(
        XGDMatrixSetStrFeatureInfo(dmatrix.get(), "feature_type", types, 2), 0);
  }
  EXPECT_EQ(XGDMatrixSetFloatInfo(dmatrix.get(), "label", labels.data(),
                                  labels.size()),
            0);
  BoosterHandle booster_handle = nullptr;
  void* cache[] = {dmatrix.get()};
  EXPECT_EQ(XGBoosterCreate(cache, 1, &booster_handle), 0);
  out.booster.reset(booster_handle);
  EXPECT_EQ(XGBoosterSetParam(booster_handle, "objective", objective.c_str()),
            0);
  EXPECT_EQ(XGBoosterSetParam(booster_handle, "tree_method", "hist"), 0);
  EXPECT_EQ(XGBoosterSetParam(booster_handle, "booster", booster.c_str()), 0);
  EXPECT_EQ(XGBoosterSetParam(booster_handle, "nthread", "1"), 0);
  if (num_class > 0) {
    EXPECT_EQ(XGBoosterSetParam(booster_handle, "num_class",
                                std::to_string(num_class).c_str()),
              0);
  }
  if (with_names) {
    EXPECT_EQ(
        XGBoosterSetStrFeatureInfo(booster_handle, "feature_name", names, 2),
        0);
  }
  for (int round = 0; round < 10; ++round) {
    EXPECT_EQ(XGBoosterUpdateOneIter(booster_handle, round, dmatrix.get()), 0)
        << XGBGetLastError();
  }
  bst_ulong length = 0;
  const char* bytes = nullptr;
  EXPECT_EQ(XGBoosterSaveModelToBuffer(booster_handle, "{\"format\":\"json\"}",
                                       &length, &bytes),
            0);
  out.json_bytes.assign(bytes, length);
  return out;
}

// XGBoost's own prediction through a DMatrix, as a reference.
std::vector<float> ReferencePredict(const TrainedBooster& trained) {
  const std::string array =
      DenseArrayInterface(trained.rows.data(), trained.num_rows, 2);
  DMatrixHandle handle = nullptr;
  EXPECT_EQ(
      XGDMatrixCreateFromDense(array.c_str(), "{\"missing\":NaN}", &handle), 0);
  XgbDMatrix dmatrix(handle);
  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  const float* result = nullptr;
  EXPECT_EQ(XGBoosterPredictFromDMatrix(
                trained.booster.get(), dmatrix.get(),
                "{\"type\":0,\"training\":false,\"iteration_begin\":0,"
                "\"iteration_end\":0,\"strict_shape\":false}",
                &shape, &dims, &result),
            0)
      << XGBGetLastError();
  size_t total = 1;
  for (bst_ulong d = 0; d < dims; ++d) total *= shape[d];
  return std::vector<float>(result, result + total);
}

Signature TwoFeatureSignature(Task task, std::vector<std::string> labels) {
  return Signature(task,
                   {{"x", DataType::kFloat64, {}},
                    {"c", DataType::kString, {"w", "x", "y", "z"}}},
                   "y", DataType::kString, std::move(labels));
}

TEST(XgboostModelTest, LoadsAndPredictsLikeXgboostForEachTask) {
  struct Case {
    std::string objective;
    int num_class;
    Task task;
    std::vector<std::string> labels;
  };
  const std::vector<Case> cases = {
      {"binary:logistic", 0, Task::kBinaryClassification, {"no", "yes"}},
      {"multi:softprob", 3, Task::kMulticlassClassification, {"a", "b", "c"}},
      {"reg:squarederror", 0, Task::kRegression, {}}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.objective);
    TrainedBooster trained =
        TrainSmallBooster(c.objective, c.num_class, /*with_names=*/true);
    auto model = LoadModel(kXgboostJsonFormat, trained.json_bytes,
                           TwoFeatureSignature(c.task, c.labels));
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ((*model)->format(), "xgboost-json");
    EXPECT_EQ((*model)->signature().task(), c.task);

    std::vector<float> predictions;
    ASSERT_TRUE(
        (*model)
            ->Predict(trained.rows.data(), trained.num_rows, &predictions)
            .ok());
    const size_t width = (*model)->signature().output_width();
    ASSERT_EQ(predictions.size(), trained.num_rows * width);
    const std::vector<float> reference = ReferencePredict(trained);
    ASSERT_EQ(reference.size(), predictions.size());
    for (size_t i = 0; i < predictions.size(); ++i) {
      ASSERT_EQ(predictions[i], reference[i]) << "value " << i;
    }
    if (c.task == Task::kMulticlassClassification) {
      for (size_t row = 0; row < trained.num_rows; ++row) {
        float sum = 0;
        for (size_t k = 0; k < width; ++k) sum += predictions[row * width + k];
        EXPECT_NEAR(sum, 1.0f, 1e-5);
      }
    }
  }
}

TEST(XgboostModelTest, CategoricalSplitsAreUsed) {
  TrainedBooster trained =
      TrainSmallBooster("binary:logistic", 0, /*with_names=*/true);
  auto model = LoadModel(
      kXgboostJsonFormat, trained.json_bytes,
      TwoFeatureSignature(Task::kBinaryClassification, {"no", "yes"}));
  ASSERT_TRUE(model.ok()) << model.status();
  // Codes 1 and 2 are the positive group, 0 and 3 negative: a split on the
  // code as a number could not separate them in one cut.
  const std::vector<float> rows = {0.3f, 0.0f, 0.3f, 1.0f,
                                   0.3f, 2.0f, 0.3f, 3.0f};
  std::vector<float> p;
  ASSERT_TRUE((*model)->Predict(rows.data(), 4, &p).ok());
  EXPECT_LT(p[0], 0.2f);
  EXPECT_GT(p[1], 0.8f);
  EXPECT_GT(p[2], 0.8f);
  EXPECT_LT(p[3], 0.2f);
}

TEST(XgboostModelTest, ConcurrentPredictGivesIdenticalResults) {
  TrainedBooster trained =
      TrainSmallBooster("multi:softprob", 3, /*with_names=*/true);
  auto loaded = LoadModel(
      kXgboostJsonFormat, trained.json_bytes,
      TwoFeatureSignature(Task::kMulticlassClassification, {"a", "b", "c"}));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Model& model = **loaded;
  std::vector<float> expected;
  ASSERT_TRUE(
      model.Predict(trained.rows.data(), trained.num_rows, &expected).ok());

  constexpr int kThreads = 4;
  constexpr int kIterations = 50;
  std::vector<std::vector<float>> last(kThreads);
  std::vector<int> mismatches(kThreads, 0);
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread predicts a different batch size first so the threads'
      // buffers differ, then the full matrix.
      for (int i = 0; i < kIterations; ++i) {
        std::vector<float> partial;
        const size_t rows = 1 + static_cast<size_t>((t * 31 + i) % 50);
        if (!model.Predict(trained.rows.data(), rows, &partial).ok()) {
          ++failures[t];
        }
        if (!std::equal(partial.begin(), partial.end(), expected.begin())) {
          ++mismatches[t];
        }
        if (!model.Predict(trained.rows.data(), trained.num_rows, &last[t])
                 .ok()) {
          ++failures[t];
        }
        if (last[t] != expected) ++mismatches[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[t], 0) << "thread " << t;
    EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  }
}

TEST(XgboostModelTest, DartModelPredictsLikeXgboost) {
  TrainedBooster trained = TrainSmallBooster(
      "binary:logistic", 0, /*with_names=*/true, /*booster=*/"dart");
  auto model = LoadModel(
      kXgboostJsonFormat, trained.json_bytes,
      TwoFeatureSignature(Task::kBinaryClassification, {"no", "yes"}));
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> predictions;
  ASSERT_TRUE((*model)
                  ->Predict(trained.rows.data(), trained.num_rows, &predictions)
                  .ok());
  EXPECT_EQ(predictions, ReferencePredict(trained));
}

TEST(XgboostModelTest, GblinearModelsAreRefused) {
  TrainedBooster trained = TrainSmallBooster(
      "reg:squarederror", 0, /*with_names=*/true, /*booster=*/"gblinear");
  auto model = LoadModel(kXgboostJsonFormat, trained.json_bytes,
                         TwoFeatureSignature(Task::kRegression, {}));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("booster 'gblinear' is not supported"));
}

TEST(XgboostModelTest, PredictEdgeCases) {
  TrainedBooster trained =
      TrainSmallBooster("reg:squarederror", 0, /*with_names=*/false);
  auto model = LoadModel(kXgboostJsonFormat, trained.json_bytes,
                         TwoFeatureSignature(Task::kRegression, {}));
  ASSERT_TRUE(model.ok()) << model.status();  // no names: count checked only
  std::vector<float> out = {1.0f};
  ASSERT_TRUE((*model)->Predict(nullptr, 0, &out).ok());
  EXPECT_TRUE(out.empty());
  const absl::Status status = (*model)->Predict(nullptr, 3, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  // All-missing rows still predict (the trees' default directions).
  const std::vector<float> missing(4, NAN);
  ASSERT_TRUE((*model)->Predict(missing.data(), 2, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], out[1]);
}

TEST(XgboostModelTest, LoadRejectsMismatchesWithPreciseMessages) {
  TrainedBooster binary =
      TrainSmallBooster("binary:logistic", 0, /*with_names=*/true);
  TrainedBooster multi =
      TrainSmallBooster("multi:softprob", 3, /*with_names=*/true);
  const Signature binary_signature =
      TwoFeatureSignature(Task::kBinaryClassification, {"no", "yes"});
  struct Case {
    std::string name;
    std::string format;
    std::string bytes;
    Signature signature;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"unknown format", "onnx", binary.json_bytes, binary_signature,
       "unknown model format 'onnx'"},
      {"binary bytes", "xgboost-json", "\x01\x02garbage", binary_signature,
       "the bytes are not JSON"},
      {"JSON that is not a model", "xgboost-json", "{\"a\": 1}",
       binary_signature, "XGBoost cannot load it"},
      {"truncated JSON", "xgboost-json",
       binary.json_bytes.substr(0, binary.json_bytes.size() / 2),
       binary_signature, "XGBoost cannot load it"},
      {"feature count", "xgboost-json", binary.json_bytes,
       Signature(Task::kBinaryClassification, {{"x", DataType::kFloat64, {}}},
                 "y", DataType::kString, {"no", "yes"}),
       "takes 2 features but the signature lists 1"},
      {"feature names", "xgboost-json", binary.json_bytes,
       Signature(
           Task::kBinaryClassification,
           {{"c", DataType::kString, {"w"}}, {"x", DataType::kFloat64, {}}},
           "y", DataType::kString, {"no", "yes"}),
       "feature 0 is 'x' but the signature's is 'c'"},
      {"binary model, multiclass signature", "xgboost-json", binary.json_bytes,
       TwoFeatureSignature(Task::kMulticlassClassification, {"a", "b", "c"}),
       "objective 'binary:logistic' does not give class probabilities"},
      {"multiclass model, binary signature", "xgboost-json", multi.json_bytes,
       binary_signature,
       "objective 'multi:softprob' does not give the class-1"},
      {"class count", "xgboost-json", multi.json_bytes,
       TwoFeatureSignature(Task::kMulticlassClassification,
                           {"a", "b", "c", "d"}),
       "has 3 classes but the signature lists 4 class labels"},
      {"classifier as regression", "xgboost-json", binary.json_bytes,
       TwoFeatureSignature(Task::kRegression, {}),
       "is a classification objective but the signature's task is "
       "regression"},
  };
  for (const Case& c : cases) {
    auto model = LoadModel(c.format, c.bytes, c.signature);
    ASSERT_FALSE(model.ok()) << c.name;
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument)
        << c.name << ": " << model.status();
    EXPECT_THAT(std::string(model.status().message()), HasSubstr(c.expected))
        << c.name;
    // XGBoost's stack trace is cut from the message.
    EXPECT_THAT(std::string(model.status().message()),
                ::testing::Not(HasSubstr("Stack trace")))
        << c.name;
  }
}

}  // namespace
}  // namespace slipway
