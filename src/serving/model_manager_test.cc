#include "serving/model_manager.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/fake_clock.h"

namespace slipway {
namespace {

using ::testing::HasSubstr;

// A model that predicts its own version number and counts live instances,
// so tests can see exactly when a version is unloaded.
class FakeModel : public Model {
 public:
  FakeModel(int version, std::atomic<int>* live)
      : Model(Signature(Task::kRegression,
                        {FeatureSpec{"x", DataType::kFloat64, {}}}, "y",
                        DataType::kFloat64, {})),
        version_(version),
        live_(live) {
    live_->fetch_add(1);
  }
  ~FakeModel() override { live_->fetch_sub(1); }

  std::string_view format() const override { return "fake"; }
  absl::Status Predict(const float* rows, size_t num_rows,
                       std::vector<float>* out) const override {
    out->assign(num_rows, static_cast<float>(version_));
    return absl::OkStatus();
  }
  int version() const { return version_; }

 private:
  const int version_;
  std::atomic<int>* const live_;
};

class ModelManagerTest : public ::testing::Test {
 protected:
  ModelManager::Loader LoaderFor(int version) {
    return [this, version]() -> absl::StatusOr<std::shared_ptr<const Model>> {
      ++loads_;
      return std::make_shared<FakeModel>(version, &live_);
    };
  }

  // The recorded state of the latest load of `version` of `app`.
  std::optional<VersionState> StateOf(const std::string& app, int version) {
    std::optional<VersionState> found;
    for (const VersionState& state : manager_.States()) {
      if (state.app == app && state.version == version) found = state;
    }
    return found;
  }

  static int VersionOf(const ServableHandle& handle) {
    return static_cast<const FakeModel&>(*handle.model).version();
  }

  FakeClock clock_;
  std::atomic<int> live_{0};
  std::atomic<int> loads_{0};
  ModelManager manager_{&clock_};
};

TEST_F(ModelManagerTest, UnknownAppIsNotFound) {
  absl::StatusOr<ServableHandle> handle = manager_.Get("churn");
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(handle.status().message(), "app 'churn' not found");
  EXPECT_EQ(manager_.Get("churn", 1).status().code(),
            absl::StatusCode::kNotFound);
  absl::Status served = manager_.Serve("churn", 1, LoaderFor(1));
  EXPECT_EQ(served.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(loads_, 0);
}

TEST_F(ModelManagerTest, KnownAppWithoutModelIsUnavailable) {
  manager_.AddApp("churn");
  absl::StatusOr<ServableHandle> handle = manager_.Get("churn");
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(handle.status().message(),
            "app 'churn' has no champion model yet: train one with `slipway "
            "run churn train --wait` and promote it");
  absl::StatusOr<ServableHandle> version = manager_.Get("churn", 7);
  EXPECT_EQ(version.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(version.status().message(), "model churn v7 is not loaded");
}

TEST_F(ModelManagerTest, ServeMakesTheVersionServeAndRecordsReady) {
  manager_.AddApp("churn");
  clock_.Set(1'000'000);
  ASSERT_TRUE(manager_.Serve("churn", 3, LoaderFor(3)).ok());
  absl::StatusOr<ServableHandle> handle = manager_.Get("churn");
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_EQ(handle->version, 3);
  EXPECT_EQ(VersionOf(*handle), 3);
  absl::StatusOr<ServableHandle> by_version = manager_.Get("churn", 3);
  ASSERT_TRUE(by_version.ok());
  EXPECT_EQ(by_version->model, handle->model);

  std::vector<VersionState> states = manager_.States();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].app, "churn");
  EXPECT_EQ(states[0].version, 3);
  EXPECT_EQ(states[0].state, VersionStateKind::kReady);
  EXPECT_EQ(states[0].since_micros, 1'000'000);
  EXPECT_EQ(VersionStateName(states[0].state), "ready");
}

TEST_F(ModelManagerTest, SwappedOutVersionDrainsUntilLastHandleIsReleased) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  std::optional<ServableHandle> in_flight = *manager_.Get("churn");

  clock_.Advance(5);
  ASSERT_TRUE(manager_.Serve("churn", 2, LoaderFor(2)).ok());
  EXPECT_EQ(manager_.Get("churn")->version, 2);
  EXPECT_EQ(live_, 2);
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kDraining);
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kReady);

  // The draining version still answers the request holding it, and can be
  // reached by version while it is loaded.
  std::vector<float> out;
  ASSERT_TRUE(in_flight->model->Predict(nullptr, 1, &out).ok());
  EXPECT_EQ(out, std::vector<float>{1.0f});
  std::optional<ServableHandle> by_version = *manager_.Get("churn", 1);
  EXPECT_EQ(VersionOf(*by_version), 1);

  in_flight.reset();
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kDraining);
  clock_.Advance(7);
  by_version.reset();
  EXPECT_EQ(live_, 1);
  std::optional<VersionState> unloaded = StateOf("churn", 1);
  EXPECT_EQ(unloaded->state, VersionStateKind::kUnloaded);
  EXPECT_EQ(unloaded->since_micros, clock_.NowMicros());
  absl::StatusOr<ServableHandle> gone = manager_.Get("churn", 1);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(gone.status().message(),
            "model churn v1 is not loaded (app 'churn' serves v2)");
}

TEST_F(ModelManagerTest, UnheldVersionUnloadsAtTheSwap) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.Serve("churn", 2, LoaderFor(2)).ok());
  EXPECT_EQ(live_, 1);
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kUnloaded);
}

TEST_F(ModelManagerTest, FailedLoadLeavesThePreviousVersionServing) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  absl::Status failed = manager_.Serve(
      "churn", 2, []() -> absl::StatusOr<std::shared_ptr<const Model>> {
        return absl::InvalidArgumentError("model file is truncated");
      });
  EXPECT_EQ(failed.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(failed.message(),
            "loading model churn v2: model file is truncated");
  EXPECT_EQ(manager_.Get("churn")->version, 1);
  std::optional<VersionState> state = StateOf("churn", 2);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->state, VersionStateKind::kFailed);
  EXPECT_EQ(state->reason, "model file is truncated");
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kReady);

  absl::Status empty = manager_.Serve(
      "churn", 3, []() -> absl::StatusOr<std::shared_ptr<const Model>> {
        return std::shared_ptr<const Model>();
      });
  EXPECT_EQ(empty.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(manager_.Get("churn")->version, 1);

  // A later good load of the failed version works.
  ASSERT_TRUE(manager_.Serve("churn", 2, LoaderFor(2)).ok());
  EXPECT_EQ(manager_.Get("churn")->version, 2);
}

TEST_F(ModelManagerTest, ServingTheServedVersionAgainLoadsNothing) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  EXPECT_EQ(loads_, 1);
  EXPECT_EQ(manager_.States().size(), 1u);
}

TEST_F(ModelManagerTest, RollbackToADrainingVersionReusesIt) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ServableHandle held = *manager_.Get("churn");
  ASSERT_TRUE(manager_.Serve("churn", 2, LoaderFor(2)).ok());
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  EXPECT_EQ(loads_, 2);
  ServableHandle serving = *manager_.Get("churn");
  EXPECT_EQ(serving.version, 1);
  EXPECT_EQ(serving.model, held.model);
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kReady);
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kUnloaded);
}

TEST_F(ModelManagerTest, LoadInProgressIsVisibleAndDoesNotBlockReaders) {
  manager_.AddApp("churn");
  manager_.AddApp("fraud");
  ASSERT_TRUE(manager_.Serve("fraud", 4, LoaderFor(4)).ok());
  absl::Notification started;
  absl::Notification release;
  std::thread loader([&] {
    absl::Status status = manager_.Serve(
        "churn", 1, [&]() -> absl::StatusOr<std::shared_ptr<const Model>> {
          started.Notify();
          release.WaitForNotification();
          return std::make_shared<FakeModel>(1, &live_);
        });
    EXPECT_TRUE(status.ok()) << status;
  });
  started.WaitForNotification();
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kLoading);
  absl::StatusOr<ServableHandle> loading = manager_.Get("churn");
  EXPECT_EQ(loading.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(loading.status().message(),
              HasSubstr("is loading its first model (model churn v1)"));
  // Other apps answer while churn loads.
  EXPECT_EQ(manager_.Get("fraud")->version, 4);
  release.Notify();
  loader.join();
  EXPECT_EQ(manager_.Get("churn")->version, 1);
}

TEST_F(ModelManagerTest, SwapsUnderConcurrentReadersNeverFail) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  constexpr int kVersions = 60;
  constexpr int kReaders = 4;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<int> stale{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      int last = 0;
      for (int i = 0; !done.load() || i < 1000; ++i) {
        absl::StatusOr<ServableHandle> handle = manager_.Get("churn");
        if (!handle.ok() || handle->model == nullptr) {
          ++failures;
          continue;
        }
        std::vector<float> out;
        if (!handle->model->Predict(nullptr, 1, &out).ok() ||
            out[0] != static_cast<float>(handle->version)) {
          ++failures;
        }
        // Swaps are sequential, so one reader never sees time go back.
        if (handle->version < last) ++stale;
        last = handle->version;
      }
    });
  }
  for (int v = 2; v <= kVersions; ++v) {
    ASSERT_TRUE(manager_.Serve("churn", v, LoaderFor(v)).ok());
    EXPECT_EQ(manager_.Get("churn")->version, v);
  }
  done = true;
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(stale, 0);
  EXPECT_EQ(live_, 1);

  // Only the serving version is live; old loads are trimmed to the last few.
  std::vector<VersionState> states = manager_.States();
  ASSERT_EQ(states.size(), 1u + ModelManager::kFinishedKept);
  for (size_t i = 0; i + 1 < states.size(); ++i) {
    EXPECT_EQ(states[i].state, VersionStateKind::kUnloaded);
    EXPECT_EQ(states[i].version,
              kVersions - ModelManager::kFinishedKept + static_cast<int>(i));
  }
  EXPECT_EQ(states.back().version, kVersions);
  EXPECT_EQ(states.back().state, VersionStateKind::kReady);
}

TEST_F(ModelManagerTest, RemovedAppDrainsItsServingVersion) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  std::optional<ServableHandle> held = *manager_.Get("churn");
  manager_.RemoveApp("churn");
  EXPECT_EQ(manager_.Get("churn").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kDraining);
  EXPECT_EQ(live_, 1);
  held.reset();
  EXPECT_EQ(live_, 0);
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kUnloaded);
  manager_.RemoveApp("never-added");
}

TEST_F(ModelManagerTest, AppRemovedDuringLoadFailsTheLoad) {
  manager_.AddApp("churn");
  absl::Status status = manager_.Serve(
      "churn", 1, [&]() -> absl::StatusOr<std::shared_ptr<const Model>> {
        manager_.RemoveApp("churn");
        manager_.AddApp("churn");  // a new app of the same name
        return std::make_shared<FakeModel>(1, &live_);
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("was removed while"));
  EXPECT_EQ(live_, 0);
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kFailed);
  EXPECT_EQ(manager_.Get("churn").status().code(),
            absl::StatusCode::kUnavailable);
}

// --- Canary and shadow ---

// The version Route() picks for `key`.
int RoutedVersion(const ModelManager& manager, const std::string& key) {
  absl::StatusOr<ServableHandle> handle = manager.Route("churn", key);
  EXPECT_TRUE(handle.ok()) << handle.status();
  return handle.ok() ? handle->version : 0;
}

std::string Key(int i) { return "customer-" + std::to_string(i); }

TEST_F(ModelManagerTest, KeylessRequestsGiveTheCanaryExactlyItsPercent) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  int version = 2;
  for (int percent : {1, 10, 37, 50, 99}) {
    ASSERT_TRUE(
        manager_.ServeCanary("churn", version, percent, LoaderFor(version))
            .ok());
    std::vector<int> to_canary;  // 1 when request i went to the canary
    for (int i = 0; i < 1000; ++i) {
      absl::StatusOr<ServableHandle> handle = manager_.Route("churn", "");
      ASSERT_TRUE(handle.ok()) << handle.status();
      ASSERT_TRUE(handle->version == 1 || handle->version == version);
      EXPECT_EQ(VersionOf(*handle), handle->version);
      to_canary.push_back(handle->version == version ? 1 : 0);
    }
    // Every run of 100 consecutive requests, not only aligned ones.
    for (int start = 0; start + 100 <= 1000; ++start) {
      int sum = 0;
      for (int i = start; i < start + 100; ++i) sum += to_canary[i];
      ASSERT_EQ(sum, percent) << "percent " << percent << " from " << start;
    }
    // Spread out: a 10% canary never takes two requests in a row.
    if (percent <= 50) {
      for (int i = 1; i < 1000; ++i) {
        ASSERT_FALSE(to_canary[i] == 1 && to_canary[i - 1] == 1)
            << "percent " << percent << " at " << i;
      }
    }
    ++version;
  }
  // Get() is the serving version whatever the split.
  EXPECT_EQ(manager_.Get("churn")->version, 1);
}

TEST_F(ModelManagerTest, KeyedRequestsStickToTheirVersion) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 30, LoaderFor(2)).ok());
  int canary_keys = 0;
  for (int i = 0; i < 1000; ++i) {
    const int first = RoutedVersion(manager_, Key(i));
    canary_keys += first == 2;
    for (int again = 0; again < 5; ++again) {
      ASSERT_EQ(RoutedVersion(manager_, Key(i)), first) << Key(i);
    }
  }
  // About 30% of the keys (the hash is fixed, so this count is too).
  EXPECT_GT(canary_keys, 250);
  EXPECT_LT(canary_keys, 350);
  // A second manager (another process, a restart) routes every key alike.
  FakeClock clock;
  ModelManager other(&clock);
  other.AddApp("churn");
  ASSERT_TRUE(other.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(other.ServeCanary("churn", 2, 30, LoaderFor(2)).ok());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(RoutedVersion(other, Key(i)), RoutedVersion(manager_, Key(i)));
  }
}

TEST_F(ModelManagerTest, RaisingThePercentKeepsEveryCanaryKeyOnTheCanary) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 10, LoaderFor(2)).ok());
  std::vector<bool> at_10;
  for (int i = 0; i < 2000; ++i)
    at_10.push_back(RoutedVersion(manager_, Key(i)) == 2);
  // Same version: only the percent changes, nothing loads.
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 20, LoaderFor(2)).ok());
  EXPECT_EQ(loads_, 2);
  EXPECT_EQ(manager_.GetTraffic("churn").canary_percent, 20);
  int count_10 = 0;
  int count_20 = 0;
  for (int i = 0; i < 2000; ++i) {
    const bool canary = RoutedVersion(manager_, Key(i)) == 2;
    if (at_10[i]) {
      EXPECT_TRUE(canary) << Key(i) << " left the canary";
    }
    count_10 += at_10[i];
    count_20 += canary;
  }
  EXPECT_GT(count_20, count_10 + 100);
  // Lowering it back gives the same keys as before.
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 10, LoaderFor(2)).ok());
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(RoutedVersion(manager_, Key(i)) == 2, at_10[i]) << Key(i);
  }
}

TEST_F(ModelManagerTest, CanaryEqualToServingGetsNoTrafficOfItsOwn) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.ServeCanary("churn", 1, 50, LoaderFor(1)).ok());
  EXPECT_EQ(loads_, 1);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(RoutedVersion(manager_, ""), 1);
    EXPECT_EQ(RoutedVersion(manager_, Key(i)), 1);
  }
  ModelManager::Traffic traffic = manager_.GetTraffic("churn");
  EXPECT_EQ(traffic.serving_version, 1);
  EXPECT_EQ(traffic.canary_version, 1);
  EXPECT_EQ(traffic.canary_percent, 50);
  EXPECT_EQ(traffic.shadow_version, 0);
  ASSERT_EQ(manager_.States().size(), 1u);
  EXPECT_EQ(manager_.States()[0].role, "serving");
}

TEST_F(ModelManagerTest, EndCanarySendsEverythingToServingAndDrainsIt) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 50, LoaderFor(2)).ok());
  EXPECT_EQ(StateOf("churn", 2)->role, "canary");
  std::optional<ServableHandle> in_flight = *manager_.Get("churn", 2);
  manager_.EndCanary("churn");
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(RoutedVersion(manager_, ""), 1);
    EXPECT_EQ(RoutedVersion(manager_, Key(i)), 1);
  }
  ModelManager::Traffic traffic = manager_.GetTraffic("churn");
  EXPECT_EQ(traffic.canary_version, 0);
  EXPECT_EQ(traffic.canary_percent, 0);
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kDraining);
  EXPECT_EQ(StateOf("churn", 2)->role, "");
  EXPECT_EQ(live_, 2);
  in_flight.reset();
  EXPECT_EQ(live_, 1);
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kUnloaded);
  // Nothing to end: nothing happens.
  manager_.EndCanary("churn");
  manager_.EndCanary("never-added");
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kReady);
}

TEST_F(ModelManagerTest, CanaryPercentOutOfRangeIsInvalid) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  for (int percent : {-5, 0, 100, 250}) {
    absl::Status status =
        manager_.ServeCanary("churn", 2, percent, LoaderFor(2));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(),
                HasSubstr("canary model churn v2 would take " +
                          std::to_string(percent) + "%"));
    EXPECT_THAT(status.message(), HasSubstr("from 1 to 99"));
  }
  BatchingOptions bad;
  bad.max_batch = 0;
  absl::Status batching =
      manager_.ServeCanary("churn", 2, 10, LoaderFor(2), bad);
  EXPECT_EQ(batching.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(batching.message(), HasSubstr("serving canary model churn v2"));
  EXPECT_EQ(manager_.ServeCanary("fraud", 2, 10, LoaderFor(2)).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_.ServeShadow("fraud", 2, LoaderFor(2)).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(loads_, 1);
  EXPECT_EQ(manager_.GetTraffic("churn").canary_version, 0);
}

TEST_F(ModelManagerTest, FailedCanaryLoadKeepsThePreviousCanary) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 25, LoaderFor(2)).ok());
  absl::Status failed = manager_.ServeCanary(
      "churn", 3, 60, []() -> absl::StatusOr<std::shared_ptr<const Model>> {
        return absl::NotFoundError("no model file");
      });
  EXPECT_EQ(failed.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(failed.message(), "loading canary model churn v3: no model file");
  ModelManager::Traffic traffic = manager_.GetTraffic("churn");
  EXPECT_EQ(traffic.canary_version, 2);
  EXPECT_EQ(traffic.canary_percent, 25);
  EXPECT_EQ(StateOf("churn", 3)->state, VersionStateKind::kFailed);
  EXPECT_EQ(StateOf("churn", 3)->role, "");
}

TEST_F(ModelManagerTest, PromotingTheCanaryReusesItsModelAndBatcher) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 10, LoaderFor(2)).ok());
  ServableHandle canary = *manager_.Get("churn", 2);
  ASSERT_TRUE(manager_.Serve("churn", 2, LoaderFor(2)).ok());
  EXPECT_EQ(loads_, 2);
  ServableHandle serving = *manager_.Get("churn");
  EXPECT_EQ(serving.version, 2);
  EXPECT_EQ(serving.model, canary.model);
  EXPECT_EQ(serving.scheduler, canary.scheduler);
  // The canary slot equals serving: every request gets v2.
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(RoutedVersion(manager_, ""), 2);
    EXPECT_EQ(RoutedVersion(manager_, Key(i)), 2);
  }
  EXPECT_EQ(manager_.GetTraffic("churn").canary_version, 2);
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kUnloaded);
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kReady);
  EXPECT_EQ(StateOf("churn", 2)->role, "serving");
  // Ending the canary leaves its version serving.
  manager_.EndCanary("churn");
  EXPECT_EQ(manager_.Get("churn")->version, 2);
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kReady);
  EXPECT_EQ(live_, 1);
}

TEST_F(ModelManagerTest, ReplacedCanaryDrainsUntilItsLastHandleGoes) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 50, LoaderFor(2)).ok());
  // A request the canary is answering.
  std::optional<ServableHandle> in_flight;
  for (int i = 0; !in_flight.has_value(); ++i) {
    ServableHandle handle = *manager_.Route("churn", Key(i));
    if (handle.version == 2) in_flight = handle;
  }
  clock_.Advance(9);
  ASSERT_TRUE(manager_.ServeCanary("churn", 3, 50, LoaderFor(3)).ok());
  EXPECT_EQ(manager_.GetTraffic("churn").canary_version, 3);
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kDraining);
  EXPECT_EQ(StateOf("churn", 2)->since_micros, clock_.NowMicros());
  EXPECT_EQ(StateOf("churn", 3)->role, "canary");
  EXPECT_EQ(live_, 3);
  // Still reachable by version while held.
  EXPECT_EQ(manager_.Get("churn", 2)->model, in_flight->model);
  std::vector<float> out;
  ASSERT_TRUE(in_flight->model->Predict(nullptr, 1, &out).ok());
  EXPECT_EQ(out, std::vector<float>{2.0f});
  in_flight.reset();
  EXPECT_EQ(live_, 2);
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kUnloaded);
  // An unheld canary unloads at once when replaced.
  ASSERT_TRUE(manager_.ServeCanary("churn", 4, 50, LoaderFor(4)).ok());
  EXPECT_EQ(live_, 2);
  EXPECT_EQ(StateOf("churn", 3)->state, VersionStateKind::kUnloaded);
}

TEST_F(ModelManagerTest, ShadowIsReturnedOnlyWhenItDiffersFromServing) {
  manager_.AddApp("churn");
  EXPECT_FALSE(manager_.Shadow("churn").has_value());
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.ServeShadow("churn", 2, LoaderFor(2)).ok());
  std::optional<ServableHandle> shadow = manager_.Shadow("churn");
  ASSERT_TRUE(shadow.has_value());
  EXPECT_EQ(shadow->version, 2);
  EXPECT_EQ(VersionOf(*shadow), 2);
  EXPECT_NE(shadow->scheduler, nullptr);
  EXPECT_FALSE(manager_.Shadow("fraud").has_value());
  // The shadow takes no routed traffic, but its version can be named.
  for (int i = 0; i < 100; ++i) EXPECT_EQ(RoutedVersion(manager_, Key(i)), 1);
  EXPECT_EQ(manager_.Get("churn", 2)->model, shadow->model);
  EXPECT_EQ(manager_.GetTraffic("churn").shadow_version, 2);
  EXPECT_EQ(StateOf("churn", 2)->role, "shadow");

  // Shadowing the serving version is no shadow.
  ASSERT_TRUE(manager_.ServeShadow("churn", 1, LoaderFor(1)).ok());
  EXPECT_FALSE(manager_.Shadow("churn").has_value());
  EXPECT_EQ(manager_.GetTraffic("churn").shadow_version, 1);
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kDraining);
  shadow.reset();
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kUnloaded);

  ASSERT_TRUE(manager_.ServeShadow("churn", 3, LoaderFor(3)).ok());
  EXPECT_EQ(manager_.Shadow("churn")->version, 3);
  manager_.EndShadow("churn");
  EXPECT_FALSE(manager_.Shadow("churn").has_value());
  EXPECT_EQ(manager_.GetTraffic("churn").shadow_version, 0);
  EXPECT_EQ(StateOf("churn", 3)->state, VersionStateKind::kUnloaded);
  EXPECT_EQ(live_, 1);
  EXPECT_EQ(loads_, 3);
}

TEST_F(ModelManagerTest, OneLoadServesEveryRoleOfItsVersion) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 20, LoaderFor(2)).ok());
  ASSERT_TRUE(manager_.ServeShadow("churn", 2, LoaderFor(2)).ok());
  EXPECT_EQ(loads_, 2);
  EXPECT_EQ(manager_.Shadow("churn")->model, manager_.Get("churn", 2)->model);
  EXPECT_EQ(StateOf("churn", 2)->role, "canary");
  // The canary ends; the shadow keeps the version loaded.
  manager_.EndCanary("churn");
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kReady);
  EXPECT_EQ(StateOf("churn", 2)->role, "shadow");
  EXPECT_EQ(live_, 2);
  // Promoting the shadow reuses its model with a batcher of its own.
  ServableHandle shadow = *manager_.Shadow("churn");
  ASSERT_TRUE(manager_.Serve("churn", 2, LoaderFor(2)).ok());
  EXPECT_EQ(loads_, 2);
  ServableHandle serving = *manager_.Get("churn");
  EXPECT_EQ(serving.model, shadow.model);
  EXPECT_NE(serving.scheduler, shadow.scheduler);
  EXPECT_FALSE(manager_.Shadow("churn").has_value());
  EXPECT_EQ(StateOf("churn", 2)->role, "serving");
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kUnloaded);
  // A canary of a version still draining and held is reused too.
  ServableHandle held = serving;
  ASSERT_TRUE(manager_.Serve("churn", 3, LoaderFor(3)).ok());
  manager_.EndShadow("churn");
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kDraining);
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 5, LoaderFor(2)).ok());
  EXPECT_EQ(loads_, 3);
  EXPECT_EQ(manager_.Get("churn", 2)->model, held.model);
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kReady);
  EXPECT_EQ(StateOf("churn", 2)->role, "canary");
}

TEST_F(ModelManagerTest, StatesNameEachLoadsRole) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 20, LoaderFor(2)).ok());
  ASSERT_TRUE(manager_.ServeShadow("churn", 3, LoaderFor(3)).ok());
  std::vector<VersionState> states = manager_.States();
  ASSERT_EQ(states.size(), 3u);
  EXPECT_EQ(states[0].role, "serving");
  EXPECT_EQ(states[1].role, "canary");
  EXPECT_EQ(states[2].role, "shadow");
  for (const VersionState& state : states) {
    EXPECT_EQ(state.state, VersionStateKind::kReady);
  }
  ModelManager::Traffic traffic = manager_.GetTraffic("churn");
  EXPECT_EQ(traffic.serving_version, 1);
  EXPECT_EQ(traffic.canary_version, 2);
  EXPECT_EQ(traffic.canary_percent, 20);
  EXPECT_EQ(traffic.shadow_version, 3);
  ModelManager::Traffic unknown = manager_.GetTraffic("fraud");
  EXPECT_EQ(unknown.serving_version, 0);
  EXPECT_EQ(unknown.canary_percent, 0);
}

TEST_F(ModelManagerTest, RouteWithoutServingVersionFailsAsGet) {
  EXPECT_EQ(manager_.Route("churn", "k").status().code(),
            absl::StatusCode::kNotFound);
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 50, LoaderFor(2)).ok());
  absl::StatusOr<ServableHandle> routed = manager_.Route("churn", "");
  EXPECT_EQ(routed.status(), manager_.Get("churn").status());
  EXPECT_EQ(routed.status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  EXPECT_TRUE(manager_.Route("churn", "").ok());
}

TEST_F(ModelManagerTest, RemovedAppDropsCanaryAndShadow) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  ASSERT_TRUE(manager_.ServeCanary("churn", 2, 50, LoaderFor(2)).ok());
  ASSERT_TRUE(manager_.ServeShadow("churn", 3, LoaderFor(3)).ok());
  std::optional<ServableHandle> shadow = manager_.Shadow("churn");
  manager_.RemoveApp("churn");
  EXPECT_EQ(manager_.Route("churn", "").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(manager_.Shadow("churn").has_value());
  ModelManager::Traffic traffic = manager_.GetTraffic("churn");
  EXPECT_EQ(traffic.canary_version, 0);
  EXPECT_EQ(traffic.shadow_version, 0);
  EXPECT_EQ(StateOf("churn", 1)->state, VersionStateKind::kUnloaded);
  EXPECT_EQ(StateOf("churn", 2)->state, VersionStateKind::kUnloaded);
  EXPECT_EQ(StateOf("churn", 3)->state, VersionStateKind::kDraining);
  EXPECT_EQ(live_, 1);
  shadow.reset();
  EXPECT_EQ(live_, 0);
  EXPECT_EQ(StateOf("churn", 3)->state, VersionStateKind::kUnloaded);

  // Added again, the app starts with no canary or shadow.
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 4, LoaderFor(4)).ok());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(RoutedVersion(manager_, Key(i)), 4);
  EXPECT_FALSE(manager_.Shadow("churn").has_value());
}

TEST_F(ModelManagerTest, RoutingUnderConcurrentCanaryChangesNeverFails) {
  manager_.AddApp("churn");
  ASSERT_TRUE(manager_.Serve("churn", 1, LoaderFor(1)).ok());
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      for (int i = 0; !done.load() || i < 1000; ++i) {
        absl::StatusOr<ServableHandle> handle =
            manager_.Route("churn", r == 0 ? "" : Key(i));
        std::vector<float> out;
        if (!handle.ok() || !handle->model->Predict(nullptr, 1, &out).ok() ||
            out[0] != static_cast<float>(handle->version)) {
          ++failures;
        }
        manager_.Shadow("churn");
      }
    });
  }
  for (int v = 2; v <= 30; ++v) {
    ASSERT_TRUE(manager_.ServeCanary("churn", v, v, LoaderFor(v)).ok());
    ASSERT_TRUE(
        manager_.ServeShadow("churn", v + 100, LoaderFor(v + 100)).ok());
    if (v % 3 == 0) manager_.EndCanary("churn");
  }
  done = true;
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(failures, 0);
  // Serving, the last canary (30 % 3 == 0 ended it) and the last shadow.
  EXPECT_EQ(live_, 2);
}

TEST(ModelManagerLifetimeTest, HandleMayOutliveTheManager) {
  FakeClock clock;
  std::atomic<int> live{0};
  std::optional<ServableHandle> held;
  {
    ModelManager manager(&clock);
    manager.AddApp("churn");
    ASSERT_TRUE(
        manager
            .Serve("churn", 1,
                   [&]() -> absl::StatusOr<std::shared_ptr<const Model>> {
                     return std::make_shared<FakeModel>(1, &live);
                   })
            .ok());
    held = *manager.Get("churn");
  }
  EXPECT_EQ(live, 1);
  std::vector<float> out;
  EXPECT_TRUE(held->model->Predict(nullptr, 2, &out).ok());
  held.reset();
  EXPECT_EQ(live, 0);
}

}  // namespace
}  // namespace slipway
