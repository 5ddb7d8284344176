// QuantileSketch: a mergeable summary of a stream of doubles that answers
// rank (CDF) and quantile queries within a small, known error, in memory
// that grows with log(n) instead of n. Monitoring keeps one per numeric
// feature and for the prediction: the baseline's at training time, and one
// per serving thread and window, merged across threads and replicas.
//
// Algorithm: KLL (Karnin, Lang, Liberty, "Optimal Quantile Approximation in
// Streams", FOCS 2016) with the parameters of Apache DataSketches' KLL:
// level h holds items of weight 2^h; the top level holds k items and each
// level below holds 2/3 of the one above, at least 8; when the sketch is
// full, the lowest full level is sorted and compacted (every other item,
// starting at offset 0 or 1, moves up one level with twice the weight; an
// odd item out stays). The total weight of the retained items is always
// exactly count().
//
// Error bound: a rank query is within
//   RankError(k) = 2.296 / k^0.9723     (0.0133 for k = 200)
// of the true normalized rank with 99% confidence (DataSketches'
// empirically fitted bound for single-sided rank queries; the paper's
// guarantee is O(1/k) up to log log factors). A difference of two ranks (a
// histogram bucket, a KS distance between a sketch and exact data) can be
// off by twice that. quantile_sketch_test.cc measures the max error over
// 1000 probe points on 1e6 uniform and lognormal items against RankError.
// While count() <= k nothing is compacted and every answer is exact.
//
// Determinism: the compaction offset is a hash of (count(), level), not a
// random draw, so the same inputs in the same order (and the same merges in
// the same order) give the same sketch on every machine; Merge(a, b) and
// Merge(b, a) retain the same items.
//
// Memory: O(k log(n/k)) doubles (about 3k + 8 log2(n/k)).
//
// Only finite values are summarized: Add ignores NaN and infinities (they
// are not counted). Profiles (profile.h) count missing and non-finite values
// separately and never pass them here.
//
// Thread safety: a plain value, used by one thread at a time; const methods
// may run concurrently while no thread mutates the instance.
#ifndef SLIPWAY_STATS_QUANTILE_SKETCH_H_
#define SLIPWAY_STATS_QUANTILE_SKETCH_H_

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipway {

class QuantileSketch {
 public:
  static constexpr int kDefaultK = 200;
  static constexpr int kMinK = 8;
  static constexpr int kMaxK = 65535;

  // The normalized rank error at 99% confidence for parameter k (see the
  // file comment).
  static double RankError(int k);

  // k outside [kMinK, kMaxK] is clamped into it.
  explicit QuantileSketch(int k = kDefaultK);

  // Adds one item. Non-finite values are ignored. O(1) amortized;
  // allocation-free once the levels have grown to their capacity.
  void Add(double value);

  // Adds every item `other` summarized. InvalidArgument (and no change)
  // when the two sketches have different k.
  absl::Status Merge(const QuantileSketch& other);

  int k() const { return k_; }
  // Number of items added (directly or through merges).
  int64_t count() const { return count_; }
  bool empty() const { return count_ == 0; }
  // Exact smallest and largest item; NaN when empty.
  double min() const { return empty() ? kNaN : min_; }
  double max() const { return empty() ? kNaN : max_; }
  // Number of items the sketch holds (O(k log(n/k))).
  int64_t retained() const { return retained_; }

  // The smallest retained item v with Rank(v) >= q: the ceil(q*n)-th
  // smallest item when the sketch is exact. q is clamped to [0, 1];
  // Quantile(0) is min() and Quantile(1) is max(). NaN when empty.
  double Quantile(double q) const;

  // Estimated fraction of items <= x (the empirical CDF at x). NaN when
  // empty.
  double Rank(double x) const;

  // The retained items as (value, weight) pairs sorted by value, one pair
  // per distinct value; the weights sum to count(). The distribution these
  // describe is the sketch's estimate of the data (exact when count() <= k),
  // so statistics computed on it (KS, Wasserstein) inherit RankError.
  std::vector<std::pair<double, int64_t>> Items() const;

  // {"k": 200, "count": n, "min": x, "max": y, "levels": [[...], ...]}:
  // level h's items (weight 2^h) as an array; min and max are absent when
  // empty. FromJson validates the shape (k in range, levels above 0 sorted,
  // weights summing to count, items within [min, max]) and returns
  // InvalidArgument naming the field to fix.
  nlohmann::json ToJson() const;
  static absl::StatusOr<QuantileSketch> FromJson(const nlohmann::json& json);

 private:
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

  // Capacity of `level` when the sketch has `num_levels` levels.
  int LevelCapacity(int level, int num_levels) const;
  void UpdateCapacity();
  // Compacts the lowest level at or above its capacity.
  void CompactLowestFullLevel();
  void Compact(int level);

  int k_;
  int64_t count_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
  // levels_[0] is unsorted (Add appends to it); levels above are sorted.
  std::vector<std::vector<double>> levels_;
  int64_t retained_ = 0;
  int64_t capacity_ = 0;  // sum of the level capacities
};

}  // namespace slipway

#endif  // SLIPWAY_STATS_QUANTILE_SKETCH_H_
