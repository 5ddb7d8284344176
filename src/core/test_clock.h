// TestClock: the clock of `slipway server --test-clock`, for scenario tests
// that need hours of monitoring windows in seconds.
//
// It starts at a given wall-clock instant and then runs like real time (so
// timeouts and waits behave normally), plus whatever Advance() added: a test
// jumps over a monitoring window with one call instead of waiting for it.
// Time never goes back. Only the admin endpoint that exists in test-clock
// mode (POST /api/v1/admin/clock) moves it.
//
// Thread safety: safe for concurrent use.
#ifndef SLIPWAY_CORE_TEST_CLOCK_H_
#define SLIPWAY_CORE_TEST_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "core/clock.h"

namespace slipway {

class TestClock : public Clock {
 public:
  // Reads `real` (which must outlive the clock) for the passing of time;
  // NowMicros() is `start_micros` at construction.
  TestClock(Clock* real, int64_t start_micros);

  int64_t NowMicros() override;
  int64_t MonotonicMicros() override;

  // Moves both clocks forward by `micros` (>= 0; negative is ignored).
  void Advance(int64_t micros);

 private:
  Clock* const real_;
  const int64_t start_micros_;
  const int64_t real_start_monotonic_;
  std::atomic<int64_t> advanced_{0};
};

}  // namespace slipway

#endif  // SLIPWAY_CORE_TEST_CLOCK_H_
