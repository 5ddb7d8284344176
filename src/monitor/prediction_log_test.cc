#include "monitor/prediction_log.h"

#include <sqlite3.h>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/sqlite_store.h"
#include "testing/fake_clock.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// How long a test waits for the writer thread before it fails.
constexpr absl::Duration kDeadline = absl::Seconds(30);

// A Store that hands everything to the real SQLite store, except that
// AddPredictions waits at a gate the test opens and closes, records each
// batch's request ids, and can be told to fail once.
class GatedStore : public Store {
 public:
  explicit GatedStore(Store* real) : real_(real) {}

  absl::StatusOr<int64_t> AddPredictions(
      const std::vector<PredictionRecord>& predictions) override {
    absl::MutexLock lock(&mu_);
    ++entered_;
    mu_.Await(absl::Condition(&open_));
    std::vector<std::string> ids;
    for (const PredictionRecord& p : predictions) ids.push_back(p.request_id);
    batches_.push_back(std::move(ids));
    if (!fail_next_.ok()) return std::exchange(fail_next_, absl::OkStatus());
    return real_->AddPredictions(predictions);
  }

  void SetOpen(bool open) {
    absl::MutexLock lock(&mu_);
    open_ = open;
  }
  void FailNext(absl::Status status) {
    absl::MutexLock lock(&mu_);
    fail_next_ = std::move(status);
  }
  // Waits until AddPredictions has been entered `n` times in all.
  bool AwaitEntered(int n) {
    absl::MutexLock lock(&mu_);
    auto entered = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return entered_ >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&entered), kDeadline);
  }
  // Waits until `n` batches have passed the gate.
  bool AwaitBatches(size_t n) {
    absl::MutexLock lock(&mu_);
    auto passed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return batches_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&passed), kDeadline);
  }
  std::vector<std::vector<std::string>> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }

  // Everything else goes straight to the real store.
  absl::StatusOr<AppRevisionRecord> AddAppRevision(
      const AppRevisionRecord& revision) override {
    return real_->AddAppRevision(revision);
  }
  absl::StatusOr<AppRecord> GetApp(const std::string& app) override {
    return real_->GetApp(app);
  }
  absl::StatusOr<std::vector<AppRecord>> ListApps() override {
    return real_->ListApps();
  }
  absl::StatusOr<AppRevisionRecord> GetAppRevision(const std::string& app,
                                                   int revision) override {
    return real_->GetAppRevision(app, revision);
  }
  absl::StatusOr<std::vector<AppRevisionRecord>> ListAppRevisions(
      const std::string& app) override {
    return real_->ListAppRevisions(app);
  }
  absl::Status CreateRun(const RunRecord& run,
                         const std::vector<StepRecord>& steps) override {
    return real_->CreateRun(run, steps);
  }
  absl::Status UpdateRun(const RunRecord& run) override {
    return real_->UpdateRun(run);
  }
  absl::Status UpdateStep(const StepRecord& step) override {
    return real_->UpdateStep(step);
  }
  absl::Status UpdateStepProgress(const std::string& run_id,
                                  const std::string& step,
                                  const std::string& progress_json) override {
    return real_->UpdateStepProgress(run_id, step, progress_json);
  }
  absl::StatusOr<RunRecord> GetRun(const std::string& run_id) override {
    return real_->GetRun(run_id);
  }
  absl::StatusOr<std::vector<StepRecord>> ListSteps(
      const std::string& run_id) override {
    return real_->ListSteps(run_id);
  }
  absl::StatusOr<std::vector<RunRecord>> ListRuns(const std::string& app,
                                                  int limit) override {
    return real_->ListRuns(app, limit);
  }
  absl::StatusOr<std::vector<std::string>> FailUnfinishedRuns(
      const std::string& reason, int64_t now) override {
    return real_->FailUnfinishedRuns(reason, now);
  }
  absl::Status PutStepCache(const StepCacheRecord& record) override {
    return real_->PutStepCache(record);
  }
  absl::StatusOr<std::optional<StepCacheRecord>> FindStepCache(
      const std::string& app, const std::string& pipeline,
      const std::string& step, const std::string& cache_key) override {
    return real_->FindStepCache(app, pipeline, step, cache_key);
  }
  absl::StatusOr<std::vector<RunEventRecord>> AddRunEvents(
      const std::vector<RunEventRecord>& events) override {
    return real_->AddRunEvents(events);
  }
  absl::StatusOr<std::vector<RunEventRecord>> ListRunEvents(
      const std::string& run_id) override {
    return real_->ListRunEvents(run_id);
  }
  absl::StatusOr<ModelVersionRecord> AddModelVersion(
      const ModelVersionRecord& record) override {
    return real_->AddModelVersion(record);
  }
  absl::StatusOr<ModelVersionRecord> GetModelVersion(const std::string& app,
                                                     int version) override {
    return real_->GetModelVersion(app, version);
  }
  absl::StatusOr<std::vector<ModelVersionRecord>> ListModelVersions(
      const std::string& app) override {
    return real_->ListModelVersions(app);
  }
  absl::Status SetAliases(const std::string& app,
                          const std::vector<AliasMove>& moves,
                          const std::string& actor) override {
    return real_->SetAliases(app, moves, actor);
  }
  absl::StatusOr<std::vector<AliasHistoryRecord>> ListAliasHistory(
      const std::string& app) override {
    return real_->ListAliasHistory(app);
  }
  absl::StatusOr<std::optional<AliasRecord>> GetAlias(
      const std::string& app, const std::string& alias) override {
    return real_->GetAlias(app, alias);
  }
  absl::StatusOr<std::vector<AliasRecord>> ListAliases(
      const std::string& app) override {
    return real_->ListAliases(app);
  }
  absl::StatusOr<std::optional<int64_t>> GetLastScheduledFire(
      const std::string& app, const std::string& pipeline) override {
    return real_->GetLastScheduledFire(app, pipeline);
  }
  absl::Status SetLastScheduledFire(const std::string& app,
                                    const std::string& pipeline,
                                    int64_t fire_micros) override {
    return real_->SetLastScheduledFire(app, pipeline, fire_micros);
  }
  absl::Status AddToken(const TokenRecord& token) override {
    return real_->AddToken(token);
  }
  absl::StatusOr<std::vector<TokenRecord>> ListTokens() override {
    return real_->ListTokens();
  }
  absl::StatusOr<TokenRecord> RevokeToken(const std::string& id,
                                          int64_t revoked_at) override {
    return real_->RevokeToken(id, revoked_at);
  }
  absl::StatusOr<AuditRecord> AppendAudit(const AuditEntry& entry) override {
    return real_->AppendAudit(entry);
  }
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      const AuditFilter& filter) override {
    return real_->ListAudit(filter);
  }
  absl::StatusOr<ApprovalRecord> AddApproval(
      const ApprovalRecord& approval) override {
    return real_->AddApproval(approval);
  }
  absl::StatusOr<ApprovalRecord> GetApproval(int64_t id) override {
    return real_->GetApproval(id);
  }
  absl::StatusOr<std::vector<ApprovalRecord>> ListApprovals(
      const std::string& app, const std::string& state) override {
    return real_->ListApprovals(app, state);
  }
  absl::StatusOr<ApprovalRecord> DecideApproval(
      const ApprovalRecord& decision) override {
    return real_->DecideApproval(decision);
  }
  absl::StatusOr<std::vector<DeliveryRecord>> AddDeliveries(
      const std::vector<DeliveryRecord>& deliveries) override {
    return real_->AddDeliveries(deliveries);
  }
  absl::StatusOr<std::vector<DeliveryRecord>> DueDeliveries(
      int64_t now, int limit) override {
    return real_->DueDeliveries(now, limit);
  }
  absl::Status UpdateDelivery(const DeliveryRecord& delivery) override {
    return real_->UpdateDelivery(delivery);
  }
  absl::StatusOr<std::vector<DeliveryRecord>> ListDeliveries(
      const std::string& app, int limit) override {
    return real_->ListDeliveries(app, limit);
  }
  absl::StatusOr<std::vector<FeedbackOutcome>> AddFeedback(
      const std::vector<FeedbackRecord>& feedback) override {
    return real_->AddFeedback(feedback);
  }
  absl::StatusOr<std::vector<LabeledRecord>> ListLabeled(const std::string& app,
                                                         int64_t from,
                                                         int64_t to) override {
    return real_->ListLabeled(app, from, to);
  }
  absl::StatusOr<int64_t> DeletePredictionsBefore(const std::string& app,
                                                  int64_t before) override {
    return real_->DeletePredictionsBefore(app, before);
  }
  absl::Status PutMonitorWindow(const MonitorWindowRecord& window) override {
    return real_->PutMonitorWindow(window);
  }
  absl::StatusOr<std::vector<MonitorWindowRecord>> ListMonitorWindows(
      const std::string& app, int64_t from, int64_t to) override {
    return real_->ListMonitorWindows(app, from, to);
  }
  absl::Status PutAlert(const AlertRecord& alert) override {
    return real_->PutAlert(alert);
  }
  absl::StatusOr<std::vector<AlertRecord>> ListAlerts(
      const std::string& app) override {
    return real_->ListAlerts(app);
  }
  absl::StatusOr<std::optional<AlertEngineStateRecord>> GetAlertEngineState(
      const std::string& app) override {
    return real_->GetAlertEngineState(app);
  }
  absl::Status PutAlertEngineState(
      const AlertEngineStateRecord& state) override {
    return real_->PutAlertEngineState(state);
  }
  absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> CountRows()
      override {
    return real_->CountRows();
  }

 private:
  Store* const real_;
  absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = true;
  int entered_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_next_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<std::string>> batches_ ABSL_GUARDED_BY(mu_);
};

PredictionRecord Prediction(const std::string& request_id, int64_t at) {
  PredictionRecord p;
  p.request_id = request_id;
  p.app = "churn";
  p.version = 3;
  p.at = at;
  p.prediction_json = "[0.5]";
  return p;
}

std::vector<size_t> Sizes(const std::vector<std::vector<std::string>>& b) {
  std::vector<size_t> sizes;
  for (const auto& batch : b) sizes.push_back(batch.size());
  return sizes;
}

class PredictionLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto real = OpenSqliteStore(temp_.path(), &clock_);
    ASSERT_TRUE(real.ok()) << real.status();
    real_ = std::move(*real);
    store_ = std::make_unique<GatedStore>(real_.get());
  }

  // A log on the gated store whose partial batches wait an hour of the
  // fake clock unless a test moves it.
  std::unique_ptr<PredictionLog> NewLog(int64_t capacity, int64_t max_batch) {
    PredictionLog::Options options;
    options.capacity = capacity;
    options.max_batch = max_batch;
    options.flush_interval_micros = 3'600'000'000;
    options.clock = &clock_;
    auto log = PredictionLog::Create(store_.get(), options);
    EXPECT_TRUE(log.ok()) << log.status();
    return std::move(*log);
  }

  // Predictions in the store's prediction log (its chunks' rows).
  int64_t StoredPredictions() {
    sqlite3* db = nullptr;
    const std::string path = temp_.path() + "/slipway.db";
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY,
                              nullptr),
              SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(
                  db, "SELECT coalesce(sum(rows), 0) FROM prediction_chunks",
                  -1, &stmt, nullptr),
              SQLITE_OK);
    int64_t rows = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) rows = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return rows;
  }

  TempDir temp_;
  FakeClock clock_;
  std::unique_ptr<Store> real_;
  std::unique_ptr<GatedStore> store_;
};

TEST_F(PredictionLogTest, FourProducersLoseNothingAndKeepTheirOrder) {
  std::unique_ptr<PredictionLog> log = NewLog(100'000, 1'000);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10'000;
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&log, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = "t";
        id += std::to_string(t);
        id += "-";
        id += std::to_string(i);
        EXPECT_TRUE(log->Log(Prediction(id, i)));
      }
    });
  }
  for (std::thread& producer : producers) producer.join();
  ASSERT_TRUE(log->Flush().ok());

  EXPECT_EQ(log->logged(), kThreads * kPerThread);
  EXPECT_EQ(log->written(), kThreads * kPerThread);
  EXPECT_EQ(log->dropped(), 0);
  EXPECT_EQ(log->failed_batches(), 0);
  EXPECT_EQ(StoredPredictions(), kThreads * kPerThread);
  // Each producer's records reach the store in the order it logged them,
  // in batches of at most max_batch.
  std::map<int, int> next;  // producer -> next expected number
  for (const std::vector<std::string>& batch : store_->batches()) {
    EXPECT_LE(batch.size(), 1'000u);
    for (const std::string& id : batch) {
      const size_t dash = id.find('-');
      const int t = std::stoi(id.substr(1, dash - 1));
      const int i = std::stoi(id.substr(dash + 1));
      ASSERT_EQ(i, next[t]) << id;
      ++next[t];
    }
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kPerThread);
}

TEST_F(PredictionLogTest, AFullQueueDropsWithoutWaitingForABlockedWriter) {
  std::unique_ptr<PredictionLog> log = NewLog(/*capacity=*/10, /*max_batch=*/4);
  store_->SetOpen(false);
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(log->Log(Prediction("r" + std::to_string(i), i))) << i;
  }
  // The writer holds the first full batch at the gate; those records still
  // count against the capacity until they are stored.
  ASSERT_TRUE(store_->AwaitEntered(1));
  for (int i = 10; i < 15; ++i) {
    EXPECT_FALSE(log->Log(Prediction("r" + std::to_string(i), i))) << i;
  }
  EXPECT_EQ(log->dropped(), 5);
  EXPECT_EQ(log->logged(), 10);

  store_->SetOpen(true);
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->written(), 10);
  EXPECT_EQ(StoredPredictions(), 10);
  EXPECT_THAT(Sizes(store_->batches()), ElementsAre(4, 4, 2));
  // Stored records free their room.
  EXPECT_TRUE(log->Log(Prediction("r15", 15)));
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(StoredPredictions(), 11);
}

TEST_F(PredictionLogTest, FullBatchesGoAtOnceAndAPartialOneWaits) {
  std::unique_ptr<PredictionLog> log = NewLog(100'000, 1'000);
  for (int i = 0; i < 2'500; ++i) {
    ASSERT_TRUE(log->Log(Prediction("r" + std::to_string(i), i)));
  }
  ASSERT_TRUE(store_->AwaitBatches(2));
  // The clock has not moved and nobody flushed: the last 500 wait.
  EXPECT_THAT(Sizes(store_->batches()), ElementsAre(1'000, 1'000));
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_THAT(Sizes(store_->batches()), ElementsAre(1'000, 1'000, 500));
  EXPECT_EQ(log->written(), 2'500);
}

TEST_F(PredictionLogTest, APartialBatchIsWrittenOnceTheIntervalPasses) {
  PredictionLog::Options options;
  options.flush_interval_micros = 50'000;
  options.clock = &clock_;
  auto log = PredictionLog::Create(store_.get(), options);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->Log(Prediction("r1", 1)));
  clock_.Advance(50'000);
  ASSERT_TRUE(store_->AwaitBatches(1));
  EXPECT_THAT(store_->batches(), ElementsAre(ElementsAre("r1")));
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ((*log)->written(), 1);
}

TEST_F(PredictionLogTest, FlushWaitsOnlyForRecordsLoggedBeforeIt) {
  std::unique_ptr<PredictionLog> log = NewLog(100'000, 1'000);
  EXPECT_TRUE(log->Flush().ok());  // nothing logged
  EXPECT_TRUE(store_->batches().empty());
  ASSERT_TRUE(log->Log(Prediction("a", 1)));
  ASSERT_TRUE(log->Log(Prediction("b", 2)));
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_THAT(store_->batches(), ElementsAre(ElementsAre("a", "b")));
  EXPECT_EQ(StoredPredictions(), 2);

  store_->SetOpen(false);
  ASSERT_TRUE(log->Log(Prediction("c", 3)));
  absl::Notification flushed;
  absl::Status flush_status;
  std::thread flusher([&] {
    flush_status = log->Flush();
    flushed.Notify();
  });
  // Only the flush makes the writer take "c" (the clock stands still), so
  // once it is at the gate the flush has begun; "d" comes after it.
  ASSERT_TRUE(store_->AwaitEntered(2));
  ASSERT_TRUE(log->Log(Prediction("d", 4)));
  store_->SetOpen(true);
  const bool returned = flushed.WaitForNotificationWithTimeout(kDeadline);
  if (!returned) log->Stop();  // writes "d", which releases the flusher
  flusher.join();
  ASSERT_TRUE(returned) << "Flush waited for a record logged after it";
  EXPECT_TRUE(flush_status.ok()) << flush_status;
  EXPECT_EQ(log->written(), 3);
  EXPECT_THAT(store_->batches().back(), ElementsAre("c"));
  log->Stop();
  EXPECT_THAT(store_->batches().back(), ElementsAre("d"));
}

TEST_F(PredictionLogTest, AFailedBatchIsCountedAndReportedByFlush) {
  std::unique_ptr<PredictionLog> log = NewLog(100'000, 1'000);
  store_->FailNext(absl::UnavailableError("metadata store: busy"));
  ASSERT_TRUE(log->Log(Prediction("a", 1)));
  ASSERT_TRUE(log->Log(Prediction("b", 2)));
  absl::Status flushed = log->Flush();
  EXPECT_EQ(flushed.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(flushed.message()),
              HasSubstr("storing a batch of 2 predictions"));
  EXPECT_EQ(log->failed_batches(), 1);
  EXPECT_EQ(log->written(), 0);
  // The queue drained; the next batch is stored, and its flush is clean.
  ASSERT_TRUE(log->Log(Prediction("c", 3)));
  EXPECT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->written(), 1);
  EXPECT_EQ(StoredPredictions(), 1);
}

TEST_F(PredictionLogTest, StopStoresWhatIsQueuedThenRefuses) {
  std::unique_ptr<PredictionLog> log = NewLog(100'000, 1'000);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(log->Log(Prediction("r" + std::to_string(i), i)));
  }
  log->Stop();
  EXPECT_EQ(StoredPredictions(), 3);
  EXPECT_EQ(log->written(), 3);
  EXPECT_FALSE(log->Log(Prediction("late", 9)));
  EXPECT_EQ(log->dropped(), 1);
  EXPECT_TRUE(log->Flush().ok());
  log->Stop();
  EXPECT_EQ(StoredPredictions(), 3);
}

TEST_F(PredictionLogTest, DestroyingTheLogStoresWhatIsQueued) {
  std::unique_ptr<PredictionLog> log = NewLog(100'000, 1'000);
  ASSERT_TRUE(log->Log(Prediction("a", 1)));
  log.reset();
  EXPECT_EQ(StoredPredictions(), 1);
}

TEST_F(PredictionLogTest, OptionsBelowOneAreRefused) {
  PredictionLog::Options options;
  options.max_batch = 0;
  auto log = PredictionLog::Create(store_.get(), options);
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(log.status().message()),
              HasSubstr("max_batch must be at least 1, got 0"));
  options = {};
  options.capacity = -1;
  EXPECT_EQ(PredictionLog::Create(store_.get(), options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SampleInputsTest, IsDeterministicNestedAndNearTheFraction) {
  int sampled = 0;
  for (uint64_t h = 0; h < 100'000; ++h) {
    const bool at_10 = SampleInputs(h, 0.1);
    EXPECT_EQ(at_10, SampleInputs(h, 0.1));
    if (at_10) {
      ++sampled;
      EXPECT_TRUE(SampleInputs(h, 0.2)) << h;
    }
    EXPECT_FALSE(SampleInputs(h, 0.0));
    EXPECT_TRUE(SampleInputs(h, 1.0));
  }
  // Binomial(100000, 0.1): standard deviation about 95.
  EXPECT_NEAR(sampled, 10'000, 500);
  EXPECT_FALSE(SampleInputs(7, std::numeric_limits<double>::quiet_NaN()));
  EXPECT_FALSE(SampleInputs(7, -1));
  EXPECT_TRUE(SampleInputs(7, 2));
}

}  // namespace
}  // namespace slipway
