// Batch scoring: streams a DataSource through a Model into a DataSink, chunk
// by chunk, in bounded memory (the `score` step of a score pipeline and
// `slipway_bench_score`).
//
// Each output row is the input row's kept columns (`keep`, in that order;
// every input column when `keep` is empty), then the prediction columns,
// then `model_version` (int64):
//   binary classification      `prediction` (the class label, typed like the
//                              target: int64, bool, float64 or string) and
//                              `probability` (P of class index 1, float64);
//   multiclass classification  `prediction` and `probability_<label>` per
//                              class, in class index order;
//   regression                 `prediction` (float64).
// The predicted class is the most probable one (the lower index on a tie),
// as serving answers. Rows leave in the order they were read.
//
// Work is split over threads: the calling thread reads chunks, one thread
// encodes them (models/features.h, against model.signature()) and predicts
// each chunk in `threads` slices at once (XGBoost 1.7's in-place prediction
// runs on the calling thread only), and one thread writes them. At most
// `max_chunks_in_flight` chunks exist at a time: a chunk counts from the
// moment the source is asked for it until the sink has taken it.
//
// Outcome: on success the sink is finished (Finish() committed it) and the
// report says how many rows were written. On any failure or cancellation
// the sink is left unfinished, so destroying it leaves no partial output.
// Errors: InvalidArgument naming the source and the missing columns when a
// model feature or a kept column is absent (or a kept column clashes with an
// output column); Cancelled when `cancel` was set; otherwise the source's
// or the sink's own error (their messages name them), or the encoding's or
// the model's prefixed with "scoring <source>".
//
// Thread safety: ScoreStream uses `source` and `sink` from one thread each
// and shares the (thread-safe) Model; the caller must not touch source or
// sink until it returns. `progress` is called from the writing thread.
#ifndef SLIPWAY_PIPELINE_SCORE_H_
#define SLIPWAY_PIPELINE_SCORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "data/connector.h"
#include "models/model.h"

namespace slipway {

struct ScoreOptions {
  // Threads predicting each chunk; 0: one per core.
  int threads = 0;
  // Chunks read from the source and not yet written, at most. REQUIRES: > 0.
  int max_chunks_in_flight = 3;
  // Checked before every chunk; when it reads true, scoring stops with
  // Cancelled. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Called after each chunk is written, with the rows written so far. May
  // be empty.
  std::function<void(int64_t rows)> progress;
  Clock* clock = RealClock();  // times the report's `seconds`
};

struct ScoreReport {
  int64_t rows = 0;
  double seconds = 0;  // from the first read to the committed sink
  // The source's Fingerprint() after its last chunk.
  std::string source_fingerprint;
};

absl::StatusOr<ScoreReport> ScoreStream(DataSource* source, const Model& model,
                                        int64_t model_version,
                                        const std::vector<std::string>& keep,
                                        DataSink* sink,
                                        const ScoreOptions& options);

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_SCORE_H_
