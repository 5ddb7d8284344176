#include "monitor/prediction_log.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "core/logging.h"
#include "core/status.h"

namespace slipway {
namespace {

absl::Status RequireAtLeastOne(const char* option, int64_t value) {
  if (value >= 1) return absl::OkStatus();
  std::string message = "prediction log: option ";
  message += option;
  message += " must be at least 1, got ";
  message += std::to_string(value);
  return absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PredictionLog>> PredictionLog::Create(
    Store* store, Options options) {
  RETURN_IF_ERROR(RequireAtLeastOne("capacity", options.capacity));
  RETURN_IF_ERROR(RequireAtLeastOne("max_batch", options.max_batch));
  RETURN_IF_ERROR(RequireAtLeastOne("flush_interval_micros",
                                    options.flush_interval_micros));
  if (options.clock == nullptr) options.clock = RealClock();
  return std::unique_ptr<PredictionLog>(
      new PredictionLog(store, std::move(options)));
}

PredictionLog::PredictionLog(Store* store, Options options)
    : store_(store), options_(std::move(options)), clock_(options_.clock) {
  writer_ = std::thread([this] { WriterLoop(); });
}

PredictionLog::~PredictionLog() { Stop(); }

bool PredictionLog::Log(PredictionRecord record) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || pending_ >= options_.capacity) {
    ++dropped_;
    return false;
  }
  const bool was_empty = batches_.empty();
  if (was_empty ||
      static_cast<int64_t>(batches_.back().size()) >= options_.max_batch) {
    batches_.emplace_back();
    last_batch_started_ = clock_->MonotonicMicros();
  }
  std::vector<PredictionRecord>& batch = batches_.back();
  batch.push_back(std::move(record));
  ++pending_;
  ++logged_;
  // An idle writer waits without a deadline: tell it when a record arrives
  // in an empty queue (to start the interval) and when a batch fills.
  if (was_empty || static_cast<int64_t>(batch.size()) == options_.max_batch) {
    work_cv_.Signal();
  }
  return true;
}

bool PredictionLog::BatchDue() {
  if (batches_.empty()) return false;
  if (static_cast<int64_t>(batches_.front().size()) >= options_.max_batch) {
    return true;
  }
  // The front batch is the last, partial one.
  if (stopping_ || flush_through_ > done_) return true;
  return clock_->MonotonicMicros() - last_batch_started_ >=
         options_.flush_interval_micros;
}

void PredictionLog::WriterLoop() {
  if (options_.writer_setup) options_.writer_setup();
  mu_.Lock();
  while (true) {
    while (!BatchDue()) {
      if (stopping_) {  // and nothing is queued
        mu_.Unlock();
        return;
      }
      if (batches_.empty()) {
        work_cv_.Wait(&mu_);
      } else {
        // The clock decides when the interval is over; the real wait only
        // says when to look again.
        const int64_t wait = last_batch_started_ +
                             options_.flush_interval_micros -
                             clock_->MonotonicMicros();
        work_cv_.WaitWithTimeout(
            &mu_, absl::Microseconds(std::max<int64_t>(wait, 1)));
      }
    }
    std::vector<PredictionRecord> batch = std::move(batches_.front());
    batches_.pop_front();
    const int64_t size = static_cast<int64_t>(batch.size());

    mu_.Unlock();
    absl::StatusOr<int64_t> inserted = store_->AddPredictions(batch);
    if (!inserted.ok()) {
      const std::string error(inserted.status().message());
      LogWarning("prediction_log.batch_failed",
                 {{"predictions", std::to_string(size)}, {"error", error}});
    }
    batch.clear();  // frees the records outside the lock
    mu_.Lock();

    if (inserted.ok()) {
      written_ += *inserted;
    } else {
      ++failed_batches_;
      last_failure_ = Annotate(inserted.status(),
                               "prediction log: storing a batch of " +
                                   std::to_string(size) + " predictions");
      last_failure_through_ = done_ + size;
    }
    done_ += size;
    pending_ -= size;
    done_cv_.SignalAll();
  }
}

absl::Status PredictionLog::Flush() {
  absl::MutexLock lock(&mu_);
  const int64_t target = logged_;
  const int64_t start = done_;
  if (target <= start) return absl::OkStatus();
  flush_through_ = std::max(flush_through_, target);
  work_cv_.Signal();
  while (done_ < target) done_cv_.Wait(&mu_);
  if (last_failure_through_ > start) return last_failure_;
  return absl::OkStatus();
}

void PredictionLog::Stop() {
  std::call_once(stop_once_, [this] {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      work_cv_.Signal();
    }
    writer_.join();
  });
}

int64_t PredictionLog::logged() const {
  absl::MutexLock lock(&mu_);
  return logged_;
}

int64_t PredictionLog::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

int64_t PredictionLog::written() const {
  absl::MutexLock lock(&mu_);
  return written_;
}

int64_t PredictionLog::queued() const {
  absl::MutexLock lock(&mu_);
  return pending_;
}

int64_t PredictionLog::failed_batches() const {
  absl::MutexLock lock(&mu_);
  return failed_batches_;
}

bool SampleInputs(uint64_t request_hash, double fraction) {
  if (!(fraction > 0)) return false;  // NaN too
  if (fraction >= 1) return true;
  // SplitMix64's finalizer: neighbouring hashes (ids numbered in sequence,
  // a weak hash) land far apart, so the sample is spread evenly.
  uint64_t z = request_hash + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  // The top 53 bits as a uniform number in [0, 1).
  return static_cast<double>(z >> 11) * 0x1.0p-53 < fraction;
}

}  // namespace slipway
