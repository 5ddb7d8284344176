// Profiles: mergeable summaries of the values of one feature (or of the
// prediction) that monitoring compares to detect drift.
//
// Training computes a baseline profile of every feature and of the
// prediction (Baseline) and stores it with the model version. Serving starts
// each thread's window from EmptyLike() of the baseline — same bin edges,
// same known categories, nothing counted — and Adds every prediction's
// values; the monitor Merges the windows of its threads and replicas and
// compares the result to the baseline (drift.h).
//
// Merging is exact for every count, for min/max, and for mean/variance up
// to rounding (Chan et al.'s parallel formula), and it is associative and
// commutative, so windows combine in any grouping and order. The quantile
// sketch merges within its rank error (quantile_sketch.h). Merge checks
// that both profiles come from the same baseline (same bin edges, same
// known categories, same sketch k) and changes nothing when they do not.
//
// Missing values: NumericProfile counts NaN and infinities as missing (no
// usable number); `count` is the number of non-missing values. Neither
// kind adds a missing value to its statistics.
//
// Add is O(log bins) / O(log categories), and allocation-free once the
// sketch's levels have grown: serving calls it per feature per prediction.
//
// Thread safety: plain values; one thread at a time per instance. Copies
// of a CategoricalProfile share its immutable set of baseline categories,
// so copies may be used by different threads.
#ifndef SLIPWAY_STATS_PROFILE_H_
#define SLIPWAY_STATS_PROFILE_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "stats/quantile_sketch.h"

namespace slipway {

// Summary of a numeric feature.
struct NumericProfile {
  static constexpr int kDefaultBins = 10;

  int64_t count = 0;    // non-missing values
  int64_t missing = 0;  // missing, NaN or infinite values
  // Smallest and largest value; +inf / -inf while count == 0.
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  // Running mean and sum of squared deviations from it (Welford).
  double mean = 0;
  double m2 = 0;
  QuantileSketch sketch;
  // Ascending, distinct bin edges, fixed from the baseline's quantiles.
  std::vector<double> edges;
  // edges.size() + 1 buckets: bins[0] counts values < edges[0], bins[i]
  // values in [edges[i-1], edges[i]), bins.back() values >= edges.back().
  // With no edges, one bucket counts every value.
  std::vector<int64_t> bins = std::vector<int64_t>(1, 0);

  // The profile of `values` (non-finite values count as missing, on top of
  // `missing`) with edges at the quantiles 1/num_bins, ..., (num_bins-1)/
  // num_bins: edge j is the value at sorted position floor(j*n/num_bins),
  // so each bucket [edges[j-1], edges[j]) holds about n/num_bins values.
  // Repeated edges are dropped: a constant feature gets one edge (its
  // value), no values get none. num_bins < 1 is treated as 1 (no edges).
  static NumericProfile Baseline(std::span<const double> values,
                                 int64_t missing = 0,
                                 int num_bins = kDefaultBins);

  // Same edges and sketch k, nothing counted: what a serving window starts
  // from.
  NumericProfile EmptyLike() const;

  // Non-finite values count as missing.
  void Add(double value);
  void AddMissing() { ++missing; }

  // InvalidArgument (and no change) when the edges or sketch k differ.
  absl::Status Merge(const NumericProfile& other);

  // Population variance and standard deviation (divided by count, not
  // count - 1: a profile describes the values it saw, it does not estimate
  // a wider population); 0 when count < 2.
  double Variance() const;
  double Stddev() const;
  // missing / (count + missing); 0 when nothing was seen.
  double MissingRate() const;

  nlohmann::json ToJson() const;
  static absl::StatusOr<NumericProfile> FromJson(const nlohmann::json& json);
};

// An immutable set of category names, held as their 64-bit hashes (FNV-1a
// with a final mix; the hash is part of the JSON format, so it never
// changes). 8 bytes a category, whatever the length of the names, shared by
// every copy. A name that is not in the set is reported as in it only when
// its hash collides with one of the n members: probability about
// n / 1.8e19.
class CategorySet {
 public:
  CategorySet() = default;
  static CategorySet FromNames(std::span<const std::string_view> names);

  bool Contains(std::string_view name) const;
  size_t size() const { return hashes_ ? hashes_->size() : 0; }
  bool operator==(const CategorySet& other) const;

  // The hashes, ascending, as 16 lowercase hex digits each, concatenated.
  std::string ToHex() const;
  // InvalidArgument when `hex` is not a whole number of ascending hashes.
  static absl::StatusOr<CategorySet> FromHex(std::string_view hex);

 private:
  explicit CategorySet(std::vector<uint64_t> sorted_hashes);

  std::shared_ptr<const std::vector<uint64_t>> hashes_;
};

// Summary of a categorical feature.
//
// The baseline keeps exact counts for its top_k most frequent categories
// (ties broken by name) and remembers every other category it saw in a
// CategorySet (8 bytes each, shared by every window made with EmptyLike),
// so a window tells apart "another category training saw" (other) from "a
// category training never saw" (unseen) without keeping the names of a
// high-cardinality feature.
struct CategoricalProfile {
  static constexpr int kDefaultTopK = 50;

  int64_t count = 0;    // non-missing values
  int64_t missing = 0;
  // One entry per top-k baseline category (zero counts included: the keys
  // are the baseline's top-k and never change after Baseline).
  std::map<std::string, int64_t, std::less<>> counts;
  int64_t other = 0;   // values of baseline categories outside the top-k
  int64_t unseen = 0;  // values of categories the baseline never saw
  // The baseline's categories outside the top-k.
  CategorySet other_categories;

  // The profile of `values` (a column's cells, missing ones excluded and
  // counted in `missing`). top_k < 0 is treated as 0.
  static CategoricalProfile Baseline(std::span<const std::string_view> values,
                                     int64_t missing = 0,
                                     int top_k = kDefaultTopK);
  // The same from per-category counts (a dictionary-encoded column's
  // dictionary and code counts): `category_counts` holds distinct names.
  static CategoricalProfile BaselineFromCounts(
      std::vector<std::pair<std::string, int64_t>> category_counts,
      int64_t missing = 0, int top_k = kDefaultTopK);

  // Same categories, nothing counted.
  CategoricalProfile EmptyLike() const;

  void Add(std::string_view value);
  void AddMissing() { ++missing; }

  // InvalidArgument (and no change) when the top-k categories or the
  // remembered baseline categories differ.
  absl::Status Merge(const CategoricalProfile& other);

  // missing / (count + missing); 0 when nothing was seen.
  double MissingRate() const;

  nlohmann::json ToJson() const;
  static absl::StatusOr<CategoricalProfile> FromJson(
      const nlohmann::json& json);
};

// The profile of one named feature (or of the prediction).
struct FeatureProfile {
  std::string name;
  std::variant<NumericProfile, CategoricalProfile> profile;

  bool is_numeric() const {
    return std::holds_alternative<NumericProfile>(profile);
  }

  FeatureProfile EmptyLike() const;
  // InvalidArgument (and no change) naming the feature when the names, the
  // kinds or the baselines differ.
  absl::Status Merge(const FeatureProfile& other);

  // {"name": ..., "kind": "numeric" | "categorical", ...the profile's
  // fields}.
  nlohmann::json ToJson() const;
  static absl::StatusOr<FeatureProfile> FromJson(const nlohmann::json& json);
};

// The profiles of a model's features and prediction over a set of rows: a
// baseline (training data) or a serving window.
struct ProfileSet {
  static constexpr int kJsonVersion = 1;

  std::vector<FeatureProfile> features;
  std::optional<FeatureProfile> prediction;
  int64_t rows = 0;

  // The feature named `name`, or nullptr.
  const FeatureProfile* Find(std::string_view name) const;
  FeatureProfile* Find(std::string_view name);

  ProfileSet EmptyLike() const;
  // Merges features by name. InvalidArgument (and no change) when the sets
  // of feature names differ, one side has a prediction profile and the
  // other not, or a feature's profiles cannot merge (the message names it).
  absl::Status Merge(const ProfileSet& other);

  // {"version": 1, "rows": n, "features": [...], "prediction": {...}}
  // ("prediction" absent when there is none). FromJson refuses other
  // versions and duplicate feature names.
  nlohmann::json ToJson() const;
  static absl::StatusOr<ProfileSet> FromJson(const nlohmann::json& json);
};

}  // namespace slipway

#endif  // SLIPWAY_STATS_PROFILE_H_
