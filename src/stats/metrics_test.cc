#include "stats/metrics.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;

using Doubles = std::vector<double>;
using Floats = std::vector<float>;

// Reference values computed with scikit-learn 1.2.1 (numpy 1.24.2) under
// /usr/bin/python3 on the inputs below, e.g.
//   roc_auc_score(kBinaryLabels, kBinaryScores)
//   roc_auc_score(kClassLabels, kClassProbabilities, multi_class="ovr",
//                 average="macro")
constexpr double kSklearnBinaryAuc = 0.8;
constexpr double kSklearnBinaryLogLoss = 0.5051269306286297;
constexpr double kSklearnMulticlassAuc = 0.9055555555555556;
constexpr double kSklearnMulticlassLogLoss = 0.702356657983862;
constexpr double kSklearnMulticlassAccuracy = 0.75;
constexpr double kSklearnR2 = 0.9594665271966527;
constexpr double kSklearnMae = 0.44000000000000006;
constexpr double kSklearnRmse = 0.49799598391954925;

const Doubles kBinaryLabels = {0, 0, 1, 1, 0, 1, 0, 1, 1, 0};
const Doubles kBinaryScores = {0.1, 0.4, 0.35, 0.8, 0.4,
                               0.9, 0.2, 0.4,  0.7, 0.65};
const Doubles kClassLabels = {0, 1, 2, 2, 1, 0, 1, 2};
const Doubles kClassProbabilities = {
    0.7, 0.2, 0.1,  //
    0.2, 0.5, 0.3,  //
    0.1, 0.3, 0.6,  //
    0.3, 0.4, 0.3,  //
    0.1, 0.8, 0.1,  //
    0.4, 0.4, 0.2,  //
    0.5, 0.3, 0.2,  //
    0.2, 0.2, 0.6,  //
};
const Doubles kRegressionLabels = {3.0, -0.5, 2.0, 7.0, 4.2};
const Doubles kRegressionPredictions = {2.5, 0.0, 2.1, 7.8, 3.9};

TEST(BinaryAucTest, MatchesSklearnWithTies) {
  EXPECT_DOUBLE_EQ(*BinaryAuc(kBinaryLabels, kBinaryScores), kSklearnBinaryAuc);
}

TEST(BinaryAucTest, TiedPairCountsHalf) {
  // Positives {0.5, 0.9} against negatives {0.1, 0.5}: three pairs won and
  // one tie, so (3 + 0.5) / 4.
  EXPECT_DOUBLE_EQ(*BinaryAuc(Doubles{0, 1, 0, 1}, Doubles{0.1, 0.5, 0.5, 0.9}),
                   0.875);
}

TEST(BinaryAucTest, PerfectInvertedAndConstantScores) {
  const Doubles labels = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(*BinaryAuc(labels, Doubles{0.1, 0.2, 0.3, 0.4}), 1.0);
  EXPECT_DOUBLE_EQ(*BinaryAuc(labels, Doubles{0.4, 0.3, 0.2, 0.1}), 0.0);
  EXPECT_DOUBLE_EQ(*BinaryAuc(labels, Doubles{0.5, 0.5, 0.5, 0.5}), 0.5);
}

TEST(BinaryAucTest, FloatScoresGiveTheSameAnswer) {
  const Floats scores(kBinaryScores.begin(), kBinaryScores.end());
  EXPECT_DOUBLE_EQ(*BinaryAuc(kBinaryLabels, scores), kSklearnBinaryAuc);
}

TEST(BinaryAucTest, RejectsInvalidInput) {
  absl::StatusOr<double> single = BinaryAuc(Doubles{1, 1}, Doubles{0.2, 0.3});
  EXPECT_EQ(single.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(single.status().message(),
            "every label is 1; AUC needs rows of both classes");

  absl::StatusOr<double> empty = BinaryAuc(Doubles{}, Doubles{});
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("no rows"));

  absl::StatusOr<double> mismatch = BinaryAuc(Doubles{0, 1}, Doubles{0.5});
  EXPECT_EQ(mismatch.status().message(),
            "labels has 2 values but predictions has 1; pass one prediction "
            "per label");

  absl::StatusOr<double> not_binary =
      BinaryAuc(Doubles{0, 2}, Doubles{0.5, 0.6});
  EXPECT_EQ(not_binary.status().message(),
            "label at row 1 is 2; binary labels must be 0 or 1");

  absl::StatusOr<double> nan = BinaryAuc(Doubles{0, 1}, Doubles{0.5, NAN});
  EXPECT_EQ(nan.status().message(), "prediction 1 is NaN");
}

TEST(MulticlassAucTest, MatchesSklearnMacroOneVsRest) {
  EXPECT_DOUBLE_EQ(*MulticlassAuc(kClassLabels, kClassProbabilities, 3),
                   kSklearnMulticlassAuc);
  const Floats probabilities(kClassProbabilities.begin(),
                             kClassProbabilities.end());
  EXPECT_NEAR(*MulticlassAuc(kClassLabels, probabilities, 3),
              kSklearnMulticlassAuc, 1e-12);
}

TEST(MulticlassAucTest, AveragesPerClassAuc) {
  // Class 0 and class 1 are each ranked perfectly by their own column:
  // AUC 1 for both.
  const Doubles labels = {0, 1, 0, 1};
  const Doubles probabilities = {0.9, 0.1, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7};
  EXPECT_DOUBLE_EQ(*MulticlassAuc(labels, probabilities, 2), 1.0);
}

TEST(MulticlassAucTest, RejectsAbsentClassAndBadShape) {
  absl::StatusOr<double> absent =
      MulticlassAuc(Doubles{0, 1, 0}, Doubles(9, 1.0 / 3), 3);
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(absent.status().message(),
            "class 2 never occurs; one-vs-rest AUC needs rows in and out of "
            "each of the 3 classes");

  absl::StatusOr<double> shape =
      MulticlassAuc(Doubles{0, 1}, Doubles{0.5, 0.5, 0.5}, 2);
  EXPECT_EQ(shape.status().message(),
            "probabilities has 3 values, expected 2 rows x 2 classes = 4 "
            "(row-major)");

  absl::StatusOr<double> label =
      MulticlassAuc(Doubles{0, 1.5}, Doubles(4, 0.5), 2);
  EXPECT_EQ(label.status().message(),
            "label at row 1 is 1.5; class labels must be integers 0..1");

  absl::StatusOr<double> one_class = MulticlassAuc(Doubles{0}, Doubles{1}, 1);
  EXPECT_THAT(std::string(one_class.status().message()),
              HasSubstr("at least 2 classes"));
}

TEST(LogLossTest, BinaryMatchesSklearn) {
  EXPECT_DOUBLE_EQ(*LogLoss(kBinaryLabels, kBinaryScores),
                   kSklearnBinaryLogLoss);
}

TEST(LogLossTest, BinaryByHand) {
  // -(log 0.8 + log(1 - 0.4)) / 2
  EXPECT_DOUBLE_EQ(*LogLoss(Doubles{1, 0}, Doubles{0.8, 0.4}),
                   -(std::log(0.8) + std::log(0.6)) / 2);
}

TEST(LogLossTest, ConfidentMistakeIsClippedNotInfinite) {
  const double loss = *LogLoss(Doubles{1}, Doubles{0.0});
  EXPECT_DOUBLE_EQ(loss, -std::log(1e-15));
  EXPECT_NEAR(*LogLoss(Doubles{0}, Floats{1.0f}), -std::log(1e-15), 1e-3);
}

TEST(LogLossTest, MulticlassMatchesSklearnAndHand) {
  EXPECT_DOUBLE_EQ(*LogLoss(kClassLabels, kClassProbabilities, 3),
                   kSklearnMulticlassLogLoss);
  EXPECT_DOUBLE_EQ(
      *LogLoss(Doubles{2, 0}, Doubles{0.1, 0.2, 0.7, 0.5, 0.25, 0.25}, 3),
      -(std::log(0.7) + std::log(0.5)) / 2);
}

TEST(LogLossTest, MulticlassRejectsLabelOutOfRange) {
  absl::StatusOr<double> loss = LogLoss(Doubles{3}, Doubles{0.2, 0.3, 0.5}, 3);
  EXPECT_EQ(loss.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(loss.status().message(),
            "label at row 0 is 3; class labels must be integers 0..2");
}

TEST(AccuracyTest, BinaryUsesStrictHalfThreshold) {
  // 0.5 is predicted negative (as XGBoost's "error" metric does).
  EXPECT_DOUBLE_EQ(*Accuracy(Doubles{1, 0, 0, 1}, Doubles{0.9, 0.5, 0.51, 0.2}),
                   0.5);
  EXPECT_DOUBLE_EQ(*Accuracy(Doubles{1, 0}, Floats{0.6f, 0.4f}), 1.0);
}

TEST(AccuracyTest, MulticlassArgmaxMatchesSklearn) {
  EXPECT_DOUBLE_EQ(*Accuracy(kClassLabels, kClassProbabilities, 3),
                   kSklearnMulticlassAccuracy);
}

TEST(AccuracyTest, MulticlassTieTakesLowestIndex) {
  EXPECT_DOUBLE_EQ(*Accuracy(Doubles{0}, Doubles{0.4, 0.4, 0.2}, 3), 1.0);
  EXPECT_DOUBLE_EQ(*Accuracy(Doubles{1}, Doubles{0.4, 0.4, 0.2}, 3), 0.0);
}

TEST(RegressionTest, MatchesSklearn) {
  EXPECT_DOUBLE_EQ(*Rmse(kRegressionLabels, kRegressionPredictions),
                   kSklearnRmse);
  EXPECT_DOUBLE_EQ(*Mae(kRegressionLabels, kRegressionPredictions),
                   kSklearnMae);
  EXPECT_DOUBLE_EQ(*R2(kRegressionLabels, kRegressionPredictions), kSklearnR2);
}

TEST(RegressionTest, ByHand) {
  const Doubles labels = {1, 2, 3};
  const Doubles predictions = {2, 2, 1};
  // Errors -1, 0, 2: RMSE sqrt(5/3), MAE 1, R2 1 - 5/2.
  EXPECT_DOUBLE_EQ(*Rmse(labels, predictions), std::sqrt(5.0 / 3));
  EXPECT_DOUBLE_EQ(*Mae(labels, predictions), 1.0);
  EXPECT_DOUBLE_EQ(*R2(labels, predictions), -1.5);
  EXPECT_DOUBLE_EQ(*Mae(labels, Floats{2, 2, 1}), 1.0);
}

TEST(RegressionTest, ConstantLabelsDoNotDivideByZero) {
  EXPECT_DOUBLE_EQ(*R2(Doubles{4, 4}, Doubles{4, 4}), 1.0);
  EXPECT_DOUBLE_EQ(*R2(Doubles{4, 4}, Doubles{4, 5}), 0.0);
}

TEST(RegressionTest, RejectsNonFiniteLabels) {
  absl::StatusOr<double> rmse = Rmse(Doubles{1, INFINITY}, Doubles{1, 1});
  EXPECT_EQ(rmse.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rmse.status().message(),
            "label at row 1 is inf; labels must be finite numbers");
}

}  // namespace
}  // namespace slipway
