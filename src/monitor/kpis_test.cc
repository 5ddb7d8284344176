#include "monitor/kpis.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

Signature BinarySignature() {
  return Signature(Task::kBinaryClassification,
                   {{"x", DataType::kFloat64, {}}}, "churned",
                   DataType::kString, {"no", "yes"});
}

LabeledPrediction Row(std::vector<float> prediction, std::string label,
                      std::map<std::string, double> kpis = {}) {
  return {std::move(prediction), std::move(label), std::move(kpis)};
}

TEST(KpisTest, BinaryAgainstHandComputedValues) {
  // P(yes), label: TP, FP, FN, TN, TP, TN.
  const std::vector<LabeledPrediction> rows = {
      Row({0.9f}, "yes", {{"revenue", 10}}),
      Row({0.8f}, "no", {{"revenue", 20.5}, {"cost", 2}}),
      Row({0.3f}, "yes"),
      Row({0.2f}, "no", {{"revenue", 5}}),
      Row({0.6f}, "yes"),
      Row({0.4f}, "no"),
  };
  auto kpis = ComputeKpis(rows, BinarySignature());
  ASSERT_TRUE(kpis.ok()) << kpis.status();
  const json& k = *kpis;
  EXPECT_EQ(k["rows"], 6);
  EXPECT_NEAR(k["accuracy"].get<double>(), 4.0 / 6, 1e-12);
  EXPECT_NEAR(k["precision"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR(k["recall"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR(k["f1"].get<double>(), 4.0 / 6, 1e-12);
  // Positives score 0.9, 0.3, 0.6; negatives 0.8, 0.2, 0.4: 6 of 9 pairs
  // ordered right.
  EXPECT_NEAR(k["auc"].get<double>(), 6.0 / 9, 1e-12);
  // The probabilities as the model gave them, in float.
  const double logloss =
      -(std::log(double{0.9f}) + std::log(1 - double{0.8f}) +
        std::log(double{0.3f}) + std::log(1 - double{0.2f}) +
        std::log(double{0.6f}) + std::log(1 - double{0.4f})) /
      6;
  EXPECT_NEAR(k["logloss"].get<double>(), logloss, 1e-12);
  EXPECT_FALSE(k.contains("rmse"));
  EXPECT_FALSE(k.contains("mae"));
  EXPECT_NEAR(k["kpis"]["revenue"]["sum"].get<double>(), 35.5, 1e-12);
  EXPECT_NEAR(k["kpis"]["revenue"]["mean"].get<double>(), 35.5 / 3, 1e-12);
  EXPECT_EQ(k["kpis"]["cost"], json({{"sum", 2.0}, {"mean", 2.0}}));
}

TEST(KpisTest, MetricsTheRowsCannotDefineAreLeftOut) {
  // One class only, and no predicted positive.
  const std::vector<LabeledPrediction> rows = {Row({0.2f}, "yes"),
                                               Row({0.4f}, "yes")};
  auto kpis = ComputeKpis(rows, BinarySignature());
  ASSERT_TRUE(kpis.ok()) << kpis.status();
  EXPECT_EQ(kpis->value("accuracy", -1.0), 0.0);
  EXPECT_FALSE(kpis->contains("auc"));
  EXPECT_FALSE(kpis->contains("precision"));
  EXPECT_EQ(kpis->value("recall", -1.0), 0.0);
  EXPECT_EQ(kpis->value("f1", -1.0), 0.0);
  EXPECT_TRUE(kpis->contains("logloss"));

  auto none = ComputeKpis({}, BinarySignature());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, json({{"rows", 0}, {"kpis", json::object()}}));

  // A prediction that is not a number leaves every prediction metric out;
  // business values still count, non-finite ones skipped.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto broken = ComputeKpis(
      {Row({nan}, "yes", {{"revenue", 3}}),
       Row({0.9f}, "no",
           {{"revenue", std::numeric_limits<double>::infinity()}})},
      BinarySignature());
  ASSERT_TRUE(broken.ok()) << broken.status();
  EXPECT_EQ(*broken,
            json({{"rows", 2},
                  {"kpis", {{"revenue", {{"sum", 3.0}, {"mean", 3.0}}}}}}));
}

TEST(KpisTest, MulticlassAgainstHandComputedValues) {
  const Signature signature(Task::kMulticlassClassification,
                            {{"x", DataType::kFloat64, {}}}, "species",
                            DataType::kString, {"a", "b", "c"});
  const std::vector<LabeledPrediction> rows = {
      Row({0.7f, 0.2f, 0.1f}, "a"),  // a, right
      Row({0.1f, 0.8f, 0.1f}, "b"),  // b, right
      Row({0.2f, 0.5f, 0.3f}, "c"),  // b, wrong
      Row({0.6f, 0.3f, 0.1f}, "b"),  // a, wrong
      Row({0.1f, 0.1f, 0.8f}, "c"),  // c, right
  };
  auto kpis = ComputeKpis(rows, signature);
  ASSERT_TRUE(kpis.ok()) << kpis.status();
  const json& k = *kpis;
  EXPECT_NEAR(k["accuracy"].get<double>(), 3.0 / 5, 1e-12);
  // Per class (precision, recall, f1): a (1/2, 1, 2/3), b (1/2, 1/2, 1/2),
  // c (1, 1/2, 2/3).
  EXPECT_NEAR(k["precision"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR(k["recall"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR(k["f1"].get<double>(), 11.0 / 18, 1e-12);
  // One-vs-rest AUC: a 1, b 5/6, c 1.
  EXPECT_NEAR(k["auc"].get<double>(), 17.0 / 18, 1e-12);
  const double logloss =
      -(std::log(double{0.7f}) + std::log(double{0.8f}) +
        std::log(double{0.3f}) + std::log(double{0.3f}) +
        std::log(double{0.8f})) /
      5;
  EXPECT_NEAR(k["logloss"].get<double>(), logloss, 1e-12);
}

TEST(KpisTest, RegressionAgainstHandComputedValues) {
  const Signature signature(Task::kRegression, {{"x", DataType::kFloat64, {}}},
                            "price", DataType::kFloat64, {});
  const std::vector<LabeledPrediction> rows = {
      Row({2.5f}, "3"), Row({6.0f}, "5.5"), Row({0.0f}, "-1")};
  auto kpis = ComputeKpis(rows, signature);
  ASSERT_TRUE(kpis.ok()) << kpis.status();
  EXPECT_NEAR((*kpis)["rmse"].get<double>(), std::sqrt(0.5), 1e-12);
  EXPECT_NEAR((*kpis)["mae"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_FALSE(kpis->contains("accuracy"));
  EXPECT_FALSE(kpis->contains("auc"));

  auto text = ComputeKpis({Row({1.0f}, "2"), Row({1.0f}, "abc")}, signature);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(text.status().message(),
              HasSubstr("row 1: label 'abc' is not a number"));
}

TEST(KpisTest, RefusesRowsThatDoNotFitTheModel) {
  auto width = ComputeKpis({Row({0.1f, 0.9f}, "yes")}, BinarySignature());
  EXPECT_EQ(width.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(width.status().message(),
              HasSubstr("row 0 has 2 prediction values; the model answers 1"));

  auto label =
      ComputeKpis({Row({0.1f}, "no"), Row({0.9f}, "maybe")}, BinarySignature());
  EXPECT_EQ(label.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(label.status().message(),
              HasSubstr("row 1: label 'maybe' is not a class of the model; "
                        "send one of 'no', 'yes'"));
}

}  // namespace
}  // namespace slipway
