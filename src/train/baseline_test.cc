#include "train/baseline.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "stats/drift.h"
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

// --- Profiles of CSV files ---------------------------------------------------

class ProfileCsvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "baseline_test.XXXXXX")
            .string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_;
};

// i-th value of a column that is a permutation of 0 .. n-1 (n coprime to
// 7919).
double Permuted(int i, int n) { return static_cast<double>(i * 7919LL % n); }

const NumericProfile& Numeric(const ProfileSet& set, std::string_view name) {
  const FeatureProfile* feature = set.Find(name);
  EXPECT_NE(feature, nullptr) << name;
  return std::get<NumericProfile>(feature->profile);
}

const CategoricalProfile& Categorical(const ProfileSet& set,
                                      std::string_view name) {
  const FeatureProfile* feature = set.Find(name);
  EXPECT_NE(feature, nullptr) << name;
  return std::get<CategoricalProfile>(feature->profile);
}

TEST_F(ProfileCsvTest, EqualsTheInMemoryBaselineWhileTheSketchIsExact) {
  // 150 rows (fewer than the sketch's k): an id, a float with missing
  // cells, an int, a bool and a string with missing cells.
  std::string csv = "id,x,n,flag,plan\n";
  std::vector<double> x, n, flag;
  std::vector<std::string> plans;
  int64_t x_missing = 0, plan_missing = 0;
  const char* names[] = {"basic", "pro", "team", "enterprise"};
  for (int i = 0; i < 150; ++i) {
    csv += std::to_string(i) + ",";
    if (i % 7 == 3) {
      ++x_missing;
    } else {
      x.push_back(Permuted(i, 151) / 4);
      csv += std::to_string(x.back());
    }
    n.push_back(i % 13);
    flag.push_back(i % 3 == 0);
    csv += ',';
    csv += std::to_string(i % 13);
    csv += i % 3 == 0 ? ",true," : ",false,";
    if (i % 11 == 5) {
      ++plan_missing;
    } else {
      plans.push_back(names[i * i % 4]);
      csv += plans.back();
    }
    csv += "\n";
  }
  CsvProfileOptions options;
  options.csv.chunk_rows = 16;
  options.skip = {"id"};
  absl::StatusOr<ProfileSet> set =
      ProfileCsv(LocalFilesystem(), Write("train.csv", csv), options);
  ASSERT_TRUE(set.ok()) << set.status();

  EXPECT_EQ(set->rows, 150);
  EXPECT_FALSE(set->prediction.has_value());
  ASSERT_EQ(set->features.size(), 4u);
  EXPECT_EQ(set->Find("id"), nullptr);
  EXPECT_EQ(Numeric(*set, "x").ToJson(),
            NumericProfile::Baseline(x, x_missing).ToJson());
  EXPECT_EQ(Numeric(*set, "n").ToJson(), NumericProfile::Baseline(n).ToJson());
  EXPECT_EQ(Numeric(*set, "flag").ToJson(),
            NumericProfile::Baseline(flag).ToJson());
  std::vector<std::string_view> views(plans.begin(), plans.end());
  EXPECT_EQ(Categorical(*set, "plan").ToJson(),
            CategoricalProfile::Baseline(views, plan_missing).ToJson());
}

TEST_F(ProfileCsvTest, EdgesAreApproximateDecilesAndCountsAreExact) {
  const int rows = 20011;  // prime: Permuted covers 0 .. rows-1
  std::string csv = "x\n";
  for (int i = 0; i < rows; ++i) {
    csv += std::to_string(static_cast<int>(Permuted(i, rows))) + "\n";
  }
  CsvProfileOptions options;
  options.csv.chunk_rows = 1000;
  absl::StatusOr<ProfileSet> set =
      ProfileCsv(LocalFilesystem(), Write("big.csv", csv), options);
  ASSERT_TRUE(set.ok()) << set.status();
  const NumericProfile& x = Numeric(*set, "x");
  EXPECT_EQ(x.count, rows);
  EXPECT_EQ(x.sketch.count(), rows);
  EXPECT_DOUBLE_EQ(x.min, 0);
  EXPECT_DOUBLE_EQ(x.max, rows - 1);
  EXPECT_NEAR(x.mean, (rows - 1) / 2.0, 1e-6);

  // The values are 0 .. rows-1, so an edge's value is its rank: each edge
  // sits within the sketch's rank error of its decile.
  ASSERT_EQ(x.edges.size(), 9u);
  const double tolerance = QuantileSketch::RankError(x.sketch.k()) * rows;
  for (int j = 1; j <= 9; ++j) {
    EXPECT_NEAR(x.edges[j - 1], j * rows / 10, tolerance) << "edge " << j;
  }
  // The bins count [edge j-1, edge j) exactly.
  ASSERT_EQ(x.bins.size(), 10u);
  for (size_t b = 0; b < x.bins.size(); ++b) {
    const double low = b == 0 ? 0 : x.edges[b - 1];
    const double high = b == 9 ? rows : x.edges[b];
    EXPECT_EQ(x.bins[b], static_cast<int64_t>(high - low)) << "bin " << b;
  }
  // The profile is a valid baseline: it survives its JSON form.
  absl::StatusOr<ProfileSet> back = ProfileSet::FromJson(set->ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), set->ToJson());
}

TEST_F(ProfileCsvTest, AConstantOrEmptyColumnHasOneBin) {
  absl::StatusOr<ProfileSet> set =
      ProfileCsv(LocalFilesystem(), Write("c.csv", "c,e\n5,\n5,\n5,NA\n"));
  ASSERT_TRUE(set.ok()) << set.status();
  const NumericProfile& c = Numeric(*set, "c");
  EXPECT_EQ(c.edges, std::vector<double>{5});
  EXPECT_EQ(c.bins, (std::vector<int64_t>{0, 3}));
  const NumericProfile& e = Numeric(*set, "e");
  EXPECT_TRUE(e.edges.empty());
  EXPECT_EQ(e.bins, std::vector<int64_t>{0});
  EXPECT_EQ(e.missing, 3);
}

TEST_F(ProfileCsvTest, UnknownColumnsToSkipAreNamed) {
  CsvProfileOptions options;
  options.skip = {"id", "idd", "ts"};
  absl::StatusOr<ProfileSet> set =
      ProfileCsv(LocalFilesystem(), Write("a.csv", "id,x\n1,2\n"), options);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(set.status().message()),
              HasSubstr("columns to skip 'idd', 'ts' are not in the file"));
  EXPECT_EQ(
      ProfileCsv(LocalFilesystem(), dir_ + "/nothing.csv").status().code(),
      absl::StatusCode::kNotFound);
}

TEST_F(ProfileCsvTest, AWindowIsCountedWithTheBaselinesBinsAndCategories) {
  std::string train = "id,x,plan\n";
  for (int i = 0; i < 1000; ++i) {
    train += std::to_string(i) + "," + std::to_string(i % 100) + "," +
             (i % 4 == 0 ? "pro" : "basic") + "\n";
  }
  CsvProfileOptions options;
  options.skip = {"id"};
  absl::StatusOr<ProfileSet> baseline =
      ProfileCsv(LocalFilesystem(), Write("train.csv", train), options);
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  // A stored baseline also profiles the prediction; a CSV window cannot.
  baseline->prediction = baseline->features[0];
  baseline->prediction->name = "prediction";

  // Columns in another order, one more column, x shifted up by 50 and a
  // plan training never saw.
  std::string today = "plan,extra,x\n";
  for (int i = 0; i < 400; ++i) {
    today += std::string(i % 2 == 0 ? "pro" : "gold") + ",1," +
             (i % 10 == 0 ? "" : std::to_string(50 + i % 100)) + "\n";
  }
  CsvOptions csv;
  csv.chunk_rows = 64;
  absl::StatusOr<ProfileSet> window = ProfileCsvAgainst(
      *baseline, LocalFilesystem(), Write("today.csv", today), csv);
  ASSERT_TRUE(window.ok()) << window.status();
  EXPECT_EQ(window->rows, 400);
  EXPECT_FALSE(window->prediction.has_value());

  const NumericProfile& x = Numeric(*window, "x");
  EXPECT_EQ(x.edges, Numeric(*baseline, "x").edges);
  EXPECT_EQ(x.count, 360);
  EXPECT_EQ(x.missing, 40);
  // Every value is counted in the baseline's bucket for it: the window
  // holds 51..149 but the multiples of 10, all above the first edge.
  int64_t top = 0;
  for (int i = 0; i < 400; ++i) {
    const int v = 50 + i % 100;
    if (i % 10 != 0 && v >= x.edges.back()) ++top;
  }
  EXPECT_EQ(x.bins[0], 0);
  EXPECT_EQ(x.bins.back(), top);
  int64_t binned = 0;
  for (int64_t bin : x.bins) binned += bin;
  EXPECT_EQ(binned, 360);
  const CategoricalProfile& plan = Categorical(*window, "plan");
  EXPECT_EQ(plan.counts.at("pro"), 200);
  EXPECT_EQ(plan.counts.at("basic"), 0);
  EXPECT_EQ(plan.unseen, 200);

  ProfileSet features_only = *baseline;
  features_only.prediction.reset();
  absl::StatusOr<std::vector<FeatureDrift>> drift =
      CompareProfiles(features_only, *window, DriftPolicy());
  ASSERT_TRUE(drift.ok()) << drift.status();
  ASSERT_EQ(drift->size(), 2u);
  EXPECT_TRUE((*drift)[0].drift);
  EXPECT_TRUE((*drift)[1].drift);
}

TEST_F(ProfileCsvTest, APairIsTheBaselineAndTheWindowAgainstIt) {
  std::string train = "id,x,plan\n";
  std::string today = "plan,x\n";
  for (int i = 0; i < 5000; ++i) {
    train += std::to_string(i) + "," + std::to_string(Permuted(i, 5003)) +
             (i % 3 == 0 ? ",pro\n" : ",basic\n");
    today += (i % 5 == 0 ? "gold," : "pro,") +
             std::to_string(Permuted(i, 5003) * 1.1) + "\n";
  }
  const std::string train_path = Write("train.csv", train);
  const std::string today_path = Write("today.csv", today);
  CsvProfileOptions options;
  options.skip = {"id"};
  options.csv.chunk_rows = 512;
  absl::StatusOr<CsvProfilePair> pair =
      ProfileCsvPair(LocalFilesystem(), train_path, today_path, options);
  ASSERT_TRUE(pair.ok()) << pair.status();
  absl::StatusOr<ProfileSet> baseline =
      ProfileCsv(LocalFilesystem(), train_path, options);
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  absl::StatusOr<ProfileSet> window =
      ProfileCsvAgainst(*baseline, LocalFilesystem(), today_path, options.csv);
  ASSERT_TRUE(window.ok()) << window.status();
  EXPECT_EQ(pair->baseline.ToJson(), baseline->ToJson());
  EXPECT_EQ(pair->window.ToJson(), window->ToJson());
  EXPECT_EQ(pair->window.rows, 5000);
  EXPECT_EQ(Categorical(pair->window, "plan").unseen, 1000);

  // A window that lacks a column fails before the baseline's second pass.
  absl::StatusOr<CsvProfilePair> lacking = ProfileCsvPair(
      LocalFilesystem(), train_path, Write("x.csv", "x\n1\n"), options);
  EXPECT_EQ(lacking.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(lacking.status().message()),
              HasSubstr("has no column 'plan'"));
}

TEST_F(ProfileCsvTest, AWindowNamesEveryColumnItLacks) {
  absl::StatusOr<ProfileSet> baseline = ProfileCsv(
      LocalFilesystem(), Write("train.csv", "a,b,c\n1,x,2\n3,y,4\n"));
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  const std::string today = Write("today.csv", "b\nx\n");
  absl::StatusOr<ProfileSet> window =
      ProfileCsvAgainst(*baseline, LocalFilesystem(), today);
  EXPECT_EQ(window.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(window.status().message()),
              HasSubstr(today + " has no columns 'a', 'c'"));

  const std::string text = Write("text.csv", "a,b,c\none,x,2\n");
  window = ProfileCsvAgainst(*baseline, LocalFilesystem(), text);
  EXPECT_EQ(window.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(window.status().message()),
              HasSubstr("column 'a' holds text"));
}

TEST(AddRowsTest, CategoricalFeaturesTakeNumbersAsTheirTexts) {
  const std::vector<std::string_view> sizes = {"7", "7", "8"};
  ProfileSet baseline;
  baseline.features.push_back({"size", CategoricalProfile::Baseline(sizes)});
  ProfileSet window = baseline.EmptyLike();

  Column size("size", DataType::kInt64);
  for (int64_t v : {7, 8, 9}) size.AppendInt64(v);
  size.AppendMissing();
  Table rows;
  ASSERT_TRUE(rows.AddColumn(std::move(size)).ok());
  ASSERT_TRUE(AddRows(rows, &window).ok());
  ASSERT_TRUE(AddRows(rows, &window).ok());
  const CategoricalProfile& got = Categorical(window, "size");
  EXPECT_EQ(window.rows, 8);
  EXPECT_EQ(got.counts.at("7"), 2);
  EXPECT_EQ(got.counts.at("8"), 2);
  EXPECT_EQ(got.unseen, 2);
  EXPECT_EQ(got.missing, 2);

  Table other;
  ASSERT_TRUE(other.AddColumn(Column("weight", DataType::kFloat64)).ok());
  absl::Status status = AddRows(other, &window);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("no column 'size'"));
  EXPECT_EQ(window.rows, 8);
}

}  // namespace
}  // namespace slipway
