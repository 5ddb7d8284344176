#include "stats/quantile_sketch.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

std::vector<double> Shuffled(std::vector<double> values, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::shuffle(values.begin(), values.end(), rng);
  return values;
}

std::vector<double> Uniform(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  std::vector<double> values(n);
  for (double& v : values) v = dist(rng);
  return values;
}

std::vector<double> Lognormal(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> dist(0.0, 1.0);
  std::vector<double> values(n);
  for (double& v : values) v = dist(rng);
  return values;
}

QuantileSketch SketchOf(const std::vector<double>& values,
                        int k = QuantileSketch::kDefaultK) {
  QuantileSketch sketch(k);
  for (double v : values) sketch.Add(v);
  return sketch;
}

// Max |sketch.Rank(x) - true rank of x| over 1000 probes at the data's
// quantiles (i + 0.5) / 1000.
double MaxRankError(const QuantileSketch& sketch, std::vector<double> data) {
  std::sort(data.begin(), data.end());
  const double n = static_cast<double>(data.size());
  double worst = 0;
  for (int i = 0; i < 1000; ++i) {
    const double x = data[static_cast<size_t>((i + 0.5) / 1000 * n)];
    const double truth =
        static_cast<double>(std::upper_bound(data.begin(), data.end(), x) -
                            data.begin()) /
        n;
    worst = std::max(worst, std::abs(sketch.Rank(x) - truth));
  }
  return worst;
}

TEST(QuantileSketchTest, ErrorBoundIsDataSketchesFit) {
  EXPECT_NEAR(QuantileSketch::RankError(200), 0.0133, 0.0001);
  EXPECT_LT(QuantileSketch::RankError(400), QuantileSketch::RankError(200));
}

TEST(QuantileSketchTest, EmptySketchAnswersNaN) {
  const QuantileSketch sketch;
  EXPECT_EQ(sketch.count(), 0);
  EXPECT_TRUE(sketch.empty());
  EXPECT_TRUE(std::isnan(sketch.min()));
  EXPECT_TRUE(std::isnan(sketch.max()));
  EXPECT_TRUE(std::isnan(sketch.Quantile(0.5)));
  EXPECT_TRUE(std::isnan(sketch.Rank(1.0)));
  EXPECT_TRUE(sketch.Items().empty());
}

TEST(QuantileSketchTest, ExactUpToKItems) {
  std::vector<double> sorted;
  for (int i = 0; i < 200; ++i) sorted.push_back(1.5 * i - 40);
  const QuantileSketch sketch = SketchOf(Shuffled(sorted, 7), 200);

  ASSERT_EQ(sketch.count(), 200);
  EXPECT_EQ(sketch.retained(), 200);
  EXPECT_EQ(sketch.min(), sorted.front());
  EXPECT_EQ(sketch.max(), sorted.back());
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(sketch.Rank(sorted[i]), (i + 1) / 200.0) << i;
    EXPECT_EQ(sketch.Quantile((i + 1) / 200.0), sorted[i]) << i;
  }
  EXPECT_EQ(sketch.Rank(sorted.front() - 1), 0.0);
  EXPECT_EQ(sketch.Quantile(0), sorted.front());
  EXPECT_EQ(sketch.Quantile(1), sorted.back());
  // 0.3 * 10 rounds above 3; the third of ten items is still the answer.
  const QuantileSketch ten = SketchOf({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  EXPECT_EQ(ten.Quantile(0.3), 3);
  EXPECT_EQ(ten.Quantile(0.31), 4);

  const auto items = sketch.Items();
  ASSERT_EQ(items.size(), 200u);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(items[i], std::make_pair(sorted[i], int64_t{1}));
  }
}

TEST(QuantileSketchTest, ItemsCombineEqualValuesAndWeighCount) {
  QuantileSketch small;
  for (double v : {3.0, 1.0, 3.0, 2.0, 3.0}) small.Add(v);
  EXPECT_EQ(small.Items(),
            (std::vector<std::pair<double, int64_t>>{{1, 1}, {2, 1}, {3, 3}}));

  const QuantileSketch large = SketchOf(Uniform(100000, 1));
  const auto items = large.Items();
  int64_t weight = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    weight += items[i].second;
    if (i > 0) {
      EXPECT_LT(items[i - 1].first, items[i].first);
    }
  }
  EXPECT_EQ(weight, 100000);
  EXPECT_LT(large.retained(), 100000);
}

TEST(QuantileSketchTest, IgnoresNonFiniteValues) {
  QuantileSketch sketch;
  sketch.Add(std::numeric_limits<double>::quiet_NaN());
  sketch.Add(std::numeric_limits<double>::infinity());
  sketch.Add(-std::numeric_limits<double>::infinity());
  sketch.Add(2.0);
  EXPECT_EQ(sketch.count(), 1);
  EXPECT_EQ(sketch.min(), 2.0);
  EXPECT_EQ(sketch.max(), 2.0);
}

TEST(QuantileSketchTest, RankErrorOnMillionUniformItems) {
  const std::vector<double> data = Uniform(1000000, 11);
  const QuantileSketch sketch = SketchOf(data);
  const double error = MaxRankError(sketch, data);
  RecordProperty("max_rank_error", std::to_string(error));
  EXPECT_LT(error, QuantileSketch::RankError(sketch.k()));
  // O(k log(n/k)) memory: 3k plus the minimum-width levels.
  EXPECT_LT(sketch.retained(), 700);
  EXPECT_EQ(sketch.min(), *std::min_element(data.begin(), data.end()));
  EXPECT_EQ(sketch.max(), *std::max_element(data.begin(), data.end()));
}

TEST(QuantileSketchTest, RankErrorOnMillionLognormalItems) {
  const std::vector<double> data = Lognormal(1000000, 12);
  const QuantileSketch sketch = SketchOf(data);
  const double error = MaxRankError(sketch, data);
  RecordProperty("max_rank_error", std::to_string(error));
  EXPECT_LT(error, QuantileSketch::RankError(sketch.k()));

  // Quantiles are within the same bound, measured as the true rank of the
  // answer.
  std::vector<double> sorted = data;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 1; i < 100; ++i) {
    const double q = i / 100.0;
    const double answer = sketch.Quantile(q);
    const double rank =
        static_cast<double>(std::upper_bound(sorted.begin(), sorted.end(),
                                             answer) -
                            sorted.begin()) /
        static_cast<double>(sorted.size());
    EXPECT_NEAR(rank, q, QuantileSketch::RankError(sketch.k())) << q;
  }
}

TEST(QuantileSketchTest, RankErrorOnSortedInput) {
  std::vector<double> data(1000000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<double>(i);
  const QuantileSketch sketch = SketchOf(data);
  EXPECT_LT(MaxRankError(sketch, data), QuantileSketch::RankError(sketch.k()));
}

TEST(QuantileSketchTest, SameInputsGiveTheSameSketch) {
  const std::vector<double> data = Lognormal(50000, 3);
  EXPECT_EQ(SketchOf(data).ToJson(), SketchOf(data).ToJson());
}

TEST(QuantileSketchTest, MergeOrderKeepsCountBoundsAndError) {
  const std::vector<double> data = Uniform(400000, 5);
  std::vector<QuantileSketch> parts;
  for (int p = 0; p < 4; ++p) {
    parts.push_back(SketchOf(std::vector<double>(
        data.begin() + p * 100000, data.begin() + (p + 1) * 100000)));
  }

  QuantileSketch pairs = parts[0];
  ASSERT_TRUE(pairs.Merge(parts[1]).ok());
  QuantileSketch other_pair = parts[2];
  ASSERT_TRUE(other_pair.Merge(parts[3]).ok());
  ASSERT_TRUE(pairs.Merge(other_pair).ok());

  QuantileSketch reversed = parts[3];
  for (int p = 2; p >= 0; --p) ASSERT_TRUE(reversed.Merge(parts[p]).ok());

  for (const QuantileSketch* merged : {&pairs, &reversed}) {
    EXPECT_EQ(merged->count(), 400000);
    EXPECT_EQ(merged->min(), *std::min_element(data.begin(), data.end()));
    EXPECT_EQ(merged->max(), *std::max_element(data.begin(), data.end()));
    EXPECT_LT(MaxRankError(*merged, data),
              QuantileSketch::RankError(merged->k()));
    EXPECT_LE(merged->retained(), 700);
  }

  // Two sketches merge to the same items whichever receives the other.
  QuantileSketch ab = parts[0];
  ASSERT_TRUE(ab.Merge(parts[1]).ok());
  QuantileSketch ba = parts[1];
  ASSERT_TRUE(ba.Merge(parts[0]).ok());
  EXPECT_EQ(ab.Items(), ba.Items());
}

TEST(QuantileSketchTest, MergeOfSmallSketchesIsExact) {
  QuantileSketch a = SketchOf({5, 1, 3});
  const QuantileSketch b = SketchOf({4, 2});
  ASSERT_TRUE(a.Merge(b).ok());
  EXPECT_EQ(a.count(), 5);
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(a.Rank(i), i / 5.0);

  ASSERT_TRUE(a.Merge(a).ok());
  EXPECT_EQ(a.count(), 10);
  EXPECT_EQ(a.Rank(2), 0.4);
}

TEST(QuantileSketchTest, MergeRefusesDifferentK) {
  QuantileSketch a = SketchOf({1, 2, 3}, 200);
  const QuantileSketch b = SketchOf({4}, 100);
  const absl::Status status = a.Merge(b);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("k=100"));
  EXPECT_THAT(status.message(), HasSubstr("k=200"));
  EXPECT_EQ(a.count(), 3);
}

TEST(QuantileSketchTest, JsonRoundTripKeepsTheWholeState) {
  const std::vector<double> data = Lognormal(30000, 9);
  QuantileSketch sketch = SketchOf(data, 64);
  const json saved = json::parse(sketch.ToJson().dump());
  EXPECT_EQ(saved["k"], 64);
  EXPECT_EQ(saved["count"], 30000);
  EXPECT_TRUE(saved["levels"].is_array());

  absl::StatusOr<QuantileSketch> loaded = QuantileSketch::FromJson(saved);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->ToJson(), sketch.ToJson());
  EXPECT_EQ(loaded->Items(), sketch.Items());
  EXPECT_EQ(loaded->min(), sketch.min());
  EXPECT_EQ(loaded->max(), sketch.max());

  // The loaded sketch continues exactly as the original would.
  for (double v : Uniform(5000, 10)) {
    sketch.Add(v);
    loaded->Add(v);
  }
  EXPECT_EQ(loaded->ToJson(), sketch.ToJson());

  const absl::StatusOr<QuantileSketch> empty =
      QuantileSketch::FromJson(QuantileSketch(50).ToJson());
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(empty->k(), 50);
}

TEST(QuantileSketchTest, FromJsonRefusesInconsistentSketches) {
  const json good = SketchOf({1, 2, 3}).ToJson();
  auto refused = [](const json& in) {
    const absl::StatusOr<QuantileSketch> s = QuantileSketch::FromJson(in);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.status().message());
  };

  EXPECT_THAT(refused(json::array()), HasSubstr("JSON object"));
  json bad = good;
  bad["k"] = 3;
  EXPECT_THAT(refused(bad), HasSubstr("'k'"));
  bad = good;
  bad["count"] = 4;
  EXPECT_THAT(refused(bad), HasSubstr("'count'"));
  bad = good;
  bad["levels"] = json::array({json::array({1, 2}), json::array({3, 2})});
  bad["count"] = 6;
  EXPECT_THAT(refused(bad), HasSubstr("sorted"));
  bad = good;
  bad["levels"][0][0] = 10;
  EXPECT_THAT(refused(bad), HasSubstr("outside"));
  bad = good;
  bad.erase("min");
  EXPECT_THAT(refused(bad), HasSubstr("'min'"));
}

}  // namespace
}  // namespace slipway
