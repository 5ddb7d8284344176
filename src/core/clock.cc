#include "core/clock.h"

#include <chrono>
#include <ctime>

#include "absl/strings/str_format.h"

namespace slipway {
namespace {

class RealClockImpl : public Clock {
 public:
  int64_t NowMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t MonotonicMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

Clock* RealClock() {
  static Clock* clock = new RealClockImpl();
  return clock;
}

std::string FormatTimestamp(int64_t unix_micros) {
  std::time_t seconds = static_cast<std::time_t>(unix_micros / 1000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec,
                         static_cast<int>((unix_micros / 1000) % 1000));
}

}  // namespace slipway
