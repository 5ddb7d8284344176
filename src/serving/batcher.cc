#include "serving/batcher.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <utility>

#include "absl/time/time.h"
#include "core/logging.h"
#include "core/status.h"
#include "serving/io_round.h"
#include "serving/metrics.h"

namespace slipway {
namespace {

std::string ModelName(const std::string& app, int version) {
  return "model " + app + " v" + std::to_string(version);
}

absl::Status CheckRows(const std::string& app, int version,
                       const BatchRequest& request, size_t features) {
  if (request.num_rows == 0) {
    return absl::InvalidArgumentError("a prediction request for " +
                                      ModelName(app, version) +
                                      " has no rows; send at least one");
  }
  if (request.rows.size() != request.num_rows * features) {
    return absl::InvalidArgumentError(
        "a prediction request for " + ModelName(app, version) + " has " +
        std::to_string(request.rows.size()) + " values for " +
        std::to_string(request.num_rows) + " rows of " +
        std::to_string(features) + " features");
  }
  return absl::OkStatus();
}

// Model::Predict with the output size checked and errors naming the model.
absl::Status PredictRows(const std::string& app, int version,
                         const Model& model, const float* rows, size_t num_rows,
                         std::vector<float>* outputs) {
  RETURN_IF_ERROR(model.Predict(rows, num_rows, outputs),
                  ModelName(app, version));
  const size_t expected = num_rows * model.signature().output_width();
  if (outputs->size() != expected) {
    return absl::InternalError(ModelName(app, version) + " returned " +
                               std::to_string(outputs->size()) +
                               " outputs for " + std::to_string(num_rows) +
                               " rows; expected " + std::to_string(expected));
  }
  return absl::OkStatus();
}

// Calls `done`; an exception from it is logged rather than allowed to end
// the worker thread, which would strand every queued request.
void Complete(const std::string& app, int version, BatchRequest::Done& done,
              absl::StatusOr<std::vector<float>> outputs) {
  try {
    done(std::move(outputs));
  } catch (const std::exception& e) {
    LogError("batcher.callback_failed",
             {{"model", ModelName(app, version)}, {"error", e.what()}});
  } catch (...) {
    LogError("batcher.callback_failed", {{"model", ModelName(app, version)},
                                         {"error", "unknown exception"}});
  }
}

}  // namespace

absl::Status ValidateBatchingOptions(const BatchingOptions& options) {
  if (options.max_batch < 1) {
    return absl::InvalidArgumentError("batching max_batch is " +
                                      std::to_string(options.max_batch) +
                                      "; use at least 1 row");
  }
  if (options.max_delay_us < 0) {
    return absl::InvalidArgumentError("batching max_delay_us is " +
                                      std::to_string(options.max_delay_us) +
                                      "; use 0 or more microseconds");
  }
  if (options.max_queue < options.max_batch) {
    return absl::InvalidArgumentError(
        "batching max_queue (" + std::to_string(options.max_queue) +
        ") is smaller than max_batch (" + std::to_string(options.max_batch) +
        "); a full batch could never form");
  }
  return absl::OkStatus();
}

DirectScheduler::DirectScheduler(std::string app, int version,
                                 std::shared_ptr<const Model> model,
                                 Clock* clock, ServingMetrics* metrics)
    : app_(std::move(app)),
      version_(version),
      model_(std::move(model)),
      clock_(clock),
      metrics_(metrics) {}

absl::Status DirectScheduler::Enqueue(std::unique_ptr<BatchRequest>& request) {
  RETURN_IF_ERROR(CheckRows(app_, version_, *request,
                            model_->signature().features().size()));
  std::unique_ptr<BatchRequest> taken = std::move(request);
  const int64_t start = clock_->MonotonicMicros();
  std::vector<float> outputs;
  absl::Status status = PredictRows(app_, version_, *model_, taken->rows.data(),
                                    taken->num_rows, &outputs);
  if (metrics_ != nullptr) {
    metrics_->RecordBatch(app_, version_, static_cast<int>(taken->num_rows), 1,
                          clock_->MonotonicMicros() - start);
  }
  if (status.ok()) {
    Complete(app_, version_, taken->done, std::move(outputs));
  } else {
    Complete(app_, version_, taken->done, status);
  }
  return absl::OkStatus();
}

DynamicBatcher::DynamicBatcher(std::string app, int version,
                               std::shared_ptr<const Model> model,
                               BatchingOptions options, Clock* clock,
                               ServingMetrics* metrics)
    : app_(std::move(app)),
      version_(version),
      model_(std::move(model)),
      options_(options),
      clock_(clock),
      metrics_(metrics),
      features_(model_->signature().features().size()),
      output_width_(model_->signature().output_width()) {
  // A backend that waits on other processes (Python workers) gets one
  // thread per batch it can run at once; in-process backends get one.
  const int threads =
      model_->blocking() ? std::max(1, model_->max_concurrency()) : 1;
  absl::MutexLock lock(&join_mu_);
  for (int i = 0; i < threads; ++i) {
    workers_.emplace_back([this] { Run(); });
  }
}

DynamicBatcher::~DynamicBatcher() { Shutdown(); }

absl::Status DynamicBatcher::Enqueue(std::unique_ptr<BatchRequest>& request) {
  RETURN_IF_ERROR(CheckRows(app_, version_, *request, features_));
  const size_t rows = request->num_rows;
  // On an I/O thread with no delay window, batch at the end of its pass,
  // unless the backend would block the I/O thread.
  std::shared_ptr<DynamicBatcher> self;
  if (options_.max_delay_us == 0 && !model_->blocking() &&
      IoRound::Active()) {
    self = weak_from_this().lock();
  }
  bool schedule_flush = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      return absl::UnavailableError(
          ModelName(app_, version_) +
          " is shutting down (the server is stopping or the version was "
          "unloaded); retry the request");
    }
    // An empty queue takes any request, so one larger than max_queue is
    // served (alone) instead of being refused forever.
    const size_t waiting = queued_rows_ + round_rows_;
    if (waiting > 0 && waiting + rows > static_cast<size_t>(options_.max_queue)) {
      return absl::ResourceExhaustedError(
          "app '" + app_ + "' (v" + std::to_string(version_) + ") has " +
          std::to_string(waiting) +
          " rows waiting for prediction and this request adds " +
          std::to_string(rows) + ", over its queue limit of " +
          std::to_string(options_.max_queue) +
          " rows (endpoint.batching.max_queue); retry after a moment, or "
          "raise the limit");
    }
    Queued queued{std::move(request), clock_->MonotonicMicros(),
                  std::chrono::steady_clock::now()};
    if (self != nullptr) {
      round_queue_.push_back(std::move(queued));
      round_rows_ += rows;
      schedule_flush = !round_flush_scheduled_;
      round_flush_scheduled_ = true;
    } else {
      queue_.push_back(std::move(queued));
      queued_rows_ += rows;
    }
  }
  if (schedule_flush) {
    IoRound::Defer([self = std::move(self)] { self->FlushRound(); });
  }
  return absl::OkStatus();
}

void DynamicBatcher::FlushRound() {
  thread_local std::vector<float> input;
  while (true) {
    std::vector<Queued> batch;
    {
      absl::MutexLock lock(&mu_);
      if (round_queue_.empty()) {
        round_flush_scheduled_ = false;
        return;
      }
      batch = TakeBatch(round_queue_, &round_rows_);
      ++round_batches_running_;
    }
    RunBatch(batch, &input);
    absl::MutexLock lock(&mu_);
    --round_batches_running_;
  }
}

void DynamicBatcher::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  // Requests an I/O thread queued and has not flushed yet are answered
  // here; batches it is running finish there.
  std::vector<float> input;
  while (true) {
    std::vector<Queued> batch;
    {
      absl::MutexLock lock(&mu_);
      if (round_queue_.empty()) {
        mu_.Await(absl::Condition(this, &DynamicBatcher::RoundDrained));
        break;
      }
      batch = TakeBatch(round_queue_, &round_rows_);
      ++round_batches_running_;
    }
    RunBatch(batch, &input);
    absl::MutexLock lock(&mu_);
    --round_batches_running_;
  }
  absl::MutexLock lock(&join_mu_);
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

void DynamicBatcher::Run() {
  // The rows of a multi-request batch, reused between this thread's batches.
  std::vector<float> input;
  while (true) {
    std::vector<Queued> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &DynamicBatcher::HasWork));
      if (queue_.empty()) return;  // stopping, and everything is answered
      // Fill the batch until it is full, the first request has waited
      // max_delay_us, or shutdown asks to finish now. Checking the time
      // again after each wait keeps the bound exact when a wait returns
      // early.
      const auto deadline = queue_.front().arrived +
                            std::chrono::microseconds(options_.max_delay_us);
      while (!BatchReady()) {
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) break;
        mu_.AwaitWithTimeout(absl::Condition(this, &DynamicBatcher::BatchReady),
                             absl::FromChrono(left));
      }
      batch = TakeBatch(queue_, &queued_rows_);
    }
    RunBatch(batch, &input);
  }
}

std::vector<DynamicBatcher::Queued> DynamicBatcher::TakeBatch(
    std::deque<Queued>& queue, size_t* queue_rows) {
  std::vector<Queued> batch;
  size_t rows = 0;
  const size_t max_batch = static_cast<size_t>(options_.max_batch);
  while (!queue.empty()) {
    const size_t next = queue.front().request->num_rows;
    // Whole requests only; the first one always goes, however large.
    if (!batch.empty() && rows + next > max_batch) break;
    rows += next;
    batch.push_back(std::move(queue.front()));
    queue.pop_front();
    if (rows >= max_batch) break;
  }
  *queue_rows -= rows;
  return batch;
}

void DynamicBatcher::RunBatch(std::vector<Queued>& batch,
                              std::vector<float>* input_buffer) {
  const int64_t start = clock_->MonotonicMicros();
  size_t total_rows = 0;
  for (const Queued& queued : batch) {
    total_rows += queued.request->num_rows;
    if (metrics_ != nullptr) {
      metrics_->RecordQueueWait(app_, version_, start - queued.enqueued_us);
    }
  }
  const float* input = batch.front().request->rows.data();
  if (batch.size() > 1) {
    input_buffer->clear();
    input_buffer->reserve(total_rows * features_);
    for (const Queued& queued : batch) {
      input_buffer->insert(input_buffer->end(), queued.request->rows.begin(),
                           queued.request->rows.end());
    }
    input = input_buffer->data();
  }
  std::vector<float> outputs;
  absl::Status status =
      PredictRows(app_, version_, *model_, input, total_rows, &outputs);
  if (metrics_ != nullptr) {
    metrics_->RecordBatch(app_, version_, static_cast<int>(total_rows),
                          static_cast<int>(batch.size()),
                          clock_->MonotonicMicros() - start);
  }

  if (!status.ok()) {
    for (Queued& queued : batch) {
      Complete(app_, version_, queued.request->done, status);
    }
    return;
  }
  if (batch.size() == 1) {
    Complete(app_, version_, batch.front().request->done, std::move(outputs));
    return;
  }
  size_t offset = 0;  // in floats
  for (Queued& queued : batch) {
    const size_t count = queued.request->num_rows * output_width_;
    std::vector<float> own(outputs.begin() + offset,
                           outputs.begin() + offset + count);
    offset += count;
    Complete(app_, version_, queued.request->done, std::move(own));
  }
}

std::shared_ptr<BatchScheduler> MakeBatchScheduler(
    const std::string& app, int version, std::shared_ptr<const Model> model,
    const BatchingOptions& options, Clock* clock, ServingMetrics* metrics) {
  if (!options.enabled || options.max_batch == 1) {
    if (model->blocking()) {
      // Predict would block the caller's (I/O) thread: one request per call
      // on the batcher's threads instead.
      BatchingOptions single = options;
      single.enabled = true;
      single.max_batch = 1;
      single.max_delay_us = 0;
      return std::make_shared<DynamicBatcher>(app, version, std::move(model),
                                              single, clock, metrics);
    }
    return std::make_shared<DirectScheduler>(app, version, std::move(model),
                                             clock, metrics);
  }
  return std::make_shared<DynamicBatcher>(app, version, std::move(model),
                                          options, clock, metrics);
}

}  // namespace slipway
