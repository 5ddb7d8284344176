#include "monitor/window_profiler.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "models/features.h"

namespace slipway {
namespace {

constexpr std::string_view kRecompute =
    "; the baseline must be the one computed for this model version "
    "(re-register the version to recompute it)";

std::string_view KindName(bool numeric) {
  return numeric ? "numeric" : "categorical";
}

// The slot a category text takes in a window of `profile`, as
// CategoricalProfile::Add would count it: its top-k position, "other" for
// the baseline's remembered categories, else "unseen".
uint32_t SlotOfText(const CategoricalProfile& profile, std::string_view text,
                    uint32_t other_slot, uint32_t unseen_slot) {
  uint32_t position = 0;
  for (const auto& entry : profile.counts) {
    if (entry.first == text) return position;
    ++position;
  }
  return profile.other_categories.Contains(text) ? other_slot : unseen_slot;
}

// Sorts finite floats ascending: a least-significant-digit radix sort on
// their bits, 4 passes of 8 bits, with no data-dependent branch (std::sort
// mispredicts about every other comparison on random values, which made it
// the largest cost of Observe). A digit every value shares (the sign and
// exponent of values of one magnitude) costs no pass. `scratch` holds as
// many floats as `values`.
void RadixSort(std::span<float> values, float* scratch) {
  const size_t n = values.size();
  if (n < 2) return;
  // Unsigned keys in the floats' order: flip every bit of a negative, only
  // the sign bit of a positive.
  const auto key = [](float value) {
    const uint32_t bits = std::bit_cast<uint32_t>(value);
    return bits ^ (static_cast<uint32_t>(static_cast<int32_t>(bits) >> 31) |
                   0x80000000u);
  };
  const auto digit = [&key](float value, int pass) {
    return (key(value) >> (8 * pass)) & 255;
  };
  std::array<std::array<uint32_t, 256>, 4> offsets{};
  for (float value : values) {
    const uint32_t k = key(value);
    for (int pass = 0; pass < 4; ++pass) {
      ++offsets[pass][(k >> (8 * pass)) & 255];
    }
  }
  float* from = values.data();
  float* to = scratch;
  for (int pass = 0; pass < 4; ++pass) {
    std::array<uint32_t, 256>& offset = offsets[pass];
    if (offset[digit(from[0], pass)] == n) continue;
    uint32_t sum = 0;
    for (uint32_t& o : offset) {
      const uint32_t count = o;
      o = sum;
      sum += count;
    }
    for (size_t i = 0; i < n; ++i) to[offset[digit(from[i], pass)]++] = from[i];
    std::swap(from, to);
  }
  if (from != values.data()) std::copy(from, from + n, values.data());
}

}  // namespace

WindowProfiler::NumericState::NumericState(const NumericProfile& baseline)
    : profile(baseline.EmptyLike()), batch(baseline.EmptyLike()) {}

void WindowProfiler::NumericState::Add(float value) {
  if (!std::isfinite(value)) {
    profile.AddMissing();
    return;
  }
  pending[num_pending++] = value;
  if (num_pending == kPendingValues) Flush();
}

void WindowProfiler::NumericState::Flush() {
  if (num_pending == 0) return;
  const std::span<float> values(pending.data(), num_pending);
  // Sorted, the values find their bins by one walk over the edges, and
  // reach the sketch in order, so its own sort of them is cheap.
  RadixSort(values, scratch.data());
  batch.min = values.front();
  batch.max = values.back();
  double sum = 0;
  size_t bin = 0;
  const size_t num_edges = batch.edges.size();
  for (float value : values) {
    const double v = value;
    sum += v;
    // The number of edges <= v, as NumericProfile::Add's upper_bound.
    while (bin < num_edges && batch.edges[bin] <= v) ++bin;
    ++batch.bins[bin];
  }
  for (float value : values) batch.sketch.Add(value);
  batch.count = static_cast<int64_t>(num_pending);
  batch.mean = sum / static_cast<double>(batch.count);
  for (float value : values) {
    const double deviation = value - batch.mean;
    batch.m2 += deviation * deviation;
  }
  // Both are EmptyLike copies of the same baseline profile, so the merge
  // cannot be refused.
  profile.Merge(batch).IgnoreError();

  batch.count = 0;
  batch.min = std::numeric_limits<double>::infinity();
  batch.max = -std::numeric_limits<double>::infinity();
  batch.mean = 0;
  batch.m2 = 0;
  std::fill(batch.bins.begin(), batch.bins.end(), 0);
  batch.sketch = QuantileSketch(batch.sketch.k());
  num_pending = 0;
}

absl::StatusOr<std::unique_ptr<WindowProfiler>> WindowProfiler::Create(
    const ProfileSet& baseline, const Signature& signature) {
  std::unique_ptr<WindowProfiler> profiler(new WindowProfiler());
  profiler->empty_window_ = baseline.EmptyLike();
  const std::vector<FeatureSpec>& specs = signature.features();
  if (baseline.features.size() != specs.size()) {
    for (const FeatureProfile& profile : baseline.features) {
      if (signature.FeatureIndex(profile.name) < 0) {
        return absl::InvalidArgumentError(
            "window profiler: the baseline profiles feature '" +
            profile.name + "', which the model's signature does not have" +
            std::string(kRecompute));
      }
    }
  }

  size_t num_numeric = 0;
  for (const FeatureSpec& spec : specs) {
    const FeatureProfile* profile = baseline.Find(spec.name);
    if (profile == nullptr) {
      return absl::InvalidArgumentError(
          "window profiler: the baseline has no profile of feature '" +
          spec.name + "'" + std::string(kRecompute));
    }
    if (profile->is_numeric() == spec.is_categorical()) {
      return absl::InvalidArgumentError(
          "window profiler: feature '" + spec.name + "' is " +
          std::string(KindName(!spec.is_categorical())) +
          " in the signature but " +
          std::string(KindName(profile->is_numeric())) + " in the baseline" +
          std::string(kRecompute));
    }
    FeaturePlan plan;
    plan.numeric = profile->is_numeric();
    if (plan.numeric) {
      plan.index = num_numeric++;
      profiler->empty_numeric_.emplace_back(
          std::get<NumericProfile>(profile->profile));
    } else {
      const auto& categories = std::get<CategoricalProfile>(profile->profile);
      plan.index = profiler->num_categorical_slots_;
      plan.top_k = categories.counts.size();
      plan.slot_of_code.reserve(spec.categories.size());
      for (const std::string& text : spec.categories) {
        plan.slot_of_code.push_back(SlotOfText(
            categories, text, static_cast<uint32_t>(plan.top_k + kOther),
            static_cast<uint32_t>(plan.top_k + kUnseen)));
      }
      profiler->num_categorical_slots_ += plan.top_k + kExtraSlots;
    }
    profiler->features_.push_back(std::move(plan));
    profiler->profile_of_feature_.push_back(
        static_cast<size_t>(profile - baseline.features.data()));
  }

  if (baseline.prediction) {
    const FeatureProfile& profile = *baseline.prediction;
    const bool numeric_expected =
        signature.task() != Task::kMulticlassClassification;
    if (profile.is_numeric() != numeric_expected) {
      return absl::InvalidArgumentError(
          "window profiler: the baseline's prediction profile is " +
          std::string(KindName(profile.is_numeric())) + " but a " +
          std::string(TaskName(signature.task())) + " model's prediction is " +
          std::string(KindName(numeric_expected)) + std::string(kRecompute));
    }
    FeaturePlan& plan = profiler->prediction_;
    plan.numeric = numeric_expected;
    if (plan.numeric) {
      plan.index = num_numeric++;
      profiler->empty_numeric_.emplace_back(
          std::get<NumericProfile>(profile.profile));
    } else {
      const auto& labels = std::get<CategoricalProfile>(profile.profile);
      plan.index = profiler->num_categorical_slots_;
      plan.top_k = labels.counts.size();
      for (const std::string& label : signature.class_labels()) {
        plan.slot_of_code.push_back(SlotOfText(
            labels, label, static_cast<uint32_t>(plan.top_k + kOther),
            static_cast<uint32_t>(plan.top_k + kUnseen)));
      }
      profiler->num_categorical_slots_ += plan.top_k + kExtraSlots;
    }
    profiler->profile_prediction_ = true;
  }

  for (Shard& shard : profiler->shards_) {
    absl::MutexLock lock(&shard.mu);
    shard.state = profiler->EmptyState();
  }
  return profiler;
}

WindowProfiler::ShardState WindowProfiler::EmptyState() const {
  ShardState state;
  state.numeric = std::vector<NumericState>(empty_numeric_);
  state.category_counts.assign(num_categorical_slots_, 0);
  return state;
}

WindowProfiler::Shard& WindowProfiler::ThreadShard() {
  // Round robin rather than a hash of the thread id: the first kShards
  // threads that observe never share a shard. The index is per thread, not
  // per profiler, so a thread keeps no pointer to any profiler.
  static std::atomic<size_t> next_shard{0};
  thread_local const size_t shard =
      next_shard.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shards_[shard];
}

void WindowProfiler::Observe(const float* rows, size_t num_rows,
                             const float* predictions, size_t width,
                             const uint8_t* unseen) {
  const size_t num_features = features_.size();
  Shard& shard = ThreadShard();
  absl::MutexLock lock(&shard.mu);
  ShardState& state = shard.state;
  NumericState* numeric = state.numeric.data();
  int64_t* counts = state.category_counts.data();
  for (size_t row = 0; row < num_rows; ++row) {
    const float* cells = rows + row * num_features;
    for (size_t f = 0; f < num_features; ++f) {
      const FeaturePlan& plan = features_[f];
      if (plan.numeric) {
        numeric[plan.index].Add(cells[f]);
        continue;
      }
      int64_t* block = counts + plan.index;
      const float cell = cells[f];
      if (unseen != nullptr && unseen[row * num_features + f] != 0) {
        ++block[plan.top_k + kUnseen];
      } else if (std::isnan(cell)) {
        ++block[plan.top_k +
                (IsUnseenCategory(cell) ? kUnseen : kMissing)];
      } else if (cell >= 0 &&
                 cell < static_cast<float>(plan.slot_of_code.size()) &&
                 cell == std::floor(cell)) {
        ++block[plan.slot_of_code[static_cast<size_t>(cell)]];
      } else {
        // Not a code of the signature: a category it does not know.
        ++block[plan.top_k + kUnseen];
      }
    }
  }
  if (profile_prediction_ && predictions != nullptr) {
    if (prediction_.numeric) {
      NumericState& prediction = numeric[prediction_.index];
      for (size_t row = 0; row < num_rows; ++row) {
        prediction.Add(predictions[row * width]);
      }
    } else {
      int64_t* block = counts + prediction_.index;
      const size_t classes = std::min(width, prediction_.slot_of_code.size());
      for (size_t row = 0; row < num_rows; ++row) {
        const float* p = predictions + row * width;
        // The arg max over the numbers of the row, lowest class on a tie;
        // a row without a number has no predicted label.
        size_t best = classes;
        for (size_t k = 0; k < classes; ++k) {
          if (!std::isnan(p[k]) && (best == classes || p[k] > p[best])) {
            best = k;
          }
        }
        ++block[best == classes ? prediction_.top_k + kMissing
                                : prediction_.slot_of_code[best]];
      }
    }
  }
  state.rows += static_cast<int64_t>(num_rows);
}

void WindowProfiler::MergeState(ShardState& taken, ProfileSet* window) const {
  const auto merge = [&](const FeaturePlan& plan, FeatureProfile* into) {
    if (plan.numeric) {
      NumericState& numeric = taken.numeric[plan.index];
      numeric.Flush();
      // Both are EmptyLike copies of the same baseline profile, so the
      // merge cannot be refused.
      std::get<NumericProfile>(into->profile)
          .Merge(numeric.profile)
          .IgnoreError();
      return;
    }
    auto& profile = std::get<CategoricalProfile>(into->profile);
    const int64_t* block = taken.category_counts.data() + plan.index;
    int64_t present = 0;
    size_t slot = 0;
    for (auto& entry : profile.counts) {
      entry.second += block[slot];
      present += block[slot];
      ++slot;
    }
    profile.other += block[plan.top_k + kOther];
    profile.unseen += block[plan.top_k + kUnseen];
    profile.missing += block[plan.top_k + kMissing];
    profile.count += present + block[plan.top_k + kOther] +
                     block[plan.top_k + kUnseen];
  };
  for (size_t f = 0; f < features_.size(); ++f) {
    merge(features_[f], &window->features[profile_of_feature_[f]]);
  }
  if (profile_prediction_) merge(prediction_, &*window->prediction);
  window->rows += taken.rows;
}

ProfileSet WindowProfiler::Collect() {
  ProfileSet window = empty_window_;
  for (Shard& shard : shards_) {
    ShardState taken = EmptyState();
    {
      absl::MutexLock lock(&shard.mu);
      std::swap(taken, shard.state);
    }
    MergeState(taken, &window);
  }
  return window;
}

}  // namespace slipway
