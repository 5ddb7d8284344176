#include "stats/drift.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "nlohmann/json.hpp"

namespace slipway {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kSqrt2Pi = 2.50662827463100050242;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double Clip01(double p) { return std::min(1.0, std::max(0.0, p)); }

std::string FormatNumber(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

// ---------------------------------------------------------------------------
// Input checks.

absl::Status CheckCounts(const std::vector<int64_t>& counts,
                         std::string_view name, int64_t* total) {
  if (counts.empty()) {
    return absl::InvalidArgumentError(std::string(name) +
                                      " has no buckets; pass one count per "
                                      "bucket or category");
  }
  *total = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] < 0) {
      return absl::InvalidArgumentError(
          std::string(name) + " bucket " + std::to_string(i) + " is " +
          std::to_string(counts[i]) + "; counts must be >= 0");
    }
    *total += counts[i];
  }
  if (*total == 0) {
    return absl::InvalidArgumentError(
        std::string(name) +
        " counts add up to 0; a distribution needs at least one row");
  }
  return absl::OkStatus();
}

absl::Status CheckPairedCounts(const std::vector<int64_t>& expected,
                               const std::vector<int64_t>& actual,
                               std::string_view expected_name,
                               std::string_view actual_name,
                               int64_t* expected_total, int64_t* actual_total) {
  RETURN_IF_ERROR(CheckCounts(expected, expected_name, expected_total));
  RETURN_IF_ERROR(CheckCounts(actual, actual_name, actual_total));
  if (expected.size() != actual.size()) {
    return absl::InvalidArgumentError(
        std::string(expected_name) + " has " + std::to_string(expected.size()) +
        " buckets but " + std::string(actual_name) + " has " +
        std::to_string(actual.size()) +
        "; both must count the same buckets in the same order");
  }
  return absl::OkStatus();
}

// Returns the total weight of a valid sample.
absl::StatusOr<double> CheckSample(const WeightedSample& sample,
                                   std::string_view name) {
  if (sample.empty()) {
    return absl::InvalidArgumentError(std::string(name) +
                                      " is empty; pass at least one value");
  }
  double total = 0;
  for (size_t i = 0; i < sample.size(); ++i) {
    const auto& [value, weight] = sample[i];
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(
          std::string(name) + " value " + std::to_string(i) +
          " is not finite; drop missing values before comparing samples");
    }
    if (!std::isfinite(weight) || weight < 0) {
      return absl::InvalidArgumentError(
          std::string(name) + " weight " + std::to_string(i) + " is " +
          FormatNumber(weight) + "; weights must be finite and >= 0");
    }
    total += weight;
  }
  if (!(total > 0)) {
    return absl::InvalidArgumentError(
        std::string(name) +
        " weights add up to 0; at least one value needs a positive weight");
  }
  return total;
}

WeightedSample Sorted(const WeightedSample& sample) {
  WeightedSample sorted = sample;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  return sorted;
}

// The two weighted empirical CDFs evaluated together: calls
// visit(value, next_value, cdf_a, cdf_b) at every distinct value of the
// pooled samples in increasing order, with both CDFs right-continuous (all
// weight at `value` included). next_value is the following distinct value,
// or `value` itself at the last one.
template <typename Visit>
void WalkCdfs(const WeightedSample& a, double total_a, const WeightedSample& b,
              double total_b, Visit visit) {
  const WeightedSample sa = Sorted(a);
  const WeightedSample sb = Sorted(b);
  size_t i = 0;
  size_t j = 0;
  double cum_a = 0;
  double cum_b = 0;
  while (i < sa.size() || j < sb.size()) {
    double value;
    if (j == sb.size() || (i < sa.size() && sa[i].first <= sb[j].first)) {
      value = sa[i].first;
    } else {
      value = sb[j].first;
    }
    while (i < sa.size() && sa[i].first == value) cum_a += sa[i++].second;
    while (j < sb.size() && sb[j].first == value) cum_b += sb[j++].second;
    double next = value;
    if (i < sa.size()) next = sa[i].first;
    if (j < sb.size() && (i == sa.size() || sb[j].first < next)) {
      next = sb[j].first;
    }
    visit(value, next, cum_a / total_a, cum_b / total_b);
  }
}

double WeightedMean(const WeightedSample& sample, double total) {
  double sum = 0;
  for (const auto& [value, weight] : sample) sum += value * weight;
  return sum / total;
}

double WeightedStdDev(const WeightedSample& sample, double total) {
  const double mean = WeightedMean(sample, total);
  double sum = 0;
  for (const auto& [value, weight] : sample) {
    sum += weight * (value - mean) * (value - mean);
  }
  return std::sqrt(sum / total);
}

// W1 in baseline standard deviations; a constant baseline falls back to the
// pooled range, which is positive whenever the distance is.
double Normalize(double distance, double baseline_std_dev,
                 double pooled_range) {
  if (baseline_std_dev > 0) return distance / baseline_std_dev;
  if (distance == 0) return 0.0;
  return distance / pooled_range;
}

// ---------------------------------------------------------------------------
// The distribution of the two-sided one-sample KS statistic D_n, following
// Simard & L'Ecuyer (2011) as scipy.stats._ksstats does, branch for branch.

// One-sided Smirnov survival P(D_n^+ >= d), exact (Birnbaum & Tingey 1951):
//   d * sum_{v=0}^{floor(n(1-d))} C(n,v) (d + v/n)^(v-1) (1 - d - v/n)^(n-v)
// summed in logarithms so neither the binomials nor the powers overflow.
double SmirnovSurvival(int64_t n, double d) {
  if (d <= 0) return 1.0;
  if (d >= 1) return 0.0;
  const double nn = static_cast<double>(n);
  const int64_t last = static_cast<int64_t>(std::floor(nn * (1.0 - d)));
  const double log_n_factorial = std::lgamma(nn + 1);
  double sum = 0;
  for (int64_t v = 0; v <= last; ++v) {
    const double vv = static_cast<double>(v);
    const double evn = d + vv / nn;
    const double rest = 1.0 - evn;
    if (rest <= 0) continue;  // 0^(n-v) with n - v >= 1
    const double log_term =
        log_n_factorial - std::lgamma(vv + 1) - std::lgamma(nn - vv + 1) +
        (vv - 1) * std::log(evn) + (nn - vv) * std::log(rest);
    if (log_term > -745) sum += std::exp(log_term);
  }
  return Clip01(d * sum);
}

// P(D_n <= d) by the Durbin matrix algorithm as Marsaglia, Tsang & Wang
// (2003) evaluate it: the k-th diagonal entry of (n!/n^n) H^n, with powers of
// 2^128 factored out to stay in range.
double DurbinMatrixCdf(int64_t n, double d) {
  if (d >= 1.0) return 1.0;
  const double nd = static_cast<double>(n) * d;
  if (nd <= 0.5) return 0.0;
  const int k = static_cast<int>(std::ceil(nd));
  const double h = k - nd;
  const int m = 2 * k - 1;
  const double kScaleUp = std::ldexp(1.0, 128);
  const double kScaleDown = std::ldexp(1.0, -128);

  // v is the first column (and, reversed, the last row) of H.
  std::vector<double> v(m);
  std::vector<double> w(m);
  double fac = 1.0;
  for (int j = 1; j <= m; ++j) {
    w[j - 1] = fac;
    fac /= j;
    v[j - 1] = (1.0 - std::pow(h, j)) * fac;
  }
  const double tt =
      std::pow(std::max(2 * h - 1.0, 0.0), m) - 2 * std::pow(h, m);
  v[m - 1] = (1.0 + tt) * fac;

  using Matrix = std::vector<double>;  // row-major m x m
  Matrix hm(static_cast<size_t>(m) * m, 0.0);
  auto at = [m](Matrix& x, int r, int c) -> double& {
    return x[static_cast<size_t>(r) * m + c];
  };
  for (int i = 1; i < m; ++i) {
    for (int r = i - 1; r < m; ++r) at(hm, r, i) = w[r - (i - 1)];
  }
  for (int r = 0; r < m; ++r) at(hm, r, 0) = v[r];
  for (int c = 0; c < m; ++c) at(hm, m - 1, c) = v[m - 1 - c];

  auto multiply = [m, &at](Matrix& x, Matrix& y) {
    Matrix out(static_cast<size_t>(m) * m, 0.0);
    for (int r = 0; r < m; ++r) {
      for (int t = 0; t < m; ++t) {
        const double xrt = at(x, r, t);
        if (xrt == 0) continue;
        for (int c = 0; c < m; ++c) at(out, r, c) += xrt * at(y, t, c);
      }
    }
    return out;
  };

  Matrix power(static_cast<size_t>(m) * m, 0.0);
  for (int i = 0; i < m; ++i) at(power, i, i) = 1.0;
  int64_t remaining = n;
  int exponent = 0;
  int h_exponent = 0;
  while (remaining > 0) {
    if (remaining % 2) {
      power = multiply(power, hm);
      exponent += h_exponent;
    }
    hm = multiply(hm, hm);
    h_exponent *= 2;
    if (std::fabs(at(hm, k - 1, k - 1)) > kScaleUp) {
      for (double& x : hm) x /= kScaleUp;
      h_exponent += 128;
    }
    remaining /= 2;
  }
  double p = at(power, k - 1, k - 1);
  for (int64_t i = 1; i <= n; ++i) {
    p = static_cast<double>(i) * p / static_cast<double>(n);
    if (std::fabs(p) < kScaleDown) {
      p *= kScaleUp;
      exponent -= 128;
    }
  }
  if (exponent != 0) p = std::ldexp(p, exponent);
  return Clip01(p);
}

// The Pelz & Good (1976) expansion of P(D_n <= d) in powers of 1/sqrt(n),
// its terms rewritten with Jacobi theta identities for small sqrt(n) d.
double PelzGoodCdf(int64_t n, double d) {
  if (d <= 0.0) return 0.0;
  if (d >= 1.0) return 1.0;
  const double nn = static_cast<double>(n);
  const double z = std::sqrt(nn) * d;
  const double z2 = z * z;
  const double z3 = z2 * z;
  const double z4 = z2 * z2;
  const double z6 = z4 * z2;
  const double pi2 = kPi * kPi;
  const double pi4 = pi2 * pi2;
  const double pi6 = pi4 * pi2;

  const double qlog = -pi2 / 8 / z2;
  if (qlog < -708) return 0.0;
  double q = std::exp(qlog);

  const double k1a = -z2;
  const double k1b = pi2 / 4;
  const double k2a = 6 * z6 + 2 * z4;
  const double k2b = (2 * z4 - 5 * z2) * pi2 / 4;
  const double k2c = pi4 * (1 - 2 * z2) / 16;
  const double k3d = pi6 * (5 - 30 * z2) / 64;
  const double k3c = pi4 * (-60 * z2 + 212 * z4) / 16;
  const double k3b = pi2 * (135 * z4 - 96 * z6) / 4;
  const double k3a = -30 * z6 - 90 * z4 * z4;

  double terms[4] = {0, 0, 0, 0};
  const int max_k = static_cast<int>(std::ceil(16 * z / kPi));
  // Horner over the odd integers m = 2k - 1 of sum c_m q^(m^2).
  for (int k = max_k; k >= 1; --k) {
    const double m = 2.0 * k - 1;
    const double m2 = m * m;
    const double m4 = m2 * m2;
    const double m6 = m4 * m2;
    const double q_power = std::pow(q, 8.0 * k);
    const double coeffs[4] = {1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4,
                              k3a + k3b * m2 + k3c * m4 + k3d * m6};
    for (int i = 0; i < 4; ++i) terms[i] = terms[i] * q_power + coeffs[i];
  }
  const double divisors[4] = {z, 6 * z4, 72 * z6 * z, 6480 * z6 * z4};
  for (int i = 0; i < 4; ++i) terms[i] = terms[i] * q * kSqrt2Pi / divisors[i];

  // The sums over all integers k that K_2 and K_3 add.
  q = std::exp(-pi2 / 2 / z2);
  const double sqrt3z = std::sqrt(3.0) * z;
  double k2_extra = 0;
  double k3_extra = 0;
  for (int k = max_k; k >= 1; --k) {
    const double kk = static_cast<double>(k);
    const double k2 = kk * kk;
    const double q_power = std::pow(q, k2);
    const double kpi = kPi * kk;
    k2_extra += k2 * q_power;
    k3_extra += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * q_power;
  }
  terms[2] += k2_extra * pi2 * kSqrt2Pi / (-36 * z3);
  terms[3] += k3_extra * pi2 * kSqrt2Pi / (216 * z6);
  double cdf = 0;
  for (int i = 0; i < 4; ++i) cdf += terms[i] / std::pow(nn, i / 2.0);
  return cdf;
}

// ---------------------------------------------------------------------------
// The regularised lower incomplete gamma by its series, and the upper one by
// its continued fraction (Numerical Recipes 6.2).

constexpr double kGammaEpsilon = 1e-16;
constexpr int kGammaMaxIterations = 1000000;

double LowerGammaSeries(double a, double x) {
  double ap = a;
  double term = 1.0 / a;
  double sum = term;
  for (int i = 0; i < kGammaMaxIterations; ++i) {
    ap += 1;
    term *= x / ap;
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * kGammaEpsilon) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));
}

double UpperGammaContinuedFraction(double a, double x) {
  constexpr double kTiny = 1e-300;
  double b = x + 1 - a;
  double c = 1 / kTiny;
  double d = 1 / b;
  double h = d;
  for (int i = 1; i <= kGammaMaxIterations; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < kGammaEpsilon) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * h;
}

}  // namespace

double RegularizedUpperGamma(double a, double x) {
  if (!(a > 0) || !(x >= 0)) return kNaN;
  if (x == 0) return 1.0;
  if (std::isinf(x)) return 0.0;
  if (x < a + 1) return Clip01(1.0 - LowerGammaSeries(a, x));
  return Clip01(UpperGammaContinuedFraction(a, x));
}

double KolmogorovSmirnovSurvival(int64_t n, double d) {
  if (n < 1 || std::isnan(d)) return kNaN;
  if (d >= 1.0) return 0.0;
  if (d <= 0.0) return 1.0;
  const double nn = static_cast<double>(n);
  const double t = nn * d;
  if (t <= 1.0) {
    // Ruben & Gambino: P(D_n <= d) = n!/n^n (2t - 1)^n for 1/2n <= d <= 1/n.
    if (t <= 0.5) return 1.0;
    double cdf;
    if (n <= 140) {
      cdf = 1.0;
      for (int64_t i = 1; i <= n; ++i) {
        cdf *= static_cast<double>(i) * (1.0 / nn) * (2 * t - 1);
      }
    } else {
      cdf = std::exp(std::lgamma(nn + 1) - nn * std::log(nn) +
                     nn * std::log(2 * t - 1));
    }
    return Clip01(1.0 - cdf);
  }
  if (t >= nn - 1) return Clip01(2 * std::pow(1.0 - d, nn));  // Ruben-Gambino
  // From d >= 1/2 the one-sided events D+ >= d and D- >= d are disjoint.
  if (d >= 0.5) return Clip01(2 * SmirnovSurvival(n, d));

  const double nd2 = t * d;
  if (n <= 140) {
    // Exact for small n; SciPy runs Pomeranz's recursion for
    // 0.754693 < n d^2 <= 4, which computes the same probability.
    if (nd2 <= 4) return Clip01(1.0 - DurbinMatrixCdf(n, d));
    return Clip01(2 * SmirnovSurvival(n, d));  // Miller's approximation
  }
  if (nd2 >= 370.0) return 0.0;
  if (nd2 >= 2.2) return Clip01(2 * SmirnovSurvival(n, d));
  double cdf;
  if (n <= 100000 && nn * std::pow(d, 1.5) <= 1.4) {
    cdf = DurbinMatrixCdf(n, d);
  } else {
    cdf = PelzGoodCdf(n, d);
  }
  return Clip01(1.0 - cdf);
}

absl::StatusOr<double> PopulationStabilityIndex(
    const std::vector<int64_t>& expected, const std::vector<int64_t>& actual,
    double epsilon) {
  if (!(epsilon > 0 && epsilon < 1)) {
    return absl::InvalidArgumentError(
        "PSI epsilon is " + FormatNumber(epsilon) +
        "; the proportion floor must lie strictly between 0 and 1");
  }
  int64_t expected_total = 0;
  int64_t actual_total = 0;
  RETURN_IF_ERROR(CheckPairedCounts(expected, actual, "PSI expected",
                                    "PSI actual", &expected_total,
                                    &actual_total));
  double psi = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double e =
        std::max(epsilon, static_cast<double>(expected[i]) / expected_total);
    const double a =
        std::max(epsilon, static_cast<double>(actual[i]) / actual_total);
    psi += (a - e) * std::log(a / e);
  }
  return psi;
}

absl::StatusOr<double> JensenShannonDistance(const std::vector<int64_t>& a,
                                             const std::vector<int64_t>& b) {
  int64_t total_a = 0;
  int64_t total_b = 0;
  RETURN_IF_ERROR(CheckPairedCounts(a, b, "Jensen-Shannon first distribution",
                                    "Jensen-Shannon second distribution",
                                    &total_a, &total_b));
  // Relative entropy terms x ln(x/m), with 0 ln 0 = 0 (scipy.special.rel_entr).
  auto rel_entr = [](double x, double m) {
    return x > 0 ? x * std::log(x / m) : 0.0;
  };
  double divergence = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double p = static_cast<double>(a[i]) / total_a;
    const double q = static_cast<double>(b[i]) / total_b;
    const double m = (p + q) / 2;
    divergence += rel_entr(p, m) + rel_entr(q, m);
  }
  divergence /= std::log(2.0);
  return std::sqrt(std::max(0.0, divergence / 2));
}

absl::StatusOr<KsResult> KolmogorovSmirnov(const WeightedSample& a,
                                           const WeightedSample& b) {
  ASSIGN_OR_RETURN(const double total_a, CheckSample(a, "KS first sample"));
  ASSIGN_OR_RETURN(const double total_b, CheckSample(b, "KS second sample"));
  KsResult result;
  WalkCdfs(a, total_a, b, total_b,
           [&result](double, double, double cdf_a, double cdf_b) {
             result.statistic =
                 std::max(result.statistic, std::fabs(cdf_a - cdf_b));
           });
  const double effective = total_a * total_b / (total_a + total_b);
  const int64_t n =
      std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(effective)));
  result.pvalue = KolmogorovSmirnovSurvival(n, result.statistic);
  return result;
}

absl::StatusOr<double> WassersteinDistance(const WeightedSample& a,
                                           const WeightedSample& b) {
  ASSIGN_OR_RETURN(const double total_a,
                   CheckSample(a, "Wasserstein first sample"));
  ASSIGN_OR_RETURN(const double total_b,
                   CheckSample(b, "Wasserstein second sample"));
  double distance = 0;
  WalkCdfs(a, total_a, b, total_b,
           [&distance](double value, double next, double cdf_a, double cdf_b) {
             distance += std::fabs(cdf_a - cdf_b) * (next - value);
           });
  return distance;
}

absl::StatusOr<double> NormalizedWasserstein(const WeightedSample& baseline,
                                             const WeightedSample& window) {
  ASSIGN_OR_RETURN(const double distance,
                   WassersteinDistance(baseline, window));
  // WassersteinDistance validated both samples.
  double total = 0;
  for (const auto& item : baseline) total += item.second;
  double low = baseline.front().first;
  double high = low;
  for (const WeightedSample* sample : {&baseline, &window}) {
    for (const auto& item : *sample) {
      low = std::min(low, item.first);
      high = std::max(high, item.first);
    }
  }
  return Normalize(distance, WeightedStdDev(baseline, total), high - low);
}

absl::StatusOr<ChiSquareResult> ChiSquareTest(
    const std::vector<int64_t>& expected, const std::vector<int64_t>& actual) {
  int64_t expected_total = 0;
  int64_t actual_total = 0;
  RETURN_IF_ERROR(CheckPairedCounts(expected, actual, "chi-square expected",
                                    "chi-square actual", &expected_total,
                                    &actual_total));
  // Buckets as (baseline count, window count).
  std::vector<std::pair<double, double>> buckets;
  double unseen = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] > 0) {
      buckets.emplace_back(static_cast<double>(expected[i]),
                           static_cast<double>(actual[i]));
    } else {
      unseen += static_cast<double>(actual[i]);
    }
  }
  if (unseen > 0) buckets.emplace_back(0.5, unseen);
  ChiSquareResult result;
  result.dof = static_cast<int>(buckets.size()) - 1;
  if (result.dof == 0) return result;
  double baseline_total = 0;
  for (const auto& bucket : buckets) baseline_total += bucket.first;
  const double scale = static_cast<double>(actual_total) / baseline_total;
  for (const auto& [baseline, window] : buckets) {
    const double e = baseline * scale;
    result.statistic += (window - e) * (window - e) / e;
  }
  result.pvalue = RegularizedUpperGamma(result.dof / 2.0, result.statistic / 2);
  return result;
}

namespace {

WeightedSample SketchItems(const QuantileSketch& sketch) {
  WeightedSample sample;
  for (const auto& [value, weight] : sketch.Items()) {
    sample.emplace_back(value, static_cast<double>(weight));
  }
  return sample;
}

// Decides drift and warn from the statistics already in `drift`.
void Decide(const DriftThresholds& thresholds, int64_t window_rows,
            FeatureDrift* drift) {
  switch (drift->method) {
    case DriftMethod::kPsi:
      drift->score = drift->psi;
      drift->drift = *drift->psi >= thresholds.psi_alert;
      break;
    case DriftMethod::kKs:
      drift->score = drift->ks_pvalue;
      drift->drift = *drift->ks_pvalue < thresholds.max_pvalue;
      break;
    case DriftMethod::kWasserstein:
      drift->score = drift->wasserstein;
      drift->drift = *drift->wasserstein > thresholds.max_wasserstein &&
                     *drift->ks_pvalue < thresholds.distance_max_pvalue;
      break;
    case DriftMethod::kChiSquare:
      drift->score = drift->chi2_pvalue;
      drift->drift = *drift->chi2_pvalue < thresholds.max_pvalue;
      break;
    case DriftMethod::kJensenShannon:
      drift->score = drift->js;
      drift->drift = *drift->js > thresholds.max_js &&
                     *(drift->numeric ? drift->ks_pvalue : drift->chi2_pvalue) <
                         thresholds.distance_max_pvalue;
      break;
    case DriftMethod::kAuto:
      break;  // resolved by the callers
  }
  drift->warn = drift->drift || *drift->psi >= thresholds.psi_warn;
  if (window_rows < thresholds.min_window_rows) {
    drift->insufficient = true;
    drift->drift = false;
    drift->warn = false;
  }
}

absl::Status WrongKind(DriftMethod method, bool numeric) {
  return absl::InvalidArgumentError(
      "drift method " + std::string(DriftMethodName(method)) +
      " does not apply to a " + (numeric ? "numeric" : "categorical") +
      " feature; use " +
      (numeric ? "ks, wasserstein, psi or js" : "chi2, js or psi"));
}

}  // namespace

std::string_view DriftMethodName(DriftMethod method) {
  switch (method) {
    case DriftMethod::kAuto:
      return "auto";
    case DriftMethod::kPsi:
      return "psi";
    case DriftMethod::kKs:
      return "ks";
    case DriftMethod::kWasserstein:
      return "wasserstein";
    case DriftMethod::kChiSquare:
      return "chi2";
    case DriftMethod::kJensenShannon:
      return "js";
  }
  return "auto";
}

const DriftThresholds& DriftPolicy::For(std::string_view feature) const {
  auto it = features.find(feature);
  return it == features.end() ? defaults : it->second;
}

absl::StatusOr<FeatureDrift> CompareNumeric(const NumericProfile& baseline,
                                            const NumericProfile& window,
                                            const DriftThresholds& thresholds) {
  if (baseline.count == 0) {
    return absl::InvalidArgumentError(
        "the baseline profile has no values; build it from training rows "
        "where the feature is present");
  }
  if (baseline.edges != window.edges ||
      baseline.bins.size() != window.bins.size()) {
    return absl::InvalidArgumentError(
        "the window's bins differ from the baseline's; start windows from "
        "the baseline's EmptyLike()");
  }
  FeatureDrift drift;
  drift.numeric = true;
  drift.missing_fraction = window.MissingRate();
  drift.method = thresholds.method;
  if (drift.method == DriftMethod::kAuto) {
    drift.method = baseline.count <= thresholds.small_baseline_rows
                       ? DriftMethod::kKs
                       : DriftMethod::kWasserstein;
  }
  if (drift.method == DriftMethod::kChiSquare) {
    return WrongKind(drift.method, true);
  }
  if (window.count == 0) {
    drift.insufficient = true;
    return drift;
  }
  ASSIGN_OR_RETURN(drift.psi,
                   PopulationStabilityIndex(baseline.bins, window.bins));
  ASSIGN_OR_RETURN(drift.js, JensenShannonDistance(baseline.bins, window.bins));
  const WeightedSample baseline_items = SketchItems(baseline.sketch);
  const WeightedSample window_items = SketchItems(window.sketch);
  ASSIGN_OR_RETURN(const KsResult ks,
                   KolmogorovSmirnov(baseline_items, window_items));
  drift.ks = ks.statistic;
  drift.ks_pvalue = ks.pvalue;
  ASSIGN_OR_RETURN(const double distance,
                   WassersteinDistance(baseline_items, window_items));
  drift.wasserstein = Normalize(
      distance, baseline.Stddev(),
      std::max(baseline.max, window.max) - std::min(baseline.min, window.min));
  Decide(thresholds, window.count, &drift);
  return drift;
}

absl::StatusOr<FeatureDrift> CompareCategorical(
    const CategoricalProfile& baseline, const CategoricalProfile& window,
    const DriftThresholds& thresholds) {
  if (baseline.count == 0) {
    return absl::InvalidArgumentError(
        "the baseline profile has no values; build it from training rows "
        "where the feature is present");
  }
  std::vector<int64_t> expected;
  std::vector<int64_t> actual;
  auto window_it = window.counts.begin();
  for (const auto& [category, count] : baseline.counts) {
    if (window_it == window.counts.end() || window_it->first != category) {
      return absl::InvalidArgumentError(
          "the window's categories differ from the baseline's (first "
          "difference at '" +
          category + "'); start windows from the baseline's EmptyLike()");
    }
    expected.push_back(count);
    actual.push_back(window_it->second);
    ++window_it;
  }
  if (window_it != window.counts.end()) {
    return absl::InvalidArgumentError(
        "the window counts category '" + window_it->first +
        "' that is not among the baseline's; start windows from the "
        "baseline's EmptyLike()");
  }
  expected.push_back(baseline.other);
  actual.push_back(window.other);
  expected.push_back(baseline.unseen);
  actual.push_back(window.unseen);

  FeatureDrift drift;
  drift.numeric = false;
  drift.missing_fraction = window.MissingRate();
  drift.method = thresholds.method;
  if (drift.method == DriftMethod::kAuto) {
    drift.method = baseline.count <= thresholds.small_baseline_rows
                       ? DriftMethod::kChiSquare
                       : DriftMethod::kJensenShannon;
  }
  if (drift.method == DriftMethod::kKs ||
      drift.method == DriftMethod::kWasserstein) {
    return WrongKind(drift.method, false);
  }
  if (window.count == 0) {
    drift.insufficient = true;
    return drift;
  }
  ASSIGN_OR_RETURN(drift.psi, PopulationStabilityIndex(expected, actual));
  ASSIGN_OR_RETURN(drift.js, JensenShannonDistance(expected, actual));
  ASSIGN_OR_RETURN(const ChiSquareResult chi, ChiSquareTest(expected, actual));
  drift.chi2_pvalue = chi.pvalue;
  Decide(thresholds, window.count, &drift);
  return drift;
}

absl::StatusOr<std::vector<FeatureDrift>> CompareProfiles(
    const ProfileSet& baseline, const ProfileSet& window,
    const DriftPolicy& policy) {
  // (baseline profile, the window's profile of the same name or null)
  std::vector<std::pair<const FeatureProfile*, const FeatureProfile*>> pairs;
  for (const FeatureProfile& feature : baseline.features) {
    pairs.emplace_back(&feature, window.Find(feature.name));
  }
  if (baseline.prediction.has_value()) {
    const FeatureProfile* other =
        window.prediction.has_value() &&
                window.prediction->name == baseline.prediction->name
            ? &*window.prediction
            : nullptr;
    pairs.emplace_back(&*baseline.prediction, other);
  }
  std::vector<FeatureDrift> result;
  for (const auto& [feature, other] : pairs) {
    if (other == nullptr) {
      return absl::InvalidArgumentError(
          "the window has no profile of '" + feature->name +
          "'; start windows from the baseline's EmptyLike()");
    }
    if (other->is_numeric() != feature->is_numeric()) {
      return absl::InvalidArgumentError(
          "'" + feature->name + "' is " +
          (feature->is_numeric() ? "numeric" : "categorical") +
          " in the baseline but not in the window; start windows from the "
          "baseline's EmptyLike()");
    }
    const DriftThresholds& thresholds = policy.For(feature->name);
    absl::StatusOr<FeatureDrift> drift =
        feature->is_numeric()
            ? CompareNumeric(std::get<NumericProfile>(feature->profile),
                             std::get<NumericProfile>(other->profile),
                             thresholds)
            : CompareCategorical(std::get<CategoricalProfile>(feature->profile),
                                 std::get<CategoricalProfile>(other->profile),
                                 thresholds);
    RETURN_IF_ERROR(drift.status(), "drift of '" + feature->name + "'");
    drift->name = feature->name;
    result.push_back(*std::move(drift));
  }
  return result;
}

nlohmann::json ToJson(const FeatureDrift& drift) {
  nlohmann::json json = {
      {"name", drift.name},
      {"kind", drift.numeric ? "numeric" : "categorical"},
      {"method", DriftMethodName(drift.method)},
  };
  auto put = [&json](const char* key, const std::optional<double>& value) {
    if (value.has_value()) json[key] = *value;
  };
  put("score", drift.score);
  put("psi", drift.psi);
  put("js", drift.js);
  put("ks", drift.ks);
  put("ks_pvalue", drift.ks_pvalue);
  put("wasserstein", drift.wasserstein);
  put("chi2_pvalue", drift.chi2_pvalue);
  json["missing_fraction"] = drift.missing_fraction;
  json["insufficient"] = drift.insufficient;
  json["drift"] = drift.drift;
  json["warn"] = drift.warn;
  return json;
}

}  // namespace slipway
