#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/model.h"
#include "train/evaluate.h"
#include "train/split.h"
#include "train/trainer.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Uniform in [0, 1) from the top 53 bits: the same on every platform.
double Unit(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

void Add(Table* table, Column column) {
  ASSERT_TRUE(table->AddColumn(std::move(column)).ok());
}

Table ClassTable(const std::vector<std::string>& labels) {
  Column label("label", DataType::kString);
  Column x("x", DataType::kFloat64);
  for (size_t i = 0; i < labels.size(); ++i) {
    label.AppendString(labels[i]);
    x.AppendFloat64(static_cast<double>(i));
  }
  Table table;
  Add(&table, std::move(x));
  Add(&table, std::move(label));
  return table;
}

// ------------------------------------------------------------------- split

TEST(SplitTest, DeterministicDisjointAndComplete) {
  Table table = ClassTable(std::vector<std::string>(1000, "a"));
  auto first = SplitIndices(table, "label", 0.2, 7, /*stratify=*/false);
  auto again = SplitIndices(table, "label", 0.2, 7, /*stratify=*/false);
  auto other = SplitIndices(table, "label", 0.2, 8, /*stratify=*/false);
  ASSERT_TRUE(first.ok() && again.ok() && other.ok());
  EXPECT_EQ(first->test_rows, again->test_rows);
  EXPECT_EQ(first->train_rows, again->train_rows);
  EXPECT_NE(first->test_rows, other->test_rows);
  EXPECT_EQ(first->test_rows.size(), 200u);
  EXPECT_EQ(first->train_rows.size(), 800u);
  EXPECT_TRUE(std::is_sorted(first->test_rows.begin(), first->test_rows.end()));
  EXPECT_TRUE(
      std::is_sorted(first->train_rows.begin(), first->train_rows.end()));
  std::set<size_t> all(first->test_rows.begin(), first->test_rows.end());
  all.insert(first->train_rows.begin(), first->train_rows.end());
  EXPECT_EQ(all.size(), 1000u);
}

// mt19937_64 is fully specified by the standard and the shuffle is ours, so
// this exact answer must hold on every platform and standard library.
TEST(SplitTest, KnownAnswerForASeed) {
  Table table = ClassTable(std::vector<std::string>(10, "a"));
  auto split = SplitIndices(table, "label", 0.3, 42, /*stratify=*/false);
  ASSERT_TRUE(split.ok());
  // Cross-checked against an independent Python MT19937-64.
  EXPECT_THAT(split->test_rows, ElementsAre(1, 7, 9));
  EXPECT_THAT(split->train_rows, ElementsAre(0, 2, 3, 4, 5, 6, 8));
}

TEST(SplitTest, StratifiedKeepsEachClassShare) {
  std::vector<std::string> labels;
  for (int i = 0; i < 120; ++i)
    labels.push_back(i % 6 == 0 ? "rare" : "common");
  Table table = ClassTable(labels);
  auto split = SplitIndices(table, "label", 0.25, 3, /*stratify=*/true);
  ASSERT_TRUE(split.ok()) << split.status();
  int rare_test = 0;
  for (size_t row : split->test_rows) rare_test += labels[row] == "rare";
  EXPECT_EQ(split->test_rows.size(), 30u);  // 25 of 100 common + 5 of 20 rare
  EXPECT_EQ(rare_test, 5);

  auto again = SplitIndices(table, "label", 0.25, 3, /*stratify=*/true);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(split->test_rows, again->test_rows);
}

TEST(SplitTest, SmallClassesLandInBothParts) {
  Table table = ClassTable({"a", "a", "a", "a", "a", "a", "a", "a", "b", "b"});
  auto split = SplitIndices(table, "label", 0.1, 1, /*stratify=*/true);
  ASSERT_TRUE(split.ok());
  // round(0.1 * 2) = 0 would leave "b" out of test: at least one goes there.
  int b_test = 0;
  for (size_t row : split->test_rows) b_test += row >= 8;
  EXPECT_EQ(b_test, 1);
  EXPECT_EQ(split->test_rows.size(), 2u);
}

TEST(SplitTest, StratifiesIntegerAndBoolTargetsWithMissing) {
  Column label("label", DataType::kInt64);
  for (int i = 0; i < 40; ++i) {
    if (i % 10 == 0) {
      label.AppendMissing();
    } else {
      label.AppendInt64(i % 2);
    }
  }
  Table table;
  Add(&table, std::move(label));
  auto split = SplitIndices(table, "label", 0.5, 11, /*stratify=*/true);
  ASSERT_TRUE(split.ok()) << split.status();
  int missing_test = 0;
  for (size_t row : split->test_rows) missing_test += row % 10 == 0;
  EXPECT_EQ(missing_test, 2);  // 4 missing rows form their own class
  EXPECT_EQ(split->test_rows.size(), 20u);
}

TEST(SplitTest, Errors) {
  Table table = ClassTable({"a", "b", "a"});
  EXPECT_THAT(
      std::string(
          SplitIndices(table, "label", 1.0, 0, false).status().message()),
      HasSubstr("test_fraction must be between 0 and 1"));
  EXPECT_FALSE(SplitIndices(table, "label", 0.0, 0, false).ok());
  EXPECT_FALSE(SplitIndices(table, "label", NAN, 0, false).ok());
  EXPECT_THAT(
      std::string(SplitIndices(table, "nope", 0.5, 0, true).status().message()),
      HasSubstr("cannot stratify on target 'nope'"));
  EXPECT_THAT(
      std::string(SplitIndices(table, "x", 0.5, 0, true).status().message()),
      HasSubstr("'x': it is float64"));
  Table one = ClassTable({"a"});
  EXPECT_THAT(
      std::string(SplitIndices(one, "label", 0.5, 0, false).status().message()),
      HasSubstr("the table has 1 rows"));
  // Without stratification the target is not needed.
  EXPECT_TRUE(SplitIndices(table, "nope", 0.5, 0, false).ok());
}

// ---------------------------------------------------------------- training

enum class Problem { kBinary, kMulticlass, kRegression };

// Rows with an id, a numeric x (float64, 5% missing), an int64 count, a
// categorical color (8% missing) and a target that depends on the color
// through a non-ordinal set plus x, with a little label noise.
Table SyntheticTable(Problem problem, size_t rows, uint64_t seed) {
  static const char* kColors[] = {"red", "green", "blue", "cyan", "amber"};
  std::mt19937_64 rng(seed);
  Column id("id", DataType::kInt64);
  Column x("x", DataType::kFloat64);
  Column count("count", DataType::kInt64);
  Column color("color", DataType::kString);
  Column target("target", problem == Problem::kRegression ? DataType::kFloat64
                          : problem == Problem::kBinary   ? DataType::kInt64
                                                          : DataType::kString);
  for (size_t i = 0; i < rows; ++i) {
    const double xv = Unit(rng);
    const int64_t cv = static_cast<int64_t>(rng() % 10);
    const int color_index = static_cast<int>(rng() % 5);
    const bool hot = color_index == 0 || color_index == 4;  // red, amber
    const bool noise = Unit(rng) < 0.03;
    id.AppendInt64(static_cast<int64_t>(i));
    if (Unit(rng) < 0.05) {
      x.AppendMissing();
    } else {
      x.AppendFloat64(xv);
    }
    count.AppendInt64(cv);
    if (Unit(rng) < 0.08) {
      color.AppendMissing();
    } else {
      color.AppendString(kColors[color_index]);
    }
    switch (problem) {
      case Problem::kBinary:
        target.AppendInt64((hot != noise) ? 1 : 0);
        break;
      case Problem::kMulticlass:
        target.AppendString(hot ? "gamma" : (xv > 0.5 ? "beta" : "alpha"));
        break;
      case Problem::kRegression:
        target.AppendFloat64((hot ? 10.0 : 0.0) + 4.0 * xv + 0.3 * cv +
                             (Unit(rng) - 0.5) * 0.5);
        break;
    }
  }
  Table table;
  Add(&table, std::move(id));
  Add(&table, std::move(x));
  Add(&table, std::move(count));
  Add(&table, std::move(color));
  Add(&table, std::move(target));
  return table;
}

struct Outcome {
  TrainedModel trained;
  nlohmann::json metrics;
};

Outcome TrainAndEvaluate(Problem problem, TrainOptions options) {
  Table table = SyntheticTable(problem, 1200, 5);
  auto split = SplitIndices(table, "target", 0.25, 9,
                            /*stratify=*/problem != Problem::kRegression);
  EXPECT_TRUE(split.ok()) << split.status();
  options.exclude = {"id"};
  auto trained = TrainXgboost(table.Take(split->train_rows), "target", options);
  EXPECT_TRUE(trained.ok()) << trained.status();
  auto model =
      LoadModel(trained->format, trained->model_bytes, trained->signature);
  EXPECT_TRUE(model.ok()) << model.status();
  auto metrics = Evaluate(**model, table.Take(split->test_rows));
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  return {*std::move(trained), *std::move(metrics)};
}

TrainOptions SmallOptions() {
  TrainOptions options;
  options.rounds = 30;
  options.max_depth = 4;
  return options;
}

TEST(TrainTest, BinaryWithCategoricalAndMissingValues) {
  Outcome out = TrainAndEvaluate(Problem::kBinary, SmallOptions());
  const Signature& s = out.trained.signature;
  EXPECT_EQ(s.task(), Task::kBinaryClassification);
  EXPECT_EQ(s.target(), "target");
  EXPECT_EQ(s.label_type(), DataType::kInt64);
  EXPECT_THAT(s.class_labels(), ElementsAre("0", "1"));
  ASSERT_EQ(s.features().size(), 3u);  // id excluded, target left out
  EXPECT_EQ(s.features()[0].name, "x");
  EXPECT_EQ(s.features()[1].type, DataType::kInt64);
  EXPECT_EQ(s.features()[2].name, "color");
  EXPECT_THAT(s.features()[2].categories,
              ElementsAre("amber", "blue", "cyan", "green", "red"));
  EXPECT_EQ(out.trained.format, "xgboost-json");
  // Stratified rounding per class: about a quarter of 1200 rows in test.
  EXPECT_EQ(out.trained.rows + out.metrics["rows"].get<int64_t>(), 1200);
  EXPECT_NEAR(out.trained.rows, 900, 2);
  EXPECT_EQ(out.trained.params["objective"], "binary:logistic");
  EXPECT_EQ(out.trained.params["rounds"], 30);
  EXPECT_EQ(out.trained.params["tree_method"], "hist");

  EXPECT_EQ(out.metrics["unseen_categories"], 0);
  EXPECT_GT(out.metrics["missing_values"].get<int>(), 0);
  EXPECT_GT(out.metrics["auc"].get<double>(), 0.9);
  EXPECT_GT(out.metrics["accuracy"].get<double>(), 0.85);
  EXPECT_LT(out.metrics["logloss"].get<double>(), 0.4);
}

TEST(TrainTest, StopsWhenCancelled) {
  std::atomic<bool> cancel{true};
  TrainOptions options = SmallOptions();
  options.cancel = &cancel;
  auto trained =
      TrainXgboost(SyntheticTable(Problem::kBinary, 200, 1), "target", options);
  EXPECT_EQ(trained.status().code(), absl::StatusCode::kCancelled);
  EXPECT_NE(trained.status().message().find("after 0 of 30 rounds"),
            std::string::npos)
      << trained.status();
}

TEST(TrainTest, MulticlassFromStringTarget) {
  Outcome out = TrainAndEvaluate(Problem::kMulticlass, SmallOptions());
  const Signature& s = out.trained.signature;
  EXPECT_EQ(s.task(), Task::kMulticlassClassification);
  EXPECT_EQ(s.label_type(), DataType::kString);
  EXPECT_THAT(s.class_labels(), ElementsAre("alpha", "beta", "gamma"));
  EXPECT_EQ(out.trained.params["objective"], "multi:softprob");
  EXPECT_EQ(out.trained.params["num_class"], 3);
  EXPECT_GT(out.metrics["accuracy"].get<double>(), 0.85);
  EXPECT_GT(out.metrics["auc"].get<double>(), 0.9);
  EXPECT_LT(out.metrics["logloss"].get<double>(), 0.5);
}

TEST(TrainTest, Regression) {
  Outcome out = TrainAndEvaluate(Problem::kRegression, SmallOptions());
  const Signature& s = out.trained.signature;
  EXPECT_EQ(s.task(), Task::kRegression);
  EXPECT_EQ(s.label_type(), DataType::kFloat64);
  EXPECT_TRUE(s.class_labels().empty());
  EXPECT_EQ(out.trained.params["objective"], "reg:squarederror");
  EXPECT_GT(out.metrics["r2"].get<double>(), 0.8);
  EXPECT_LT(out.metrics["rmse"].get<double>(), 2.5);
  EXPECT_LT(out.metrics["mae"].get<double>(),
            out.metrics["rmse"].get<double>() + 1e-12);
}

TEST(TrainTest, DeterministicForASeedAndThreadCount) {
  Table table = SyntheticTable(Problem::kBinary, 600, 21);
  TrainOptions options = SmallOptions();
  options.subsample = 0.7;
  options.colsample_bytree = 0.8;
  options.seed = 1234;
  options.threads = 1;
  auto one = TrainXgboost(table, "target", options);
  auto again = TrainXgboost(table, "target", options);
  options.threads = 2;
  auto two_threads = TrainXgboost(table, "target", options);
  options.seed = 99;
  auto other_seed = TrainXgboost(table, "target", options);
  ASSERT_TRUE(one.ok() && again.ok() && two_threads.ok() && other_seed.ok());
  EXPECT_EQ(one->model_bytes, again->model_bytes);
  EXPECT_EQ(one->model_bytes, two_threads->model_bytes);
  EXPECT_NE(one->model_bytes, other_seed->model_bytes);
  EXPECT_EQ(one->signature.ToJson(), other_seed->signature.ToJson());
}

TEST(TrainTest, InfersTaskFromTarget) {
  auto table_with = [](Column target) {
    Table table;
    Column x("x", DataType::kFloat64);
    for (size_t i = 0; i < target.size(); ++i) x.AppendFloat64(i % 7);
    Add(&table, std::move(x));
    Add(&table, std::move(target));
    return table;
  };
  TrainOptions options;
  options.rounds = 2;

  Column few("y", DataType::kInt64);
  for (int i = 0; i < 60; ++i)
    few.AppendInt64(std::vector<int>{10, 9, 100}[i % 3]);
  auto multi = TrainXgboost(table_with(std::move(few)), "y", options);
  ASSERT_TRUE(multi.ok()) << multi.status();
  EXPECT_EQ(multi->signature.task(), Task::kMulticlassClassification);
  EXPECT_THAT(multi->signature.class_labels(), ElementsAre("9", "10", "100"));

  Column many("y", DataType::kInt64);
  for (int i = 0; i < 60; ++i) many.AppendInt64(i);
  auto regression = TrainXgboost(table_with(std::move(many)), "y", options);
  ASSERT_TRUE(regression.ok()) << regression.status();
  EXPECT_EQ(regression->signature.task(), Task::kRegression);
  EXPECT_EQ(regression->signature.label_type(), DataType::kInt64);

  Column flags("y", DataType::kBool);
  for (int i = 0; i < 60; ++i) flags.AppendBool(i % 2 == 0);
  auto binary = TrainXgboost(table_with(std::move(flags)), "y", options);
  ASSERT_TRUE(binary.ok()) << binary.status();
  EXPECT_EQ(binary->signature.task(), Task::kBinaryClassification);
  EXPECT_EQ(binary->signature.label_type(), DataType::kBool);
  EXPECT_THAT(binary->signature.class_labels(), ElementsAre("false", "true"));

  // An explicit objective wins over inference.
  Column two("y", DataType::kInt64);
  for (int i = 0; i < 60; ++i) two.AppendInt64(i % 2);
  options.objective = "reg:squarederror";
  auto forced = TrainXgboost(table_with(std::move(two)), "y", options);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ(forced->signature.task(), Task::kRegression);
}

TEST(TrainTest, SelectedFeaturesKeepTheirOrder) {
  Table table = SyntheticTable(Problem::kBinary, 100, 2);
  TrainOptions options;
  options.rounds = 2;
  options.features = {"color", "x"};
  auto trained = TrainXgboost(table, "target", options);
  ASSERT_TRUE(trained.ok()) << trained.status();
  ASSERT_EQ(trained->signature.features().size(), 2u);
  EXPECT_EQ(trained->signature.features()[0].name, "color");
  EXPECT_EQ(trained->signature.features()[1].name, "x");
}

TEST(TrainTest, ErrorsNameTheProblem) {
  const Table table = SyntheticTable(Problem::kBinary, 100, 2);
  struct Case {
    std::string name;
    std::string target;
    TrainOptions options;
    std::string expected;
  };
  auto with = [](auto mutate) {
    TrainOptions options;
    options.rounds = 2;
    mutate(options);
    return options;
  };
  const std::vector<Case> cases = {
      {"bad objective", "target",
       with([](TrainOptions& o) { o.objective = "rank:pairwise"; }),
       "unsupported objective 'rank:pairwise'"},
      {"no target column", "churn", with([](TrainOptions&) {}),
       "training data has no target column 'churn'"},
      {"binary on many classes", "count",
       with([](TrainOptions& o) { o.objective = "binary:logistic"; }),
       "binary:logistic needs exactly 2 classes; target 'count' has 10"},
      {"regression on strings", "color",
       with([](TrainOptions& o) { o.objective = "reg:squarederror"; }),
       "reg:squarederror needs a numeric target; 'color' holds strings"},
      {"classification on float64", "x",
       with([](TrainOptions& o) { o.objective = "multi:softprob"; }),
       "target 'x' is float64"},
      {"rounds", "target", with([](TrainOptions& o) { o.rounds = 0; }),
       "train option 'rounds' must be at least 1, got 0"},
      {"eta", "target", with([](TrainOptions& o) { o.eta = NAN; }),
       "train option 'eta' must be > 0"},
      {"subsample", "target", with([](TrainOptions& o) { o.subsample = 1.5; }),
       "train option 'subsample' must be in (0, 1], got 1.5"},
      {"threads", "target", with([](TrainOptions& o) { o.threads = -1; }),
       "train option 'threads'"},
      {"unknown exclude", "target",
       with([](TrainOptions& o) { o.exclude = {"idd"}; }),
       "'exclude' names column 'idd'"},
      {"unknown feature", "target", with([](TrainOptions& o) {
         o.features = {"x", "z"};
       }),
       "'features' names column 'z'"},
      {"target as feature", "target",
       with([](TrainOptions& o) { o.features = {"target"}; }),
       "which is the target or excluded"},
      {"no features left", "target", with([](TrainOptions& o) {
         o.exclude = {"id", "x", "count", "color"};
       }),
       "no feature columns left"},
  };
  for (const Case& c : cases) {
    auto result = TrainXgboost(table, c.target, c.options);
    ASSERT_FALSE(result.ok()) << c.name;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
        << c.name;
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(c.expected))
        << c.name;
  }
}

TEST(TrainTest, MissingTargetValuesAreRejectedWithTheFirstRow) {
  Column x("x", DataType::kFloat64);
  Column y("y", DataType::kFloat64);
  for (int i = 0; i < 10; ++i) {
    x.AppendFloat64(i);
    if (i == 3 || i == 7) {
      y.AppendMissing();
    } else if (i == 8) {
      y.AppendFloat64(INFINITY);
    } else {
      y.AppendFloat64(i * 2.0);
    }
  }
  Table table;
  Add(&table, std::move(x));
  Add(&table, std::move(y));
  auto result = TrainXgboost(table, "y", TrainOptions{});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("target 'y' is missing or not finite in 3 rows (first "
                        "at row 3)"));
}

TEST(TrainTest, InfiniteFeatureValuesNameFeatureAndRow) {
  Column x("x", DataType::kFloat64);
  Column y("y", DataType::kInt64);
  for (int i = 0; i < 6; ++i) {
    x.AppendFloat64(i == 4 ? -INFINITY : i);
    y.AppendInt64(i % 2);
  }
  Table table;
  Add(&table, std::move(x));
  Add(&table, std::move(y));
  auto result = TrainXgboost(table, "y", TrainOptions{});
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("feature 'x' is infinite (or beyond float range) at "
                        "row 4"));
}

TEST(EvaluateTest, CountsUnseenCategoriesAndRejectsUnknownLabels) {
  Table train = SyntheticTable(Problem::kMulticlass, 300, 4);
  TrainOptions options;
  options.rounds = 5;
  options.exclude = {"id"};
  auto trained = TrainXgboost(train, "target", options);
  ASSERT_TRUE(trained.ok()) << trained.status();
  auto model =
      LoadModel(trained->format, trained->model_bytes, trained->signature);
  ASSERT_TRUE(model.ok()) << model.status();

  auto test_table = [](const std::vector<std::string>& colors,
                       const std::vector<std::string>& labels) {
    Column x("x", DataType::kFloat64);
    Column count("count", DataType::kInt64);
    Column color("color", DataType::kString);
    Column target("target", DataType::kString);
    for (size_t i = 0; i < colors.size(); ++i) {
      x.AppendFloat64(0.25);
      count.AppendInt64(1);
      color.AppendString(colors[i]);
      target.AppendString(labels[i]);
    }
    Table table;
    Add(&table, std::move(x));
    Add(&table, std::move(count));
    Add(&table, std::move(color));
    Add(&table, std::move(target));
    return table;
  };
  auto metrics = Evaluate(**model, test_table({"red", "violet", "mauve"},
                                              {"gamma", "alpha", "alpha"}));
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ((*metrics)["rows"], 3);
  EXPECT_EQ((*metrics)["unseen_categories"], 2);
  // No "beta" row: one-vs-rest AUC is undefined for it.
  EXPECT_TRUE((*metrics)["auc"].is_null());
  EXPECT_TRUE((*metrics)["accuracy"].is_number());

  auto unknown =
      Evaluate(**model, test_table({"red", "red"}, {"gamma", "delta"}));
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(std::string(unknown.status().message()),
              HasSubstr("test data row 1: target 'target' is 'delta', which "
                        "is not one of the model's classes (alpha, beta, "
                        "gamma)"));

  Table no_target = test_table({"red"}, {"gamma"});
  Table without;
  for (const Column& column : no_target.columns()) {
    if (column.name() != "target") Add(&without, column);
  }
  auto missing = Evaluate(**model, without);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("test data has no target column 'target'"));
}

}  // namespace
}  // namespace slipway
