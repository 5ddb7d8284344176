#include "serving/shadow_runner.h"

#include <sched.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
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

TEST(ShadowRunnerTest, RunsOnTheCpusItIsGiven) {
  // The last CPU the test may use, so the pin is allowed on any machine.
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  int last = -1;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) last = cpu;
  }
  ASSERT_GE(last, 0);
  ShadowRunner::Options options;
  options.cpus = {last};
  absl::StatusOr<std::shared_ptr<ShadowRunner>> runner =
      ShadowRunner::Create(options);
  ASSERT_TRUE(runner.ok()) << runner.status();
  cpu_set_t seen;
  CPU_ZERO(&seen);
  absl::Notification done;
  ASSERT_TRUE((*runner)->TrySubmit([&] {
    sched_getaffinity(0, sizeof(seen), &seen);
    done.Notify();
  }));
  done.WaitForNotification();
  EXPECT_EQ(CPU_COUNT(&seen), 1);
  EXPECT_TRUE(CPU_ISSET(last, &seen));
}

TEST(ShadowRunnerTest, CpusTheMachineLacksAreRefused) {
  ShadowRunner::Options options;
  options.cpus = {CPU_SETSIZE - 1};
  absl::StatusOr<std::shared_ptr<ShadowRunner>> runner =
      ShadowRunner::Create(options);
  ASSERT_FALSE(runner.ok());
  EXPECT_EQ(runner.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(runner.status().message()),
              ::testing::HasSubstr("cannot run on CPUs 1023"));
}

TEST(ShadowRunnerTest, ParsesCpuListsAsTasksetDoes) {
  EXPECT_EQ(*ParseCpuList("1", "--shadow-cpus"), std::vector<int>{1});
  EXPECT_EQ(*ParseCpuList("6,2-3,3", "--shadow-cpus"),
            (std::vector<int>{2, 3, 6}));
  for (const char* bad : {"", "a", "1,", "3-2", "-1", "1-", "99999"}) {
    absl::StatusOr<std::vector<int>> cpus = ParseCpuList(bad, "--shadow-cpus");
    ASSERT_FALSE(cpus.ok()) << bad;
    EXPECT_THAT(std::string(cpus.status().message()),
                ::testing::HasSubstr("--shadow-cpus '" + std::string(bad) +
                                     "'"));
  }
}

}  // namespace
}  // namespace slipway
