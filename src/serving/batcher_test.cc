#include "serving/batcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "serving/http.h"
#include "serving/http_server.h"
#include "serving/inference.h"
#include "serving/io_round.h"
#include "serving/metrics.h"
#include "serving/model_manager.h"

namespace slipway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Reached only when a test is about to fail: a flush that did not happen.
constexpr absl::Duration kWait = absl::Seconds(60);
// A delay no test waits for: a batch closes by filling up or by shutdown.
constexpr int64_t kForever = int64_t{3600} * 1000 * 1000;

// A regression model over features a and b that predicts
// a * 1000 + b + offset, so each output names the row it came from. It
// records the rows of every Predict call, can hold its first call until
// released, and can fail.
class RowEchoModel : public Model {
 public:
  explicit RowEchoModel(float offset = 0)
      : Model(Signature(Task::kRegression,
                        {FeatureSpec{"a", DataType::kFloat64, {}},
                         FeatureSpec{"b", DataType::kFloat64, {}}},
                        "y", DataType::kFloat64, {})),
        offset_(offset) {}

  std::string_view format() const override { return "fake"; }

  absl::Status Predict(const float* rows, size_t num_rows,
                       std::vector<float>* out) const override {
    bool hold;
    {
      absl::MutexLock lock(&mu_);
      calls_.push_back(num_rows);
      hold = hold_first_ && calls_.size() == 1;
    }
    if (hold) {
      entered_.Notify();
      release_.WaitForNotification();
    }
    if (!failure_.ok()) return failure_;
    out->resize(num_rows);
    for (size_t r = 0; r < num_rows; ++r) {
      (*out)[r] = rows[2 * r] * 1000 + rows[2 * r + 1] + offset_;
    }
    return absl::OkStatus();
  }

  // Rows of each Predict call so far, in call order.
  std::vector<size_t> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // REQUIRES: called before the first Predict.
  void HoldFirstCall() {
    absl::MutexLock lock(&mu_);
    hold_first_ = true;
  }
  void WaitUntilHeld() const { entered_.WaitForNotification(); }
  void Release() const {
    if (!release_.HasBeenNotified()) release_.Notify();
  }
  // REQUIRES: called before the first Predict.
  void FailWith(absl::Status status) { failure_ = std::move(status); }

 private:
  const float offset_;
  absl::Status failure_;
  mutable absl::Mutex mu_;
  mutable std::vector<size_t> calls_ ABSL_GUARDED_BY(mu_);
  bool hold_first_ ABSL_GUARDED_BY(mu_) = false;
  mutable absl::Notification entered_;
  mutable absl::Notification release_;
};

// Where one request's answer lands.
struct Outcome {
  absl::Notification done;
  absl::StatusOr<std::vector<float>> outputs =
      absl::UnknownError("not answered");
  std::thread::id thread;

  bool Wait() { return done.WaitForNotificationWithTimeout(kWait); }
};

// A request for rows (request, 0), (request, 1), ... (request, n-1), whose
// outputs are therefore request * 1000 + row.
std::unique_ptr<BatchRequest> Rows(int request, size_t num_rows,
                                   Outcome* outcome) {
  auto batch_request = std::make_unique<BatchRequest>();
  for (size_t row = 0; row < num_rows; ++row) {
    batch_request->rows.push_back(static_cast<float>(request));
    batch_request->rows.push_back(static_cast<float>(row));
  }
  batch_request->num_rows = num_rows;
  // Notify() a second time aborts, so a second call cannot go unnoticed.
  batch_request->done = [outcome](absl::StatusOr<std::vector<float>> outputs) {
    outcome->outputs = std::move(outputs);
    outcome->thread = std::this_thread::get_id();
    outcome->done.Notify();
  };
  return batch_request;
}

std::vector<float> Expected(int request, size_t num_rows, float offset = 0) {
  std::vector<float> outputs;
  for (size_t row = 0; row < num_rows; ++row) {
    outputs.push_back(static_cast<float>(request * 1000 + row) + offset);
  }
  return outputs;
}

BatchingOptions Options(int max_batch, int64_t max_delay_us, int max_queue) {
  BatchingOptions options;
  options.max_batch = max_batch;
  options.max_delay_us = max_delay_us;
  options.max_queue = max_queue;
  return options;
}

std::vector<std::unique_ptr<Outcome>> MakeOutcomes(size_t n) {
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (size_t i = 0; i < n; ++i)
    outcomes.push_back(std::make_unique<Outcome>());
  return outcomes;
}

TEST(DynamicBatcherTest, ConcurrentRequestsShareOneBackendCall) {
  auto model = std::make_shared<RowEchoModel>();
  ServingMetrics metrics;
  DynamicBatcher batcher("churn", 3, model, Options(16, kForever, 64),
                         RealClock(), &metrics);
  auto outcomes = MakeOutcomes(16);
  std::vector<std::thread> clients;
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&, i] {
      std::unique_ptr<BatchRequest> request = Rows(i, 1, outcomes[i].get());
      EXPECT_TRUE(batcher.Enqueue(request).ok());
      EXPECT_EQ(request, nullptr);
    });
  }
  for (std::thread& client : clients) client.join();
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(outcomes[i]->Wait()) << "request " << i;
    ASSERT_TRUE(outcomes[i]->outputs.ok()) << outcomes[i]->outputs.status();
    EXPECT_EQ(*outcomes[i]->outputs, Expected(i, 1));
  }
  // The 16 requests filled one batch; the delay (an hour) never ran out.
  EXPECT_THAT(model->calls(), ElementsAre(16u));
  std::string text = metrics.Render({});
  EXPECT_THAT(text, HasSubstr("slipway_batch_rows_count{app=\"churn\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("slipway_batch_rows_sum{app=\"churn\"} 16\n"));
  EXPECT_THAT(text,
              HasSubstr("slipway_batch_requests_sum{app=\"churn\"} 16\n"));
  EXPECT_THAT(
      text, HasSubstr("slipway_queue_wait_seconds_count{app=\"churn\"} 16\n"));
}

// An event loop for one thread: work deferred through IoRound waits in
// `deferred` until the test runs the end of the pass.
class FakeIoRound {
 public:
  FakeIoRound()
      : scope_([this](std::function<void()> work) {
          deferred_.push_back(std::move(work));
        }) {}

  size_t deferred() const { return deferred_.size(); }
  // Runs the deferred work, as the loop does at the end of its pass.
  void EndPass() {
    std::vector<std::function<void()>> work;
    work.swap(deferred_);
    for (auto& w : work) w();
  }

 private:
  std::vector<std::function<void()>> deferred_;
  IoRound::Scope scope_;
};

TEST(DynamicBatcherTest, IoThreadBatchesItsPassAndAnswersOnItself) {
  auto model = std::make_shared<RowEchoModel>();
  ServingMetrics metrics;
  auto batcher = std::make_shared<DynamicBatcher>(
      "churn", 3, model, Options(4, 0, 64), RealClock(), &metrics);
  FakeIoRound round;
  auto outcomes = MakeOutcomes(6);
  for (int i = 0; i < 6; ++i) {
    std::unique_ptr<BatchRequest> request = Rows(i, 1, outcomes[i].get());
    ASSERT_TRUE(batcher->Enqueue(request).ok());
  }
  // Nothing runs before the pass ends, and one flush serves the pass.
  EXPECT_TRUE(model->calls().empty());
  EXPECT_EQ(round.deferred(), 1u);
  round.EndPass();
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(outcomes[i]->done.HasBeenNotified()) << "request " << i;
    ASSERT_TRUE(outcomes[i]->outputs.ok()) << outcomes[i]->outputs.status();
    EXPECT_EQ(*outcomes[i]->outputs, Expected(i, 1));
    EXPECT_EQ(outcomes[i]->thread, std::this_thread::get_id());
  }
  // max_batch 4: the pass's six rows went in two calls, in order.
  EXPECT_THAT(model->calls(), ElementsAre(4u, 2u));
  // The next pass schedules its own flush.
  auto more = MakeOutcomes(1);
  std::unique_ptr<BatchRequest> request = Rows(7, 2, more[0].get());
  ASSERT_TRUE(batcher->Enqueue(request).ok());
  EXPECT_EQ(round.deferred(), 1u);
  round.EndPass();
  ASSERT_TRUE(more[0]->outputs.ok());
  EXPECT_EQ(*more[0]->outputs, Expected(7, 2));
}

TEST(DynamicBatcherTest, IoThreadQueueCountsAgainstMaxQueue) {
  auto model = std::make_shared<RowEchoModel>();
  auto batcher = std::make_shared<DynamicBatcher>(
      "churn", 3, model, Options(4, 0, 4), RealClock(), nullptr);
  FakeIoRound round;
  auto outcomes = MakeOutcomes(2);
  std::unique_ptr<BatchRequest> first = Rows(0, 3, outcomes[0].get());
  ASSERT_TRUE(batcher->Enqueue(first).ok());
  std::unique_ptr<BatchRequest> second = Rows(1, 2, outcomes[1].get());
  absl::Status refused = batcher->Enqueue(second);
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_NE(second, nullptr);  // the caller still owns it
  round.EndPass();
  ASSERT_TRUE(outcomes[0]->outputs.ok());
  EXPECT_FALSE(outcomes[1]->done.HasBeenNotified());
}

TEST(DynamicBatcherTest, ShutdownAnswersWhatAnIoThreadHasNotFlushed) {
  auto model = std::make_shared<RowEchoModel>();
  auto batcher = std::make_shared<DynamicBatcher>(
      "churn", 3, model, Options(4, 0, 64), RealClock(), nullptr);
  FakeIoRound round;
  auto outcomes = MakeOutcomes(3);
  for (int i = 0; i < 3; ++i) {
    std::unique_ptr<BatchRequest> request = Rows(i, 1, outcomes[i].get());
    ASSERT_TRUE(batcher->Enqueue(request).ok());
  }
  batcher->Shutdown();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(outcomes[i]->done.HasBeenNotified()) << "request " << i;
    EXPECT_EQ(*outcomes[i]->outputs, Expected(i, 1));
  }
  auto late = MakeOutcomes(1);
  std::unique_ptr<BatchRequest> request = Rows(9, 1, late[0].get());
  EXPECT_TRUE(absl::IsUnavailable(batcher->Enqueue(request)));
  // The flush deferred before shutdown finds nothing left to do.
  round.EndPass();
  EXPECT_THAT(model->calls(), ElementsAre(3u));
}

TEST(DynamicBatcherTest, ADelayWindowKeepsTheWorkerOnIoThreads) {
  auto model = std::make_shared<RowEchoModel>();
  auto batcher = std::make_shared<DynamicBatcher>(
      "churn", 3, model, Options(2, kForever, 64), RealClock(), nullptr);
  FakeIoRound round;
  auto outcomes = MakeOutcomes(2);
  for (int i = 0; i < 2; ++i) {
    std::unique_ptr<BatchRequest> request = Rows(i, 1, outcomes[i].get());
    ASSERT_TRUE(batcher->Enqueue(request).ok());
  }
  EXPECT_EQ(round.deferred(), 0u);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(outcomes[i]->Wait()) << "request " << i;
    EXPECT_NE(outcomes[i]->thread, std::this_thread::get_id());
  }
}

TEST(DynamicBatcherTest, EachRequestGetsItsOwnRowsAcrossBatches) {
  auto model = std::make_shared<RowEchoModel>();
  DynamicBatcher batcher("churn", 3, model, Options(8, kForever, 64),
                         RealClock(), nullptr);
  // Whole requests in order, 8 rows per batch: [3 3 2] [3 5] [4 4].
  const std::vector<size_t> sizes = {3, 3, 2, 3, 5, 4, 4};
  auto outcomes = MakeOutcomes(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::unique_ptr<BatchRequest> request =
        Rows(static_cast<int>(i), sizes[i], outcomes[i].get());
    ASSERT_TRUE(batcher.Enqueue(request).ok());
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_TRUE(outcomes[i]->Wait()) << "request " << i;
    ASSERT_TRUE(outcomes[i]->outputs.ok()) << outcomes[i]->outputs.status();
    EXPECT_EQ(*outcomes[i]->outputs, Expected(static_cast<int>(i), sizes[i]))
        << "request " << i;
  }
  EXPECT_THAT(model->calls(), ElementsAre(8u, 8u, 8u));
}

TEST(DynamicBatcherTest, RequestLargerThanMaxBatchRunsAlone) {
  auto model = std::make_shared<RowEchoModel>();
  DynamicBatcher batcher("churn", 3, model, Options(4, kForever, 64),
                         RealClock(), nullptr);
  const std::vector<size_t> sizes = {1, 10, 1, 3};
  auto outcomes = MakeOutcomes(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::unique_ptr<BatchRequest> request =
        Rows(static_cast<int>(i), sizes[i], outcomes[i].get());
    ASSERT_TRUE(batcher.Enqueue(request).ok());
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_TRUE(outcomes[i]->Wait()) << "request " << i;
    EXPECT_EQ(*outcomes[i]->outputs, Expected(static_cast<int>(i), sizes[i]));
  }
  // The 10-row request is never split and never shares its call.
  EXPECT_THAT(model->calls(), ElementsAre(1u, 10u, 4u));
}

TEST(DynamicBatcherTest, LoneRequestWaitsMaxDelayThenRuns) {
  auto model = std::make_shared<RowEchoModel>();
  constexpr int64_t kDelayUs = 100'000;
  DynamicBatcher batcher("churn", 3, model, Options(64, kDelayUs, 1024),
                         RealClock(), nullptr);
  Outcome outcome;
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<BatchRequest> request = Rows(1, 1, &outcome);
  ASSERT_TRUE(batcher.Enqueue(request).ok());
  ASSERT_TRUE(outcome.Wait());
  const auto waited = std::chrono::steady_clock::now() - start;
  // Nothing else could close the batch, so it waited the whole delay; the
  // upper bound only says it did not wait for a batch that never filled.
  EXPECT_GE(waited, std::chrono::microseconds(kDelayUs));
  EXPECT_LT(waited,
            std::chrono::microseconds(kDelayUs) + std::chrono::seconds(30));
  EXPECT_EQ(*outcome.outputs, Expected(1, 1));
}

TEST(DynamicBatcherTest, FullBatchDoesNotWaitForTheDelay) {
  auto model = std::make_shared<RowEchoModel>();
  DynamicBatcher batcher("churn", 3, model, Options(4, kForever, 64),
                         RealClock(), nullptr);
  auto outcomes = MakeOutcomes(4);
  for (int i = 0; i < 4; ++i) {
    std::unique_ptr<BatchRequest> request = Rows(i, 1, outcomes[i].get());
    ASSERT_TRUE(batcher.Enqueue(request).ok());
  }
  // An hour of max_delay: only a flush on max_batch answers within kWait.
  for (auto& outcome : outcomes) ASSERT_TRUE(outcome->Wait());
  EXPECT_THAT(model->calls(), ElementsAre(4u));
}

TEST(DynamicBatcherTest, FullQueueIsRefusedAndTheCallerKeepsTheRequest) {
  auto model = std::make_shared<RowEchoModel>();
  model->HoldFirstCall();
  DynamicBatcher batcher("churn", 3, model, Options(2, 0, 4), RealClock(),
                         nullptr);
  auto outcomes = MakeOutcomes(4);
  std::unique_ptr<BatchRequest> running = Rows(0, 1, outcomes[0].get());
  ASSERT_TRUE(batcher.Enqueue(running).ok());
  model->WaitUntilHeld();  // the worker is busy; the next ones queue
  std::unique_ptr<BatchRequest> second = Rows(1, 2, outcomes[1].get());
  std::unique_ptr<BatchRequest> third = Rows(2, 2, outcomes[2].get());
  ASSERT_TRUE(batcher.Enqueue(second).ok());
  ASSERT_TRUE(batcher.Enqueue(third).ok());

  std::unique_ptr<BatchRequest> refused = Rows(3, 1, outcomes[3].get());
  absl::Status status = batcher.Enqueue(refused);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("app 'churn' (v3) has 4 rows waiting"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("queue limit of 4 rows (endpoint.batching.max_queue)"));
  // Not taken: the caller still owns it and it was never answered.
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(refused->num_rows, 1u);
  EXPECT_FALSE(outcomes[3]->done.HasBeenNotified());

  model->Release();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(outcomes[i]->Wait());
    EXPECT_TRUE(outcomes[i]->outputs.ok());
  }
  // Drained: the same request is taken now.
  ASSERT_TRUE(batcher.Enqueue(refused).ok());
  ASSERT_TRUE(outcomes[3]->Wait());
  EXPECT_EQ(*outcomes[3]->outputs, Expected(3, 1));
}

TEST(DynamicBatcherTest, RequestLargerThanTheQueueRunsWhenTheQueueIsEmpty) {
  auto model = std::make_shared<RowEchoModel>();
  DynamicBatcher batcher("churn", 3, model, Options(2, 0, 4), RealClock(),
                         nullptr);
  Outcome outcome;
  std::unique_ptr<BatchRequest> request = Rows(5, 10, &outcome);
  ASSERT_TRUE(batcher.Enqueue(request).ok());
  ASSERT_TRUE(outcome.Wait());
  EXPECT_EQ(*outcome.outputs, Expected(5, 10));
  EXPECT_THAT(model->calls(), ElementsAre(10u));
}

TEST(DynamicBatcherTest, ShutdownRunsQueuedRequestsThenRefusesNewOnes) {
  auto model = std::make_shared<RowEchoModel>();
  model->HoldFirstCall();
  DynamicBatcher batcher("churn", 3, model, Options(8, kForever, 64),
                         RealClock(), nullptr);
  auto outcomes = MakeOutcomes(4);
  std::unique_ptr<BatchRequest> running = Rows(0, 8, outcomes[0].get());
  ASSERT_TRUE(batcher.Enqueue(running).ok());
  model->WaitUntilHeld();
  for (int i = 1; i <= 2; ++i) {
    std::unique_ptr<BatchRequest> queued = Rows(i, 1, outcomes[i].get());
    ASSERT_TRUE(batcher.Enqueue(queued).ok());
  }
  std::thread shutdown([&] { batcher.Shutdown(); });
  model->Release();
  shutdown.join();
  // Shutdown returned after answering the queued requests, without waiting
  // an hour for their batch to fill.
  for (int i = 0; i <= 2; ++i) {
    ASSERT_TRUE(outcomes[i]->done.HasBeenNotified()) << "request " << i;
    ASSERT_TRUE(outcomes[i]->outputs.ok()) << outcomes[i]->outputs.status();
    EXPECT_EQ(*outcomes[i]->outputs, Expected(i, i == 0 ? 8 : 1));
  }
  EXPECT_THAT(model->calls(), ElementsAre(8u, 2u));

  std::unique_ptr<BatchRequest> late = Rows(3, 1, outcomes[3].get());
  absl::Status status = batcher.Enqueue(late);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("model churn v3 is shutting down"));
  EXPECT_NE(late, nullptr);
  EXPECT_FALSE(outcomes[3]->done.HasBeenNotified());
}

TEST(DynamicBatcherTest, BackendErrorReachesEveryRequestOfTheBatch) {
  auto model = std::make_shared<RowEchoModel>();
  model->FailWith(absl::InternalError("backend exploded"));
  DynamicBatcher batcher("churn", 3, model, Options(2, kForever, 8),
                         RealClock(), nullptr);
  auto outcomes = MakeOutcomes(2);
  for (int i = 0; i < 2; ++i) {
    std::unique_ptr<BatchRequest> request = Rows(i, 1, outcomes[i].get());
    ASSERT_TRUE(batcher.Enqueue(request).ok());
  }
  for (auto& outcome : outcomes) {
    ASSERT_TRUE(outcome->Wait());
    EXPECT_EQ(outcome->outputs.status().code(), absl::StatusCode::kInternal);
    EXPECT_EQ(outcome->outputs.status().message(),
              "model churn v3: backend exploded");
  }
  EXPECT_THAT(model->calls(), ElementsAre(2u));
}

TEST(DynamicBatcherTest, RowsThatDoNotMatchTheModelAreRefused) {
  auto model = std::make_shared<RowEchoModel>();
  DynamicBatcher batcher("churn", 3, model, Options(4, 0, 8), RealClock(),
                         nullptr);
  Outcome outcome;
  std::unique_ptr<BatchRequest> request = Rows(1, 2, &outcome);
  request->rows.pop_back();  // 3 values for 2 rows of 2 features
  absl::Status status = batcher.Enqueue(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("has 3 values for 2 rows of 2 features"));
  EXPECT_NE(request, nullptr);
}

TEST(MakeBatchSchedulerTest, BatchingOffPredictsOnTheCallersThread) {
  auto model = std::make_shared<RowEchoModel>();
  BatchingOptions off;
  off.enabled = false;
  BatchingOptions single = Options(1, 500, 16);
  for (const BatchingOptions& options : {off, single}) {
    std::shared_ptr<BatchScheduler> scheduler =
        MakeBatchScheduler("churn", 3, model, options, RealClock(), nullptr);
    ASSERT_NE(dynamic_cast<DirectScheduler*>(scheduler.get()), nullptr);
    Outcome outcome;
    std::unique_ptr<BatchRequest> request = Rows(2, 3, &outcome);
    ASSERT_TRUE(scheduler->Enqueue(request).ok());
    // Answered before Enqueue returned, on this thread.
    ASSERT_TRUE(outcome.done.HasBeenNotified());
    EXPECT_EQ(outcome.thread, std::this_thread::get_id());
    EXPECT_EQ(*outcome.outputs, Expected(2, 3));
    EXPECT_EQ(request, nullptr);
  }
  EXPECT_NE(dynamic_cast<DynamicBatcher*>(
                MakeBatchScheduler("churn", 3, model, BatchingOptions(),
                                   RealClock(), nullptr)
                    .get()),
            nullptr);
}

// A model that waits on other processes, as a pool of Python workers does:
// each Predict call blocks until `width` calls are in flight at once, so a
// batcher that runs fewer at a time never finishes one.
class BlockingModel : public RowEchoModel {
 public:
  explicit BlockingModel(int width) : width_(width) {}
  int max_concurrency() const override { return width_; }
  bool blocking() const override { return true; }
  absl::Status Predict(const float* rows, size_t num_rows,
                       std::vector<float>* out) const override {
    {
      absl::MutexLock lock(&gate_mu_);
      ++in_flight_;
      auto all_in = [this]() ABSL_SHARED_LOCKS_REQUIRED(gate_mu_) {
        return in_flight_ >= width_ || released_;
      };
      if (!gate_mu_.AwaitWithTimeout(absl::Condition(&all_in), kWait)) {
        return absl::DeadlineExceededError("fewer calls ran at once");
      }
      released_ = true;
    }
    return RowEchoModel::Predict(rows, num_rows, out);
  }

 private:
  const int width_;
  mutable absl::Mutex gate_mu_;
  mutable int in_flight_ ABSL_GUARDED_BY(gate_mu_) = 0;
  mutable bool released_ ABSL_GUARDED_BY(gate_mu_) = false;
};

TEST(DynamicBatcherTest, ABlockingModelRunsItsConcurrencyOffTheIoThread) {
  BatchingOptions off;
  off.enabled = false;
  for (const BatchingOptions& options : {Options(1, 0, 64), off}) {
    auto model = std::make_shared<BlockingModel>(3);
    std::shared_ptr<BatchScheduler> scheduler =
        MakeBatchScheduler("churn", 3, model, options, RealClock(), nullptr);
    ASSERT_NE(dynamic_cast<DynamicBatcher*>(scheduler.get()), nullptr);
    FakeIoRound round;
    auto outcomes = MakeOutcomes(3);
    for (int i = 0; i < 3; ++i) {
      std::unique_ptr<BatchRequest> request = Rows(i, 1, outcomes[i].get());
      ASSERT_TRUE(scheduler->Enqueue(request).ok());
    }
    // Nothing waits for the I/O pass: the batcher's threads took them.
    EXPECT_EQ(round.deferred(), 0u);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(outcomes[i]->Wait()) << "request " << i;
      ASSERT_TRUE(outcomes[i]->outputs.ok()) << outcomes[i]->outputs.status();
      EXPECT_EQ(*outcomes[i]->outputs, Expected(i, 1));
      EXPECT_NE(outcomes[i]->thread, std::this_thread::get_id());
    }
  }
}

TEST(ValidateBatchingOptionsTest, NamesTheFieldOutOfRange) {
  EXPECT_TRUE(ValidateBatchingOptions(BatchingOptions()).ok());
  EXPECT_THAT(
      std::string(ValidateBatchingOptions(Options(0, 500, 16)).message()),
      HasSubstr("max_batch is 0"));
  EXPECT_THAT(
      std::string(ValidateBatchingOptions(Options(4, -1, 16)).message()),
      HasSubstr("max_delay_us is -1"));
  EXPECT_THAT(
      std::string(ValidateBatchingOptions(Options(64, 500, 8)).message()),
      HasSubstr("max_queue (8) is smaller than max_batch (64)"));
}

// --- Through the model manager and the HTTP handlers ---

std::optional<VersionState> StateOf(const ModelManager& models,
                                    const std::string& app, int version) {
  std::optional<VersionState> found;
  for (const VersionState& state : models.States()) {
    if (state.app == app && state.version == version) found = state;
  }
  return found;
}

ModelManager::Loader LoaderFor(std::shared_ptr<const Model> model) {
  return [model]() -> absl::StatusOr<std::shared_ptr<const Model>> {
    return model;
  };
}

TEST(BatchedServingTest, HotSwapFinishesQueuedRequestsOnTheOldVersion) {
  ModelManager models(RealClock());
  models.AddApp("churn");
  auto v1 = std::make_shared<RowEchoModel>(/*offset=*/0.25f);
  auto v2 = std::make_shared<RowEchoModel>(/*offset=*/0.5f);
  v1->HoldFirstCall();
  const BatchingOptions batching = Options(2, 0, 16);
  ASSERT_TRUE(models.Serve("churn", 1, LoaderFor(v1), batching).ok());

  auto outcomes = MakeOutcomes(3);
  std::optional<ServableHandle> old = *models.Get("churn");
  std::unique_ptr<BatchRequest> running = Rows(0, 1, outcomes[0].get());
  ASSERT_TRUE(old->scheduler->Enqueue(running).ok());
  v1->WaitUntilHeld();
  std::unique_ptr<BatchRequest> queued = Rows(1, 1, outcomes[1].get());
  ASSERT_TRUE(old->scheduler->Enqueue(queued).ok());

  // The swap returns while v1's batcher still has work.
  ASSERT_TRUE(models.Serve("churn", 2, LoaderFor(v2), batching).ok());
  EXPECT_EQ(StateOf(models, "churn", 1)->state, VersionStateKind::kDraining);
  ServableHandle current = *models.Get("churn");
  EXPECT_EQ(current.version, 2);
  EXPECT_NE(current.scheduler, old->scheduler);
  std::unique_ptr<BatchRequest> fresh = Rows(2, 1, outcomes[2].get());
  ASSERT_TRUE(current.scheduler->Enqueue(fresh).ok());
  ASSERT_TRUE(outcomes[2]->Wait());
  EXPECT_EQ(*outcomes[2]->outputs, Expected(2, 1, 0.5f));

  v1->Release();
  ASSERT_TRUE(outcomes[0]->Wait());
  ASSERT_TRUE(outcomes[1]->Wait());
  EXPECT_EQ(*outcomes[0]->outputs, Expected(0, 1, 0.25f));
  EXPECT_EQ(*outcomes[1]->outputs, Expected(1, 1, 0.25f));
  // The last handle of v1 held its batcher, which held the model.
  old.reset();
  EXPECT_EQ(StateOf(models, "churn", 1)->state, VersionStateKind::kUnloaded);
}

TEST(BatchedServingTest, DrainingVersionWithoutItsBatcherRunsDirectly) {
  ModelManager models(RealClock());
  models.AddApp("churn");
  auto v1 = std::make_shared<RowEchoModel>(/*offset=*/0.25f);
  auto v2 = std::make_shared<RowEchoModel>(/*offset=*/0.5f);
  ASSERT_TRUE(models.Serve("churn", 1, LoaderFor(v1), Options(4, 0, 16)).ok());
  // Something holds v1's model but not its batcher, which goes at the swap.
  std::shared_ptr<const Model> held = models.Get("churn")->model;
  ASSERT_TRUE(models.Serve("churn", 2, LoaderFor(v2), Options(4, 0, 16)).ok());

  absl::StatusOr<ServableHandle> draining = models.Get("churn", 1);
  ASSERT_TRUE(draining.ok()) << draining.status();
  ASSERT_NE(dynamic_cast<DirectScheduler*>(draining->scheduler.get()), nullptr);
  Outcome outcome;
  std::unique_ptr<BatchRequest> request = Rows(4, 2, &outcome);
  ASSERT_TRUE(draining->scheduler->Enqueue(request).ok());
  ASSERT_TRUE(outcome.done.HasBeenNotified());
  EXPECT_EQ(*outcome.outputs, Expected(4, 2, 0.25f));
}

TEST(BatchedServingTest, ServeRefusesBatchingOutOfRangeBeforeLoading) {
  ModelManager models(RealClock());
  models.AddApp("churn");
  bool loaded = false;
  absl::Status status = models.Serve(
      "churn", 1,
      [&]() -> absl::StatusOr<std::shared_ptr<const Model>> {
        loaded = true;
        return std::make_shared<RowEchoModel>();
      },
      Options(64, 500, 8));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("serving model churn v1: batching max_queue (8)"));
  EXPECT_FALSE(loaded);
}

// What an async route answered, from whichever thread.
struct Answer {
  absl::Notification done;
  HttpResponse response;

  HttpResponder Responder() {
    return HttpResponder(
        [this](HttpResponse r) {
          response = std::move(r);
          done.Notify();
        },
        "POST /v1/apps/echo/predict");
  }
  nlohmann::json Json() const { return nlohmann::json::parse(response.body); }
  std::string Header(const std::string& name) const {
    for (const auto& [key, value] : response.headers) {
      if (key == name) return value;
    }
    return "";
  }
};

HttpRequest PredictRequest(const std::string& app, int request,
                           size_t num_rows) {
  nlohmann::json records = nlohmann::json::array();
  for (size_t row = 0; row < num_rows; ++row) {
    records.push_back({{"a", request}, {"b", row}});
  }
  HttpRequest http;
  http.method = "POST";
  http.path = "/v1/apps/" + app + "/predict";
  http.headers["content-type"] = "application/json";
  http.body = nlohmann::json{{"records", records}}.dump();
  return http;
}

class BatchedHttpTest : public ::testing::Test {
 protected:
  void Serve(std::shared_ptr<const Model> model, BatchingOptions batching) {
    models_.AddApp("echo");
    ASSERT_TRUE(models_.Serve("echo", 1, LoaderFor(model), batching).ok());
    AddInferenceRoutes(&router_, &models_, RealClock(), &metrics_);
  }

  ServingMetrics metrics_;
  ModelManager models_{RealClock(), &metrics_};
  Router router_;
};

TEST_F(BatchedHttpTest, FullQueueIs503WithRetryAfter) {
  auto model = std::make_shared<RowEchoModel>();
  model->HoldFirstCall();
  Serve(model, Options(2, 0, 2));
  // DispatchAsync returns once the handler has queued its request (or been
  // refused), so each step below sees the previous one in the queue.
  Answer running, queued, refused;
  router_.DispatchAsync(PredictRequest("echo", 0, 1), running.Responder());
  model->WaitUntilHeld();
  router_.DispatchAsync(PredictRequest("echo", 1, 2), queued.Responder());
  router_.DispatchAsync(PredictRequest("echo", 2, 1), refused.Responder());

  ASSERT_TRUE(refused.done.HasBeenNotified());
  EXPECT_EQ(refused.response.status, 503);
  EXPECT_EQ(refused.Header("Retry-After"), "1");
  std::string error = refused.Json()["error"];
  EXPECT_THAT(error, HasSubstr("app 'echo'"));
  EXPECT_THAT(error, HasSubstr("queue limit of 2 rows"));
  EXPECT_FALSE(queued.done.HasBeenNotified());

  model->Release();
  ASSERT_TRUE(running.done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(queued.done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(running.response.status, 200);
  EXPECT_EQ(queued.Json()["predictions"], nlohmann::json({1000.0, 1001.0}));
  EXPECT_THAT(metrics_.Render(models_.States()),
              HasSubstr("slipway_requests_total{app=\"echo\",version=\"1\","
                        "endpoint=\"predict\",status=\"503\"} 1\n"));
}

// A minimal blocking HTTP/1.1 client: one request per connection
// (Connection: close), the answer read to the end of the stream.
struct RawResponse {
  int status = 0;
  std::string body;
};

RawResponse PostOnce(int port, const HttpRequest& request) {
  RawResponse response;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  // A batch that never flushes fails the test instead of hanging it.
  timeval timeout{absl::ToInt64Seconds(kWait), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    close(fd);
    return response;
  }
  std::string text = "POST " + request.path +
                     " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: " +
                     std::to_string(request.body.size()) + "\r\n\r\n" +
                     request.body;
  send(fd, text.data(), text.size(), MSG_NOSIGNAL);
  std::string received;
  char chunk[4096];
  ssize_t n;
  while ((n = recv(fd, chunk, sizeof(chunk), 0)) > 0) received.append(chunk, n);
  close(fd);
  size_t space = received.find(' ');
  size_t body = received.find("\r\n\r\n");
  if (space == std::string::npos || body == std::string::npos) return response;
  response.status = std::stoi(received.substr(space + 1, 3));
  response.body = received.substr(body + 4);
  return response;
}

TEST_F(BatchedHttpTest, SixteenConnectionsOnTwoThreadsShareOneBatch) {
  auto model = std::make_shared<RowEchoModel>();
  Serve(model, Options(16, kForever, 64));
  HttpServer::Options options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.threads = 2;
  auto server = HttpServer::Start(options, &router_);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();

  // With handlers holding a thread each, two server threads could never
  // get sixteen requests into one batch; asynchronous handlers wait in the
  // batcher's queue instead.
  std::vector<RawResponse> responses(16);
  std::vector<std::thread> clients;
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&, i] {
      responses[i] = PostOnce(port, PredictRequest("echo", i, 1));
    });
  }
  for (std::thread& client : clients) client.join();
  (*server)->Shutdown(1000);

  for (int i = 0; i < 16; ++i) {
    ASSERT_EQ(responses[i].status, 200)
        << "client " << i << ": " << responses[i].body;
    nlohmann::json body = nlohmann::json::parse(responses[i].body);
    EXPECT_EQ(body["predictions"], nlohmann::json({1000.0 * i}));
    EXPECT_EQ(body["model_version"], 1);
  }
  EXPECT_THAT(model->calls(), ElementsAre(16u));
  std::string text = metrics_.Render(models_.States());
  EXPECT_THAT(text, HasSubstr("slipway_batch_rows_sum{app=\"echo\"} 16\n"));
  EXPECT_THAT(text,
              HasSubstr("slipway_requests_total{app=\"echo\",version="
                        "\"1\",endpoint=\"predict\",status=\"200\"} 16\n"));
  EXPECT_THAT(text, HasSubstr("slipway_requests_in_flight 0\n"));
}

}  // namespace
}  // namespace slipway
