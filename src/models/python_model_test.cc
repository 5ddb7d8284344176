#include "models/python_model.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/process.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/signature.h"
#include "nlohmann/json.hpp"
#include "testing/temp_dir.h"

extern char** environ;

namespace slipway {
namespace {

using ::testing::HasSubstr;

constexpr char kPython[] = "/usr/bin/python3";

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs `script` with /usr/bin/python3 as `dir`/setup.py, passing `dir`.
absl::Status RunSetupScript(const std::string& dir, const std::string& script) {
  const std::string script_path = dir + "/setup.py";
  std::ofstream(script_path) << script;
  ProcessSpec spec;
  spec.argv = {kPython, script_path, dir};
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    const size_t eq = entry.find('=');
    const std::string name = entry.substr(0, eq);
    if (name != "PYTHONPATH" && name != "PYTHONHOME" &&
        eq != std::string::npos) {
      spec.env[name] = entry.substr(eq + 1);
    }
  }
  // One BLAS thread, as in the workers, so both compute the same bits.
  spec.env["OMP_NUM_THREADS"] = "1";
  spec.env["OPENBLAS_NUM_THREADS"] = "1";
  spec.log_path = dir + "/setup.log";
  spec.timeout_ms = 120000;
  ASSIGN_OR_RETURN(ProcessResult result,
                   LocalProcessLauncher()->Run(spec, nullptr));
  if (!result.ok()) {
    return absl::InternalError(absl::StrCat("setup.py ", result.Describe(),
                                            ":\n", ReadFile(spec.log_path)));
  }
  return absl::OkStatus();
}

// Trains the scikit-learn models once per test process. Each folder holds
// model.joblib and expected.json: float32-exact input rows and Python's own
// predictions for them.
constexpr char kTrainScript[] = R"py(
import json, os, sys
import joblib
import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

out = sys.argv[1]

def save(name, model, X, predict):
    folder = os.path.join(out, name)
    os.makedirs(folder)
    joblib.dump(model, os.path.join(folder, "model.joblib"))
    # The server sends float32 rows: predict on exactly those values.
    rows = X[:300].astype(np.float32).astype(np.float64)
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump({"features": X.shape[1],
                   "rows": rows.ravel().tolist(),
                   "predictions": np.asarray(predict(rows)).ravel().tolist()}, f)

X, y = load_breast_cancer(return_X_y=True)
binary = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
save("binary", binary, X, lambda r: binary.predict_proba(r)[:, 1])
X, y = load_iris(return_X_y=True)
multi = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
save("multiclass", multi, X, multi.predict_proba)
X, y = load_diabetes(return_X_y=True)
regression = make_pipeline(StandardScaler(), Ridge(alpha=0.5)).fit(X, y)
save("regression", regression, X, regression.predict)
)py";

const absl::StatusOr<std::string>& TrainedModels() {
  static const auto* dir =
      new absl::StatusOr<std::string>([]() -> absl::StatusOr<std::string> {
        static TempDir temp;
        RETURN_IF_ERROR(RunSetupScript(temp.path(), kTrainScript));
        return temp.path();
      }());
  return *dir;
}

struct Expected {
  int features = 0;
  std::vector<float> rows;
  std::vector<double> predictions;
};

Expected ReadExpected(const std::string& folder) {
  const nlohmann::json json =
      nlohmann::json::parse(ReadFile(folder + "/expected.json"));
  Expected e;
  e.features = json["features"].get<int>();
  for (double v : json["rows"]) e.rows.push_back(static_cast<float>(v));
  e.predictions = json["predictions"].get<std::vector<double>>();
  return e;
}

std::vector<FeatureSpec> NumericFeatures(int n) {
  std::vector<FeatureSpec> features;
  for (int i = 0; i < n; ++i) {
    features.push_back({absl::StrCat("f", i), DataType::kFloat64, {}});
  }
  return features;
}

Signature RegressionSignature(int features) {
  return Signature(Task::kRegression, NumericFeatures(features), "y",
                   DataType::kFloat64, {});
}

Signature ClassSignature(int features, int classes) {
  std::vector<std::string> labels;
  for (int i = 0; i < classes; ++i) labels.push_back(std::to_string(i));
  return Signature(classes == 2 ? Task::kBinaryClassification
                                : Task::kMulticlassClassification,
                   NumericFeatures(features), "y", DataType::kInt64, labels);
}

PythonPoolOptions Options(int workers) {
  PythonPoolOptions options;
  options.workers = workers;
  return options;
}

// A model folder with a model.py.
std::unique_ptr<TempDir> ScriptFolder(const std::string& model_py) {
  auto dir = std::make_unique<TempDir>();
  std::ofstream(dir->path() + "/model.py") << model_py;
  return dir;
}

// Every output equals float32(Python's prediction): same inputs, same
// computation, one rounding.
void ExpectParity(const Model& model, const Expected& expected) {
  const size_t n = expected.rows.size() / expected.features;
  std::vector<float> out;
  ASSERT_TRUE(model.Predict(expected.rows.data(), n, &out).ok());
  ASSERT_EQ(out.size(), expected.predictions.size());
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_NEAR(out[i], static_cast<float>(expected.predictions[i]), 1e-6)
        << "output " << i;
  }
}

// Polls `condition` until it holds or 20 s pass.
template <typename F>
bool WaitFor(F condition) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

bool ProcessGone(int64_t pid) {
  return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

int OpenFdCount() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count;
}

// ------------------------------------------------------------ scikit-learn

TEST(PythonModelTest, PicklesMatchPythonsOwnPredictions) {
  ASSERT_TRUE(TrainedModels().ok()) << TrainedModels().status();
  const std::string root = *TrainedModels();
  struct Case {
    std::string name;
    int classes;  // 0: regression
  };
  for (const Case& c :
       {Case{"binary", 2}, Case{"multiclass", 3}, Case{"regression", 0}}) {
    SCOPED_TRACE(c.name);
    const std::string folder = root + "/" + c.name;
    const Expected expected = ReadExpected(folder);
    Signature signature = c.classes == 0
                              ? RegressionSignature(expected.features)
                              : ClassSignature(expected.features, c.classes);
    absl::StatusOr<std::unique_ptr<Model>> model =
        LoadPythonModel(folder, "model.joblib", signature, Options(1));
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ((*model)->format(), kPythonFormat);
    EXPECT_TRUE((*model)->blocking());
    ExpectParity(**model, expected);

    const auto& python = dynamic_cast<const PythonModel&>(**model);
    EXPECT_EQ(python.info()["versions"]["scikit-learn"], "1.2.1");
    EXPECT_EQ(python.info()["n_features_in"], expected.features);
    if (c.classes > 0) {
      EXPECT_EQ(python.info()["classes"].size(),
                static_cast<size_t>(c.classes));
    }
  }

  // Iris has three classes; a binary signature is refused at load.
  absl::StatusOr<std::unique_ptr<Model>> wrong = LoadPythonModel(
      root + "/multiclass", "model.joblib", ClassSignature(4, 2), Options(1));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong.status().message()),
              HasSubstr("has 3 classes ([0,1,2]) but the signature lists 2"));
}

TEST(PythonModelTest, ConcurrentCallsOnTwoWorkersAllMatch) {
  ASSERT_TRUE(TrainedModels().ok()) << TrainedModels().status();
  const std::string folder = *TrainedModels() + "/binary";
  const Expected expected = ReadExpected(folder);
  absl::StatusOr<std::unique_ptr<Model>> model = LoadPythonModel(
      folder, "model.joblib", ClassSignature(expected.features, 2), Options(2));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->max_concurrency(), 2);

  const size_t n = expected.predictions.size();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<float> out;
      for (int call = 0; call < 50; ++call) {
        // Batches of 1..5 rows starting at different rows per call.
        const size_t begin = (t * 50 + call) * 7 % (n - 5);
        const size_t count = 1 + call % 5;
        const float* rows = expected.rows.data() + begin * expected.features;
        if (!(*model)->Predict(rows, count, &out).ok() || out.size() != count) {
          ++failures;
          continue;
        }
        for (size_t i = 0; i < count; ++i) {
          if (std::fabs(out[i] - static_cast<float>(
                                     expected.predictions[begin + i])) > 1e-6) {
            ++failures;
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);

  const std::vector<ModelWorker> workers = (*model)->Workers();
  ASSERT_EQ(workers.size(), 2u);
  int64_t requests = 0;
  for (const ModelWorker& w : workers) {
    EXPECT_GT(w.pid, 0);
    EXPECT_GT(w.rss_bytes, 0);
    EXPECT_EQ(w.restarts, 0);
    requests += w.requests;
  }
  EXPECT_EQ(requests, 4 * 50 + 1);  // and the trial prediction
}

TEST(PythonModelTest, RuntimeVersionsNamesThePackages) {
  PythonPoolOptions options;
  absl::StatusOr<nlohmann::json> versions = PythonRuntimeVersions(options);
  ASSERT_TRUE(versions.ok()) << versions.status();
  EXPECT_EQ((*versions)["scikit-learn"], "1.2.1");
  EXPECT_EQ((*versions)["numpy"], "1.24.2");
  EXPECT_TRUE(versions->contains("python"));
  EXPECT_TRUE(versions->contains("joblib"));
  EXPECT_TRUE(versions->contains("torch"));
}

// ---------------------------------------------------------------- model.py

constexpr char kSumModel[] = R"py(
import os, sys, time
import numpy as np

def load(path):
    print("loading from", path)  # stdout must not reach the protocol

def predict(rows):
    if rows[0, 0] == 999:
        os._exit(3)
    if rows[0, 0] == 777:
        time.sleep(1000)
    if rows[0, 0] == 555:
        return np.full(len(rows), os.getpid())
    print("predicting", len(rows), "rows")
    return rows.sum(axis=1)
)py";

TEST(PythonModelTest, ScriptFolderLoadsAndPredicts) {
  auto dir = ScriptFolder(kSumModel);
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadPythonModel(dir->path(), "", RegressionSignature(2), Options(1));
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<float> rows = {1, 2, 3, 4.5, -1, 0.25};
  std::vector<float> out;
  ASSERT_TRUE((*model)->Predict(rows.data(), 3, &out).ok());
  EXPECT_EQ(out, (std::vector<float>{3, 7.5, -0.75}));
  EXPECT_TRUE((*model)->Predict(rows.data(), 0, &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(PythonModelTest, CrashFailsOnlyThatCallAndTheWorkerIsReplaced) {
  auto dir = ScriptFolder(kSumModel);
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadPythonModel(dir->path(), "", RegressionSignature(2), Options(2));
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<ModelWorker> before = (*model)->Workers();
  ASSERT_EQ(before.size(), 2u);
  const std::set<int64_t> old_pids = {before[0].pid, before[1].pid};

  std::atomic<bool> crashed{false};
  std::atomic<int> other_failures{0};
  std::atomic<int> other_calls{0};
  std::thread other([&] {
    const std::vector<float> row = {1, 2};
    std::vector<float> out;
    // Keeps calling until the crash has happened, and 20 times after.
    for (int after = 0; after < 20;) {
      if (crashed) ++after;
      ++other_calls;
      if (!(*model)->Predict(row.data(), 1, &out).ok() ||
          out != std::vector<float>{3}) {
        ++other_failures;
      }
    }
  });
  const std::vector<float> crash = {999, 0};
  std::vector<float> out;
  const absl::Status status = (*model)->Predict(crash.data(), 1, &out);
  crashed = true;
  other.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()), HasSubstr("exited with code 3"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("(pid "));
  EXPECT_EQ(other_failures.load(), 0) << other_calls.load() << " calls";

  // The crashed process is reaped, and its slot gets a new process.
  int64_t crashed_pid = 0;
  for (int64_t pid : old_pids) {
    if (ProcessGone(pid)) crashed_pid = pid;
  }
  EXPECT_NE(crashed_pid, 0);
  ASSERT_TRUE(WaitFor([&] {
    for (const ModelWorker& w : (*model)->Workers()) {
      if (w.restarts == 1 && w.pid != 0 && old_pids.count(w.pid) == 0)
        return true;
    }
    return false;
  }));
  const std::vector<float> rows = {1, 1, 2, 2};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE((*model)->Predict(rows.data(), 2, &out).ok());
    EXPECT_EQ(out, (std::vector<float>{2, 4}));
  }
}

TEST(PythonModelTest, WorkerThatDiesWhileIdleIsReplacedWithoutFailingCalls) {
  auto dir = ScriptFolder(kSumModel);
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadPythonModel(dir->path(), "", RegressionSignature(2), Options(2));
  ASSERT_TRUE(model.ok()) << model.status();
  const int64_t victim = (*model)->Workers()[0].pid;
  ASSERT_EQ(kill(static_cast<pid_t>(victim), SIGKILL), 0);
  // Dead (a zombie, or already reaped by the supervisor).
  ASSERT_TRUE(WaitFor([&] {
    siginfo_t info{};
    const int r = waitid(P_PID, static_cast<id_t>(victim), &info,
                         WEXITED | WNOHANG | WNOWAIT);
    return (r == 0 && info.si_pid == victim) || (r != 0 && errno == ECHILD);
  }));
  const std::vector<float> row = {1, 2};
  std::vector<float> out;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE((*model)->Predict(row.data(), 1, &out).ok()) << "call " << i;
    EXPECT_EQ(out, std::vector<float>{3});
  }
  EXPECT_TRUE(WaitFor([&] {
    const ModelWorker w = (*model)->Workers()[0];
    return w.restarts == 1 && w.pid != 0 && w.pid != victim;
  }));
  EXPECT_TRUE(ProcessGone(victim));
}

TEST(PythonModelTest, HungWorkerIsKilledAtTheDeadline) {
  auto dir = ScriptFolder(kSumModel);
  PythonPoolOptions options = Options(2);
  options.timeout_ms = 1000;
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadPythonModel(dir->path(), "", RegressionSignature(2), options);
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<float> hang = {777, 0};
  std::vector<float> out;
  const auto start = std::chrono::steady_clock::now();
  const absl::Status status = (*model)->Predict(hang.data(), 1, &out);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("did not answer within 1000 ms; killed and replaced"));
  EXPECT_GE(elapsed, std::chrono::milliseconds(1000));
  EXPECT_LT(elapsed, std::chrono::milliseconds(3000));

  const std::vector<float> row = {2, 3};
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE((*model)->Predict(row.data(), 1, &out).ok());
    EXPECT_EQ(out, std::vector<float>{5});
  }
  EXPECT_TRUE(WaitFor([&] {
    const std::vector<ModelWorker> workers = (*model)->Workers();
    return workers[0].restarts + workers[1].restarts == 1 &&
           workers[0].pid != 0 && workers[1].pid != 0;
  }));
}

TEST(PythonModelTest, RecyclesWorkersWithoutFailingCalls) {
  auto dir = ScriptFolder(kSumModel);
  PythonPoolOptions options = Options(1);
  options.recycle_after = 3;
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadPythonModel(dir->path(), "", RegressionSignature(2), options);
  ASSERT_TRUE(model.ok()) << model.status();
  // Each answer is the pid of the process that gave it.
  std::map<int64_t, int> calls_per_pid;
  const std::vector<float> row = {555, 0};
  std::vector<float> out;
  for (int i = 0; i < 10; ++i) {
    const absl::Status status = (*model)->Predict(row.data(), 1, &out);
    ASSERT_TRUE(status.ok()) << "call " << i << ": " << status;
    ++calls_per_pid[static_cast<int64_t>(out[0])];
  }
  // The trial prediction at load was the first process's first call.
  EXPECT_EQ(calls_per_pid.size(), 4u);
  for (const auto& [pid, calls] : calls_per_pid) EXPECT_LE(calls, 3) << pid;
  EXPECT_TRUE(WaitFor([&] { return (*model)->Workers()[0].restarts == 3; }));
}

TEST(PythonModelTest, DestroyingTheModelReapsEveryWorkerAndClosesItsPipes) {
  auto dir = ScriptFolder(kSumModel);
  const int fds_before = OpenFdCount();
  std::vector<int64_t> pids;
  {
    absl::StatusOr<std::unique_ptr<Model>> model =
        LoadPythonModel(dir->path(), "", RegressionSignature(2), Options(2));
    ASSERT_TRUE(model.ok()) << model.status();
    for (const ModelWorker& w : (*model)->Workers()) {
      EXPECT_TRUE(kill(static_cast<pid_t>(w.pid), 0) == 0);
      pids.push_back(w.pid);
    }
  }
  ASSERT_EQ(pids.size(), 2u);
  for (int64_t pid : pids) {
    EXPECT_TRUE(ProcessGone(pid)) << pid;
    EXPECT_EQ(waitpid(static_cast<pid_t>(pid), nullptr, WNOHANG), -1);
  }
  EXPECT_EQ(OpenFdCount(), fds_before);
}

TEST(PythonModelTest, WarnsOncePerPackageWithAnotherVersion) {
  auto dir = ScriptFolder(kSumModel);
  PythonPoolOptions options = Options(2);
  options.expected_versions = {{"numpy", "1.0.0"}, {"scikit-learn", "0.24.2"}};
  ::testing::internal::CaptureStderr();
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadPythonModel(dir->path(), "", RegressionSignature(2), options);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(model.ok()) << model.status();
  // numpy differs; model.py does not import scikit-learn, so it is not
  // compared.
  size_t warnings = 0;
  for (size_t at = log.find("models.python_version_mismatch");
       at != std::string::npos;
       at = log.find("models.python_version_mismatch", at + 1)) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 1u) << log;
  EXPECT_THAT(log, HasSubstr("package=numpy expected=1.0.0 found=1.24.2"));
}

// -------------------------------------------------------------- bad inputs

absl::Status LoadError(const std::string& dir, const std::string& file,
                       PythonPoolOptions options = Options(1)) {
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadPythonModel(dir, file, RegressionSignature(2), options);
  return model.ok() ? absl::OkStatus() : model.status();
}

TEST(PythonModelTest, CorruptPickleNamesTheFileAndPythonsError) {
  TempDir dir;
  WriteFile(dir.path() + "/model.joblib", "this is not a pickle");
  const absl::Status status = LoadError(dir.path(), "model.joblib");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat("cannot unpickle ", dir.path(),
                                     "/model.joblib: IndexError")));
  EXPECT_THAT(std::string(status.message()), HasSubstr("joblib.dump"));
}

TEST(PythonModelTest, PickledObjectWithoutPredictIsRefused) {
  TempDir dir;
  WriteFile(dir.path() + "/model.pkl", std::string("\x80\x02K\x07.", 5));  // 7
  const absl::Status status = LoadError(dir.path(), "model.pkl");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("holds a builtins.int, which has no predict"));
}

TEST(PythonModelTest, MissingFilesAreNamed) {
  TempDir dir;
  absl::Status status = LoadError(dir.path(), "model.joblib");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      std::string(status.message()),
      HasSubstr(absl::StrCat(dir.path(), "/model.joblib does not exist")));
  status = LoadError(dir.path(), "");
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat(dir.path(), "/model.py does not exist")));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("load(path) and predict(rows)"));
}

TEST(PythonModelTest, ScriptWithoutPredictOrLoadIsRefused) {
  auto no_predict = ScriptFolder("def load(path):\n    pass\n");
  absl::Status status = LoadError(no_predict->path(), "");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("defines no predict function"));

  auto no_load = ScriptFolder("def predict(rows):\n    return rows[:, 0]\n");
  status = LoadError(no_load->path(), "");
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("defines no load function"));

  auto broken = ScriptFolder("raise ValueError('no weights here')\n");
  status = LoadError(broken->path(), "");
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("model.py failed: ValueError: no weights here"));
}

TEST(PythonModelTest, WrongPredictionCountIsInvalidArgument) {
  // One value for one row (the trial passes), at most three otherwise.
  auto dir = ScriptFolder(
      "def load(path):\n    pass\n"
      "def predict(rows):\n    return rows[:3, 0]\n");
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadPythonModel(dir->path(), "", RegressionSignature(2), Options(1));
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<float> rows(8, 1.0f);
  std::vector<float> out;
  const absl::Status status = (*model)->Predict(rows.data(), 4, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            absl::StrCat("python model ", dir->path(),
                         "/model.py returned 3 predictions for 4 rows "
                         "(expected 4 x 1)"));
  // The worker is fine: the next call succeeds.
  EXPECT_TRUE((*model)->Predict(rows.data(), 2, &out).ok());

  // At load, the trial row of zeros catches a model that never fits.
  auto empty = ScriptFolder(
      "def load(path):\n    pass\n"
      "def predict(rows):\n    return []\n");
  const absl::Status at_load = LoadError(empty->path(), "");
  EXPECT_EQ(at_load.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(at_load.message()),
              HasSubstr("trial prediction on a row of zeros: python model"));
  EXPECT_THAT(std::string(at_load.message()),
              HasSubstr("returned 0 predictions for 1 row (expected 1 x 1)"));
}

TEST(PythonModelTest, ExceptionInPredictIsInvalidArgumentAndKeepsTheWorker) {
  auto dir = ScriptFolder(
      "def load(path):\n    pass\n"
      "def predict(rows):\n"
      "    if rows[0, 0] < 0:\n        raise ValueError('negative input')\n"
      "    return rows[:, 0]\n");
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadPythonModel(dir->path(), "", RegressionSignature(2), Options(1));
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<float> bad = {-1, 0};
  std::vector<float> out;
  const absl::Status status = (*model)->Predict(bad.data(), 1, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("ValueError: negative input"));
  const std::vector<float> good = {4, 0};
  ASSERT_TRUE((*model)->Predict(good.data(), 1, &out).ok());
  EXPECT_EQ(out, std::vector<float>{4});
  EXPECT_EQ((*model)->Workers()[0].restarts, 0);
}

TEST(PythonModelTest, WorkerExitDuringLoadShowsItsStderr) {
  auto dir = ScriptFolder(
      "import os, sys\n"
      "def load(path):\n"
      "    print('cannot find the weights file', file=sys.stderr)\n"
      "    sys.stderr.flush()\n"
      "    os._exit(5)\n"
      "def predict(rows):\n    return rows[:, 0]\n");
  const absl::Status status = LoadError(dir->path(), "");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("exited with code 5 while loading the model"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("cannot find the weights file"));
}

TEST(PythonModelTest, SlowLoadIsKilledAtTheLoadTimeout) {
  auto dir = ScriptFolder(
      "import time\n"
      "def load(path):\n    time.sleep(1000)\n"
      "def predict(rows):\n    return rows[:, 0]\n");
  PythonPoolOptions options = Options(2);
  options.load_timeout_ms = 500;
  const absl::Status status = LoadError(dir->path(), "", options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("did not load within 500 ms"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("raise load_timeout_ms"));
}

}  // namespace
}  // namespace slipway
