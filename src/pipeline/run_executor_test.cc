#include "pipeline/run_executor.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "artifacts/local_artifact_store.h"
#include "core/filesystem.h"
#include "core/status.h"
#include "data/csv.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "registry/registry.h"
#include "store/sqlite_store.h"
#include "testing/fake_clock.h"
#include "testing/fake_process_launcher.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr int64_t kSecond = 1'000'000;
constexpr char kApp[] = "churn";

// 240 customers: a float, an int and a categorical feature (some missing),
// a 0/1 label the features explain.
std::string CustomersCsv() {
  const char* colors[] = {"red", "green", "blue"};
  std::string csv = "id,x1,x2,color,label\n";
  for (int i = 0; i < 240; ++i) {
    double x1 = (i * 37 % 100) / 10.0;
    int x2 = i % 7;
    std::string color = i % 11 == 0 ? "" : colors[i % 3];
    int label = x1 + x2 + (color == "red" ? 2 : 0) > 8 ? 1 : 0;
    csv += std::to_string(i) + "," + std::to_string(x1) + "," +
           std::to_string(x2) + "," + color + "," + std::to_string(label) +
           "\n";
  }
  return csv;
}

std::string AppHeader() {
  return "app: churn\n"
         "data:\n"
         "  customers: {connector: csv, path: customers.csv}\n"
         "  scored: {connector: csv, path: out/scored.csv}\n"
         "  copy: {connector: csv, path: out/copy.csv}\n"
         "schema: {target: label, id: id}\n"
         "pipelines:\n";
}

std::string TrainPipeline(int seed = 7, const std::string& extra = "") {
  return "  train:\n"
         "    kind: train\n"
         "    steps:\n"
         "      - ingest: {source: customers}\n"
         "      - validate: {max_null_fraction: 0.5}\n"
         "      - split: {test_fraction: 0.25, seed: " +
         std::to_string(seed) +
         "}\n"
         "      - train: {rounds: 5, max_depth: 3, threads: 1}\n"
         "      - evaluate: {}\n"
         "      - register: {alias: champion}\n" +
         extra;
}

// Two branches that each wait for the other's marker file, at most
// `$3` times 50 ms.
constexpr char kBranchScript[] =
    "touch \"$1.marker\"\n"
    "i=0\n"
    "while [ ! -e \"$2.marker\" ]; do\n"
    "  i=$((i+1))\n"
    "  if [ \"$i\" -gt \"$3\" ]; then echo \"no $2.marker\"; exit 1; fi\n"
    "  sleep 0.05\n"
    "done\n";

std::string BranchesPipeline(int polls) {
  std::string n = std::to_string(polls);
  return "  branches:\n"
         "    kind: check\n"
         "    steps:\n"
         "      - command: {run: \"true\"}\n"
         "        name: start\n"
         "      - command: {run: \"sh branch.sh a b " +
         n +
         "\"}\n"
         "        name: a\n"
         "        after: [start]\n"
         "      - command: {run: \"sh branch.sh b a " +
         n +
         "\"}\n"
         "        name: b\n"
         "        after: [start]\n";
}

class RunExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Filesystem* fs = LocalFilesystem();
    ASSERT_TRUE(fs->CreateDirs(AppDir()).ok());
    ASSERT_TRUE(fs->CreateDirs(JoinPath(AppDir(), "out")).ok());
    ASSERT_TRUE(
        fs->WriteFileAtomic(JoinPath(AppDir(), "customers.csv"), CustomersCsv())
            .ok());
    ASSERT_TRUE(
        fs->WriteFileAtomic(JoinPath(AppDir(), "branch.sh"), kBranchScript)
            .ok());
    auto store = OpenSqliteStore(DataDir(), &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto artifacts =
        OpenLocalArtifactStore(fs, JoinPath(DataDir(), "artifacts"));
    ASSERT_TRUE(artifacts.ok()) << artifacts.status();
    artifacts_ = std::move(*artifacts);
    registry_ = std::make_unique<Registry>(store_.get(), artifacts_.get());
  }

  void TearDown() override { executor_.reset(); }

  RunExecutor::Options DefaultOptions() {
    RunExecutor::Options options;
    options.store = store_.get();
    options.registry = registry_.get();
    options.fs = LocalFilesystem();
    options.clock = &clock_;
    options.run_root = JoinPath(DataDir(), "runs");
    options.max_parallel_steps = 2;
    options.train_threads = 1;
    options.score_threads = 1;
    options.move_alias =
        [this](const std::string& app, const std::string& alias, int version,
               const std::string& actor) -> absl::StatusOr<int64_t> {
      RETURN_IF_ERROR(registry_->MoveAlias(app, alias, version, actor));
      return 0;
    };
    return options;
  }

  void StartExecutor(RunExecutor::Options options) {
    executor_ = std::make_unique<RunExecutor>(std::move(options));
  }
  void StartExecutor() { StartExecutor(DefaultOptions()); }

  std::string AppDir() const { return JoinPath(temp_.path(), "app"); }
  std::string DataDir() const { return JoinPath(temp_.path(), "data"); }

  void Apply(const std::string& yaml) {
    auto outcome = registry_->Apply(kApp, yaml, AppDir());
    ASSERT_TRUE(outcome.ok()) << outcome.status();
  }

  std::string Start(const std::string& pipeline) {
    auto run = executor_->Start(kApp, pipeline, "test");
    EXPECT_TRUE(run.ok()) << run.status();
    return run.ok() ? run->id : "";
  }

  // Polls (bounded) until `done` holds.
  bool WaitUntil(const std::function<bool()>& done, int seconds = 60) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  RunRecord WaitForRun(const std::string& id) {
    bool finished = WaitUntil([&] {
      std::string state = store_->GetRun(id)->state;
      return state != "queued" && state != "running";
    });
    EXPECT_TRUE(finished) << "run " << id << " did not finish in 60 s";
    return *store_->GetRun(id);
  }

  StepRecord Step(const std::string& run_id, const std::string& name) {
    std::vector<StepRecord> steps = *store_->ListSteps(run_id);
    for (const StepRecord& step : steps) {
      if (step.name == name) return step;
    }
    ADD_FAILURE() << "no step " << name;
    return {};
  }

  std::string RunFile(const std::string& run_id, const std::string& path) {
    return JoinPath(JoinPath(JoinPath(DataDir(), "runs"), run_id), path);
  }

  TempDir temp_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<RunExecutor> executor_;
};

TEST_F(RunExecutorTest, LinearTrainPipelineWritesOutputsAndRegisters) {
  Apply(AppHeader() + TrainPipeline());
  StartExecutor();
  std::string id = Start("train");
  RunRecord run = WaitForRun(id);
  ASSERT_EQ(run.state, "succeeded") << run.reason;

  std::vector<StepRecord> steps = *store_->ListSteps(id);
  ASSERT_EQ(steps.size(), 6u);
  const char* kinds[] = {"ingest", "validate", "split",
                         "train",  "evaluate", "register"};
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].state, "succeeded") << steps[i].name;
    EXPECT_EQ(steps[i].kind, kinds[i]);
    EXPECT_EQ(steps[i].attempts, 1) << steps[i].name;
    EXPECT_EQ(steps[i].cached_from_run, "");
  }
  EXPECT_EQ(steps[0].cache_key, "");  // ingest never reuses
  EXPECT_EQ(steps[3].cache_key.size(), 64u);
  EXPECT_EQ(json::parse(steps[3].progress_json),
            json({{"round", 5}, {"rounds", 5}}));
  EXPECT_EQ(json::parse(steps[0].progress_json)["rows"], 240);

  Filesystem* fs = LocalFilesystem();
  for (const char* file :
       {"ingest/data.csv", "ingest/data.types.json", "validate/data.csv",
        "split/train.csv", "split/test.csv", "train/model/model.yaml",
        "train/model/model.json", "train/model/signature.json",
        "evaluate/metrics.json", "train.log"}) {
    EXPECT_TRUE(fs->Exists(RunFile(id, file))) << file;
  }
  auto data = ReadCsv(fs, RunFile(id, "ingest/data.csv"));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->rows, 240);

  json ingest = json::parse(steps[0].outputs_json);
  EXPECT_EQ(ingest["rows"], 240);
  EXPECT_EQ(ingest["artifacts"]["data"]["sha256"], ingest["sha256"]);
  json evaluate = json::parse(steps[4].outputs_json);
  EXPECT_TRUE(evaluate["metrics"].contains("auc")) << evaluate.dump();

  auto version = registry_->GetVersion(kApp, 1);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->data_fingerprint, ingest["sha256"]);
  EXPECT_EQ(version->row_count, 240);
  EXPECT_EQ(version->run_id, id);
  EXPECT_EQ(version->transform_json, "");
  EXPECT_EQ(json::parse(version->metrics_json), evaluate["metrics"]);
  EXPECT_EQ(*registry_->ResolveAlias(kApp, "champion"), 1);
}

TEST_F(RunExecutorTest, IndependentBranchesRunConcurrently) {
  Apply(AppHeader() + BranchesPipeline(200));
  StartExecutor();
  std::string id = Start("branches");
  RunRecord run = WaitForRun(id);
  EXPECT_EQ(run.state, "succeeded") << run.reason;
  EXPECT_EQ(Step(id, "a").state, "succeeded");
  EXPECT_EQ(Step(id, "b").state, "succeeded");
}

TEST_F(RunExecutorTest, MaxParallelStepsBoundsARun) {
  Apply(AppHeader() + BranchesPipeline(10));
  RunExecutor::Options options = DefaultOptions();
  options.max_parallel_steps = 1;
  StartExecutor(options);
  std::string id = Start("branches");
  RunRecord run = WaitForRun(id);
  // One at a time, the first branch waits for a marker nobody writes yet.
  EXPECT_EQ(run.state, "failed");
  EXPECT_EQ(Step(id, "a").state, "failed");
  EXPECT_THAT(Step(id, "a").message, HasSubstr("no b.marker"));
  EXPECT_EQ(Step(id, "b").state, "succeeded");  // a's marker exists by then
}

TEST_F(RunExecutorTest, AFailedBranchFailsTheRunWhileItsSiblingCompletes) {
  Apply(AppHeader() +
        "  branches:\n"
        "    kind: check\n"
        "    steps:\n"
        "      - command: {run: \"true\"}\n"
        "        name: start\n"
        "      - command: {run: \"echo broken; exit 3\"}\n"
        "        name: bad\n"
        "        after: [start]\n"
        "      - command: {run: \"sleep 0.3; echo done > "
        "$SLIPWAY_OUTPUT_DIR/ok.txt\"}\n"
        "        name: good\n"
        "        after: [start]\n"
        "      - command: {run: \"true\"}\n"
        "        name: after_bad\n"
        "        after: [bad]\n"
        "      - command: {run: \"true\"}\n"
        "        name: after_both\n"
        "        after: [after_bad, good]\n");
  StartExecutor();
  std::string id = Start("branches");
  RunRecord run = WaitForRun(id);
  EXPECT_EQ(run.state, "failed");
  EXPECT_THAT(run.reason, HasSubstr("step 'bad' failed: exited with status 3"));
  EXPECT_THAT(run.reason, HasSubstr("broken"));
  EXPECT_EQ(Step(id, "good").state, "succeeded");
  EXPECT_TRUE(LocalFilesystem()->Exists(RunFile(id, "good/ok.txt")));
  EXPECT_EQ(Step(id, "after_bad").state, "skipped");
  EXPECT_THAT(Step(id, "after_bad").message, HasSubstr("'bad' failed"));
  EXPECT_EQ(Step(id, "after_both").state, "skipped");
}

TEST_F(RunExecutorTest, RetriesWithBackoffOnTheClock) {
  Apply(AppHeader() +
        "  flaky:\n"
        "    kind: check\n"
        "    steps:\n"
        "      - command: {run: [\"./flaky\"]}\n"
        "        name: flaky\n"
        "        retries: 2\n"
        "        retry_backoff: 5s\n");
  FakeProcessLauncher launcher;
  launcher.AddResult(FakeProcessLauncher::Exited(1));
  launcher.AddResult(FakeProcessLauncher::Exited(1));
  launcher.AddResult(FakeProcessLauncher::Exited(0));
  RunExecutor::Options options = DefaultOptions();
  options.launcher = &launcher;
  StartExecutor(options);
  std::string id = Start("flaky");

  ASSERT_TRUE(WaitUntil([&] {
    return Step(id, "flaky").message.find("retrying in 5s") !=
           std::string::npos;
  }));
  EXPECT_EQ(launcher.specs().size(), 1u);  // waiting on the clock
  clock_.Advance(5 * kSecond);
  ASSERT_TRUE(WaitUntil([&] {
    return Step(id, "flaky").message.find("retrying in 10s") !=
           std::string::npos;
  }));
  EXPECT_EQ(launcher.specs().size(), 2u);
  EXPECT_EQ(Step(id, "flaky").attempts, 2);
  clock_.Advance(10 * kSecond);
  RunRecord run = WaitForRun(id);
  EXPECT_EQ(run.state, "succeeded") << run.reason;
  EXPECT_EQ(Step(id, "flaky").attempts, 3);
  EXPECT_EQ(launcher.specs().size(), 3u);
}

TEST_F(RunExecutorTest, AStepOutOfRetriesFailsWithItsLastError) {
  Apply(AppHeader() +
        "  flaky:\n"
        "    kind: check\n"
        "    steps:\n"
        "      - command: {run: [\"./flaky\"]}\n"
        "        name: flaky\n"
        "        retries: 1\n"
        "        retry_backoff: 1s\n");
  FakeProcessLauncher launcher;
  launcher.AddResult(FakeProcessLauncher::Exited(1));
  launcher.AddResult(FakeProcessLauncher::Exited(4));
  RunExecutor::Options options = DefaultOptions();
  options.launcher = &launcher;
  StartExecutor(options);
  std::string id = Start("flaky");
  ASSERT_TRUE(WaitUntil([&] {
    return Step(id, "flaky").message.find("retrying in 1s") !=
           std::string::npos;
  }));
  clock_.Advance(kSecond);
  RunRecord run = WaitForRun(id);
  EXPECT_EQ(run.state, "failed");
  StepRecord step = Step(id, "flaky");
  EXPECT_EQ(step.attempts, 2);
  EXPECT_THAT(step.message, HasSubstr("failed after 2 attempts; the last: "
                                      "exited with status 4"));
}

TEST_F(RunExecutorTest, ABuiltInStepPastItsTimeoutFails) {
  Apply(AppHeader() +
        "  slow:\n"
        "    kind: train\n"
        "    steps:\n"
        "      - ingest: {source: customers}\n"
        "      - train: {rounds: 100000, max_depth: 2, threads: 1}\n"
        "        timeout: 10s\n"
        "      - register: {}\n");
  StartExecutor();
  std::string id = Start("slow");
  // Training has started rounds: move the clock past the deadline.
  ASSERT_TRUE(WaitUntil([&] {
    return Step(id, "train").progress_json.find("round") != std::string::npos;
  }));
  clock_.Advance(11 * kSecond);
  RunRecord run = WaitForRun(id);
  EXPECT_EQ(run.state, "failed");
  StepRecord train = Step(id, "train");
  EXPECT_EQ(train.state, "failed");
  EXPECT_EQ(train.message, "step 'train' exceeded its timeout (10s)");
  EXPECT_EQ(Step(id, "register").state, "skipped");
}

TEST_F(RunExecutorTest, ProgramsGetTheirTimeoutAndMemoryLimit) {
  Apply(AppHeader() +
        "  limits:\n"
        "    kind: check\n"
        "    steps:\n"
        "      - command: {run: \"true\"}\n"
        "        name: start\n"
        "      - command: {run: \"sleep 30\"}\n"
        "        name: slow\n"
        "        after: [start]\n"
        "        timeout: 1s\n"
        "      - command: {run: [python3, -c, \"x = bytearray(1 << 30)\"]}\n"
        "        name: greedy\n"
        "        after: [start]\n"
        "        memory: 256MiB\n");
  StartExecutor();
  // Timeouts of programs are the launcher's, on the real clock.
  std::string id = Start("limits");
  RunRecord run = WaitForRun(id);
  EXPECT_EQ(run.state, "failed");
  EXPECT_THAT(Step(id, "slow").message, HasSubstr("timed out after"));
  EXPECT_THAT(Step(id, "slow").message, HasSubstr("(timeout: 1s)"));
  EXPECT_THAT(Step(id, "greedy").message,
              HasSubstr("exceeded its memory limit (memory: 256MiB)"));
  EXPECT_THAT(run.reason, HasSubstr("steps 'slow', 'greedy' failed"));
}

TEST_F(RunExecutorTest, ASecondIdenticalRunReusesOutputsAndAParamChangeReruns) {
  Apply(AppHeader() + TrainPipeline(7));
  StartExecutor();
  std::string first = Start("train");
  ASSERT_EQ(WaitForRun(first).state, "succeeded");

  std::string second = Start("train");
  ASSERT_EQ(WaitForRun(second).state, "succeeded")
      << store_->GetRun(second)->reason;
  for (const char* step : {"validate", "split", "train", "evaluate"}) {
    StepRecord s = Step(second, step);
    EXPECT_EQ(s.cached_from_run, first) << step;
    EXPECT_EQ(s.cache_key, Step(first, step).cache_key) << step;
    EXPECT_EQ(s.attempts, 0) << step;
    EXPECT_THAT(s.message, HasSubstr("reused the outputs of run " + first));
  }
  for (const char* step : {"ingest", "register"}) {
    EXPECT_EQ(Step(second, step).cached_from_run, "") << step;
  }
  EXPECT_TRUE(
      LocalFilesystem()->Exists(RunFile(second, "train/model/model.json")));
  auto v2 = registry_->GetVersion(kApp, 2);
  ASSERT_TRUE(v2.ok()) << v2.status();
  auto v1 = registry_->GetVersion(kApp, 1);
  EXPECT_EQ(v2->artifact_sha256, v1->artifact_sha256);
  EXPECT_EQ(v2->metrics_json, v1->metrics_json);

  // A new split seed re-runs split and everything after it.
  Apply(AppHeader() + TrainPipeline(8));
  std::string third = Start("train");
  ASSERT_EQ(WaitForRun(third).state, "succeeded");
  EXPECT_EQ(Step(third, "validate").cached_from_run, first);
  for (const char* step : {"split", "train", "evaluate"}) {
    EXPECT_EQ(Step(third, step).cached_from_run, "") << step;
    EXPECT_NE(Step(third, step).cache_key, Step(first, step).cache_key);
  }
}

TEST_F(RunExecutorTest, CacheFalseAlwaysRuns) {
  Apply(AppHeader() +
        "  train:\n"
        "    kind: train\n"
        "    steps:\n"
        "      - ingest: {source: customers}\n"
        "      - train: {rounds: 3, threads: 1}\n"
        "        cache: false\n"
        "      - register: {}\n");
  StartExecutor();
  ASSERT_EQ(WaitForRun(Start("train")).state, "succeeded");
  std::string second = Start("train");
  ASSERT_EQ(WaitForRun(second).state, "succeeded");
  EXPECT_EQ(Step(second, "train").cached_from_run, "");
  EXPECT_EQ(Step(second, "train").cache_key, "");
}

TEST_F(RunExecutorTest, CancelStopsRunningStepsAndSkipsTheRest) {
  Apply(AppHeader() +
        "  long:\n"
        "    kind: check\n"
        "    steps:\n"
        "      - command: {run: \"sleep 30\"}\n"
        "        name: sleeper\n"
        "      - command: {run: \"true\"}\n"
        "        name: next\n");
  StartExecutor();
  std::string id = Start("long");
  ASSERT_TRUE(
      WaitUntil([&] { return Step(id, "sleeper").state == "running"; }));
  const auto asked = std::chrono::steady_clock::now();
  ASSERT_TRUE(executor_->Cancel(id).ok());
  RunRecord run = WaitForRun(id);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(10));
  EXPECT_EQ(run.state, "cancelled");
  EXPECT_EQ(run.reason, "cancelled during step(s) 'sleeper'");
  EXPECT_EQ(Step(id, "sleeper").state, "cancelled");
  EXPECT_EQ(Step(id, "next").state, "skipped");
  EXPECT_EQ(executor_->Cancel(id).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(RunExecutorTest, RecoverFailsInterruptedRunsAndRetriesThoseThatAskOnce) {
  Apply(AppHeader() + TrainPipeline() +
        "  again:\n"
        "    kind: check\n"
        "    retry_interrupted: true\n"
        "    steps:\n"
        "      - ingest: {source: customers}\n"
        "      - validate: {}\n");
  auto crashed = [&](const std::string& id, const std::string& pipeline,
                     const std::string& retry_of) {
    RunRecord run;
    run.id = id;
    run.app = kApp;
    run.pipeline = pipeline;
    run.revision = 1;
    run.retry_of = retry_of;
    StepRecord step;
    step.run_id = id;
    step.name = "ingest";
    ASSERT_TRUE(store_->CreateRun(run, {step}).ok());
    run.state = "running";
    ASSERT_TRUE(store_->UpdateRun(run).ok());
  };
  crashed("run-train", "train", "");
  crashed("run-again", "again", "");
  crashed("run-again-retry", "again", "run-earlier");
  StartExecutor();
  ASSERT_TRUE(executor_->Recover().ok());

  for (const char* id : {"run-train", "run-again", "run-again-retry"}) {
    RunRecord run = *store_->GetRun(id);
    EXPECT_EQ(run.state, "failed") << id;
    EXPECT_EQ(run.reason, "interrupted") << id;
  }
  std::vector<RunRecord> runs = *store_->ListRuns(kApp, 10);
  ASSERT_EQ(runs.size(), 4u);
  const RunRecord& retry = runs[0];
  EXPECT_EQ(retry.pipeline, "again");
  EXPECT_EQ(retry.retry_of, "run-again");
  EXPECT_EQ(WaitForRun(retry.id).state, "succeeded");
}

TEST_F(RunExecutorTest, ARegisterStepWithoutAModelFailsNamingIt) {
  Apply(AppHeader() +
        "  train:\n"
        "    kind: train\n"
        "    steps:\n"
        "      - ingest: {source: customers}\n"
        "      - command: {run: \"true\"}\n"
        "        name: fit\n"
        "      - register: {}\n");
  StartExecutor();
  std::string id = Start("train");
  RunRecord run = WaitForRun(id);
  EXPECT_EQ(run.state, "failed");
  EXPECT_THAT(run.reason,
              HasSubstr("step 'register' failed: step 'register' expects a "
                        "model, and none of its inputs is one"));
  EXPECT_THAT(Step(id, "register").message, HasSubstr("ingest.data (table)"));
}

TEST_F(RunExecutorTest, ACommandStepsModelRegistersLikeABuiltInOne) {
  ASSERT_TRUE(LocalFilesystem()
                  ->WriteFileAtomic(JoinPath(AppDir(), "fit.py"), R"py(
import json, os
import pandas as pd
import xgboost as xgb
data = pd.read_csv(os.path.join(os.environ["SLIPWAY_INPUT_DIR"], "ingest", "data.csv"))
X = data[["x1", "x2"]]
booster = xgb.train({"objective": "binary:logistic", "max_depth": 2},
                    xgb.DMatrix(X, label=data["label"]), num_boost_round=4)
out = os.path.join(os.environ["SLIPWAY_OUTPUT_DIR"], "model")
os.makedirs(out)
booster.save_model(os.path.join(out, "model.json"))
with open(os.path.join(out, "model.yaml"), "w") as f:
    f.write("format: xgboost\ntarget: label\n")
with open(os.environ["SLIPWAY_EVENTS"], "a") as f:
    f.write(json.dumps({"type": "metric", "name": "rows", "value": len(data)}) + "\n")
    f.write("not json\n")
)py")
                  .ok());
  Apply(AppHeader() +
        "  train:\n"
        "    kind: train\n"
        "    steps:\n"
        "      - ingest: {source: customers}\n"
        "      - command: {run: [python3, fit.py]}\n"
        "        name: fit\n"
        "      - register: {}\n");
  StartExecutor();
  std::string id = Start("train");
  RunRecord run = WaitForRun(id);
  ASSERT_EQ(run.state, "succeeded") << run.reason;
  StepRecord fit = Step(id, "fit");
  EXPECT_GT(fit.cpu_user_micros + fit.cpu_system_micros, 0);
  EXPECT_GT(fit.peak_rss_kb, 0);
  EXPECT_TRUE(json::parse(fit.outputs_json)["artifacts"].contains("model"));

  auto version = registry_->GetVersion(kApp, 1);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->data_fingerprint,
            json::parse(Step(id, "ingest").outputs_json)["sha256"]);
  EXPECT_EQ(version->row_count, 240);
  json signature = json::parse(version->signature_json);
  EXPECT_THAT(signature.dump(), HasSubstr("\"x1\""));
  EXPECT_THAT(json::parse(Step(id, "register").outputs_json)["model_from"],
              "fit");

  auto events = store_->ListRunEvents(id);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].step, "fit");
  EXPECT_EQ((*events)[0].type, "metric");
  EXPECT_EQ((*events)[0].name, "rows");
  EXPECT_EQ((*events)[0].value_json, "240");
  EXPECT_EQ((*events)[1].type, "invalid");
}

TEST_F(RunExecutorTest, TransformTravelsWithTheModelAndScoringAppliesIt) {
  Apply(AppHeader() +
        "  train:\n"
        "    kind: train\n"
        "    steps:\n"
        "      - ingest: {source: customers}\n"
        "      - split: {test_fraction: 0.25, seed: 3}\n"
        "      - transform: {impute: {numeric: median, categorical: "
        "most_frequent}, encode: onehot, standardize: true}\n"
        "      - train: {rounds: 5, max_depth: 3, threads: 1}\n"
        "      - evaluate: {}\n"
        "      - register: {alias: champion}\n"
        "  nightly:\n"
        "    kind: score\n"
        "    steps:\n"
        "      - score: {source: customers, model: champion, sink: scored, "
        "keep: [id]}\n");
  StartExecutor();
  std::string id = Start("train");
  RunRecord run = WaitForRun(id);
  ASSERT_EQ(run.state, "succeeded") << run.reason;
  Filesystem* fs = LocalFilesystem();
  EXPECT_TRUE(fs->Exists(RunFile(id, "transform/transform.json")));
  EXPECT_TRUE(fs->Exists(RunFile(id, "train/model/transform.json")));
  auto train_csv = ReadCsv(fs, RunFile(id, "transform/train.csv"));
  ASSERT_TRUE(train_csv.ok()) << train_csv.status();
  EXPECT_NE(train_csv->table.FindColumn("color=red"), nullptr);

  auto version = registry_->GetVersion(kApp, 1);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_THAT(version->transform_json, HasSubstr("\"version\""));
  // Callers send raw features: the stored signature is the request one.
  json signature = json::parse(version->signature_json);
  EXPECT_THAT(signature.dump(), HasSubstr("\"color\""));
  EXPECT_THAT(signature.dump(), Not(HasSubstr("color=red")));

  std::string scored = Start("nightly");
  RunRecord score_run = WaitForRun(scored);
  ASSERT_EQ(score_run.state, "succeeded") << score_run.reason;
  auto out = ReadCsv(fs, JoinPath(AppDir(), "out/scored.csv"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->rows, 240);
  EXPECT_NE(out->table.FindColumn("probability"), nullptr);
  EXPECT_NE(out->table.FindColumn("model_version"), nullptr);
  json score_outputs = json::parse(Step(scored, "score").outputs_json);
  EXPECT_EQ(score_outputs["rows"], 240);
  EXPECT_EQ(score_outputs["model_version"], 1);
  EXPECT_EQ(json::parse(Step(scored, "score").progress_json)["rows"], 240);
}

TEST_F(RunExecutorTest, CheckPipelineReportsEveryViolation) {
  Apply(AppHeader() +
        "  quality:\n"
        "    kind: check\n"
        "    steps:\n"
        "      - ingest: {source: customers}\n"
        "      - validate: {min_rows: 1000, max_null_fraction: 0.01, "
        "ranges: {x1: [0, 5]}}\n"
        "      - sink: {to: copy}\n");
  StartExecutor();
  std::string id = Start("quality");
  RunRecord run = WaitForRun(id);
  EXPECT_EQ(run.state, "failed");
  StepRecord validate = Step(id, "validate");
  json report = json::parse(validate.outputs_json);
  EXPECT_EQ(report["rows"], 240);
  ASSERT_EQ(report["violations"].size(), 3u) << report.dump();
  EXPECT_THAT(report["violations"][0].get<std::string>(),
              HasSubstr("min_rows"));
  EXPECT_THAT(validate.message, HasSubstr("3 data check(s) failed"));
  EXPECT_EQ(Step(id, "sink").state, "skipped");
}

TEST_F(RunExecutorTest, ASinkStepWritesItsInputTable) {
  Apply(AppHeader() +
        "  copy:\n"
        "    kind: check\n"
        "    steps:\n"
        "      - ingest: {source: customers}\n"
        "      - validate: {}\n"
        "      - sink: {to: copy}\n");
  StartExecutor();
  std::string id = Start("copy");
  ASSERT_EQ(WaitForRun(id).state, "succeeded");
  auto copy = ReadCsv(LocalFilesystem(), JoinPath(AppDir(), "out/copy.csv"));
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->rows, 240);
  EXPECT_EQ(json::parse(Step(id, "sink").outputs_json)["from"],
            "validate.data");
}

TEST_F(RunExecutorTest, ACommandReadsItsInputsAndItsTableFeedsLaterSteps) {
  Apply(AppHeader() +
        "  prep:\n"
        "    kind: check\n"
        "    steps:\n"
        "      - ingest: {source: customers}\n"
        "      - command: {run: \"head -n 11 $SLIPWAY_INPUT_DIR/ingest/data.csv"
        " > $SLIPWAY_OUTPUT_DIR/head.csv\"}\n"
        "        name: prep\n"
        "        outputs: [head]\n"
        "      - sink: {to: copy}\n"
        "        inputs: [prep.head]\n");
  StartExecutor();
  std::string id = Start("prep");
  ASSERT_EQ(WaitForRun(id).state, "succeeded") << store_->GetRun(id)->reason;
  auto copy = ReadCsv(LocalFilesystem(), JoinPath(AppDir(), "out/copy.csv"));
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->rows, 10);
  EXPECT_TRUE(
      LocalFilesystem()->Exists(RunFile(id, "prep.inputs/ingest/data.csv")));
}

TEST_F(RunExecutorTest, ADeclaredOutputThatIsMissingFailsTheStep) {
  Apply(AppHeader() +
        "  prep:\n"
        "    kind: check\n"
        "    steps:\n"
        "      - command: {run: \"true\"}\n"
        "        name: prep\n"
        "        outputs: [features]\n");
  StartExecutor();
  std::string id = Start("prep");
  EXPECT_EQ(WaitForRun(id).state, "failed");
  EXPECT_THAT(Step(id, "prep").message,
              HasSubstr("declares output 'features' but did not write it"));
}

// A notebook of code cells (nbformat 4); a cell tagged `parameters` first.
std::string Notebook(const std::vector<std::string>& cells) {
  json nb = {{"nbformat", 4},
             {"nbformat_minor", 5},
             {"metadata",
              {{"kernelspec",
                {{"name", "python3"},
                 {"display_name", "Python 3"},
                 {"language", "python"}}}}},
             {"cells", json::array()}};
  for (size_t i = 0; i < cells.size(); ++i) {
    json cell = {{"cell_type", "code"},
                 {"execution_count", nullptr},
                 {"metadata", json::object()},
                 {"outputs", json::array()},
                 {"source", cells[i]}};
    if (i == 0) cell["metadata"]["tags"] = {"parameters"};
    nb["cells"].push_back(cell);
  }
  return nb.dump();
}

TEST_F(RunExecutorTest,
       NotebookStepsKeepTheExecutedNotebookAndNameAFailingCell) {
  Filesystem* fs = LocalFilesystem();
  ASSERT_TRUE(
      fs->WriteFileAtomic(
            JoinPath(AppDir(), "report.ipynb"),
            Notebook({"limit = 1",
                      "import os\n"
                      "out = os.environ['SLIPWAY_OUTPUT_DIR']\n"
                      "with open(os.path.join(out, 'top.csv'), 'w') as f:\n"
                      "    f.write('n\\n' + '\\n'.join(str(i) for i in "
                      "range(limit)) + '\\n')"}))
          .ok());
  ASSERT_TRUE(fs->WriteFileAtomic(JoinPath(AppDir(), "broken.ipynb"),
                                  Notebook({"x = 1", "print('fine')",
                                            "raise ValueError('bad x')"}))
                  .ok());
  Apply(AppHeader() +
        "  notebooks:\n"
        "    kind: check\n"
        "    steps:\n"
        "      - command: {run: \"true\"}\n"
        "        name: start\n"
        "      - notebook: {path: report.ipynb, params: {limit: 3}}\n"
        "        name: report\n"
        "        after: [start]\n"
        "        outputs: [top]\n"
        "      - notebook: {path: broken.ipynb}\n"
        "        name: broken\n"
        "        after: [start]\n"
        "      - sink: {to: copy}\n"
        "        inputs: [report.top]\n");
  StartExecutor();
  std::string id = Start("notebooks");
  RunRecord run = WaitForRun(id);
  EXPECT_EQ(run.state, "failed");
  EXPECT_THAT(run.reason, HasSubstr("step 'broken' failed"));
  EXPECT_THAT(Step(id, "broken").message, HasSubstr("ValueError: bad x"));
  EXPECT_THAT(Step(id, "broken").message, HasSubstr("cell 3"));
  EXPECT_EQ(Step(id, "report").state, "succeeded");
  EXPECT_EQ(Step(id, "sink").state, "succeeded");
  EXPECT_TRUE(fs->Exists(RunFile(id, "report/executed.ipynb")));
  EXPECT_TRUE(fs->Exists(RunFile(id, "broken/executed.ipynb")));
  auto copy = ReadCsv(fs, JoinPath(AppDir(), "out/copy.csv"));
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->rows, 3);
}

}  // namespace
}  // namespace slipway
