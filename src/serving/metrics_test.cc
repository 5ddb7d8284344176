#include "serving/metrics.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/filesystem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serving/inference.h"
#include "testing/fake_clock.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The value of the sample whose name and labels are exactly `series`
// (`name{a="x",b="y"}`), or nullopt when there is no such line.
std::optional<std::string> Sample(const std::string& text,
                                  const std::string& series) {
  for (const std::string& line : Lines(text)) {
    if (line.size() > series.size() &&
        line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return line.substr(series.size() + 1);
    }
  }
  return std::nullopt;
}

// `name{k="v",...}` with the values as given (already escaped).
std::string Series(
    std::string_view name,
    std::initializer_list<std::pair<std::string_view, std::string>> labels) {
  std::string series(name);
  series += '{';
  for (const auto& [key, value] : labels) {
    if (series.back() != '{') series += ',';
    series += std::string(key) + "=\"" + value + "\"";
  }
  return series + "}";
}

// A series of slipway_requests_total or slipway_request_failures_total.
std::string RequestSeries(std::string_view name, const std::string& app,
                          int version, const std::string& endpoint,
                          int status) {
  return Series(name, {{"app", app},
                       {"version", std::to_string(version)},
                       {"endpoint", endpoint},
                       {"status", std::to_string(status)}});
}

std::string Requests(const std::string& app, int version,
                     const std::string& endpoint, int status) {
  return RequestSeries("slipway_requests_total", app, version, endpoint,
                       status);
}

std::string Failures(const std::string& app, int version,
                     const std::string& endpoint, int status) {
  return RequestSeries("slipway_request_failures_total", app, version, endpoint,
                       status);
}

class ServingMetricsTest : public ::testing::Test {
 protected:
  ServingMetrics metrics_;
};

TEST_F(ServingMetricsTest, CountsRequestsAndFailuresByLabels) {
  metrics_.RecordRequest("churn", 3, "predict", 200, 120);
  metrics_.RecordRequest("churn", 3, "predict", 200, 80);
  metrics_.RecordRequest("churn", 3, "infer", 200, 40);
  metrics_.RecordRequest("churn", 0, "predict", 404, 10);
  metrics_.RecordRequest("churn", 3, "predict", 400, 30);
  std::string text = metrics_.Render({});

  EXPECT_EQ(Sample(text, Requests("churn", 3, "predict", 200)), "2");
  EXPECT_EQ(Sample(text, Requests("churn", 3, "infer", 200)), "1");
  EXPECT_EQ(Sample(text, Requests("churn", 0, "predict", 404)), "1");
  EXPECT_EQ(Sample(text, Failures("churn", 0, "predict", 404)), "1");
  EXPECT_EQ(Sample(text, Failures("churn", 3, "predict", 400)), "1");
  EXPECT_EQ(Sample(text, Failures("churn", 3, "predict", 200)), std::nullopt);
  // The duration histogram sums over version and status: 120+80+10+30 us.
  EXPECT_EQ(Sample(text, Series("slipway_request_duration_seconds_count",
                                {{"app", "churn"}, {"endpoint", "predict"}})),
            "4");
  EXPECT_EQ(Sample(text, Series("slipway_request_duration_seconds_sum",
                                {{"app", "churn"}, {"endpoint", "predict"}})),
            "0.00024");
  EXPECT_EQ(Sample(text, Series("slipway_request_duration_seconds_count",
                                {{"app", "churn"}, {"endpoint", "infer"}})),
            "1");
}

TEST_F(ServingMetricsTest, ConcurrentRecordingFromEightThreadsIsExact) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      const std::string app = t % 2 == 0 ? "even" : "odd";
      for (int i = 0; i < kPerThread; ++i) {
        metrics_.RequestStarted();
        metrics_.RecordRequest(app, 1, "predict", i % 10 == 0 ? 500 : 200, 7);
        metrics_.RecordQueueWait(app, 1, 3);
        if (i % 4 == 0) metrics_.RecordBatch(app, 1, 5, 2, 11);
        metrics_.RequestFinished();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::string text = metrics_.Render({});

  // Four threads per app.
  for (const std::string app : {"even", "odd"}) {
    EXPECT_EQ(Sample(text, Requests(app, 1, "predict", 200)),
              std::to_string(4 * kPerThread * 9 / 10));
    EXPECT_EQ(Sample(text, Requests(app, 1, "predict", 500)),
              std::to_string(4 * kPerThread / 10));
    EXPECT_EQ(Sample(text, Failures(app, 1, "predict", 500)),
              std::to_string(4 * kPerThread / 10));
    auto by_app = [&app](std::string_view name) {
      return Series(name, {{"app", app}});
    };
    const std::string duration = "slipway_request_duration_seconds";
    EXPECT_EQ(Sample(text, Series(duration + "_count",
                                  {{"app", app}, {"endpoint", "predict"}})),
              std::to_string(4 * kPerThread));
    // 4 * 20000 * 7us = 0.56 s, exact because sums are kept in microseconds.
    EXPECT_EQ(Sample(text, Series(duration + "_sum",
                                  {{"app", app}, {"endpoint", "predict"}})),
              "0.56");
    EXPECT_EQ(Sample(text, by_app("slipway_queue_wait_seconds_count")),
              std::to_string(4 * kPerThread));
    EXPECT_EQ(Sample(text, by_app("slipway_queue_wait_seconds_sum")), "0.24");
    EXPECT_EQ(Sample(text, by_app("slipway_batch_rows_count")),
              std::to_string(kPerThread));
    EXPECT_EQ(Sample(text, by_app("slipway_batch_rows_sum")),
              std::to_string(5 * kPerThread));
    EXPECT_EQ(Sample(text, by_app("slipway_batch_requests_sum")),
              std::to_string(2 * kPerThread));
    EXPECT_EQ(Sample(text, by_app("slipway_backend_duration_seconds_count")),
              std::to_string(kPerThread));
  }
  EXPECT_EQ(Sample(text, "slipway_requests_in_flight"), "0");
}

TEST_F(ServingMetricsTest, LatencyBucketsIncludeTheirUpperBound) {
  // 50us is in le=5e-05; 51us is not. 1s is in le=1; 1s+1us only in +Inf.
  for (int64_t us : {0, 50, 51, 100, 2'500, 1'000'000, 1'000'001}) {
    metrics_.RecordRequest("a", 1, "predict", 200, us);
  }
  metrics_.RecordRequest("a", 1, "predict", 200, -5);  // counted as 0
  std::string text = metrics_.Render({});
  auto bucket = [&text](const std::string& le) {
    return Sample(text,
                  Series("slipway_request_duration_seconds_bucket",
                         {{"app", "a"}, {"endpoint", "predict"}, {"le", le}}));
  };
  EXPECT_EQ(bucket("5e-05"), "3");   // -5 (as 0), 0, 50
  EXPECT_EQ(bucket("0.0001"), "5");  // + 51, 100
  EXPECT_EQ(bucket("0.00025"), "5");
  EXPECT_EQ(bucket("0.001"), "5");
  EXPECT_EQ(bucket("0.0025"), "6");  // + 2500
  EXPECT_EQ(bucket("0.25"), "6");
  EXPECT_EQ(bucket("1"), "7");  // + 1s
  EXPECT_EQ(bucket("+Inf"), "8");
  EXPECT_EQ(Sample(text, Series("slipway_request_duration_seconds_count",
                                {{"app", "a"}, {"endpoint", "predict"}})),
            "8");
  EXPECT_EQ(Sample(text, Series("slipway_request_duration_seconds_sum",
                                {{"app", "a"}, {"endpoint", "predict"}})),
            "2.002702");
}

TEST_F(ServingMetricsTest, BatchSizeBucketsIncludeTheirUpperBound) {
  for (int rows : {1, 2, 3, 1024, 1025}) {
    metrics_.RecordBatch("a", 1, rows, 1, 100);
  }
  std::string text = metrics_.Render({});
  auto bucket = [&text](const std::string& le) {
    return Sample(
        text, Series("slipway_batch_rows_bucket", {{"app", "a"}, {"le", le}}));
  };
  EXPECT_EQ(bucket("1"), "1");
  EXPECT_EQ(bucket("2"), "2");
  EXPECT_EQ(bucket("4"), "3");
  EXPECT_EQ(bucket("512"), "3");
  EXPECT_EQ(bucket("1024"), "4");
  EXPECT_EQ(bucket("+Inf"), "5");
  EXPECT_EQ(Sample(text, Series("slipway_batch_rows_sum", {{"app", "a"}})),
            "2055");
  EXPECT_EQ(Sample(text, Series("slipway_batch_requests_bucket",
                                {{"app", "a"}, {"le", "1"}})),
            "5");
  EXPECT_EQ(Sample(text, Series("slipway_backend_duration_seconds_bucket",
                                {{"app", "a"}, {"le", "0.0001"}})),
            "5");
  EXPECT_EQ(Sample(text, Series("slipway_backend_duration_seconds_sum",
                                {{"app", "a"}})),
            "0.0005");
  // No queue wait was recorded, so the family has no series.
  EXPECT_THAT(text, Not(HasSubstr("slipway_queue_wait_seconds_count")));
}

TEST_F(ServingMetricsTest, EscapesLabelValues) {
  metrics_.RecordRequest("we\"ird\\app\nname", 1, "predict", 200, 1);
  std::string text = metrics_.Render({});
  EXPECT_EQ(Sample(text, Requests(R"(we\"ird\\app\nname)", 1, "predict", 200)),
            "1");
  // The raw newline never reaches the output: every line is a comment or a
  // complete sample.
  for (const std::string& line : Lines(text)) {
    EXPECT_TRUE(line.rfind("# ", 0) == 0 || line.rfind("slipway_", 0) == 0)
        << line;
  }
}

TEST_F(ServingMetricsTest, FamiliesAreSortedWithOneHelpAndTypeEach) {
  metrics_.RecordRequest("a", 1, "predict", 200, 1);
  metrics_.RecordBatch("a", 1, 1, 1, 1);
  metrics_.RecordQueueWait("a", 1, 1);
  std::vector<std::string> types;
  std::vector<std::string> helps;
  for (const std::string& line : Lines(metrics_.Render({}))) {
    if (line.rfind("# TYPE ", 0) == 0) types.push_back(line.substr(7));
    if (line.rfind("# HELP ", 0) == 0) {
      helps.push_back(line.substr(7, line.find(' ', 7) - 7));
    }
  }
  const std::vector<std::string> families = {
      "slipway_backend_duration_seconds histogram",
      "slipway_batch_requests histogram",
      "slipway_batch_rows histogram",
      "slipway_build_info gauge",
      "slipway_model_version_role gauge",
      "slipway_model_version_state gauge",
      "slipway_queue_wait_seconds histogram",
      "slipway_request_duration_seconds histogram",
      "slipway_request_failures_total counter",
      "slipway_requests_in_flight gauge",
      "slipway_requests_total counter",
      "slipway_shadow_predictions_total counter"};
  EXPECT_THAT(types, ElementsAreArray(families));
  std::vector<std::string> names;
  for (const std::string& family : families) {
    names.push_back(family.substr(0, family.find(' ')));
  }
  EXPECT_THAT(helps, ElementsAreArray(names));
}

TEST_F(ServingMetricsTest, InFlightAndBuildInfo) {
  metrics_.RequestStarted();
  metrics_.RequestStarted();
  metrics_.RequestFinished();
  std::string text = metrics_.Render({});
  EXPECT_EQ(Sample(text, "slipway_requests_in_flight"), "1");
  EXPECT_EQ(Sample(text, Series("slipway_build_info",
                                {{"version", kInferenceServerVersion}})),
            "1");
}

TEST_F(ServingMetricsTest, ModelStateGaugesMarkEachVersionsCurrentState) {
  std::vector<VersionState> states = {
      {"churn", 1, VersionStateKind::kUnloaded, "", 1, ""},
      {"churn", 2, VersionStateKind::kDraining, "", 2, ""},
      {"churn", 3, VersionStateKind::kReady, "", 3, ""},
      {"churn", 4, VersionStateKind::kFailed, "bad file", 4, ""},
      {"fraud", 7, VersionStateKind::kLoading, "", 5, ""},
      // Version 1 loaded again after its unload: the later entry wins.
      {"churn", 1, VersionStateKind::kLoading, "", 6, ""},
  };
  std::string text = metrics_.Render(states);
  auto state = [&text](const std::string& app, int version,
                       const std::string& name) {
    return Sample(text, Series("slipway_model_version_state",
                               {{"app", app},
                                {"version", std::to_string(version)},
                                {"state", name}}));
  };
  EXPECT_EQ(state("churn", 1, "loading"), "1");
  EXPECT_EQ(state("churn", 1, "unloaded"), "0");
  EXPECT_EQ(state("churn", 2, "draining"), "1");
  EXPECT_EQ(state("churn", 2, "ready"), "0");
  EXPECT_EQ(state("churn", 3, "ready"), "1");
  EXPECT_EQ(state("churn", 3, "loading"), "0");
  EXPECT_EQ(state("churn", 4, "failed"), "1");
  EXPECT_EQ(state("fraud", 7, "loading"), "1");
  EXPECT_EQ(state("fraud", 7, "ready"), "0");
  int series = 0;
  for (const std::string& line : Lines(text)) {
    if (line.rfind("slipway_model_version_state{", 0) == 0) ++series;
  }
  EXPECT_EQ(series, 5 * 5);  // five versions, five states each
}

TEST_F(ServingMetricsTest, RoleGaugesMarkEachVersionsCurrentRole) {
  std::vector<VersionState> states = {
      {"churn", 1, VersionStateKind::kReady, "", 1, "serving"},
      {"churn", 2, VersionStateKind::kReady, "", 2, "canary"},
      {"churn", 3, VersionStateKind::kDraining, "", 3, ""},
      {"churn", 4, VersionStateKind::kReady, "", 4, "shadow"},
      // Version 3 loaded again as the shadow: the later entry wins.
      {"churn", 3, VersionStateKind::kReady, "", 5, "shadow"},
  };
  std::string text = metrics_.Render(states);
  auto role = [&text](int version, const std::string& name) {
    return Sample(text, Series("slipway_model_version_role",
                               {{"app", "churn"},
                                {"version", std::to_string(version)},
                                {"role", name}}));
  };
  EXPECT_EQ(role(1, "serving"), "1");
  EXPECT_EQ(role(1, "canary"), "0");
  EXPECT_EQ(role(1, "shadow"), "0");
  EXPECT_EQ(role(2, "canary"), "1");
  EXPECT_EQ(role(2, "serving"), "0");
  EXPECT_EQ(role(3, "shadow"), "1");
  EXPECT_EQ(role(4, "shadow"), "1");
  std::vector<std::string> series;
  for (const std::string& line : Lines(text)) {
    if (line.rfind("slipway_model_version_role{", 0) == 0) {
      series.push_back(line);
    }
  }
  ASSERT_EQ(series.size(), 4u * 3u);  // four versions, three roles each
  // Sorted by label values within a version.
  EXPECT_EQ(series[0],
            "slipway_model_version_role{app=\"churn\",version=\"1\",role="
            "\"canary\"} 0");
  EXPECT_EQ(series[1],
            "slipway_model_version_role{app=\"churn\",version=\"1\",role="
            "\"serving\"} 1");

  // A draining version holds no role.
  text =
      metrics_.Render({{"churn", 3, VersionStateKind::kDraining, "", 3, ""}});
  EXPECT_EQ(
      Sample(text,
             Series("slipway_model_version_role",
                    {{"app", "churn"}, {"version", "3"}, {"role", "serving"}})),
      "0");
}

TEST_F(ServingMetricsTest, CountsShadowPredictionsByOutcome) {
  metrics_.RecordShadowPrediction("churn", 4, ShadowOutcome::kOk);
  metrics_.RecordShadowPrediction("churn", 4, ShadowOutcome::kOk);
  metrics_.RecordShadowPrediction("churn", 4, ShadowOutcome::kDropped);
  metrics_.RecordShadowPrediction("churn", 5, ShadowOutcome::kError);
  std::thread other([this] {
    metrics_.RecordShadowPrediction("churn", 4, ShadowOutcome::kOk);
  });
  other.join();
  std::string text = metrics_.Render({});
  auto shadow = [&text](int version, const std::string& outcome) {
    return Sample(text, Series("slipway_shadow_predictions_total",
                               {{"app", "churn"},
                                {"version", std::to_string(version)},
                                {"outcome", outcome}}));
  };
  EXPECT_EQ(shadow(4, "ok"), "3");
  EXPECT_EQ(shadow(4, "dropped"), "1");
  EXPECT_EQ(shadow(4, "error"), "0");
  EXPECT_EQ(shadow(5, "error"), "1");
  EXPECT_EQ(shadow(5, "ok"), "0");
  EXPECT_THAT(text, HasSubstr("# TYPE slipway_shadow_predictions_total "
                              "counter\n"));
  EXPECT_EQ(ShadowOutcomeName(ShadowOutcome::kDropped), "dropped");
}

TEST(MetricsRouteTest, ServesTheExpositionWithItsContentType) {
  FakeClock clock;
  ModelManager models(&clock);
  models.AddApp("churn");
  ServingMetrics metrics;
  metrics.RecordRequest("churn", 0, "predict", 503, 20);
  Router router;
  AddMetricsRoute(&router, &metrics, &models);

  HttpRequest request;
  request.method = "GET";
  request.path = "/metrics";
  HttpResponse response = router.Dispatch(request);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response.body, metrics.Render(models.States()));
  EXPECT_EQ(Sample(response.body, Failures("churn", 0, "predict", 503)), "1");

  request.method = "POST";
  EXPECT_EQ(router.Dispatch(request).status, 405);
}

// Threads that recorded into an object keep nothing pointing at it: it can
// be destroyed while they live, and they record into the next one.
TEST(ServingMetricsWorkersTest, AreRenderedPerSlot) {
  EXPECT_EQ(ServingMetrics::RenderWorkers({}), "");
  ModelManager::VersionWorkers python{"iris", 3, {}};
  python.workers.push_back(ModelWorker{101, 52428800, 7, 0});
  python.workers.push_back(ModelWorker{0, 0, 0, 2});  // being replaced
  const std::string text = ServingMetrics::RenderWorkers({python});
  EXPECT_THAT(text, HasSubstr("# TYPE slipway_model_worker_resident_bytes "
                              "gauge\n"));
  EXPECT_THAT(text, HasSubstr("slipway_model_worker_resident_bytes{app=\"iris\","
                              "version=\"3\",worker=\"0\"} 52428800\n"));
  EXPECT_THAT(text, HasSubstr("slipway_model_worker_requests{app=\"iris\","
                              "version=\"3\",worker=\"0\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE slipway_model_worker_restarts_total "
                              "counter\n"));
  EXPECT_THAT(text, HasSubstr("slipway_model_worker_restarts_total{app=\"iris\","
                              "version=\"3\",worker=\"1\"} 2\n"));
}

TEST(ServingMetricsLifetimeTest, DestroyedWhileRecordingThreadsLive) {
  constexpr int kThreads = 4;
  auto first = std::make_unique<ServingMetrics>();
  ServingMetrics* current = first.get();
  absl::Notification first_recorded[kThreads];
  absl::Notification swapped;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        current->RecordRequest("a", 1, "infer", 200, 5);
      }
      first_recorded[t].Notify();
      swapped.WaitForNotification();
      for (int i = 0; i < 10; ++i) {
        current->RecordRequest("a", 2, "infer", 200, 5);
      }
    });
  }
  for (absl::Notification& recorded : first_recorded) {
    recorded.WaitForNotification();
  }
  EXPECT_EQ(Sample(first->Render({}), Requests("a", 1, "infer", 200)), "400");
  first.reset();
  auto second = std::make_unique<ServingMetrics>();
  current = second.get();
  swapped.Notify();
  for (std::thread& thread : threads) thread.join();

  std::string text = second->Render({});
  EXPECT_EQ(Sample(text, Requests("a", 2, "infer", 200)), "40");
  EXPECT_EQ(Sample(text, Requests("a", 1, "infer", 200)), std::nullopt);
}

TEST(ServingMetricsLifetimeTest, ManyObjectsOutliveExitedThreads) {
  for (int round = 0; round < 50; ++round) {
    ServingMetrics metrics;
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&metrics] {
        metrics.RecordRequest("a", 1, "predict", 200, 1);
        metrics.RecordBatch("a", 1, 1, 1, 1);
      });
    }
    for (std::thread& thread : threads) thread.join();
    std::string text = metrics.Render({});
    ASSERT_EQ(Sample(text, Requests("a", 1, "predict", 200)), "3");
    ASSERT_EQ(Sample(text, Series("slipway_batch_rows_count", {{"app", "a"}})),
              "3");
  }
}

// promtool's text-format parser and linter (counter names, units, HELP,
// duplicates) accept a populated exposition without a word.
TEST(ServingMetricsPromtoolTest, PromtoolCheckMetricsReportsNothing) {
  constexpr char kPromtool[] = "/usr/bin/promtool";
  if (access(kPromtool, X_OK) != 0) {
    GTEST_SKIP() << kPromtool << " not installed (Debian package prometheus)";
  }
  ServingMetrics metrics;
  metrics.RequestStarted();
  metrics.RecordRequest("churn", 3, "predict", 200, 1'200);
  metrics.RecordRequest("churn", 3, "infer", 200, 300);
  metrics.RecordRequest("churn", 0, "predict", 404, 40);
  metrics.RecordRequest("we\"ird\\app\nname", 1, "infer", 500, 2'000'000);
  metrics.RecordBatch("churn", 3, 12, 3, 900);
  metrics.RecordQueueWait("churn", 3, 150);
  metrics.RecordShadowPrediction("churn", 5, ShadowOutcome::kOk);
  std::vector<VersionState> states = {
      {"churn", 2, VersionStateKind::kDraining, "", 1, ""},
      {"churn", 3, VersionStateKind::kReady, "", 2, "serving"},
      {"churn", 4, VersionStateKind::kFailed, "bad", 3, ""},
      {"churn", 5, VersionStateKind::kReady, "", 4, "shadow"}};

  TempDir dir;
  const std::string path = JoinPath(dir.path(), "metrics.txt");
  ASSERT_TRUE(
      LocalFilesystem()->WriteFileAtomic(path, metrics.Render(states)).ok());
  const std::string command =
      std::string(kPromtool) + " check metrics < " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
    output.append(buffer, n);
  }
  int status = pclose(pipe);
  EXPECT_EQ(output, "");
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace slipway
