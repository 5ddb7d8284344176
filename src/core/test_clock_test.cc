#include "core/test_clock.h"

#include "gtest/gtest.h"
#include "testing/fake_clock.h"

namespace slipway {
namespace {

TEST(TestClockTest, StartsAtTheGivenInstantAndRunsWithRealTime) {
  FakeClock real(5'000'000);
  TestClock clock(&real, 1'900'000'000'000'000);
  EXPECT_EQ(clock.NowMicros(), 1'900'000'000'000'000);
  real.Advance(250);
  EXPECT_EQ(clock.NowMicros(), 1'900'000'000'000'250);
  EXPECT_EQ(clock.MonotonicMicros(), 5'000'250);
}

TEST(TestClockTest, AdvanceMovesBothClocksForwardOnly) {
  FakeClock real(0);
  TestClock clock(&real, 1'000'000);
  clock.Advance(3'600'000'000);
  EXPECT_EQ(clock.NowMicros(), 3'601'000'000);
  EXPECT_EQ(clock.MonotonicMicros(), 3'600'000'000);
  clock.Advance(-10);
  EXPECT_EQ(clock.NowMicros(), 3'601'000'000);
}

}  // namespace
}  // namespace slipway
