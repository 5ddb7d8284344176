#include "stats/quantile_sketch.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

namespace slipway {
namespace {

using json = nlohmann::json;

// DataSketches' smallest level capacity: below it compaction would move too
// few items to pay for its sort.
constexpr int kMinLevelCapacity = 8;
// Weights are 2^level in an int64_t.
constexpr int kMaxLevels = 62;

// SplitMix64's finalizer: a fixed bijection whose low bit is a fair coin
// for distinct inputs.
uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Merges the sorted `from[0..n)` into the sorted `to`, in place from the
// back, so the only allocation is `to` growing past its capacity.
void MergeSortedInto(const double* from, size_t n, std::vector<double>* to) {
  size_t i = to->size();
  size_t j = n;
  to->resize(i + n);
  size_t out = i + n;
  double* dst = to->data();
  while (j > 0) {
    if (i > 0 && dst[i - 1] > from[j - 1]) {
      dst[--out] = dst[--i];
    } else {
      dst[--out] = from[--j];
    }
  }
}

absl::Status SketchError(const std::string& message) {
  return absl::InvalidArgumentError("quantile sketch: " + message);
}

}  // namespace

double QuantileSketch::RankError(int k) {
  k = std::clamp(k, kMinK, kMaxK);
  return 2.296 / std::pow(static_cast<double>(k), 0.9723);
}

QuantileSketch::QuantileSketch(int k) : k_(std::clamp(k, kMinK, kMaxK)) {
  levels_.emplace_back();
  UpdateCapacity();
}

int QuantileSketch::LevelCapacity(int level, int num_levels) const {
  const int depth = num_levels - 1 - level;
  // k * (2/3)^depth rounded half up, in integers so every machine agrees;
  // beyond depth 30 it is below the minimum for any k <= kMaxK.
  if (depth > 30) return kMinLevelCapacity;
  uint64_t power_of_three = 1;
  for (int i = 0; i < depth; ++i) power_of_three *= 3;
  const uint64_t twice =
      (static_cast<uint64_t>(2 * k_) << depth) / power_of_three;
  return std::max(kMinLevelCapacity, static_cast<int>((twice + 1) >> 1));
}

void QuantileSketch::UpdateCapacity() {
  const int num_levels = static_cast<int>(levels_.size());
  capacity_ = 0;
  for (int level = 0; level < num_levels; ++level) {
    capacity_ += LevelCapacity(level, num_levels);
  }
}

void QuantileSketch::Add(double value) {
  if (!std::isfinite(value)) return;
  if (retained_ >= capacity_) CompactLowestFullLevel();
  levels_[0].push_back(value);
  ++retained_;
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void QuantileSketch::CompactLowestFullLevel() {
  // Called when retained_ >= capacity_, so some level is at or above its
  // capacity.
  const int num_levels = static_cast<int>(levels_.size());
  for (int level = 0; level < num_levels; ++level) {
    if (static_cast<int64_t>(levels_[level].size()) >=
        LevelCapacity(level, num_levels)) {
      Compact(level);
      return;
    }
  }
}

void QuantileSketch::Compact(int level) {
  if (level + 1 == static_cast<int>(levels_.size())) {
    levels_.emplace_back();
    UpdateCapacity();
  }
  std::vector<double>& from = levels_[level];
  std::vector<double>& to = levels_[level + 1];
  // Callers that feed values in order (the window profiler) leave level 0
  // sorted already.
  if (level == 0 && !std::is_sorted(from.begin(), from.end())) {
    std::sort(from.begin(), from.end());
  }
  const size_t size = from.size();
  const size_t half = size / 2;
  // Which of each pair survives: a hash of (count, retained, level) instead
  // of a random draw, so replaying the same stream gives the same sketch.
  // No two compactions of one stream of Adds see the same count, and no two
  // within one Merge the same retained size.
  const size_t offset =
      Mix64(Mix64(static_cast<uint64_t>(count_)) ^
            (static_cast<uint64_t>(retained_) << 8) ^
            static_cast<uint64_t>(level)) &
      1;
  // Survivors move to the front (reads stay ahead of writes); with an odd
  // size the largest item is the odd one out and is not touched.
  for (size_t i = 0; i < half; ++i) from[i] = from[2 * i + offset];
  MergeSortedInto(from.data(), half, &to);
  if (size % 2 == 1) {
    from[0] = from[size - 1];
    from.resize(1);
  } else {
    from.clear();
  }
  retained_ -= static_cast<int64_t>(half);
}

absl::Status QuantileSketch::Merge(const QuantileSketch& other) {
  if (other.k_ != k_) {
    return absl::InvalidArgumentError(
        "cannot merge a quantile sketch with k=" + std::to_string(other.k_) +
        " into one with k=" + std::to_string(k_) +
        "; only sketches made with the same k merge");
  }
  if (other.empty()) return absl::OkStatus();
  if (&other == this) {
    const QuantileSketch copy = other;
    return Merge(copy);
  }
  while (levels_.size() < other.levels_.size()) levels_.emplace_back();
  levels_[0].insert(levels_[0].end(), other.levels_[0].begin(),
                    other.levels_[0].end());
  for (size_t level = 1; level < other.levels_.size(); ++level) {
    const std::vector<double>& from = other.levels_[level];
    MergeSortedInto(from.data(), from.size(), &levels_[level]);
  }
  count_ += other.count_;
  retained_ += other.retained_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  UpdateCapacity();
  while (retained_ > capacity_) CompactLowestFullLevel();
  return absl::OkStatus();
}

std::vector<std::pair<double, int64_t>> QuantileSketch::Items() const {
  std::vector<std::pair<double, int64_t>> items;
  items.reserve(retained_);
  for (size_t level = 0; level < levels_.size(); ++level) {
    const int64_t weight = int64_t{1} << level;
    for (double value : levels_[level]) items.emplace_back(value, weight);
  }
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // One pair per distinct value.
  size_t out = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (out > 0 && items[out - 1].first == items[i].first) {
      items[out - 1].second += items[i].second;
    } else {
      items[out++] = items[i];
    }
  }
  items.resize(out);
  return items;
}

double QuantileSketch::Quantile(double q) const {
  if (empty() || std::isnan(q)) return kNaN;
  if (q <= 0) return min_;
  if (q >= 1) return max_;
  const double n = static_cast<double>(count_);
  int64_t cumulative = 0;
  for (const auto& [value, weight] : Items()) {
    cumulative += weight;
    // Compared as a fraction, the way Rank reports it, so Quantile(0.3) of
    // ten items is the third (3 / 10 >= 0.3) whatever 0.3 * 10 rounds to.
    if (static_cast<double>(cumulative) / n >= q) return value;
  }
  return max_;
}

double QuantileSketch::Rank(double x) const {
  if (empty() || std::isnan(x)) return kNaN;
  int64_t at_or_below = 0;
  for (double value : levels_[0]) at_or_below += value <= x ? 1 : 0;
  for (size_t level = 1; level < levels_.size(); ++level) {
    const std::vector<double>& items = levels_[level];
    const int64_t n =
        std::upper_bound(items.begin(), items.end(), x) - items.begin();
    at_or_below += n << level;
  }
  return static_cast<double>(at_or_below) / static_cast<double>(count_);
}

json QuantileSketch::ToJson() const {
  json out = json::object();
  out["k"] = k_;
  out["count"] = count_;
  if (!empty()) {
    out["min"] = min_;
    out["max"] = max_;
  }
  json levels = json::array();
  for (const std::vector<double>& level : levels_) levels.push_back(level);
  out["levels"] = std::move(levels);
  return out;
}

absl::StatusOr<QuantileSketch> QuantileSketch::FromJson(const json& in) {
  if (!in.is_object()) return SketchError("expected a JSON object");
  const auto k = in.find("k");
  if (k == in.end() || !k->is_number_integer() || k->get<int64_t>() < kMinK ||
      k->get<int64_t>() > kMaxK) {
    return SketchError("'k' must be an integer from " + std::to_string(kMinK) +
                       " to " + std::to_string(kMaxK));
  }
  const auto count = in.find("count");
  if (count == in.end() || !count->is_number_integer() ||
      count->get<int64_t>() < 0) {
    return SketchError("'count' must be a non-negative integer");
  }
  const auto levels = in.find("levels");
  if (levels == in.end() || !levels->is_array() || levels->empty() ||
      levels->size() > kMaxLevels) {
    return SketchError("'levels' must be an array of 1 to " +
                       std::to_string(kMaxLevels) + " arrays of numbers");
  }

  QuantileSketch sketch(k->get<int>());
  sketch.count_ = count->get<int64_t>();
  if (sketch.count_ > 0) {
    const auto min = in.find("min");
    const auto max = in.find("max");
    if (min == in.end() || !min->is_number() || max == in.end() ||
        !max->is_number() || min->get<double>() > max->get<double>()) {
      return SketchError(
          "a non-empty sketch needs numbers 'min' <= 'max' (the smallest and "
          "largest item)");
    }
    sketch.min_ = min->get<double>();
    sketch.max_ = max->get<double>();
  }

  sketch.levels_.assign(levels->size(), {});
  int64_t weight_sum = 0;
  for (size_t level = 0; level < levels->size(); ++level) {
    const json& items = (*levels)[level];
    const std::string where = "levels[" + std::to_string(level) + "]";
    if (!items.is_array()) return SketchError(where + " must be an array");
    std::vector<double>& values = sketch.levels_[level];
    values.reserve(items.size());
    for (const json& item : items) {
      if (!item.is_number()) {
        return SketchError(where + " must hold only finite numbers");
      }
      const double value = item.get<double>();
      if (value < sketch.min_ || value > sketch.max_) {
        return SketchError(where + " holds " + item.dump() +
                           ", outside ['min', 'max']");
      }
      values.push_back(value);
    }
    if (level > 0 && !std::is_sorted(values.begin(), values.end())) {
      return SketchError(where + " must be sorted ascending");
    }
    const int64_t weight = int64_t{1} << level;
    const int64_t size = static_cast<int64_t>(values.size());
    if (size > (sketch.count_ - weight_sum) / weight) {
      return SketchError("the levels weigh more than 'count' = " +
                         std::to_string(sketch.count_));
    }
    weight_sum += size * weight;
    sketch.retained_ += size;
  }
  if (weight_sum != sketch.count_) {
    return SketchError("the levels weigh " + std::to_string(weight_sum) +
                       " items but 'count' is " +
                       std::to_string(sketch.count_) +
                       " (level h's items weigh 2^h each)");
  }
  sketch.UpdateCapacity();
  if (sketch.retained_ > sketch.capacity_) {
    return SketchError(
        "holds " + std::to_string(sketch.retained_) + " items, more than the " +
        std::to_string(sketch.capacity_) + " a sketch with k=" +
        std::to_string(sketch.k_) + " and " +
        std::to_string(sketch.levels_.size()) + " levels keeps");
  }
  return sketch;
}

}  // namespace slipway
