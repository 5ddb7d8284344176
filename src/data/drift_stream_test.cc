#include "data/drift_stream.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "data/csv.h"
#include "gtest/gtest.h"

namespace slipway {
namespace {

std::string Csv(const DriftStreamOptions& options, size_t chunk_rows = 4096) {
  std::string out;
  const absl::Status status = WriteDriftCsv(
      options,
      [&](std::string_view text) {
        out.append(text);
        return absl::OkStatus();
      },
      chunk_rows);
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

Table Generate(const DriftStreamOptions& options) {
  absl::StatusOr<Table> table = GenerateDriftTable(options);
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *std::move(table) : Table();
}

std::vector<size_t> Range(size_t from, size_t to) {
  std::vector<size_t> rows(to - from);
  std::iota(rows.begin(), rows.end(), from);
  return rows;
}

const Column& Col(const Table& table, std::string_view name) {
  const Column* column = table.FindColumn(name);
  EXPECT_NE(column, nullptr) << name;
  return column != nullptr ? *column : table.column(0);
}

// Mean and standard deviation of the present cells of rows [from, to).
struct Moments {
  double mean = 0;
  double sd = 0;
};
Moments MomentsOf(const Column& column, size_t from, size_t to) {
  double sum = 0;
  double sum_sq = 0;
  size_t n = 0;
  for (size_t row = from; row < to; ++row) {
    if (column.IsMissing(row)) continue;
    const double x = column.NumberAt(row);
    sum += x;
    sum_sq += x * x;
    ++n;
  }
  const double mean = sum / static_cast<double>(n);
  return {mean, std::sqrt(sum_sq / static_cast<double>(n) - mean * mean)};
}

double Share(const Column& column, std::string_view value, size_t from,
             size_t to) {
  size_t hits = 0;
  for (size_t row = from; row < to; ++row) {
    if (column.StringAt(row) == value) ++hits;
  }
  return static_cast<double>(hits) / static_cast<double>(to - from);
}

TEST(DriftStreamTest, SameOptionsGiveByteIdenticalCsv) {
  DriftStreamOptions options;
  options.seed = 42;
  options.rows = 3000;
  options.covariate_shift_at = 1000;
  options.shifted_features = {"age", "plan", "f1"};
  options.concept_drift_at = 2000;
  options.missing_fraction = 0.05;
  options.extra_numeric = 3;
  const std::string first = Csv(options);
  EXPECT_EQ(first, Csv(options));
  // Chunking changes how the text is handed over, never the text.
  EXPECT_EQ(first, Csv(options, 7));
  EXPECT_EQ(std::count(first.begin(), first.end(), '\n'), 3001);
  EXPECT_EQ(first.substr(0, first.find('\n')),
            "customer_id,age,income,tenure,plan,region,support_calls,"
            "monthly_spend,f0,f1,f2,churned");

  options.seed = 43;
  EXPECT_NE(first, Csv(options));
}

TEST(DriftStreamTest, SliceEqualsTheSameRowsOfALongerStream) {
  DriftStreamOptions whole;
  whole.seed = 7;
  whole.rows = 300;
  whole.covariate_shift_at = 150;
  whole.concept_drift_at = 120;
  whole.extra_numeric = 2;
  whole.missing_fraction = 0.1;
  DriftStreamOptions slice = whole;
  slice.start = 100;
  slice.rows = 100;

  const Table all = Generate(whole);
  const Table part = Generate(slice);
  ASSERT_EQ(part.num_rows(), 100u);
  EXPECT_EQ(WriteCsv(part), WriteCsv(all.Take(Range(100, 200))));
  EXPECT_EQ(Col(part, "customer_id").Int64At(0), 100);
  EXPECT_EQ(Col(part, "customer_id").Int64At(99), 199);

  // The CSV too: the slice's records are lines 101..200 of the whole's
  // (line 0 is the header).
  const std::string all_csv = Csv(whole);
  const std::string part_csv = Csv(slice);
  auto line_start = [](const std::string& text, int line) {
    size_t at = 0;
    for (int i = 0; i < line; ++i) at = text.find('\n', at) + 1;
    return at;
  };
  const size_t header_end = line_start(part_csv, 1);
  EXPECT_EQ(
      part_csv.substr(header_end),
      all_csv.substr(line_start(all_csv, 101),
                     line_start(all_csv, 201) - line_start(all_csv, 101)));
}

TEST(DriftStreamTest, CovariateShiftMovesOnlyTheShiftedFeatures) {
  constexpr size_t kRows = 20000;
  constexpr size_t kShiftAt = kRows / 2;
  DriftStreamOptions options;
  options.seed = 11;
  options.rows = kRows;
  options.covariate_shift_at = kShiftAt;
  options.shifted_features = {"income", "age", "region", "f1"};
  options.extra_numeric = 2;
  const Table table = Generate(options);

  // Shifted numeric features move by at least a third of a standard
  // deviation (income x1.6 moves about 1.1 sd, age +12 about 0.7 sd, f1 +1
  // one sd); unshifted ones stay within 0.06 sd (about 4 standard errors
  // of a difference of two means of 10000 rows).
  for (const char* name : {"income", "age", "f1"}) {
    const Moments before = MomentsOf(Col(table, name), 0, kShiftAt);
    const Moments after = MomentsOf(Col(table, name), kShiftAt, kRows);
    EXPECT_GT((after.mean - before.mean) / before.sd, 0.33) << name;
  }
  for (const char* name : {"tenure", "support_calls", "monthly_spend", "f0"}) {
    const Moments before = MomentsOf(Col(table, name), 0, kShiftAt);
    const Moments after = MomentsOf(Col(table, name), kShiftAt, kRows);
    EXPECT_LT(std::abs(after.mean - before.mean) / before.sd, 0.06) << name;
  }
  // Region mass moves to central (0.2 -> 0.68); plan stays uniform.
  const Column& region = Col(table, "region");
  EXPECT_NEAR(Share(region, "central", 0, kShiftAt), 0.2, 0.02);
  EXPECT_NEAR(Share(region, "central", kShiftAt, kRows), 0.68, 0.02);
  const Column& plan = Col(table, "plan");
  for (const char* value : {"basic", "plus", "pro", "team"}) {
    EXPECT_NEAR(Share(plan, value, 0, kShiftAt),
                Share(plan, value, kShiftAt, kRows), 0.03)
        << value;
  }
}

TEST(DriftStreamTest, DefaultShiftMovesIncomeAndRegion) {
  DriftStreamOptions options;
  options.rows = 4000;
  options.covariate_shift_at = 2000;
  const Table table = Generate(options);
  EXPECT_GT(MomentsOf(Col(table, "income"), 2000, 4000).mean,
            1.4 * MomentsOf(Col(table, "income"), 0, 2000).mean);
  EXPECT_GT(Share(Col(table, "region"), "central", 2000, 4000), 0.5);
  EXPECT_NEAR(MomentsOf(Col(table, "age"), 2000, 4000).mean,
              MomentsOf(Col(table, "age"), 0, 2000).mean, 2.0);
}

// Logistic regression fitted by Newton's method on the features as a model
// would see them: numbers (log income), one-hot plan and region.
class LogisticRule {
 public:
  static std::vector<double> Features(const Table& table, size_t row) {
    std::vector<double> x = {1.0,
                             Col(table, "age").NumberAt(row),
                             std::log(Col(table, "income").NumberAt(row)),
                             Col(table, "tenure").NumberAt(row),
                             Col(table, "support_calls").NumberAt(row),
                             Col(table, "monthly_spend").NumberAt(row)};
    for (const char* plan : {"plus", "pro", "team"}) {
      x.push_back(Col(table, "plan").StringAt(row) == plan ? 1.0 : 0.0);
    }
    for (const char* region : {"south", "east", "west", "central"}) {
      x.push_back(Col(table, "region").StringAt(row) == region ? 1.0 : 0.0);
    }
    return x;
  }

  void Fit(const Table& table, size_t from, size_t to) {
    const size_t k = Features(table, from).size();
    weights_.assign(k, 0.0);
    const Column& label = Col(table, "churned");
    for (int iteration = 0; iteration < 12; ++iteration) {
      std::vector<double> gradient(k, 0.0);
      std::vector<std::vector<double>> hessian(k, std::vector<double>(k, 0.0));
      for (size_t row = from; row < to; ++row) {
        const std::vector<double> x = Features(table, row);
        const double p = Probability(x);
        const double y = static_cast<double>(label.Int64At(row));
        for (size_t i = 0; i < k; ++i) {
          gradient[i] += (y - p) * x[i];
          for (size_t j = 0; j < k; ++j)
            hessian[i][j] += p * (1 - p) * x[i] * x[j];
        }
      }
      const std::vector<double> step = Solve(hessian, gradient);
      for (size_t i = 0; i < k; ++i) weights_[i] += step[i];
    }
  }

  double Probability(const std::vector<double>& x) const {
    double z = 0;
    for (size_t i = 0; i < x.size(); ++i) z += weights_[i] * x[i];
    return 1.0 / (1.0 + std::exp(-z));
  }

  double Accuracy(const Table& table, size_t from, size_t to) const {
    const Column& label = Col(table, "churned");
    size_t right = 0;
    for (size_t row = from; row < to; ++row) {
      const bool predicted = Probability(Features(table, row)) > 0.5;
      if (predicted == (label.Int64At(row) == 1)) ++right;
    }
    return static_cast<double>(right) / static_cast<double>(to - from);
  }

  // Mann-Whitney AUC of the rule's probabilities.
  double Auc(const Table& table, size_t from, size_t to) const {
    std::vector<std::pair<double, int64_t>> scored;
    for (size_t row = from; row < to; ++row) {
      scored.emplace_back(Probability(Features(table, row)),
                          Col(table, "churned").Int64At(row));
    }
    std::sort(scored.begin(), scored.end());
    double rank_sum = 0;
    double positives = 0;
    for (size_t i = 0; i < scored.size(); ++i) {
      if (scored[i].second == 1) {
        rank_sum += static_cast<double>(i + 1);
        positives += 1;
      }
    }
    const double negatives = static_cast<double>(scored.size()) - positives;
    return (rank_sum - positives * (positives + 1) / 2) /
           (positives * negatives);
  }

 private:
  // Gaussian elimination with partial pivoting.
  static std::vector<double> Solve(std::vector<std::vector<double>> a,
                                   std::vector<double> b) {
    const size_t n = b.size();
    for (size_t col = 0; col < n; ++col) {
      size_t pivot = col;
      for (size_t r = col + 1; r < n; ++r) {
        if (std::abs(a[r][col]) > std::abs(a[pivot][col])) pivot = r;
      }
      std::swap(a[col], a[pivot]);
      std::swap(b[col], b[pivot]);
      for (size_t r = col + 1; r < n; ++r) {
        const double f = a[r][col] / a[col][col];
        for (size_t c = col; c < n; ++c) a[r][c] -= f * a[col][c];
        b[r] -= f * b[col];
      }
    }
    std::vector<double> x(n);
    for (size_t i = n; i-- > 0;) {
      double s = b[i];
      for (size_t c = i + 1; c < n; ++c) s -= a[i][c] * x[c];
      x[i] = s / a[i][i];
    }
    return x;
  }

  std::vector<double> weights_;
};

TEST(DriftStreamTest, ConceptDriftCostsThePreDriftRuleAccuracy) {
  DriftStreamOptions options;
  options.seed = 5;
  options.rows = 40000;
  options.concept_drift_at = 20000;
  options.missing_fraction = 0;
  const Table table = Generate(options);

  LogisticRule rule;
  rule.Fit(table, 0, 10000);
  const double auc_before = rule.Auc(table, 10000, 20000);
  const double accuracy_before = rule.Accuracy(table, 10000, 20000);
  const double accuracy_after = rule.Accuracy(table, 20000, 40000);
  // A useful model before the drift, a clearly worse one after it.
  EXPECT_GT(auc_before, 0.75);
  EXPECT_LT(auc_before, 0.92);
  EXPECT_GE(accuracy_before - accuracy_after, 0.1)
      << "before " << accuracy_before << " after " << accuracy_after;

  // Concept drift changes the label only: every feature cell is the one a
  // stream without drift has.
  DriftStreamOptions undrifted = options;
  undrifted.concept_drift_at = -1;
  const Table plain = Generate(undrifted);
  for (size_t c = 0; c + 1 < table.num_columns(); ++c) {
    Table a;
    Table b;
    ASSERT_TRUE(a.AddColumn(table.column(c)).ok());
    ASSERT_TRUE(b.AddColumn(plain.column(c)).ok());
    EXPECT_EQ(WriteCsv(a), WriteCsv(b)) << table.column(c).name();
  }
}

TEST(DriftStreamTest, MissingFractionIsCloseToTheOption) {
  DriftStreamOptions options;
  options.rows = 20000;
  options.missing_fraction = 0.1;
  options.extra_numeric = 2;
  const Table table = Generate(options);
  for (const char* name : {"age", "income", "tenure", "support_calls",
                           "monthly_spend", "f0", "f1"}) {
    EXPECT_NEAR(static_cast<double>(Col(table, name).missing_count()) / 20000,
                0.1, 0.01)
        << name;
  }
  for (const char* name : {"customer_id", "plan", "region", "churned"}) {
    EXPECT_EQ(Col(table, name).missing_count(), 0u) << name;
  }

  options.missing_fraction = 0;
  const Table full = Generate(options);
  for (const Column& column : full.columns()) {
    EXPECT_EQ(column.missing_count(), 0u) << column.name();
  }
}

TEST(DriftStreamTest, CsvReadsBackWithTheColumnsTypesAndValues) {
  DriftStreamOptions options;
  options.rows = 2000;
  options.extra_numeric = 2;
  options.covariate_shift_at = 1000;
  options.shifted_features = {"tenure", "support_calls", "monthly_spend",
                              "plan"};
  const std::string csv = Csv(options);
  absl::StatusOr<Table> parsed = ParseCsv(csv, "generated");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const auto expected = DriftStreamColumns(options);
  ASSERT_EQ(parsed->num_columns(), expected.size());
  for (size_t c = 0; c < expected.size(); ++c) {
    EXPECT_EQ(parsed->column(c).name(), expected[c].first);
    EXPECT_EQ(parsed->column(c).type(), expected[c].second)
        << expected[c].first;
  }
  EXPECT_EQ(parsed->num_rows(), 2000u);
  // Same values as the table: the floats round-trip through the text.
  EXPECT_EQ(WriteCsv(*parsed), WriteCsv(Generate(options)));
}

TEST(DriftStreamTest, NoLabelLeavesOutChurned) {
  DriftStreamOptions options;
  options.rows = 10;
  options.with_label = false;
  const Table table = Generate(options);
  EXPECT_EQ(table.FindColumn("churned"), nullptr);
  EXPECT_EQ(table.num_columns(), 8u);
}

TEST(DriftStreamTest, ZeroRowsWriteTheHeaderOnly) {
  DriftStreamOptions options;
  options.rows = 0;
  EXPECT_EQ(Csv(options),
            "customer_id,age,income,tenure,plan,region,support_calls,"
            "monthly_spend,churned\n");
}

TEST(DriftStreamTest, InvalidOptionsNameTheOptionAndTheFix) {
  auto message = [](const DriftStreamOptions& options) {
    const absl::Status status = ValidateDriftStreamOptions(options);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    return std::string(status.message());
  };
  DriftStreamOptions options;
  options.rows = -5;
  EXPECT_EQ(message(options),
            "drift stream option rows: must be 0 or more, got -5");

  options = {};
  options.shifted_features = {"income", "incme"};
  options.extra_numeric = 3;
  EXPECT_EQ(message(options),
            "drift stream option shifted_features: unknown feature 'incme'; "
            "choose from age, income, tenure, plan, region, support_calls, "
            "monthly_spend, f0..f2");

  options = {};
  options.shifted_features = {"age", "age"};
  EXPECT_EQ(message(options),
            "drift stream option shifted_features: feature 'age' is named "
            "twice; name it once");

  options = {};
  options.shifted_features = {};
  options.covariate_shift_at = 10;
  EXPECT_EQ(message(options),
            "drift stream option shifted_features: is empty while "
            "covariate_shift_at is 10; name a feature to shift or set "
            "covariate_shift_at to -1");

  options = {};
  options.missing_fraction = 1.0;
  EXPECT_EQ(message(options),
            "drift stream option missing_fraction: must be in [0, 1), got 1");

  options = {};
  options.concept_drift_at = -2;
  EXPECT_EQ(message(options),
            "drift stream option concept_drift_at: must be a row (0 or more) "
            "or -1 for none, got -2");

  options = {};
  options.extra_numeric = 10001;
  EXPECT_EQ(message(options),
            "drift stream option extra_numeric: must be 0..10000, got 10001");

  options = {};
  options.rows = -1;
  EXPECT_FALSE(GenerateDriftTable(options).ok());
  EXPECT_FALSE(WriteDriftCsv(options, [](std::string_view) {
                 return absl::OkStatus();
               }).ok());
}

TEST(DriftStreamTest, WriterFailureStopsTheStream) {
  DriftStreamOptions options;
  options.rows = 10000;
  int calls = 0;
  const absl::Status status = WriteDriftCsv(
      options,
      [&](std::string_view) {
        ++calls;
        return calls == 2 ? absl::UnavailableError("disk full")
                          : absl::OkStatus();
      },
      1000);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls, 2);
}

// Peak resident set size of this process, from /proc/self/status, in KiB.
int64_t PeakRssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  ADD_FAILURE() << "no VmHWM line in /proc/self/status";
  return 0;
}

TEST(DriftStreamTest, TwoMillionWideRowsStreamInBoundedMemory) {
  // Start the peak from the current resident set ("5" resets VmHWM), so
  // tests run before this one in the same process do not hide growth.
  if (std::FILE* clear = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", clear);
    std::fclose(clear);
  }
  const int64_t peak_before = PeakRssKib();

  DriftStreamOptions options;
  options.rows = 2000000;
  options.extra_numeric = 30;
  options.covariate_shift_at = 1000000;
  options.concept_drift_at = 1500000;
  uint64_t bytes = 0;
  uint64_t lines = 0;
  const auto started = std::chrono::steady_clock::now();
  const absl::Status status =
      WriteDriftCsv(options, [&](std::string_view text) {
        bytes += text.size();
        lines += std::count(text.begin(), text.end(), '\n');
        return absl::OkStatus();
      });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  ASSERT_TRUE(status.ok()) << status;

  const int64_t growth_kib = PeakRssKib() - peak_before;
  EXPECT_EQ(lines, 2000001u);
  // About 160 bytes of number text a row: far more than the 50 MB bound.
  EXPECT_GT(bytes, 300000000u);
  EXPECT_LT(growth_kib, 50 * 1024);
  std::printf(
      "2e6 rows x 38 columns: %.1f MB of CSV in %.2f s, peak RSS "
      "growth %lld KiB\n",
      static_cast<double>(bytes) / 1e6, seconds,
      static_cast<long long>(growth_kib));
}

}  // namespace
}  // namespace slipway
