#include "train/baseline.h"

#include <cmath>
#include <memory>
#include <string>
#include <variant>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "train/trainer.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;

// 400 rows: a numeric feature x (every 10th missing), a categorical plan
// and an int64 label that depends on both.
Table Rows(int n, bool multiclass) {
  Column x("x", DataType::kFloat64);
  Column plan("plan", DataType::kString);
  Column label("label", DataType::kInt64);
  const char* plans[] = {"basic", "pro", "team"};
  for (int i = 0; i < n; ++i) {
    const double value = (i * 37 % 100) / 10.0;
    if (i % 10 == 0) {
      x.AppendMissing();
    } else {
      x.AppendFloat64(value);
    }
    plan.AppendString(plans[i % 3]);
    const int64_t y = multiclass ? (i % 3) : (value > 5 ? 1 : 0);
    label.AppendInt64(y);
  }
  Table table;
  EXPECT_TRUE(table.AddColumn(std::move(x)).ok());
  EXPECT_TRUE(table.AddColumn(std::move(plan)).ok());
  EXPECT_TRUE(table.AddColumn(std::move(label)).ok());
  return table;
}

std::unique_ptr<Model> Train(const Table& rows, const std::string& objective) {
  TrainOptions options;
  options.objective = objective;
  options.rounds = 10;
  options.threads = 1;
  absl::StatusOr<TrainedModel> trained = TrainXgboost(rows, "label", options);
  EXPECT_TRUE(trained.ok()) << trained.status();
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel(trained->format, trained->model_bytes, trained->signature);
  EXPECT_TRUE(model.ok()) << model.status();
  return std::move(*model);
}

TEST(BaselineProfileTest, ProfilesEveryFeatureAndTheProbability) {
  const Table rows = Rows(400, /*multiclass=*/false);
  std::unique_ptr<Model> model = Train(rows, "binary:logistic");
  absl::StatusOr<ProfileSet> baseline = BaselineProfile(*model, rows);
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  EXPECT_EQ(baseline->rows, 400);
  ASSERT_EQ(baseline->features.size(), 2u);

  const FeatureProfile* x = baseline->Find("x");
  ASSERT_NE(x, nullptr);
  const auto& numeric = std::get<NumericProfile>(x->profile);
  EXPECT_EQ(numeric.count, 360);
  EXPECT_EQ(numeric.missing, 40);
  EXPECT_DOUBLE_EQ(numeric.min, 0.1);
  EXPECT_DOUBLE_EQ(numeric.max, 9.9);
  EXPECT_FALSE(numeric.edges.empty());

  const FeatureProfile* plan = baseline->Find("plan");
  ASSERT_NE(plan, nullptr);
  const auto& categories = std::get<CategoricalProfile>(plan->profile);
  EXPECT_EQ(categories.count, 400);
  EXPECT_EQ(categories.counts.at("basic"), 134);
  EXPECT_EQ(categories.counts.at("pro"), 133);

  ASSERT_TRUE(baseline->prediction.has_value());
  EXPECT_EQ(baseline->prediction->name, "prediction");
  const auto& p = std::get<NumericProfile>(baseline->prediction->profile);
  EXPECT_EQ(p.count, 400);
  EXPECT_GE(p.min, 0.0);
  EXPECT_LE(p.max, 1.0);
  // A learnable label: the probabilities spread out.
  EXPECT_LT(p.min, 0.3);
  EXPECT_GT(p.max, 0.7);

  // It survives its JSON form, which is what the registry stores.
  absl::StatusOr<ProfileSet> back = ProfileSet::FromJson(baseline->ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), baseline->ToJson());
}

TEST(BaselineProfileTest, MulticlassPredictionsAreProfiledAsLabels) {
  const Table rows = Rows(300, /*multiclass=*/true);
  std::unique_ptr<Model> model = Train(rows, "multi:softprob");
  absl::StatusOr<ProfileSet> baseline = BaselineProfile(*model, rows);
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  ASSERT_TRUE(baseline->prediction.has_value());
  const auto& labels =
      std::get<CategoricalProfile>(baseline->prediction->profile);
  EXPECT_EQ(labels.count, 300);
  int64_t total = 0;
  for (const auto& [label, count] : labels.counts) {
    EXPECT_THAT(std::string("0 1 2"), HasSubstr(label));
    total += count;
  }
  EXPECT_EQ(total, 300);
}

TEST(BaselineProfileTest, AMissingFeatureColumnIsNamed) {
  const Table rows = Rows(100, /*multiclass=*/false);
  std::unique_ptr<Model> model = Train(rows, "binary:logistic");
  Table without_plan;
  ASSERT_TRUE(without_plan.AddColumn(*rows.FindColumn("x")).ok());
  absl::StatusOr<ProfileSet> baseline = BaselineProfile(*model, without_plan);
  EXPECT_EQ(baseline.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(baseline.status().message()),
              HasSubstr("no column 'plan'"));
}

}  // namespace
}  // namespace slipway
