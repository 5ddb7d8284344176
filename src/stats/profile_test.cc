#include "stats/profile.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

// Counts heap allocations, to check that Add allocates nothing in the
// common case.
namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// Not inlined: GCC would otherwise pair the inlined free() with the
// `new` expressions in this file and warn of a mismatch.
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using json = nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<double> Normal(size_t n, double mean, double sd, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(mean, sd);
  std::vector<double> values(n);
  for (double& v : values) v = dist(rng);
  return values;
}

void ExpectRelativelyNear(double actual, double expected) {
  EXPECT_NEAR(actual, expected, 1e-9 * std::abs(expected)) << expected;
}

TEST(NumericProfileTest, BaselineEdgesAreEqualFrequencyQuantiles) {
  std::vector<double> values;
  for (int i = 999; i >= 0; --i) values.push_back(i);
  const NumericProfile p = NumericProfile::Baseline(values, /*missing=*/3);

  EXPECT_THAT(p.edges,
              ElementsAre(100, 200, 300, 400, 500, 600, 700, 800, 900));
  EXPECT_EQ(p.bins, std::vector<int64_t>(10, 100));
  EXPECT_EQ(p.count, 1000);
  EXPECT_EQ(p.missing, 3);
  EXPECT_EQ(p.min, 0);
  EXPECT_EQ(p.max, 999);
  EXPECT_DOUBLE_EQ(p.mean, 499.5);
  // Population standard deviation of 0..999: sqrt((n^2 - 1) / 12).
  EXPECT_DOUBLE_EQ(p.Stddev(), std::sqrt((1000.0 * 1000.0 - 1) / 12));
  EXPECT_EQ(p.sketch.count(), 1000);
  EXPECT_DOUBLE_EQ(p.MissingRate(), 3.0 / 1003);
}

TEST(NumericProfileTest, StddevIsThePopulationOne) {
  const std::vector<double> values = {1, 2, 3, 4};
  const NumericProfile p = NumericProfile::Baseline(values);
  EXPECT_DOUBLE_EQ(p.Variance(), 1.25);
  EXPECT_DOUBLE_EQ(p.Stddev(), std::sqrt(1.25));
  EXPECT_EQ(NumericProfile::Baseline(std::vector<double>{7}).Stddev(), 0);
}

TEST(NumericProfileTest, ConstantAndEmptyFeatures) {
  const std::vector<double> constant(500, 4.25);
  const NumericProfile c = NumericProfile::Baseline(constant);
  EXPECT_THAT(c.edges, ElementsAre(4.25));
  EXPECT_THAT(c.bins, ElementsAre(0, 500));
  EXPECT_EQ(c.Stddev(), 0);

  const NumericProfile none =
      NumericProfile::Baseline(std::vector<double>{}, /*missing=*/8);
  EXPECT_TRUE(none.edges.empty());
  EXPECT_THAT(none.bins, ElementsAre(0));
  EXPECT_EQ(none.count, 0);
  EXPECT_EQ(none.missing, 8);
  EXPECT_DOUBLE_EQ(none.MissingRate(), 1.0);

  // Mostly zeros: repeated edges collapse.
  std::vector<double> sparse(90, 0.0);
  for (int i = 1; i <= 10; ++i) sparse.push_back(i);
  const NumericProfile s = NumericProfile::Baseline(sparse, 0, 10);
  EXPECT_THAT(s.edges, ElementsAre(0.0, 1.0));
  EXPECT_THAT(s.bins, ElementsAre(0, 90, 10));
}

TEST(NumericProfileTest, NonFiniteValuesCountAsMissing) {
  const std::vector<double> values = {1, kNaN, 2, kInf, -kInf, 3};
  NumericProfile p = NumericProfile::Baseline(values, /*missing=*/1);
  EXPECT_EQ(p.count, 3);
  EXPECT_EQ(p.missing, 4);
  EXPECT_EQ(p.sketch.count(), 3);
  p.Add(kNaN);
  p.AddMissing();
  EXPECT_EQ(p.missing, 6);
  EXPECT_DOUBLE_EQ(p.mean, 2);
}

TEST(NumericProfileTest, EmptyLikeKeepsEdgesAndCountsNothing) {
  const NumericProfile base =
      NumericProfile::Baseline(Normal(5000, 0, 1, 1), 0, 5);
  const NumericProfile window = base.EmptyLike();
  EXPECT_EQ(window.edges, base.edges);
  EXPECT_EQ(window.bins, std::vector<int64_t>(base.edges.size() + 1, 0));
  EXPECT_EQ(window.count, 0);
  EXPECT_EQ(window.missing, 0);
  EXPECT_EQ(window.sketch.count(), 0);
  EXPECT_EQ(window.sketch.k(), base.sketch.k());
}

TEST(NumericProfileTest, MergeEqualsTheProfileOfTheUnion) {
  const NumericProfile base =
      NumericProfile::Baseline(Normal(10000, 5, 2, 1));
  const std::vector<double> a = Normal(1000, 5, 2, 2);
  const std::vector<double> b = Normal(3000, 1e6, 3, 3);  // far away
  const std::vector<double> c = Normal(7, -4, 0.5, 4);

  NumericProfile pa = base.EmptyLike();
  NumericProfile pb = base.EmptyLike();
  NumericProfile pc = base.EmptyLike();
  NumericProfile all = base.EmptyLike();
  for (double v : a) {
    pa.Add(v);
    all.Add(v);
  }
  for (double v : b) {
    pb.Add(v);
    all.Add(v);
  }
  for (double v : c) {
    pc.Add(v);
    all.Add(v);
  }
  pa.AddMissing();
  pc.AddMissing();
  all.AddMissing();
  all.AddMissing();

  // (a + b) + c and c + (b + a).
  NumericProfile left = pa;
  ASSERT_TRUE(left.Merge(pb).ok());
  ASSERT_TRUE(left.Merge(pc).ok());
  NumericProfile right = pb;
  ASSERT_TRUE(right.Merge(pa).ok());
  NumericProfile c_first = pc;
  ASSERT_TRUE(c_first.Merge(right).ok());

  for (const NumericProfile* merged : {&left, &c_first}) {
    EXPECT_EQ(merged->count, all.count);
    EXPECT_EQ(merged->missing, all.missing);
    EXPECT_EQ(merged->min, all.min);
    EXPECT_EQ(merged->max, all.max);
    EXPECT_EQ(merged->bins, all.bins);
    EXPECT_EQ(merged->sketch.count(), all.count);
    ExpectRelativelyNear(merged->mean, all.mean);
    ExpectRelativelyNear(merged->Stddev(), all.Stddev());
  }

  // Merging an empty window changes nothing; merging into one copies.
  NumericProfile empty = base.EmptyLike();
  NumericProfile same = pa;
  ASSERT_TRUE(same.Merge(empty).ok());
  EXPECT_EQ(same.ToJson(), pa.ToJson());
  ASSERT_TRUE(empty.Merge(pa).ok());
  EXPECT_EQ(empty.mean, pa.mean);
  EXPECT_EQ(empty.m2, pa.m2);
}

TEST(NumericProfileTest, MergeRefusesOtherEdgesAndChangesNothing) {
  NumericProfile a = NumericProfile::Baseline(std::vector<double>{1, 2, 3, 4});
  const NumericProfile b =
      NumericProfile::Baseline(std::vector<double>{10, 20, 30, 40});
  const json before = a.ToJson();
  const absl::Status status = a.Merge(b);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("bin edges differ"));
  EXPECT_THAT(status.message(), HasSubstr("EmptyLike"));
  EXPECT_EQ(a.ToJson(), before);
}

TEST(NumericProfileTest, JsonRoundTrip) {
  NumericProfile p = NumericProfile::Baseline(Normal(20000, 3, 1, 8), 12);
  const absl::StatusOr<NumericProfile> loaded =
      NumericProfile::FromJson(json::parse(p.ToJson().dump()));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->ToJson(), p.ToJson());
  EXPECT_EQ(loaded->mean, p.mean);
  EXPECT_EQ(loaded->m2, p.m2);
  EXPECT_EQ(loaded->edges, p.edges);

  // An empty window has no min/max and reads back as empty.
  const absl::StatusOr<NumericProfile> empty =
      NumericProfile::FromJson(p.EmptyLike().ToJson());
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->min, kInf);
  EXPECT_EQ(empty->max, -kInf);

  json bad = p.ToJson();
  bad["bins"][0] = bad["bins"][0].get<int64_t>() + 1;
  EXPECT_THAT(NumericProfile::FromJson(bad).status().message(),
              HasSubstr("'bins' add up to"));
  bad = p.ToJson();
  bad["edges"] = json::array({2, 1});
  EXPECT_THAT(NumericProfile::FromJson(bad).status().message(),
              HasSubstr("ascending"));
}

CategoricalProfile PlanBaseline(int top_k = 2) {
  std::vector<std::string_view> values;
  for (int i = 0; i < 50; ++i) values.push_back("basic");
  for (int i = 0; i < 30; ++i) values.push_back("pro");
  for (int i = 0; i < 10; ++i) values.push_back("team");
  for (int i = 0; i < 5; ++i) values.push_back("legacy");
  for (int i = 0; i < 5; ++i) values.push_back("edu");
  return CategoricalProfile::Baseline(values, /*missing=*/4, top_k);
}

TEST(CategoricalProfileTest, BaselineKeepsTopKAndRemembersTheRest) {
  const CategoricalProfile p = PlanBaseline(2);
  EXPECT_THAT(p.counts, ElementsAre(Pair("basic", 50), Pair("pro", 30)));
  EXPECT_EQ(p.other, 20);
  EXPECT_EQ(p.unseen, 0);
  EXPECT_EQ(p.count, 100);
  EXPECT_EQ(p.missing, 4);
  EXPECT_EQ(p.other_categories.size(), 3u);
  EXPECT_TRUE(p.other_categories.Contains("team"));
  EXPECT_TRUE(p.other_categories.Contains("edu"));
  EXPECT_FALSE(p.other_categories.Contains("basic"));
  EXPECT_FALSE(p.other_categories.Contains("enterprise"));

  // Ties in count are broken by name: "edu" before "legacy".
  const CategoricalProfile four = PlanBaseline(4);
  EXPECT_THAT(four.counts, ElementsAre(Pair("basic", 50), Pair("edu", 5),
                                       Pair("pro", 30), Pair("team", 10)));
  EXPECT_EQ(four.other, 5);

  // From counts, in any order, the same profile.
  const CategoricalProfile from_counts = CategoricalProfile::BaselineFromCounts(
      {{"edu", 5}, {"team", 10}, {"pro", 30}, {"legacy", 5}, {"basic", 50}},
      4, 2);
  EXPECT_EQ(from_counts.ToJson(), p.ToJson());
}

TEST(CategoricalProfileTest, WindowCountsTopOtherUnseenAndMissing) {
  const CategoricalProfile base = PlanBaseline(2);
  CategoricalProfile window = base.EmptyLike();
  EXPECT_THAT(window.counts, ElementsAre(Pair("basic", 0), Pair("pro", 0)));
  for (std::string_view v : {"basic", "basic", "pro", "team", "legacy",
                             "enterprise", "Basic", ""}) {
    window.Add(v);
  }
  window.AddMissing();
  EXPECT_THAT(window.counts, ElementsAre(Pair("basic", 2), Pair("pro", 1)));
  EXPECT_EQ(window.other, 2);
  EXPECT_EQ(window.unseen, 3);
  EXPECT_EQ(window.count, 8);
  EXPECT_EQ(window.missing, 1);
  EXPECT_DOUBLE_EQ(window.MissingRate(), 1.0 / 9);
}

TEST(CategoricalProfileTest, MergeAddsCountsAndRefusesOtherBaselines) {
  const CategoricalProfile base = PlanBaseline(2);
  CategoricalProfile a = base.EmptyLike();
  CategoricalProfile b = base.EmptyLike();
  a.Add("basic");
  a.Add("new");
  b.Add("pro");
  b.Add("team");
  b.AddMissing();
  ASSERT_TRUE(a.Merge(b).ok());
  EXPECT_THAT(a.counts, ElementsAre(Pair("basic", 1), Pair("pro", 1)));
  EXPECT_EQ(a.other, 1);
  EXPECT_EQ(a.unseen, 1);
  EXPECT_EQ(a.count, 4);
  EXPECT_EQ(a.missing, 1);

  const json before = a.ToJson();
  absl::Status status = a.Merge(PlanBaseline(3).EmptyLike());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'team'"));
  EXPECT_EQ(a.ToJson(), before);

  // Same top categories, different remembered ones.
  const CategoricalProfile other_rest = CategoricalProfile::BaselineFromCounts(
      {{"basic", 50}, {"pro", 30}, {"gold", 1}}, 0, 2);
  status = a.Merge(other_rest.EmptyLike());
  EXPECT_THAT(status.message(), HasSubstr("remembered baseline categories"));
  EXPECT_EQ(a.ToJson(), before);
}

TEST(CategoricalProfileTest, JsonRoundTripKeepsTheRememberedCategories) {
  CategoricalProfile window = PlanBaseline(1).EmptyLike();
  window.Add("pro");
  window.Add("nope");
  const absl::StatusOr<CategoricalProfile> loaded =
      CategoricalProfile::FromJson(json::parse(window.ToJson().dump()));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->ToJson(), window.ToJson());
  EXPECT_TRUE(loaded->other_categories == window.other_categories);
  CategoricalProfile continued = *loaded;
  continued.Add("legacy");
  EXPECT_EQ(continued.other, 2);
  // A loaded window still merges with one made in this process.
  EXPECT_TRUE(continued.Merge(window).ok());

  json bad = window.ToJson();
  bad["other_categories"] = "abc";
  EXPECT_THAT(CategoricalProfile::FromJson(bad).status().message(),
              HasSubstr("'other_categories'"));
  bad = window.ToJson();
  bad["unseen"] = 5;
  EXPECT_THAT(CategoricalProfile::FromJson(bad).status().message(),
              HasSubstr("add up to"));
}

ProfileSet ChurnBaseline() {
  ProfileSet set;
  set.rows = 2000;
  const std::vector<double> ages = Normal(2000, 40, 12, 21);
  set.features.push_back(
      {"age", NumericProfile::Baseline(ages, /*missing=*/0)});
  std::vector<std::string_view> plans;
  for (int i = 0; i < 2000; ++i) plans.push_back(i % 3 == 0 ? "pro" : "basic");
  set.features.push_back({"plan", CategoricalProfile::Baseline(plans)});
  set.prediction = FeatureProfile{
      "churn", NumericProfile::Baseline(Normal(2000, 0.3, 0.1, 22))};
  return set;
}

TEST(ProfileSetTest, JsonRoundTripIsVersioned) {
  const ProfileSet set = ChurnBaseline();
  const json saved = json::parse(set.ToJson().dump());
  EXPECT_EQ(saved["version"], 1);
  EXPECT_EQ(saved["rows"], 2000);
  EXPECT_EQ(saved["features"][0]["kind"], "numeric");
  EXPECT_EQ(saved["features"][1]["kind"], "categorical");
  EXPECT_EQ(saved["prediction"]["name"], "churn");

  const absl::StatusOr<ProfileSet> loaded = ProfileSet::FromJson(saved);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->ToJson(), set.ToJson());
  ASSERT_NE(loaded->Find("plan"), nullptr);
  EXPECT_FALSE(loaded->Find("plan")->is_numeric());
  EXPECT_EQ(loaded->Find("missing"), nullptr);

  ProfileSet no_prediction = set;
  no_prediction.prediction.reset();
  const absl::StatusOr<ProfileSet> without =
      ProfileSet::FromJson(no_prediction.ToJson());
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_FALSE(without->prediction.has_value());

  json bad = saved;
  bad["version"] = 2;
  EXPECT_THAT(ProfileSet::FromJson(bad).status().message(),
              HasSubstr("version 2 is not supported"));
  bad = saved;
  bad["features"][1]["name"] = "age";
  EXPECT_THAT(ProfileSet::FromJson(bad).status().message(),
              HasSubstr("feature 'age' appears twice"));
  bad = saved;
  bad["features"][0]["kind"] = "text";
  EXPECT_THAT(ProfileSet::FromJson(bad).status().message(),
              HasSubstr("feature 'age': 'kind'"));
  bad = saved;
  bad["features"][0].erase("sketch");
  EXPECT_THAT(ProfileSet::FromJson(bad).status().message(),
              HasSubstr("features[0]: feature 'age': missing field 'sketch'"));
}

TEST(ProfileSetTest, WindowsMergeByName) {
  const ProfileSet base = ChurnBaseline();
  ProfileSet a = base.EmptyLike();
  EXPECT_EQ(a.rows, 0);
  ASSERT_EQ(a.features.size(), 2u);
  ProfileSet b = base.EmptyLike();
  std::swap(b.features[0], b.features[1]);  // another order, same names

  std::get<NumericProfile>(a.Find("age")->profile).Add(30);
  std::get<CategoricalProfile>(a.Find("plan")->profile).Add("pro");
  std::get<NumericProfile>(a.prediction->profile).Add(0.5);
  a.rows = 1;
  std::get<NumericProfile>(b.Find("age")->profile).Add(50);
  std::get<CategoricalProfile>(b.Find("plan")->profile).Add("free");
  std::get<NumericProfile>(b.prediction->profile).Add(0.1);
  b.rows = 1;

  ASSERT_TRUE(a.Merge(b).ok());
  EXPECT_EQ(a.rows, 2);
  const auto& age = std::get<NumericProfile>(a.Find("age")->profile);
  EXPECT_EQ(age.count, 2);
  EXPECT_DOUBLE_EQ(age.mean, 40);
  const auto& plan = std::get<CategoricalProfile>(a.Find("plan")->profile);
  EXPECT_EQ(plan.counts.at("pro"), 1);
  EXPECT_EQ(plan.unseen, 1);
  EXPECT_EQ(std::get<NumericProfile>(a.prediction->profile).count, 2);
}

TEST(ProfileSetTest, MismatchedMergeNamesTheFeatureAndChangesNothing) {
  const ProfileSet base = ChurnBaseline();
  ProfileSet window = base.EmptyLike();
  std::get<NumericProfile>(window.features[0].profile).Add(33);
  const json before = window.ToJson();

  // Another baseline's "plan": same kind, other top categories.
  ProfileSet other = base.EmptyLike();
  std::vector<std::string_view> plans = {"gold"};
  other.features[1].profile = CategoricalProfile::Baseline(plans).EmptyLike();
  absl::Status status = window.Merge(other);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("feature 'plan'"));
  EXPECT_EQ(window.ToJson(), before);  // "age" was not merged either

  other = base.EmptyLike();
  other.features[0].profile = CategoricalProfile().EmptyLike();
  status = window.Merge(other);
  EXPECT_THAT(status.message(),
              HasSubstr("feature 'age' is numeric in one profile and "
                        "categorical in the other"));

  other = base.EmptyLike();
  other.features[1].name = "region";
  status = window.Merge(other);
  EXPECT_THAT(status.message(), HasSubstr("feature 'plan'"));

  other = base.EmptyLike();
  other.features.push_back({"tenure", NumericProfile()});
  status = window.Merge(other);
  EXPECT_THAT(status.message(), HasSubstr("feature 'tenure'"));

  other = base.EmptyLike();
  other.prediction.reset();
  status = window.Merge(other);
  EXPECT_THAT(status.message(), HasSubstr("prediction"));

  other = base.EmptyLike();
  other.prediction->profile =
      NumericProfile::Baseline(std::vector<double>{1, 2}).EmptyLike();
  status = window.Merge(other);
  EXPECT_THAT(status.message(), HasSubstr("prediction: feature 'churn'"));
  EXPECT_EQ(window.ToJson(), before);
}

// Serving's hot path: two million values profiled, and no allocation once
// the sketch's levels have grown.
TEST(ProfileAddTest, TwoMillionValuesWithoutAllocating) {
  const NumericProfile numeric_base =
      NumericProfile::Baseline(Normal(10000, 0, 1, 31));
  const CategoricalProfile categorical_base = PlanBaseline(2);
  NumericProfile numeric = numeric_base.EmptyLike();
  CategoricalProfile categorical = categorical_base.EmptyLike();
  const std::vector<double> values = Normal(1000000, 0, 1, 32);
  const std::string_view plans[] = {"basic", "pro", "team", "enterprise"};

  for (size_t i = 0; i < 100000; ++i) numeric.Add(values[i]);
  const int64_t before = g_allocations.load();
  for (size_t i = 100000; i < values.size(); ++i) numeric.Add(values[i]);
  const int64_t numeric_allocations = g_allocations.load() - before;
  for (size_t i = 0; i < 1000000; ++i) categorical.Add(plans[i % 4]);
  const int64_t categorical_allocations =
      g_allocations.load() - before - numeric_allocations;

  RecordProperty("numeric_allocations", std::to_string(numeric_allocations));
  // New sketch levels, a handful of times per doubling of the count.
  EXPECT_LT(numeric_allocations, 40);
  EXPECT_EQ(categorical_allocations, 0);
  EXPECT_EQ(numeric.count, 1000000);
  EXPECT_EQ(categorical.count, 1000000);
  EXPECT_EQ(categorical.unseen, 250000);
  EXPECT_EQ(categorical.other, 250000);
}

}  // namespace
}  // namespace slipway
