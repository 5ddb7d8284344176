#include "monitor/window_profiler.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/signature.h"
#include "stats/drift.h"
#include "stats/profile.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// age (numeric), plan (categorical: basic, plus, pro, team, legacy), income
// (numeric); binary classification.
Signature ChurnSignature() {
  std::vector<FeatureSpec> features = {
      {"age", DataType::kFloat64, {}},
      {"plan", DataType::kString, {"basic", "plus", "pro", "team", "legacy"}},
      {"income", DataType::kFloat64, {}},
  };
  return Signature(Task::kBinaryClassification, std::move(features), "churned",
                   DataType::kInt64, {"0", "1"});
}

// The baseline keeps the top 2 plans (basic, plus) and remembers pro and
// team as "other"; legacy is in the signature but not in the baseline, so
// the window counts it as unseen, as CategoricalProfile::Add would.
ProfileSet ChurnBaseline() {
  std::mt19937 rng(7);
  std::normal_distribution<double> age(40, 10);
  std::lognormal_distribution<double> income(10, 0.5);
  std::uniform_real_distribution<double> p(0, 1);
  std::vector<double> ages, incomes, predictions;
  for (int i = 0; i < 400; ++i) {
    ages.push_back(age(rng));
    incomes.push_back(income(rng));
    predictions.push_back(p(rng));
  }
  std::vector<std::string_view> plans;
  for (int i = 0; i < 50; ++i) plans.push_back("basic");
  for (int i = 0; i < 40; ++i) plans.push_back("plus");
  for (int i = 0; i < 30; ++i) plans.push_back("pro");
  for (int i = 0; i < 10; ++i) plans.push_back("team");

  ProfileSet baseline;
  baseline.rows = 400;
  baseline.features.push_back({"age", NumericProfile::Baseline(ages, 3)});
  baseline.features.push_back(
      {"plan", CategoricalProfile::Baseline(plans, 5, /*top_k=*/2)});
  baseline.features.push_back({"income", NumericProfile::Baseline(incomes)});
  baseline.prediction =
      FeatureProfile{"prediction", NumericProfile::Baseline(predictions)};
  return baseline;
}

// Encoded request rows with what a window sees: missing and non-finite
// numbers, every kind of plan cell (top-k, other, in the signature but not
// the baseline, missing, unseen by the signature, a code out of range).
struct Requests {
  std::vector<float> rows;  // row-major: age, plan, income
  std::vector<uint8_t> unseen;
  std::vector<float> predictions;
  size_t num_rows = 0;
};

Requests MakeRequests(size_t num_rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> age(42, 11);
  std::lognormal_distribution<float> income(10.2f, 0.6f);
  std::uniform_real_distribution<float> p(0, 1);
  std::uniform_int_distribution<int> kind(0, 19);
  Requests r;
  r.num_rows = num_rows;
  for (size_t i = 0; i < num_rows; ++i) {
    const int k = kind(rng);
    r.rows.push_back(k == 0 ? kNaN : age(rng));
    float plan;
    uint8_t unseen = 0;
    if (k < 10) {
      plan = static_cast<float>(k % 5);  // codes 0..4
    } else if (k < 12) {
      plan = kNaN;  // missing
    } else if (k < 14) {
      plan = kNaN;  // a category the signature does not know
      unseen = 1;
    } else if (k == 14) {
      plan = 9;  // not a code of the signature
    } else {
      plan = static_cast<float>(k % 2);
    }
    r.rows.push_back(plan);
    r.rows.push_back(k == 1   ? std::numeric_limits<float>::infinity()
                     : k == 2 ? kNaN
                              : income(rng));
    r.unseen.insert(r.unseen.end(), {0, unseen, 0});
    r.predictions.push_back(k == 3 ? kNaN : p(rng));
  }
  return r;
}

// What Add gives on the same cells: the reference the profiler must equal.
void AddRequests(const Signature& signature, const Requests& r,
                 ProfileSet* window) {
  const std::vector<std::string>& plans = signature.features()[1].categories;
  auto& age = std::get<NumericProfile>(window->features[0].profile);
  auto& plan = std::get<CategoricalProfile>(window->features[1].profile);
  auto& income = std::get<NumericProfile>(window->features[2].profile);
  auto& prediction = std::get<NumericProfile>(window->prediction->profile);
  for (size_t i = 0; i < r.num_rows; ++i) {
    age.Add(r.rows[i * 3]);
    const float code = r.rows[i * 3 + 1];
    if (r.unseen[i * 3 + 1] != 0) {
      plan.Add("a plan nobody trained on");
    } else if (std::isnan(code)) {
      plan.AddMissing();
    } else if (code >= 0 && code < plans.size()) {
      plan.Add(plans[static_cast<size_t>(code)]);
    } else {
      plan.Add("code " + std::to_string(code));
    }
    income.Add(r.rows[i * 3 + 2]);
    prediction.Add(r.predictions[i]);
  }
  window->rows += static_cast<int64_t>(r.num_rows);
}

void ExpectSameCounts(const NumericProfile& actual,
                      const NumericProfile& expected, bool exact_sketch) {
  EXPECT_EQ(actual.count, expected.count);
  EXPECT_EQ(actual.missing, expected.missing);
  EXPECT_EQ(actual.min, expected.min);
  EXPECT_EQ(actual.max, expected.max);
  EXPECT_EQ(actual.edges, expected.edges);
  EXPECT_EQ(actual.bins, expected.bins);
  EXPECT_NEAR(actual.mean, expected.mean, 1e-9 * std::abs(expected.mean));
  EXPECT_NEAR(actual.m2, expected.m2, 1e-9 * expected.m2);
  EXPECT_EQ(actual.sketch.count(), expected.sketch.count());
  if (exact_sketch) {
    EXPECT_EQ(actual.sketch.Items(), expected.sketch.Items());
  }
}

void ExpectSameCounts(const CategoricalProfile& actual,
                      const CategoricalProfile& expected) {
  EXPECT_EQ(actual.count, expected.count);
  EXPECT_EQ(actual.missing, expected.missing);
  EXPECT_EQ(actual.counts, expected.counts);
  EXPECT_EQ(actual.other, expected.other);
  EXPECT_EQ(actual.unseen, expected.unseen);
  EXPECT_EQ(actual.other_categories, expected.other_categories);
}

void ExpectSameWindow(const ProfileSet& actual, const ProfileSet& expected,
                      bool exact_sketch) {
  EXPECT_EQ(actual.rows, expected.rows);
  ASSERT_EQ(actual.features.size(), expected.features.size());
  for (size_t f = 0; f < expected.features.size(); ++f) {
    SCOPED_TRACE(expected.features[f].name);
    EXPECT_EQ(actual.features[f].name, expected.features[f].name);
    if (expected.features[f].is_numeric()) {
      ExpectSameCounts(std::get<NumericProfile>(actual.features[f].profile),
                       std::get<NumericProfile>(expected.features[f].profile),
                       exact_sketch);
    } else {
      ExpectSameCounts(
          std::get<CategoricalProfile>(actual.features[f].profile),
          std::get<CategoricalProfile>(expected.features[f].profile));
    }
  }
  ASSERT_TRUE(actual.prediction.has_value());
  ExpectSameCounts(std::get<NumericProfile>(actual.prediction->profile),
                   std::get<NumericProfile>(expected.prediction->profile),
                   exact_sketch);
}

TEST(WindowProfilerTest, CollectEqualsAddOnTheSameValues) {
  const Signature signature = ChurnSignature();
  const ProfileSet baseline = ChurnBaseline();
  auto profiler = WindowProfiler::Create(baseline, signature);
  ASSERT_TRUE(profiler.ok()) << profiler.status();

  // 180 rows: at most k = 200 values per sketch, so the sketches are exact
  // and must hold the very same items.
  const Requests r = MakeRequests(180, 11);
  size_t row = 0;
  for (size_t batch : {1, 7, 50, 122}) {
    (*profiler)->Observe(r.rows.data() + row * 3, batch,
                         r.predictions.data() + row, 1,
                         r.unseen.data() + row * 3);
    row += batch;
  }
  ASSERT_EQ(row, r.num_rows);

  ProfileSet expected = baseline.EmptyLike();
  AddRequests(signature, r, &expected);
  const ProfileSet window = (*profiler)->Collect();
  ExpectSameWindow(window, expected, /*exact_sketch=*/true);

  // Every kind of cell occurred, so the comparison above covered it.
  const auto& plan = std::get<CategoricalProfile>(window.features[1].profile);
  EXPECT_GT(plan.counts.at("basic"), 0);
  EXPECT_GT(plan.counts.at("plus"), 0);
  EXPECT_GT(plan.other, 0);
  EXPECT_GT(plan.unseen, 0);
  EXPECT_GT(plan.missing, 0);
  EXPECT_GT(std::get<NumericProfile>(window.features[2].profile).missing, 0);

  // The window is what CompareProfiles takes.
  EXPECT_TRUE(CompareProfiles(baseline, window, DriftPolicy()).ok());
}

TEST(WindowProfilerTest, CollectStartsTheNextWindow) {
  const Signature signature = ChurnSignature();
  const ProfileSet baseline = ChurnBaseline();
  auto profiler = WindowProfiler::Create(baseline, signature);
  ASSERT_TRUE(profiler.ok()) << profiler.status();

  const Requests first = MakeRequests(40, 1);
  (*profiler)->Observe(first.rows.data(), first.num_rows,
                       first.predictions.data(), 1, first.unseen.data());
  EXPECT_EQ((*profiler)->Collect().rows, 40);

  const ProfileSet empty = (*profiler)->Collect();
  ExpectSameWindow(empty, baseline.EmptyLike(), /*exact_sketch=*/true);

  const Requests second = MakeRequests(60, 2);
  (*profiler)->Observe(second.rows.data(), second.num_rows,
                       second.predictions.data(), 1, second.unseen.data());
  ProfileSet expected = baseline.EmptyLike();
  AddRequests(signature, second, &expected);
  ExpectSameWindow((*profiler)->Collect(), expected, /*exact_sketch=*/true);
}

TEST(WindowProfilerTest, WithoutPredictionsOrMaskTheRowsStillCount) {
  const Signature signature = ChurnSignature();
  const ProfileSet baseline = ChurnBaseline();
  auto profiler = WindowProfiler::Create(baseline, signature);
  ASSERT_TRUE(profiler.ok()) << profiler.status();

  // plan: basic, missing, code 9.
  const std::vector<float> rows = {30, 0, 1000, 31, kNaN, 2000, 32, 9, 3000};
  (*profiler)->Observe(rows.data(), 3, nullptr, 1, nullptr);
  const ProfileSet window = (*profiler)->Collect();
  EXPECT_EQ(window.rows, 3);
  const auto& plan = std::get<CategoricalProfile>(window.features[1].profile);
  EXPECT_EQ(plan.counts.at("basic"), 1);
  EXPECT_EQ(plan.missing, 1);
  EXPECT_EQ(plan.unseen, 1);
  EXPECT_EQ(plan.count, 2);
  EXPECT_EQ(std::get<NumericProfile>(window.prediction->profile).count, 0);
}

TEST(WindowProfilerTest, BinsMatchAddOnTheEdgesAndAcrossFlushes) {
  const Signature signature(Task::kRegression, {{"x", DataType::kFloat64, {}}},
                            "y", DataType::kFloat64, {});
  // Edges 10, 20, ..., 90: exact in float, so cells can sit on them.
  std::vector<double> xs;
  for (int i = 0; i < 100; ++i) xs.push_back(i);
  ProfileSet baseline;
  baseline.features.push_back({"x", NumericProfile::Baseline(xs)});
  baseline.rows = 100;
  auto profiler = WindowProfiler::Create(baseline, signature);
  ASSERT_TRUE(profiler.ok()) << profiler.status();

  // -1, -0.5, 0, ..., 100 and the non-finite values, over several times
  // the values a shard holds back before adding them.
  std::vector<float> cells;
  for (int i = 0; i < 1000; ++i) cells.push_back((i % 203) * 0.5f - 1);
  cells.insert(cells.end(), {std::numeric_limits<float>::infinity(),
                             -std::numeric_limits<float>::infinity(), kNaN});
  (*profiler)->Observe(cells.data(), cells.size(), nullptr, 1, nullptr);

  NumericProfile expected =
      std::get<NumericProfile>(baseline.features[0].profile).EmptyLike();
  for (float cell : cells) expected.Add(cell);
  const ProfileSet window = (*profiler)->Collect();
  EXPECT_FALSE(window.prediction.has_value());
  ExpectSameCounts(std::get<NumericProfile>(window.features[0].profile),
                   expected, /*exact_sketch=*/false);
  EXPECT_EQ(expected.missing, 3);
}

TEST(WindowProfilerTest, MulticlassPredictionIsTheArgMaxLabel) {
  std::vector<FeatureSpec> features = {{"x", DataType::kFloat64, {}}};
  const Signature signature(Task::kMulticlassClassification,
                            std::move(features), "species", DataType::kString,
                            {"a", "b", "c"});
  ProfileSet baseline;
  const std::vector<double> xs = {1, 2, 3, 4, 5, 6, 7, 8};
  baseline.features.push_back({"x", NumericProfile::Baseline(xs)});
  // Top 1 label: a; b is remembered as other; c was never predicted.
  const std::vector<std::string_view> labels = {"a", "a", "a", "a",
                                                "a", "b", "b", "b"};
  baseline.prediction = FeatureProfile{
      "prediction", CategoricalProfile::Baseline(labels, 0, /*top_k=*/1)};
  baseline.rows = 8;
  auto profiler = WindowProfiler::Create(baseline, signature);
  ASSERT_TRUE(profiler.ok()) << profiler.status();

  const std::vector<float> rows = {1, 2, 3, 4, 5};
  const std::vector<float> predictions = {
      0.7f, 0.2f, 0.1f,  // a
      0.1f, 0.8f, 0.1f,  // b: other
      0.1f, 0.1f, 0.8f,  // c: unseen
      0.4f, 0.4f, 0.2f,  // a tie between a and b: a
      kNaN, kNaN, kNaN,  // no label
  };
  (*profiler)->Observe(rows.data(), 5, predictions.data(), 3, nullptr);
  const ProfileSet window = (*profiler)->Collect();

  CategoricalProfile expected =
      std::get<CategoricalProfile>(baseline.prediction->profile).EmptyLike();
  for (std::string_view label : {"a", "b", "c", "a"}) expected.Add(label);
  expected.AddMissing();
  ExpectSameCounts(std::get<CategoricalProfile>(window.prediction->profile),
                   expected);
  EXPECT_TRUE(CompareProfiles(baseline, window, DriftPolicy()).ok());
}

TEST(WindowProfilerTest, RefusesABaselineOfAnotherSignature) {
  const Signature signature = ChurnSignature();

  ProfileSet missing = ChurnBaseline();
  missing.features.erase(missing.features.begin() + 2);
  auto no_income = WindowProfiler::Create(missing, signature);
  EXPECT_EQ(no_income.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_income.status().message(), HasSubstr("feature 'income'"));

  ProfileSet extra = ChurnBaseline();
  extra.features.push_back(extra.features[0]);
  extra.features.back().name = "height";
  auto height = WindowProfiler::Create(extra, signature);
  EXPECT_EQ(height.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(height.status().message(), HasSubstr("feature 'height'"));

  ProfileSet kind = ChurnBaseline();
  const std::vector<std::string_view> ages = {"young", "old"};
  kind.features[0].profile = CategoricalProfile::Baseline(ages);
  auto age = WindowProfiler::Create(kind, signature);
  EXPECT_EQ(age.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(age.status().message(),
              HasSubstr("feature 'age' is numeric in the signature but "
                        "categorical in the baseline"));

  ProfileSet prediction = ChurnBaseline();
  prediction.prediction->profile = CategoricalProfile::Baseline(ages);
  auto p = WindowProfiler::Create(prediction, signature);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("prediction profile"));
}

// How many observed batches the collector waits for.
// Observers and the collector take turns at checkpoints: the collector
// closes window c once batch target(c) is done, and observers that reach
// target(collected + 1) wait for it, so every window gets rows however the
// threads are scheduled.
struct Turns {
  int batches_done = 0;
  int collected = 0;
  int collects = 0;
  int total_batches = 0;

  int Target(int c) const { return c * total_batches / (collects + 1); }
  static bool CollectorMayGo(Turns* t) {
    return t->batches_done >= t->Target(t->collected + 1);
  }
  static bool ObserverMayGo(Turns* t) {
    return t->collected >= t->collects ||
           t->batches_done < t->Target(t->collected + 1);
  }
};

TEST(WindowProfilerTest, ConcurrentObserveLosesNothing) {
  const Signature signature = ChurnSignature();
  const ProfileSet baseline = ChurnBaseline();
  auto created = WindowProfiler::Create(baseline, signature);
  ASSERT_TRUE(created.ok()) << created.status();
  WindowProfiler& profiler = **created;

  constexpr int kThreads = 4;
  constexpr size_t kRowsPerThread = 20'000;
  constexpr size_t kBatch = 10;
  constexpr int kBatchesPerThread = kRowsPerThread / kBatch;
  std::vector<Requests> requests;
  for (int t = 0; t < kThreads; ++t) {
    requests.push_back(MakeRequests(kRowsPerThread, 100 + t));
  }

  // A collector closes windows while the observers run: every row must land
  // in exactly one window.
  constexpr int kCollects = 20;
  absl::Mutex mu;
  Turns turns;
  turns.collects = kCollects;
  turns.total_batches = kThreads * kBatchesPerThread;
  std::vector<ProfileSet> windows;
  std::thread collector([&] {
    for (int c = 1; c <= kCollects; ++c) {
      mu.LockWhen(absl::Condition(&Turns::CollectorMayGo, &turns));
      mu.Unlock();
      windows.push_back(profiler.Collect());
      absl::MutexLock lock(&mu);
      ++turns.collected;
    }
  });
  std::vector<std::thread> observers;
  for (int t = 0; t < kThreads; ++t) {
    observers.emplace_back([&, t] {
      const Requests& r = requests[t];
      for (int b = 0; b < kBatchesPerThread; ++b) {
        const size_t row = b * kBatch;
        profiler.Observe(r.rows.data() + row * 3, kBatch,
                         r.predictions.data() + row, 1,
                         r.unseen.data() + row * 3);
        absl::MutexLock lock(&mu);
        ++turns.batches_done;
        mu.Await(absl::Condition(&Turns::ObserverMayGo, &turns));
      }
    });
  }
  for (std::thread& t : observers) t.join();
  collector.join();
  windows.push_back(profiler.Collect());

  ProfileSet total = baseline.EmptyLike();
  int nonempty = 0;
  for (const ProfileSet& window : windows) {
    nonempty += window.rows > 0;
    ASSERT_TRUE(total.Merge(window).ok());
  }
  EXPECT_GE(nonempty, kCollects);
  ProfileSet expected = baseline.EmptyLike();
  for (const Requests& r : requests) AddRequests(signature, r, &expected);
  ExpectSameWindow(total, expected, /*exact_sketch=*/false);
}

}  // namespace
}  // namespace slipway
