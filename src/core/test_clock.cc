#include "core/test_clock.h"

namespace slipway {

TestClock::TestClock(Clock* real, int64_t start_micros)
    : real_(real),
      start_micros_(start_micros),
      real_start_monotonic_(real->MonotonicMicros()) {}

int64_t TestClock::NowMicros() {
  return start_micros_ + (real_->MonotonicMicros() - real_start_monotonic_) +
         advanced_.load(std::memory_order_acquire);
}

int64_t TestClock::MonotonicMicros() {
  return real_->MonotonicMicros() + advanced_.load(std::memory_order_acquire);
}

void TestClock::Advance(int64_t micros) {
  if (micros > 0) advanced_.fetch_add(micros, std::memory_order_acq_rel);
}

}  // namespace slipway
