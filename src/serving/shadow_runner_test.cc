#include "serving/shadow_runner.h"

#include <sched.h>

#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace slipway {
namespace {

TEST(ShadowRunnerTest, RunsTasksInOrderAtIdlePriority) {
  absl::Mutex mu;
  std::vector<int> ran;
  int policy = -1;
  absl::Notification done;
  {
    ShadowRunner runner;
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(runner.TrySubmit([&, i] {
        absl::MutexLock lock(&mu);
        ran.push_back(i);
        policy = sched_getscheduler(0);
      }));
    }
    ASSERT_TRUE(runner.TrySubmit([&] { done.Notify(); }));
    done.WaitForNotification();
  }
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(policy, SCHED_IDLE);
}

TEST(ShadowRunnerTest, AFullQueueRefusesAndStoppingDropsWhatWaits) {
  absl::Notification started;
  absl::Notification release;
  int ran = 0;
  {
    ShadowRunner runner(/*max_queued=*/2);
    ASSERT_TRUE(runner.TrySubmit([&] {
      started.Notify();
      release.WaitForNotification();
    }));
    started.WaitForNotification();
    EXPECT_TRUE(runner.TrySubmit([&] { ++ran; }));
    EXPECT_TRUE(runner.TrySubmit([&] { ++ran; }));
    EXPECT_FALSE(runner.TrySubmit([&] { ++ran; }));
    release.Notify();
    // Leaving the scope may drop the two queued tasks or run them; never a
    // third.
  }
  EXPECT_LE(ran, 2);
}

}  // namespace
}  // namespace slipway
