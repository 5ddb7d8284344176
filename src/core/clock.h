// Time, injected. Code that needs "now" or needs to wait takes a Clock* so
// tests can drive time by hand (testing/fake_clock.h).
// Thread safety: implementations are safe for concurrent use.
#ifndef SLIPWAY_CORE_CLOCK_H_
#define SLIPWAY_CORE_CLOCK_H_

#include <cstdint>
#include <string>

namespace slipway {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in microseconds since the Unix epoch.
  virtual int64_t NowMicros() = 0;
  // Monotonic time in microseconds, for durations and timeouts.
  virtual int64_t MonotonicMicros() = 0;
};

// The process-wide real clock. Never destroyed.
Clock* RealClock();

// "2026-11-27T12:58:37.123Z" for a wall-clock time in microseconds.
std::string FormatTimestamp(int64_t unix_micros);

}  // namespace slipway

#endif  // SLIPWAY_CORE_CLOCK_H_
