// A Clock that only moves when a test says so.
// Thread safety: safe for concurrent use.
#ifndef SLIPWAY_TESTING_FAKE_CLOCK_H_
#define SLIPWAY_TESTING_FAKE_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "core/clock.h"

namespace slipway {

class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_micros = 1'700'000'000'000'000)
      : now_(start_micros) {}

  int64_t NowMicros() override { return now_.load(); }
  int64_t MonotonicMicros() override { return now_.load(); }

  void Advance(int64_t micros) { now_.fetch_add(micros); }
  void Set(int64_t micros) { now_.store(micros); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace slipway

#endif  // SLIPWAY_TESTING_FAKE_CLOCK_H_
