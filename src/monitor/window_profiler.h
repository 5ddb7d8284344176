// WindowProfiler: the serving side of drift monitoring. It profiles every
// request row a model version answers, with the bins and categories of the
// version's training baseline, and hands the monitor one window profile
// (a ProfileSet shaped like baseline.EmptyLike(), so CompareProfiles in
// stats/drift.h takes it as is) each time the window closes.
//
// Serving calls Observe on every batch it predicts, with the encoded rows
// the model saw (models/features.h): numbers as floats, categories as their
// code in the signature, NaN for a missing cell and kUnseenCategory (a NaN
// with its own payload) for a category the signature does not know. An
// unseen cell counts in the feature's `unseen` bucket, a missing one in
// `missing`; the optional `unseen` mask marks more cells as unseen, for
// callers whose unseen cells are plain NaNs.
//
// Cost: the state is split over kShards shards, each behind its own mutex;
// a thread always records into the shard picked for it on its first call
// (round robin), so threads contend only when there are more of them than
// shards, or with Collect. Observe takes one lock per call, whatever the
// number of rows. Categorical cells go through a table built once from the
// baseline (code -> top-k slot, "other" or "unseen"), so no string is
// hashed or compared per cell; numeric cells go into a NumericProfile per
// shard (moments, bins, quantile sketch), fed 512 values of one feature at
// a time, sorted, so the work stays in cache and branch-free.
//
// Collect swaps every shard for an empty one under its lock and merges the
// taken state outside it, so Observe waits at most for a swap. Rows
// observed while Collect runs land in this window or the next, never in
// neither.
//
// Thread safety: Observe and Collect may be called concurrently from any
// threads; the object must outlive every call.
#ifndef SLIPWAY_MONITOR_WINDOW_PROFILER_H_
#define SLIPWAY_MONITOR_WINDOW_PROFILER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "models/signature.h"
#include "stats/profile.h"

namespace slipway {

class WindowProfiler {
 public:
  static constexpr size_t kShards = 8;

  // A profiler for the model version whose request signature is `signature`
  // and whose training baseline is `baseline` (train/baseline.h: one
  // profile per signature feature, numeric or categorical as the signature
  // types it, and optionally the prediction: numeric for binary
  // classification and regression, categorical by class label for
  // multiclass). InvalidArgument naming the feature when the two do not
  // match.
  static absl::StatusOr<std::unique_ptr<WindowProfiler>> Create(
      const ProfileSet& baseline, const Signature& signature);

  WindowProfiler(const WindowProfiler&) = delete;
  WindowProfiler& operator=(const WindowProfiler&) = delete;

  // Profiles `num_rows` encoded request rows and the model's predictions
  // for them.
  // REQUIRES: `rows` holds num_rows * signature.features().size() floats,
  //   row-major in signature order (NaN: missing or unseen; categorical
  //   cells hold the category code).
  // REQUIRES: `predictions` is null (the prediction is not profiled) or
  //   holds num_rows * width floats, width == signature.output_width()
  //   (P(class 1) for binary classification, the value for regression, one
  //   probability per class for multiclass, whose predicted label is the
  //   arg max, the lowest class on a tie).
  // REQUIRES: `unseen` is null or holds one byte per cell of `rows`, 1 when
  //   the cell held a category the signature does not know.
  void Observe(const float* rows, size_t num_rows, const float* predictions,
               size_t width, const uint8_t* unseen);

  // The profile of every row observed since the previous Collect (or since
  // creation): features in the baseline's order, the prediction when the
  // baseline has one, `rows` the number of rows observed. Starts the next
  // window.
  ProfileSet Collect();

 private:
  // Where a feature's cells are counted.
  struct FeaturePlan {
    bool numeric = true;
    // Numeric: index into ShardState::numeric. Categorical: offset of the
    // feature's block in ShardState::category_counts.
    size_t index = 0;
    // Categorical: the baseline's top-k count; the block holds the top-k
    // slots, then kOther, kUnseen and kMissing after them.
    size_t top_k = 0;
    // Categorical: slot (in the block) of each category code of the
    // signature (a class index, for the prediction).
    std::vector<uint32_t> slot_of_code;
  };
  // Block slots after the top-k ones.
  static constexpr size_t kOther = 0;
  static constexpr size_t kUnseen = 1;
  static constexpr size_t kMissing = 2;
  static constexpr size_t kExtraSlots = 3;

  // A numeric feature (or prediction) in a shard. Finite values wait in
  // `pending` and go into `profile` kPendingValues at a time, through
  // `batch`: sorted by a branch-free radix sort, binned by one walk over
  // the edges, summarized (sum and two-pass M2, a fresh sketch fed in
  // order, so its compactions sort sorted runs) and merged once, instead of
  // a NumericProfile::Add per cell, whose bin search mispredicts and whose
  // sketch sorts random values at every compaction of its smallest level.
  struct NumericState {
    static constexpr size_t kPendingValues = 512;

    NumericProfile profile;
    // The first num_pending entries wait for the next Flush.
    std::vector<float> pending = std::vector<float>(kPendingValues);
    size_t num_pending = 0;
    std::vector<float> scratch = std::vector<float>(kPendingValues);
    NumericProfile batch;  // empty between flushes

    explicit NumericState(const NumericProfile& baseline);

    void Add(float value);
    // Moves the pending values into `profile`.
    void Flush();
  };

  struct ShardState {
    std::vector<NumericState> numeric;
    std::vector<int64_t> category_counts;
    int64_t rows = 0;
  };

  struct alignas(64) Shard {
    absl::Mutex mu;
    ShardState state ABSL_GUARDED_BY(mu);
  };

  WindowProfiler() = default;

  // A shard's state with nothing counted.
  ShardState EmptyState() const;
  // The shard of the calling thread.
  Shard& ThreadShard();
  // Adds the counts of `taken` (flushed first) to `window`.
  void MergeState(ShardState& taken, ProfileSet* window) const;

  // Immutable after Create.
  ProfileSet empty_window_;  // baseline.EmptyLike()
  // One plan per signature feature, in signature order, and the profile
  // each fills in empty_window_.features.
  std::vector<FeaturePlan> features_;
  std::vector<size_t> profile_of_feature_;
  bool profile_prediction_ = false;
  FeaturePlan prediction_;
  size_t num_categorical_slots_ = 0;
  std::vector<NumericState> empty_numeric_;

  std::array<Shard, kShards> shards_;
};

}  // namespace slipway

#endif  // SLIPWAY_MONITOR_WINDOW_PROFILER_H_
