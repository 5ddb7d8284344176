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
