#include "data/drift_stream.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <numbers>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"

namespace slipway {
namespace {

constexpr int kMaxExtraNumeric = 10000;

constexpr std::array<std::string_view, 4> kPlans = {"basic", "plus", "pro",
                                                    "team"};
constexpr std::array<std::string_view, 5> kRegions = {"north", "south", "east",
                                                      "west", "central"};
// Churn log-odds added by each plan and region (before concept drift).
constexpr std::array<double, 4> kPlanEffect = {0.8, 0.2, -0.6, -1.0};
constexpr std::array<double, 5> kRegionEffect = {0.0, 0.5, 0.5, 0.0, 0.0};
// Where the covariate shift moves categorical mass, and how much of it.
constexpr int kShiftedPlan = 0;    // basic
constexpr int kShiftedRegion = 4;  // central
constexpr double kCategoryShiftShare = 0.6;

// The numeric features, in column order; their index picks the stream of
// their missing-cell draw (extra column k has index kBaseNumeric + k).
enum NumericFeature {
  kAgeIndex,
  kIncomeIndex,
  kTenureIndex,
  kCallsIndex,
  kSpendIndex,
  kBaseNumeric
};

// Random streams of a row. Each is an independent draw; new fields take new
// numbers so existing columns keep their values.
enum Stream : uint64_t {
  kAge = 1,
  kIncome,
  kTenure,
  kPlan,
  kRegion,
  kCalls,
  kSpend,
  kPlanShift,
  kRegionShift,
  kLabel,
  kMissing = 1000,  // + numeric feature index
  kExtra = 20000,   // + extra column index
};

// SplitMix64's finalizer: a bijection on 64 bits whose outputs for
// consecutive inputs pass as independent.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The draws of one row: a pure function of (seed, row, stream).
class RowDraws {
 public:
  RowDraws(uint64_t seed_key, int64_t row)
      : key_(Mix(seed_key ^ Mix(static_cast<uint64_t>(row)))) {}

  // Uniform in [0, 1).
  double Uniform(uint64_t stream, uint64_t part = 0) const {
    return static_cast<double>(Bits(stream, part) >> 11) * 0x1p-53;
  }
  // Uniform integer in [lo, hi].
  int64_t Int(uint64_t stream, int64_t lo, int64_t hi) const {
    const uint64_t span = static_cast<uint64_t>(hi - lo + 1);
    const unsigned __int128 wide =
        static_cast<unsigned __int128>(Bits(stream, 0)) * span;
    return lo + static_cast<int64_t>(wide >> 64);
  }
  // Two independent standard normals (Box-Muller).
  std::pair<double, double> NormalPair(uint64_t stream) const {
    const double radius =
        std::sqrt(-2.0 * std::log(1.0 - Uniform(stream, 0)));  // u in (0, 1]
    const double angle = 2.0 * std::numbers::pi * Uniform(stream, 1);
    return {radius * std::cos(angle), radius * std::sin(angle)};
  }

 private:
  uint64_t Bits(uint64_t stream, uint64_t part) const {
    return Mix(key_ + (stream * 2 + part) * 0xd1b54a32d192ed03ULL);
  }

  uint64_t key_;
};

constexpr int kMaxDecimals = 4;
constexpr std::array<int64_t, kMaxDecimals + 1> kScale = {1, 10, 100, 1000,
                                                          10000};
constexpr int kExtraDecimals = 4;

// `value` rounded to `decimals` decimals; never -0, which would print as
// "-0".
double Round(double value, int decimals) {
  const double scale = static_cast<double>(kScale[decimals]);
  return std::nearbyint(value * scale) / scale + 0.0;
}

// Which features the covariate shift moves, indexed as DriftFeatureNames()
// lists them.
enum ShiftedFeature {
  kShiftAge,
  kShiftIncome,
  kShiftTenure,
  kShiftPlan,
  kShiftRegion,
  kShiftCalls,
  kShiftSpend,
  kShiftExtra
};

std::vector<bool> ResolveShift(const DriftStreamOptions& options) {
  const std::vector<std::string> names =
      DriftFeatureNames(options.extra_numeric);
  std::vector<bool> shifted(names.size(), false);
  for (const std::string& name : options.shifted_features) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it != names.end()) shifted[it - names.begin()] = true;
  }
  return shifted;
}

// One row's values before they become cells; reused from row to row.
struct RowValues {
  int64_t age = 0;
  double income = 0;
  int64_t tenure = 0;
  int plan = 0;
  int region = 0;
  int64_t calls = 0;
  double spend = 0;
  std::vector<double> extra;
  // Indexed by NumericFeature, then kBaseNumeric + extra column.
  std::vector<uint8_t> missing;
  int64_t churned = 0;
};

void AppendInteger(int64_t value, std::string& out) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof(digits), value);
  out.append(digits, result.ptr);
}

// A value Round() left with `decimals` decimals, as the shortest plain
// decimal ("-0.5", "12", "3.1416"): the text csv.h's reader turns back into
// the same double.
void AppendDecimal(double value, int decimals, std::string& out) {
  const int64_t scale = kScale[decimals];
  int64_t units = std::llround(value * static_cast<double>(scale));
  if (units < 0) {
    out.push_back('-');
    units = -units;
  }
  AppendInteger(units / scale, out);
  int64_t fraction = units % scale;
  if (fraction == 0) return;
  char digits[kMaxDecimals];
  for (int i = decimals - 1; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + fraction % 10);
    fraction /= 10;
  }
  int length = decimals;
  while (digits[length - 1] == '0') --length;
  out.push_back('.');
  out.append(digits, length);
}

// Builds the rows of a validated DriftStreamOptions.
class Generator {
 public:
  explicit Generator(const DriftStreamOptions& options)
      : options_(options),
        seed_key_(Mix(options.seed ^ 0x736c6970776179ULL)),
        shift_(ResolveShift(options)) {}

  // Rows [first, first + n) as a table.
  Table Rows(int64_t first, int64_t n) const {
    std::vector<Column> columns;
    for (auto& [name, type] : DriftStreamColumns(options_)) {
      columns.emplace_back(name, type);
      columns.back().Reserve(static_cast<size_t>(n));
    }
    RowValues values = NewRowValues();
    for (int64_t row = first; row < first + n; ++row) {
      Generate(row, values);
      size_t c = 0;
      columns[c++].AppendInt64(row);
      AppendNumber(values, kAgeIndex, values.age, columns[c++]);
      AppendNumber(values, kIncomeIndex, values.income, columns[c++]);
      AppendNumber(values, kTenureIndex, values.tenure, columns[c++]);
      columns[c++].AppendString(kPlans[values.plan]);
      columns[c++].AppendString(kRegions[values.region]);
      AppendNumber(values, kCallsIndex, values.calls, columns[c++]);
      AppendNumber(values, kSpendIndex, values.spend, columns[c++]);
      for (int k = 0; k < options_.extra_numeric; ++k) {
        AppendNumber(values, kBaseNumeric + k, values.extra[k], columns[c++]);
      }
      if (options_.with_label) columns[c].AppendInt64(values.churned);
    }
    Table table;
    for (Column& column : columns) {
      // Names are distinct and sizes equal by construction.
      table.AddColumn(std::move(column)).IgnoreError();
    }
    return table;
  }

  // Appends rows [first, first + n) to `out` as CSV records. Straight to
  // text, without a Table: wide streams spend most of their time here.
  void AppendCsv(int64_t first, int64_t n, std::string& out) const {
    RowValues values = NewRowValues();
    for (int64_t row = first; row < first + n; ++row) {
      Generate(row, values);
      const auto& missing = values.missing;
      AppendInteger(row, out);
      out.push_back(',');
      if (!missing[kAgeIndex]) AppendInteger(values.age, out);
      out.push_back(',');
      if (!missing[kIncomeIndex]) AppendDecimal(values.income, 2, out);
      out.push_back(',');
      if (!missing[kTenureIndex]) AppendInteger(values.tenure, out);
      out.push_back(',');
      out.append(kPlans[values.plan]);
      out.push_back(',');
      out.append(kRegions[values.region]);
      out.push_back(',');
      if (!missing[kCallsIndex]) AppendInteger(values.calls, out);
      out.push_back(',');
      if (!missing[kSpendIndex]) AppendDecimal(values.spend, 2, out);
      for (int k = 0; k < options_.extra_numeric; ++k) {
        out.push_back(',');
        if (!missing[kBaseNumeric + k]) {
          AppendDecimal(values.extra[k], kExtraDecimals, out);
        }
      }
      if (options_.with_label) {
        out.push_back(',');
        out.push_back(values.churned == 1 ? '1' : '0');
      }
      out.push_back('\n');
    }
  }

 private:
  RowValues NewRowValues() const {
    RowValues values;
    values.extra.resize(options_.extra_numeric);
    values.missing.resize(kBaseNumeric + options_.extra_numeric);
    return values;
  }

  void Generate(int64_t row, RowValues& values) const {
    const RowDraws draws(seed_key_, row);
    const bool shifted =
        options_.covariate_shift_at >= 0 && row >= options_.covariate_shift_at;
    const bool drifted =
        options_.concept_drift_at >= 0 && row >= options_.concept_drift_at;

    values.age = draws.Int(kAge, 18, 80);
    if (shifted && shift_[kShiftAge]) values.age += 12;
    values.income =
        Round(std::exp(10.5 + 0.5 * draws.NormalPair(kIncome).first), 2);
    if (shifted && shift_[kShiftIncome]) {
      values.income = Round(values.income * 1.6, 2);
    }
    values.tenure = draws.Int(kTenure, 0, 120);
    if (shifted && shift_[kShiftTenure]) values.tenure /= 2;
    values.plan = static_cast<int>(draws.Int(kPlan, 0, 3));
    if (shifted && shift_[kShiftPlan] &&
        draws.Uniform(kPlanShift) < kCategoryShiftShare) {
      values.plan = kShiftedPlan;
    }
    values.region = static_cast<int>(draws.Int(kRegion, 0, 4));
    if (shifted && shift_[kShiftRegion] &&
        draws.Uniform(kRegionShift) < kCategoryShiftShare) {
      values.region = kShiftedRegion;
    }
    values.calls = draws.Int(kCalls, 0, 12);
    if (shifted && shift_[kShiftCalls]) values.calls += 3;
    values.spend =
        Round(std::max(0.0, 70.0 + 20.0 * draws.NormalPair(kSpend).first), 2);
    if (shifted && shift_[kShiftSpend]) {
      values.spend = Round(values.spend + 25.0, 2);
    }
    // Extra columns 2j and 2j + 1 share one Box-Muller draw; column k's
    // values do not depend on how many extra columns there are.
    for (int k = 0; k < options_.extra_numeric; k += 2) {
      const auto [a, b] = draws.NormalPair(kExtra + k / 2);
      values.extra[k] = a;
      if (k + 1 < options_.extra_numeric) values.extra[k + 1] = b;
    }
    for (int k = 0; k < options_.extra_numeric; ++k) {
      const double shift = shifted && shift_[kShiftExtra + k] ? 1.0 : 0.0;
      values.extra[k] = Round(values.extra[k] + shift, kExtraDecimals);
    }
    for (size_t i = 0; i < values.missing.size(); ++i) {
      values.missing[i] =
          options_.missing_fraction > 0 &&
          draws.Uniform(kMissing + i) < options_.missing_fraction;
    }
    if (!options_.with_label) return;

    // Concept drift flips the sign of the support-calls and plan effects;
    // the features' own distribution is untouched by it. The label sees
    // every value, including those about to be blanked as missing.
    const double flip = drifted ? -1.0 : 1.0;
    const double logit =
        -1.0 + 0.035 * (45.0 - static_cast<double>(values.age)) -
        0.02 * (static_cast<double>(values.tenure) - 60.0) +
        flip * 0.35 * (static_cast<double>(values.calls) - 6.0) +
        flip * kPlanEffect[values.plan] + kRegionEffect[values.region] +
        0.02 * (values.spend - 70.0) - 0.4 * (std::log(values.income) - 10.5);
    const double p = 1.0 / (1.0 + std::exp(-logit));
    values.churned = draws.Uniform(kLabel) < p ? 1 : 0;
  }

  static void AppendNumber(const RowValues& values, int numeric_index,
                           int64_t value, Column& column) {
    if (values.missing[numeric_index]) {
      column.AppendMissing();
    } else {
      column.AppendInt64(value);
    }
  }
  static void AppendNumber(const RowValues& values, int numeric_index,
                           double value, Column& column) {
    if (values.missing[numeric_index]) {
      column.AppendMissing();
    } else {
      column.AppendFloat64(value);
    }
  }

  const DriftStreamOptions& options_;
  const uint64_t seed_key_;
  const std::vector<bool> shift_;
};

std::string CsvHeader(const DriftStreamOptions& options) {
  std::string header;
  for (const auto& [name, type] : DriftStreamColumns(options)) {
    if (!header.empty()) header.push_back(',');
    header += name;
  }
  header.push_back('\n');
  return header;
}

std::string FeatureChoices(int extra_numeric) {
  std::vector<std::string> names = DriftFeatureNames(0);
  if (extra_numeric == 1) names.push_back("f0");
  if (extra_numeric > 1) {
    names.push_back(absl::StrCat("f0..f", extra_numeric - 1));
  }
  return absl::StrJoin(names, ", ");
}

}  // namespace

std::vector<std::string> DriftFeatureNames(int extra_numeric) {
  std::vector<std::string> names = {"age",          "income", "tenure",
                                    "plan",         "region", "support_calls",
                                    "monthly_spend"};
  for (int k = 0; k < extra_numeric; ++k) names.push_back(absl::StrCat("f", k));
  return names;
}

std::vector<std::pair<std::string, DataType>> DriftStreamColumns(
    const DriftStreamOptions& options) {
  std::vector<std::pair<std::string, DataType>> columns = {
      {"customer_id", DataType::kInt64},
      {"age", DataType::kInt64},
      {"income", DataType::kFloat64},
      {"tenure", DataType::kInt64},
      {"plan", DataType::kString},
      {"region", DataType::kString},
      {"support_calls", DataType::kInt64},
      {"monthly_spend", DataType::kFloat64},
  };
  for (int k = 0; k < options.extra_numeric; ++k) {
    columns.emplace_back(absl::StrCat("f", k), DataType::kFloat64);
  }
  if (options.with_label) columns.emplace_back("churned", DataType::kInt64);
  return columns;
}

absl::Status CheckShiftedFeatures(const std::vector<std::string>& names,
                                  int extra_numeric) {
  const std::vector<std::string> known = DriftFeatureNames(extra_numeric);
  std::set<std::string_view> seen;
  for (const std::string& name : names) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown feature '", name, "'; choose from ",
                       FeatureChoices(extra_numeric)));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("feature '", name, "' is named twice; name it once"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateDriftStreamOptions(const DriftStreamOptions& options) {
  auto invalid = [](const std::string& option, const std::string& problem) {
    return absl::InvalidArgumentError(
        absl::StrCat("drift stream option ", option, ": ", problem));
  };
  if (options.start < 0) {
    return invalid("start",
                   absl::StrCat("must be 0 or more, got ", options.start));
  }
  if (options.rows < 0) {
    return invalid("rows",
                   absl::StrCat("must be 0 or more, got ", options.rows));
  }
  if (options.rows > std::numeric_limits<int64_t>::max() - options.start) {
    return invalid("rows",
                   "start + rows overflows a 64-bit row index; "
                   "lower start or rows");
  }
  if (options.covariate_shift_at < -1) {
    return invalid("covariate_shift_at",
                   absl::StrCat("must be a row (0 or more) or -1 for none, "
                                "got ",
                                options.covariate_shift_at));
  }
  if (options.concept_drift_at < -1) {
    return invalid("concept_drift_at",
                   absl::StrCat("must be a row (0 or more) or -1 for none, "
                                "got ",
                                options.concept_drift_at));
  }
  if (!(options.missing_fraction >= 0 && options.missing_fraction < 1)) {
    return invalid("missing_fraction", absl::StrCat("must be in [0, 1), got ",
                                                    options.missing_fraction));
  }
  if (options.extra_numeric < 0 || options.extra_numeric > kMaxExtraNumeric) {
    return invalid("extra_numeric",
                   absl::StrCat("must be 0..", kMaxExtraNumeric, ", got ",
                                options.extra_numeric));
  }
  RETURN_IF_ERROR(
      CheckShiftedFeatures(options.shifted_features, options.extra_numeric),
      "drift stream option shifted_features");
  if (options.covariate_shift_at >= 0 && options.shifted_features.empty()) {
    return invalid("shifted_features",
                   absl::StrCat("is empty while covariate_shift_at is ",
                                options.covariate_shift_at,
                                "; name a feature to shift or set "
                                "covariate_shift_at to -1"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Table> GenerateDriftTable(const DriftStreamOptions& options) {
  RETURN_IF_ERROR(ValidateDriftStreamOptions(options));
  return Generator(options).Rows(options.start, options.rows);
}

absl::Status WriteDriftCsv(const DriftStreamOptions& options,
                           const DriftCsvWriter& write, size_t chunk_rows) {
  RETURN_IF_ERROR(ValidateDriftStreamOptions(options));
  if (chunk_rows == 0) {
    return absl::InvalidArgumentError(
        "drift stream CSV: chunk_rows must be 1 or more");
  }
  const Generator generator(options);
  std::string text = CsvHeader(options);
  const int64_t end = options.start + options.rows;
  int64_t first = options.start;
  do {
    const int64_t n =
        std::min<int64_t>(static_cast<int64_t>(chunk_rows), end - first);
    generator.AppendCsv(first, n, text);
    RETURN_IF_ERROR(write(text));
    // The buffer keeps its capacity: one allocation for the whole stream.
    text.clear();
    first += n;
  } while (first < end);
  return absl::OkStatus();
}

}  // namespace slipway
