// Dynamic batching: concurrent prediction requests for one model version
// are grouped into one Model::Predict call, the way Triton's
// dynamic_batch_scheduler does (STYLE.md rule 14).
//
// BatchScheduler is the interface the handlers enqueue into, with one
// ownership rule (Triton's src/scheduler.h): Enqueue takes the request only
// when it succeeds, and then guarantees exactly one call of its `done`
// callback; when Enqueue fails the caller still owns the request and must
// answer it.
//
// DynamicBatcher, one per served (app, version), batches on one worker
// thread (on Model::max_concurrency() threads for a blocking() model, such
// as a pool of Python workers), or, with max_delay_us 0, requests arriving
// on an HTTP I/O thread (io_round.h) and a model that does not block, on
// that I/O thread itself: requests read in one pass
// of its event loop queue up, and at the end of the pass one call predicts
// them and answers them, with no thread hop and no wake-up. Either way:
// - a batch is made of whole requests in arrival order (a request's rows are
//   never split; a request of more than max_batch rows runs alone), at most
//   max_batch rows;
// - the worker waits at most max_delay_us after the first request of the
//   batch arrived, and flushes at once when max_batch rows are waiting (a
//   lone request on an idle batcher waits max_delay_us); an I/O thread
//   flushes at the end of its pass, in batches of at most max_batch rows;
// - at most max_queue rows wait (both queues together); Enqueue beyond that fails with
//   ResourceExhausted (the HTTP layer answers 503 with Retry-After). A
//   request larger than max_queue is accepted only into an empty queue, so
//   it is served rather than refused forever;
// - each batch is one Predict call; its outputs are scattered back to the
//   requests in order, or its error is given to each of them.
// Shutdown (and the destructor) stops accepting (Unavailable) and completes
// every queued request by running it, without waiting for max_delay, so no
// accepted request is ever dropped.
//
// DirectScheduler is batching turned off (`enabled: false` or max_batch 1):
// Enqueue runs Predict on the caller's thread, with no queue.
//
// Lifetime: a scheduler holds a shared_ptr to its Model, so the version
// stays loaded while its batcher lives; the model manager hands the
// scheduler out with each ServableHandle, so after a hot swap requests that
// hold the old handle finish on the old version's batcher and new ones go to
// the new one. The destructor joins the worker: a `done` callback must not
// own the scheduler (the worker would join itself).
//
// Defaults, from measurements on the 2-core VM this was written on.
// Model::Predict of the XGBoost backend (binary:logistic, 100 trees of depth
// 6, 30 float features, one thread): 1 row 24 us, 8 rows 34 us, 16 rows
// 45 us, 32 rows 68 us, 64 rows 114 us, 128 rows 200 us, 256 rows 376 us;
// about 23 us per call plus 1.4 us per row. A batch of 64 predicts 13x more
// rows per second than 64 single-row calls, while beyond 64 rows the cost
// per row barely falls (1.8 -> 1.5 us) and the batch's latency doubles:
// max_batch 64. max_queue 8192 rows is 128 full batches, about 12 ms of
// backend work (and 1 MiB of features at 30 per row), before clients are
// told to back off: room for several concurrent 1024-row requests, which
// a queue of a few batches would refuse.
// End to end, when every request went through the worker thread (before
// batching on I/O threads; `slipway server`, 2 HTTP threads, the
// breast-cancer demo model of 150 trees of depth 4; closed-loop clients on
// the same VM, each sending one row per request over a keep-alive
// connection; requests/s and latency; bench/results/serving.md has the
// current numbers):
//   clients  batching off          max_delay_us 0        max_delay_us 500
//   1        5.1k/s  p50 0.19 ms   3.9k/s  p50 0.25 ms   1.2k/s  p50 0.81 ms
//   16       10.2k/s p99 2.8 ms    21.5k/s p99 1.4 ms    14.4k/s p99 1.7 ms
//   64       9.6k/s  p99 9.8 ms    23.9k/s p99 4.2 ms    24.6k/s p99 3.9 ms
// Batching more than doubles throughput under concurrency. Waiting pays
// only when the worker is idle with a partial batch: while it predicts, the
// next requests queue behind it and the next batch takes them all, so
// max_delay_us 0 keeps most of the gain, whereas 500 costs every request at
// low concurrency about 0.6 ms: the default is 0 (here and in the app
// spec's endpoint.batching), and an app whose traffic arrives in sparse
// bursts can raise it. With 0, batching on the I/O thread also saves the
// hand-off to the worker and back (strace under single-row load: futex calls
// fell to a third).
//
// Thread safety: Enqueue may be called concurrently from any thread.
#ifndef SLIPWAY_SERVING_BATCHER_H_
#define SLIPWAY_SERVING_BATCHER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/clock.h"
#include "models/model.h"

namespace slipway {

class ServingMetrics;

// The batching settings of one endpoint (the app spec's endpoint.batching).
struct BatchingOptions {
  bool enabled = true;
  int max_batch = 64;        // rows per backend call
  int64_t max_delay_us = 0;  // longest wait to fill a batch
  int max_queue = 8192;      // rows waiting before requests are refused
};

// InvalidArgument naming the field when `options` are out of range:
// max_batch >= 1, max_delay_us >= 0, max_queue >= max_batch.
absl::Status ValidateBatchingOptions(const BatchingOptions& options);

// One request's rows and where their outputs go.
struct BatchRequest {
  using Done = std::function<void(absl::StatusOr<std::vector<float>>)>;

  // num_rows x the model's feature count, row-major, NaN = missing.
  std::vector<float> rows;
  size_t num_rows = 0;
  // Receives the outputs of exactly these rows (num_rows x the signature's
  // output width), or the error of the Predict call they were part of.
  // Schedulers call it while the request is alive and unchanged, so the
  // callback may read `rows` through a pointer to its own request.
  Done done;
};

class BatchScheduler {
 public:
  virtual ~BatchScheduler() = default;

  // Ownership: on OK the scheduler has taken the request (`request` is null
  // afterwards) and calls its `done` exactly once, possibly before Enqueue
  // returns, on this thread or on a worker thread. On an error nothing was
  // taken: `request` is unchanged and the caller must answer it.
  // Errors: InvalidArgument when the rows do not match num_rows x the
  // model's features; ResourceExhausted when the queue is full (retry
  // shortly); Unavailable when the scheduler is shutting down.
  virtual absl::Status Enqueue(std::unique_ptr<BatchRequest>& request) = 0;
};

// Batching off: each request is one Predict call on the caller's thread.
class DirectScheduler : public BatchScheduler {
 public:
  // `metrics` may be null; otherwise it must outlive the scheduler.
  DirectScheduler(std::string app, int version,
                  std::shared_ptr<const Model> model, Clock* clock,
                  ServingMetrics* metrics);

  absl::Status Enqueue(std::unique_ptr<BatchRequest>& request) override;

 private:
  const std::string app_;
  const int version_;
  const std::shared_ptr<const Model> model_;
  Clock* const clock_;
  ServingMetrics* const metrics_;
};

class DynamicBatcher : public BatchScheduler,
                       public std::enable_shared_from_this<DynamicBatcher> {
 public:
  // Starts the worker thread. `clock` measures queue waits and backend
  // calls; `metrics` (may be null) records each batch (RecordBatch) and each
  // request's queue wait (RecordQueueWait). Both must outlive the batcher.
  // The delay window is waited in real (steady) time whatever `clock` is:
  // a blocked wait cannot be driven by a FakeClock, and a batcher given one
  // must still flush.
  // Batching on I/O threads needs the batcher owned by a shared_ptr (as
  // MakeBatchScheduler makes it); otherwise every request takes the worker.
  // REQUIRES: ValidateBatchingOptions(options).ok().
  DynamicBatcher(std::string app, int version,
                 std::shared_ptr<const Model> model, BatchingOptions options,
                 Clock* clock, ServingMetrics* metrics);
  // Shutdown(), then joins the worker.
  ~DynamicBatcher() override;
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  absl::Status Enqueue(std::unique_ptr<BatchRequest>& request) override;

  // Refuses new requests (Unavailable) and returns once every accepted
  // request has been completed. Later calls wait for the first.
  // REQUIRES: not called from a `done` callback (the worker's thread).
  void Shutdown();

 private:
  struct Queued {
    std::unique_ptr<BatchRequest> request;
    int64_t enqueued_us = 0;  // clock_->MonotonicMicros() at Enqueue
    // Real time at Enqueue, for the delay window (see the constructor).
    std::chrono::steady_clock::time_point arrived;
  };

  void Run();
  // Runs the requests queued by I/O threads, batch by batch, on the calling
  // thread, until none is left.
  void FlushRound();
  // Removes the next batch from the front of `queue`, whose row count is
  // `*rows`.
  std::vector<Queued> TakeBatch(std::deque<Queued>& queue, size_t* rows)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One Predict call for `batch` (its rows gathered into `input` when there
  // are several requests), then each request's `done`.
  void RunBatch(std::vector<Queued>& batch, std::vector<float>* input);

  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || stopping_;
  }
  bool BatchReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queued_rows_ >= static_cast<size_t>(options_.max_batch) || stopping_;
  }
  bool RoundDrained() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return round_queue_.empty() && round_batches_running_ == 0;
  }

  const std::string app_;
  const int version_;
  const std::shared_ptr<const Model> model_;
  const BatchingOptions options_;
  Clock* const clock_;
  ServingMetrics* const metrics_;
  const size_t features_;      // floats per row
  const size_t output_width_;  // outputs per row

  absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_rows_ ABSL_GUARDED_BY(mu_) = 0;
  // Requests queued by I/O threads, for the end of their event-loop pass.
  std::deque<Queued> round_queue_ ABSL_GUARDED_BY(mu_);
  size_t round_rows_ ABSL_GUARDED_BY(mu_) = 0;
  // A FlushRound is deferred on some I/O thread, or running.
  bool round_flush_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  // Batches taken from round_queue_ and not yet answered.
  int round_batches_running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Serializes Shutdown callers around joining the workers.
  absl::Mutex join_mu_;
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(join_mu_);
};

// The scheduler `options` ask for: a DynamicBatcher, or a DirectScheduler
// when batching is disabled or max_batch is 1 (for a blocking model, a
// DynamicBatcher of max_batch 1 then, so that no I/O thread waits on it).
// REQUIRES: ValidateBatchingOptions(options).ok().
std::shared_ptr<BatchScheduler> MakeBatchScheduler(
    const std::string& app, int version, std::shared_ptr<const Model> model,
    const BatchingOptions& options, Clock* clock, ServingMetrics* metrics);

}  // namespace slipway

#endif  // SLIPWAY_SERVING_BATCHER_H_
