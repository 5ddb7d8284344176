// Observe's cost per row for 30 numeric features, single-threaded: one row
// per call (unbatched single-row requests) and 64 rows per call (a full
// batch). Prints nanoseconds per row, the median of 5 runs of 200,000 rows,
// in the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so time the thread
// spends descheduled on a busy machine is not counted, and in wall time;
// then the same cells through NumericProfile::Add one by one, for
// comparison.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "models/signature.h"
#include "monitor/window_profiler.h"
#include "stats/profile.h"

namespace slipway {
namespace {

constexpr size_t kFeatures = 30;
constexpr size_t kRows = 200'000;
constexpr int kRuns = 5;

double ThreadCpuNanos() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e9 +
         static_cast<double>(now.tv_nsec);
}

int Main() {
  std::vector<FeatureSpec> specs;
  for (size_t f = 0; f < kFeatures; ++f) {
    std::string name = "f";
    name += std::to_string(f);
    specs.push_back({name, DataType::kFloat64, {}});
  }
  const Signature signature(Task::kBinaryClassification, specs, "y",
                            DataType::kInt64, {"0", "1"});

  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0, 1);
  ProfileSet baseline;
  for (size_t f = 0; f < kFeatures; ++f) {
    std::vector<double> values(5000);
    for (double& v : values) v = normal(rng);
    baseline.features.push_back(
        {specs[f].name, NumericProfile::Baseline(values)});
  }
  std::vector<double> p(5000);
  for (double& v : p) v = std::uniform_real_distribution<double>(0, 1)(rng);
  baseline.prediction = FeatureProfile{"prediction", NumericProfile::Baseline(p)};

  std::vector<float> rows(kRows * kFeatures);
  for (float& v : rows) v = normal(rng);
  std::vector<float> predictions(kRows);
  for (float& v : predictions) v = std::uniform_real_distribution<float>(0, 1)(rng);

  auto profiler = WindowProfiler::Create(baseline, signature);
  if (!profiler.ok()) {
    std::fprintf(stderr, "%s\n", profiler.status().ToString().c_str());
    return 1;
  }
  for (size_t batch : {size_t{1}, size_t{64}}) {
    std::vector<double> cpu_ns;
    std::vector<double> wall_ns;
    for (int run = 0; run < kRuns; ++run) {
      const double cpu_start = ThreadCpuNanos();
      const auto wall_start = std::chrono::steady_clock::now();
      for (size_t r = 0; r + batch <= kRows; r += batch) {
        (*profiler)->Observe(rows.data() + r * kFeatures, batch,
                             predictions.data() + r, 1, nullptr);
      }
      const auto wall_end = std::chrono::steady_clock::now();
      cpu_ns.push_back((ThreadCpuNanos() - cpu_start) / kRows);
      wall_ns.push_back(
          std::chrono::duration<double, std::nano>(wall_end - wall_start)
              .count() /
          static_cast<double>(kRows));
      (*profiler)->Collect();
    }
    std::sort(cpu_ns.begin(), cpu_ns.end());
    std::sort(wall_ns.begin(), wall_ns.end());
    std::printf(
        "Observe, %zu numeric features, %zu row(s) per call, %d runs of %zu "
        "rows: CPU median %.0f ns/row (min %.0f, max %.0f); wall median "
        "%.0f ns/row (min %.0f, max %.0f)\n",
        kFeatures, batch, kRuns, kRows, cpu_ns[kRuns / 2], cpu_ns.front(),
        cpu_ns.back(), wall_ns[kRuns / 2], wall_ns.front(), wall_ns.back());
  }

  // The reference: the same cells through NumericProfile::Add one by one.
  std::vector<NumericProfile> profiles;
  for (const FeatureProfile& feature : baseline.features) {
    profiles.push_back(std::get<NumericProfile>(feature.profile).EmptyLike());
  }
  std::vector<double> cpu_ns;
  for (int run = 0; run < kRuns; ++run) {
    const double cpu_start = ThreadCpuNanos();
    for (size_t r = 0; r < kRows; ++r) {
      for (size_t f = 0; f < kFeatures; ++f) {
        profiles[f].Add(rows[r * kFeatures + f]);
      }
    }
    cpu_ns.push_back((ThreadCpuNanos() - cpu_start) / kRows);
    for (NumericProfile& profile : profiles) profile = profile.EmptyLike();
  }
  std::sort(cpu_ns.begin(), cpu_ns.end());
  std::printf(
      "Reference, NumericProfile::Add per cell, %zu numeric features: CPU "
      "median %.0f ns/row (min %.0f, max %.0f)\n",
      kFeatures, cpu_ns[kRuns / 2], cpu_ns.front(), cpu_ns.back());
  return 0;
}

}  // namespace
}  // namespace slipway

int main() { return slipway::Main(); }
