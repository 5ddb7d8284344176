#include "pipeline/scheduler.h"

#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "artifacts/local_artifact_store.h"
#include "core/filesystem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pipeline/run_executor.h"
#include "registry/registry.h"
#include "store/sqlite_store.h"
#include "testing/fake_clock.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr char kApp[] = "churn";

// "2024-02-28 23:55" (UTC) as unix micros, through libc's calendar.
int64_t Utc(const std::string& text) {
  std::tm tm{};
  EXPECT_NE(strptime(text.c_str(), "%Y-%m-%d %H:%M", &tm), nullptr) << text;
  return static_cast<int64_t>(timegm(&tm)) * kSecond;
}

std::string Show(int64_t micros) {
  std::time_t seconds = static_cast<std::time_t>(micros / kSecond);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M", &tm);
  return text;
}

// A train pipeline whose ingest fails at once (its file does not exist), so
// runs end quickly; `pipeline_extra` is spliced into the pipeline's map.
std::string Spec(const std::string& pipeline_extra) {
  return "app: churn\n"
         "data: {train: {path: missing.csv}}\n"
         "schema: {target: churned}\n"
         "pipelines:\n"
         "  train:\n" +
         pipeline_extra +
         "    steps:\n"
         "      - ingest: {source: train}\n"
         "      - train: {}\n";
}

std::string Scheduled(const std::string& cron) {
  return Spec("    trigger: {schedule: \"" + cron + "\"}\n");
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_.Set(Utc("2024-02-28 22:00"));
    Open();
  }

  void TearDown() override { Close(); }

  // `max_concurrent_runs` 0 keeps every run queued (unfinished) until it is
  // cancelled.
  void Open(int max_concurrent_runs = 2) {
    auto store = OpenSqliteStore(JoinPath(temp_.path(), "data"), &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto artifacts = OpenLocalArtifactStore(
        LocalFilesystem(), JoinPath(temp_.path(), "data/artifacts"));
    ASSERT_TRUE(artifacts.ok()) << artifacts.status();
    artifacts_ = std::move(*artifacts);
    registry_ = std::make_unique<Registry>(store_.get(), artifacts_.get());
    RunExecutor::Options executor;
    executor.store = store_.get();
    executor.registry = registry_.get();
    executor.fs = LocalFilesystem();
    executor.clock = &clock_;
    executor.run_root = JoinPath(temp_.path(), "data/runs");
    executor.max_concurrent_runs = max_concurrent_runs;
    executor_ = std::make_unique<RunExecutor>(executor);
    ASSERT_TRUE(executor_->Recover().ok());
    scheduler_ = std::make_unique<Scheduler>(Scheduler::Options{
        store_.get(), registry_.get(), executor_.get(), &clock_,
        LocalFilesystem()});
  }

  // Everything goes, as when the process ends; the data directory stays.
  void Close() {
    scheduler_.reset();
    executor_.reset();
    registry_.reset();
    artifacts_.reset();
    store_.reset();
  }

  void Reopen(int max_concurrent_runs = 2) {
    Close();
    Open(max_concurrent_runs);
  }

  void Apply(const std::string& yaml) {
    auto outcome = registry_->Apply(kApp, yaml, temp_.path());
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    ASSERT_TRUE(outcome->changed);
  }

  // The app's runs, oldest first.
  std::vector<RunRecord> Runs() {
    auto runs = store_->ListRuns(kApp, 1000);
    EXPECT_TRUE(runs.ok()) << runs.status();
    return std::vector<RunRecord>(runs->rbegin(), runs->rend());
  }

  // Polls the store until every run of the app is final; returns them.
  std::vector<RunRecord> WaitForRunsToFinish() {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (true) {
      std::vector<RunRecord> runs = Runs();
      bool done = true;
      for (const RunRecord& run : runs) {
        done = done && run.state != "queued" && run.state != "running";
      }
      if (done) return runs;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "runs did not finish within 60 s";
        return runs;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // When the runs were started (their creation), as "YYYY-MM-DD HH:MM".
  std::vector<std::string> StartTimes() {
    std::vector<std::string> times;
    for (const RunRecord& run : Runs()) times.push_back(Show(run.created_at));
    return times;
  }

  std::optional<int64_t> LastFire() {
    auto fire = store_->GetLastScheduledFire(kApp, "train");
    EXPECT_TRUE(fire.ok()) << fire.status();
    return fire.ok() ? *fire : std::nullopt;
  }

  // Ticks at every minute up to and including `until`.
  void TickEveryMinuteUntil(int64_t until) {
    while (clock_.NowMicros() < until) {
      clock_.Advance(kMinute);
      scheduler_->Tick();
      WaitForRunsToFinish();
    }
  }

  TempDir temp_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<RunExecutor> executor_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, FiresAtTheRightMinutesOverADayAndALeapDay) {
  Apply(Scheduled("30 23,0 * * *"));
  scheduler_->Tick();
  // 26 hours, minute by minute, from 2024-02-28 22:00 through 2024-02-29
  // into 2024-03-01.
  TickEveryMinuteUntil(Utc("2024-03-01 00:00"));
  EXPECT_THAT(StartTimes(), ElementsAre("2024-02-28 23:30", "2024-02-29 00:30",
                                        "2024-02-29 23:30"));
  for (const RunRecord& run : Runs()) {
    EXPECT_EQ(run.pipeline, "train");
    EXPECT_EQ(run.revision, 1);
    EXPECT_EQ(run.state, "failed");
    EXPECT_THAT(run.reason, HasSubstr("step 'ingest' failed"));
  }
  EXPECT_EQ(LastFire(), Utc("2024-02-29 23:30"));
}

TEST_F(SchedulerTest, NewDataInAnIngestedFileStartsThePipelineOnce) {
  const std::string spec =
      "app: churn\n"
      "data: {train: {path: customers.csv}, other: {path: other.csv}}\n"
      "schema: {target: churned}\n"
      "pipelines:\n"
      "  train:\n"
      "    trigger: {on: [new_data]}\n"
      "    steps:\n"
      "      - ingest: {source: train}\n"
      "      - train: {}\n"
      "  report:\n"
      "    kind: check\n"
      "    steps:\n"
      "      - ingest: {source: train}\n";
  Apply(spec);
  const std::string path = JoinPath(temp_.path(), "customers.csv");
  // No file yet, then the first look: nothing starts.
  scheduler_->Tick();
  ASSERT_TRUE(LocalFilesystem()->WriteFileAtomic(path, "x,churned\n1,0\n").ok());
  scheduler_->Tick();
  scheduler_->Tick();
  EXPECT_THAT(Runs(), IsEmpty());
  // Rows appended: one run of the pipeline that listens for new_data.
  ASSERT_TRUE(
      LocalFilesystem()->WriteFileAtomic(path, "x,churned\n1,0\n2,1\n").ok());
  scheduler_->Tick();
  scheduler_->Tick();
  std::vector<RunRecord> runs = WaitForRunsToFinish();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].pipeline, "train");
  // A file another source names, changed, starts nothing.
  ASSERT_TRUE(LocalFilesystem()
                  ->WriteFileAtomic(JoinPath(temp_.path(), "other.csv"), "a\n")
                  .ok());
  scheduler_->Tick();
  EXPECT_EQ(Runs().size(), 1u);
}

TEST_F(SchedulerTest, TicksBetweenFireMinutesStartNothing) {
  Apply(Scheduled("30 23,0 * * *"));
  clock_.Set(Utc("2024-02-28 23:30") + 10 * kSecond);
  scheduler_->Tick();
  clock_.Advance(30 * kSecond);  // still 23:30
  scheduler_->Tick();
  clock_.Set(Utc("2024-02-29 00:29") + 59 * kSecond);
  scheduler_->Tick();
  EXPECT_THAT(StartTimes(), ElementsAre("2024-02-28 23:30"));
  WaitForRunsToFinish();
}

TEST_F(SchedulerTest, MissedFiresCollapseToOneRunAfterAnOutage) {
  Apply(Scheduled("0 3 * * *"));
  scheduler_->Tick();
  EXPECT_THAT(Runs(), IsEmpty());

  // The server is down from 22:00 on the 28th to noon on 2 March: the fires
  // of 29 Feb, 1 Mar and 2 Mar at 03:00 are missed.
  Close();
  clock_.Set(Utc("2024-03-02 12:00"));
  Open();
  scheduler_->Tick();
  scheduler_->Tick();
  WaitForRunsToFinish();
  EXPECT_THAT(StartTimes(), ElementsAre("2024-03-02 12:00"));
  EXPECT_EQ(LastFire(), Utc("2024-03-02 03:00"));

  TickEveryMinuteUntil(Utc("2024-03-03 03:00"));
  EXPECT_THAT(StartTimes(),
              ElementsAre("2024-03-02 12:00", "2024-03-03 03:00"));
}

TEST_F(SchedulerTest, AlreadyRunningPipelineIsNotStartedTwice) {
  Reopen(/*max_concurrent_runs=*/0);
  Apply(Scheduled("*/5 * * * *"));
  clock_.Set(Utc("2024-02-28 22:05"));
  scheduler_->Tick();
  std::vector<RunRecord> runs = Runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].state, "queued");

  absl::StatusOr<RunRecord> manual = executor_->Start(kApp, "train", "test");
  EXPECT_EQ(manual.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(manual.status().message()),
              HasSubstr("pipeline 'train' of app 'churn' is already running "
                        "(run " +
                        runs[0].id + ")"));

  // The next fire finds it still unfinished: refused, but recorded.
  clock_.Set(Utc("2024-02-28 22:10"));
  scheduler_->Tick();
  EXPECT_EQ(Runs().size(), 1u);
  EXPECT_EQ(LastFire(), Utc("2024-02-28 22:10"));

  // Once it ends, the refused fire is not retried; the next one starts.
  ASSERT_TRUE(executor_->Cancel(runs[0].id).ok());
  WaitForRunsToFinish();
  scheduler_->Tick();
  EXPECT_EQ(Runs().size(), 1u);
  clock_.Set(Utc("2024-02-28 22:15"));
  scheduler_->Tick();
  EXPECT_THAT(StartTimes(),
              ElementsAre("2024-02-28 22:05", "2024-02-28 22:15"));
  ASSERT_TRUE(executor_->Cancel(Runs()[1].id).ok());
  WaitForRunsToFinish();
}

TEST_F(SchedulerTest, ConcurrencyInTheSpecAllowsMoreRuns) {
  Reopen(/*max_concurrent_runs=*/0);
  Apply(Spec("    concurrency: 2\n"));
  auto first = executor_->Start(kApp, "train", "test");
  auto second = executor_->Start(kApp, "train", "test");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  auto third = executor_->Start(kApp, "train", "test");
  EXPECT_EQ(third.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(third.status().message()),
              HasSubstr("pipeline 'train' of app 'churn' already has 2 runs "
                        "in progress (runs "));
  EXPECT_THAT(std::string(third.status().message()),
              HasSubstr("'concurrency: 2'"));

  ASSERT_TRUE(executor_->Cancel(first->id).ok());
  ASSERT_TRUE(executor_->Cancel(second->id).ok());
  WaitForRunsToFinish();
  auto fourth = executor_->Start(kApp, "train", "test");
  EXPECT_TRUE(fourth.ok()) << fourth.status();
  ASSERT_TRUE(executor_->Cancel(fourth->id).ok());
  WaitForRunsToFinish();
}

TEST_F(SchedulerTest, ACrashBetweenRecordingAndStartingDoesNotDoubleFire) {
  Apply(Scheduled("0 3 * * *"));
  clock_.Set(Utc("2024-02-29 03:00"));
  // What Tick does first, then the process dies before starting the run.
  ASSERT_TRUE(
      store_->SetLastScheduledFire(kApp, "train", Utc("2024-02-29 03:00"))
          .ok());
  Reopen();
  clock_.Set(Utc("2024-02-29 03:01"));
  scheduler_->Tick();
  EXPECT_THAT(Runs(), IsEmpty());
  EXPECT_EQ(LastFire(), Utc("2024-02-29 03:00"));
}

TEST_F(SchedulerTest, AFireThatStartedIsNotRepeatedAfterARestart) {
  Apply(Scheduled("0 3 * * *"));
  clock_.Set(Utc("2024-02-29 03:00"));
  scheduler_->Tick();
  WaitForRunsToFinish();
  Reopen();
  scheduler_->Tick();
  clock_.Set(Utc("2024-02-29 18:00"));
  scheduler_->Tick();
  EXPECT_THAT(StartTimes(), ElementsAre("2024-02-29 03:00"));
}

TEST_F(SchedulerTest, NoScheduleNoRuns) {
  Apply(Spec("    trigger: {on: [drift]}\n"));
  TickEveryMinuteUntil(Utc("2024-02-29 23:00"));
  EXPECT_THAT(Runs(), IsEmpty());
  EXPECT_EQ(LastFire(), std::nullopt);
}

TEST_F(SchedulerTest, AScheduleAddedByANewRevisionCountsFromItsApply) {
  Apply(Spec(""));
  clock_.Set(Utc("2024-03-01 10:00"));
  Apply(Scheduled("0 3 * * *"));
  // 03:00 today came before the schedule existed.
  scheduler_->Tick();
  EXPECT_THAT(Runs(), IsEmpty());
  TickEveryMinuteUntil(Utc("2024-03-02 03:00"));
  EXPECT_THAT(StartTimes(), ElementsAre("2024-03-02 03:00"));
  EXPECT_EQ(Runs()[0].revision, 2);
}

TEST_F(SchedulerTest, TheThreadTicksAtOnceAndStopInterruptsItsWait) {
  Apply(Scheduled("0 3 * * *"));
  clock_.Set(Utc("2024-02-29 12:00"));
  scheduler_->Start();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (Runs().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // The thread now waits for the next minute boundary of the fake clock,
  // which never comes; Stop interrupts that wait (60 s of real time).
  const auto before_stop = std::chrono::steady_clock::now();
  scheduler_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before_stop,
            std::chrono::seconds(30));
  EXPECT_THAT(StartTimes(), ElementsAre("2024-02-29 12:00"));
  WaitForRunsToFinish();
}

}  // namespace
}  // namespace slipway
