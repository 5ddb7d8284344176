// PredictionLog: the buffered writer of the prediction log. Serving calls
// Log() for every prediction it answers; a writer thread of the log's own
// stores the records in batches with Store::AddPredictions, so a request
// never waits for the disk.
//
// Log() never blocks on I/O and never waits for the writer: it holds a mutex
// only to append to the queue. The queue is bounded: when `capacity` records
// are logged but not yet stored (the batch being written included), Log()
// drops the record and counts it in dropped(). The log loses predictions
// rather than slow serving down or grow without bound.
//
// Batches: the writer stores a batch as soon as `max_batch` records are
// queued, and a smaller one once its oldest record has waited
// `flush_interval_micros` on the Clock, or when Flush() or Stop() asks. A
// batch the store refuses is counted in failed_batches() and logged; its
// records are not retried (the store already waited out its busy timeout),
// so the queue keeps draining.
//
// Ownership: `store` and `options.clock` must outlive the log. The
// destructor stops the writer (Stop()).
// Thread safety: Log, Flush, Stop and the counters are safe for concurrent
// use.
#ifndef SLIPWAY_MONITOR_PREDICTION_LOG_H_
#define SLIPWAY_MONITOR_PREDICTION_LOG_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/clock.h"
#include "store/store.h"

namespace slipway {

class PredictionLog {
 public:
  struct Options {
    // Records logged and not yet stored before Log() drops (at least 1).
    int64_t capacity = 100'000;
    // The most records one AddPredictions call (one transaction) stores
    // (at least 1).
    int64_t max_batch = 1'000;
    // The longest a record waits for its batch to fill (at least 1).
    int64_t flush_interval_micros = 1'000'000;
    // Time for the flush interval; nullptr: RealClock().
    Clock* clock = nullptr;
    // Run first on the writer thread (for example to pin it to CPUs);
    // empty: nothing.
    std::function<void()> writer_setup;
  };

  // Starts the writer thread. InvalidArgument naming the option when one is
  // below 1.
  static absl::StatusOr<std::unique_ptr<PredictionLog>> Create(Store* store,
                                                               Options options);

  PredictionLog(const PredictionLog&) = delete;
  PredictionLog& operator=(const PredictionLog&) = delete;
  ~PredictionLog();

  // Queues `record` for the writer and returns true; returns false (and
  // counts it in dropped()) when the queue is full or the log is stopped.
  bool Log(PredictionRecord record);

  // Waits until every record logged before the call has been through the
  // store. OK when all were stored; else the error of the last batch that
  // failed while it waited.
  absl::Status Flush();

  // Stores what is queued, then ends the writer thread. Later Log() calls
  // return false. Calling it again does nothing.
  void Stop();

  // Records Log() accepted.
  int64_t logged() const;
  // Records Log() refused (queue full or stopped).
  int64_t dropped() const;
  // Records the store inserted.
  int64_t written() const;
  // Records logged and not yet through the store.
  int64_t queued() const;
  // AddPredictions calls that failed; their records are lost.
  int64_t failed_batches() const;

 private:
  PredictionLog(Store* store, Options options);

  void WriterLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // True when the front batch should be written now.
  bool BatchDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* const store_;
  const Options options_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  // Wakes the writer: a batch filled, the first record of an empty queue,
  // a flush or a stop.
  absl::CondVar work_cv_;
  // Wakes Flush(): the writer finished a batch.
  absl::CondVar done_cv_;
  // Queued records in batches, oldest first; every batch but the last is
  // full (max_batch records). Records are numbered 1, 2, ... in Log order
  // (logged_ is the last number), and the writer takes batches in order, so
  // "done_ records processed" means exactly the records numbered 1..done_.
  std::deque<std::vector<PredictionRecord>> batches_ ABSL_GUARDED_BY(mu_);
  // When the last batch got its first record (clock_->MonotonicMicros()).
  int64_t last_batch_started_ ABSL_GUARDED_BY(mu_) = 0;
  // Records logged and not yet through the store (queued or being written).
  int64_t pending_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t logged_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  // Flush() asked for every record up to this number.
  int64_t flush_through_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t written_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_batches_ ABSL_GUARDED_BY(mu_) = 0;
  // The last failed batch's error and the number of its last record.
  absl::Status last_failure_ ABSL_GUARDED_BY(mu_);
  int64_t last_failure_through_ ABSL_GUARDED_BY(mu_) = 0;

  std::once_flag stop_once_;
  std::thread writer_;
};

// Whether to keep the inputs of the request whose id hashes to
// `request_hash`, so that about `fraction` of requests are sampled (0 or
// less: none; 1 or more: all). Deterministic: the same hash gives the same
// answer, and a request sampled at some fraction is sampled at every larger
// one, so raising the fraction keeps the earlier samples.
bool SampleInputs(uint64_t request_hash, double fraction);

}  // namespace slipway

#endif  // SLIPWAY_MONITOR_PREDICTION_LOG_H_
