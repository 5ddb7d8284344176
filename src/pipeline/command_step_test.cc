#include "pipeline/command_step.h"

#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "core/filesystem.h"
#include "core/process.h"
#include "data/csv.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/features.h"
#include "models/model.h"
#include "nlohmann/json.hpp"
#include "pipeline/model_dir.h"
#include "testing/fake_process_launcher.h"
#include "testing/temp_dir.h"

namespace slipway {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kTestdata =
    std::string(SLIPWAY_SOURCE_DIR) + "/src/pipeline/testdata";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteText(const std::string& path, const std::string& text) {
  ASSERT_TRUE(LocalFilesystem()->WriteFileAtomic(path, text).ok()) << path;
}

// True once `pid` is gone or a zombie waiting for init to reap it (bounded
// wait: a killed process takes a moment to die).
bool ProcessEnds(int pid) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string stat = Slurp("/proc/" + std::to_string(pid) + "/stat");
    if (stat.empty() || stat.find(") Z ") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

class ProgramStepTest : public ::testing::Test {
 protected:
  ProgramStepRequest Request(const CommandStepSpec& command) {
    ProgramStepRequest request = BaseRequest();
    request.program = command;
    return request;
  }

  ProgramStepRequest Request(const NotebookStepSpec& notebook) {
    ProgramStepRequest request = BaseRequest();
    request.program = notebook;
    return request;
  }

  static CommandStepSpec Shell(const std::string& script) {
    CommandStepSpec command;
    command.shell = true;
    command.argv = {"/bin/sh", "-c", script};
    return command;
  }

  ProgramStepResult Run(const ProgramStepRequest& request) {
    return RunProgramStep(request, LocalProcessLauncher(), LocalFilesystem());
  }

  std::string Output(const std::string& name) {
    return Slurp(JoinPath(JoinPath(dir_.path(), "out"), name));
  }

  TempDir dir_;

 private:
  ProgramStepRequest BaseRequest() {
    ProgramStepRequest request;
    request.run_id = "run-1";
    request.step = "prep";
    request.source_dir = dir_.path();
    request.input_dir = JoinPath(dir_.path(), "in");
    request.output_dir = JoinPath(dir_.path(), "out");
    request.log_path = JoinPath(dir_.path(), "prep.log");
    request.events_path = JoinPath(dir_.path(), "prep.events.jsonl");
    request.base_env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
                        {"HOME", dir_.path()},
                        {"LANG", "C.UTF-8"}};
    return request;
  }
};

TEST_F(ProgramStepTest, ProgramSeesTheContractEnvironment) {
  setenv("SLIPWAY_COMMAND_TEST_SECRET", "s3cret", 1);
  CommandStepSpec command =
      Shell("env > \"$SLIPWAY_OUTPUT_DIR/env.txt\"; echo done");
  command.params_json = R"({"rounds":5,"name":"x"})";
  command.env = {{"DB_PASSWORD", "env:SLIPWAY_COMMAND_TEST_SECRET"},
                 {"MODE", "fast"}};
  ProgramStepResult result = Run(Request(command));
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.process.exit_code, 0);

  const std::string env = Output("env.txt");
  EXPECT_THAT(env, HasSubstr("SLIPWAY_RUN_ID=run-1\n"));
  EXPECT_THAT(env, HasSubstr("SLIPWAY_STEP=prep\n"));
  EXPECT_THAT(env, HasSubstr("SLIPWAY_INPUT_DIR=" + dir_.path() + "/in\n"));
  EXPECT_THAT(env, HasSubstr("SLIPWAY_OUTPUT_DIR=" + dir_.path() + "/out\n"));
  EXPECT_THAT(env, HasSubstr("SLIPWAY_PARAMS={\"rounds\":5,\"name\":\"x\"}\n"));
  EXPECT_THAT(
      env, HasSubstr("SLIPWAY_EVENTS=" + dir_.path() + "/prep.events.jsonl\n"));
  EXPECT_THAT(env, HasSubstr("DB_PASSWORD=s3cret\n"));
  EXPECT_THAT(env, HasSubstr("MODE=fast\n"));
  EXPECT_THAT(env, HasSubstr("HOME=" + dir_.path() + "\n"));
  EXPECT_THAT(env, HasSubstr("PATH=/usr/bin:/usr/local/bin:/usr/bin:/bin\n"));
  EXPECT_THAT(Slurp(JoinPath(dir_.path(), "prep.log")),
              ::testing::Not(HasSubstr("s3cret")));
}

TEST_F(ProgramStepTest, UnsetSecretFailsBeforeStarting) {
  unsetenv("SLIPWAY_COMMAND_TEST_UNSET");
  CommandStepSpec command = Shell("echo started");
  command.env = {{"TOKEN", "env:SLIPWAY_COMMAND_TEST_UNSET"}};
  ProgramStepResult result = Run(Request(command));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status.message()),
              HasSubstr("SLIPWAY_COMMAND_TEST_UNSET is not set"));
  EXPECT_THAT(std::string(result.status.message()),
              HasSubstr("env 'TOKEN' of step 'prep'"));
  EXPECT_FALSE(LocalFilesystem()->Exists(JoinPath(dir_.path(), "prep.log")));
}

TEST_F(ProgramStepTest, PythonArgvRunsTheConfiguredPython) {
  WriteText(JoinPath(dir_.path(), "which.py"),
            "import os, sys\n"
            "open(os.path.join(os.environ['SLIPWAY_OUTPUT_DIR'], 'exe'), "
            "'w').write(sys.executable)\n");
  CommandStepSpec command;
  command.argv = {"python3", "which.py"};
  ProgramStepResult result = Run(Request(command));
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(Output("exe"), "/usr/bin/python3");
}

// The Debian packages python3-numpy and python3-xgboost are installed with
// /usr/bin/python3.
TEST_F(ProgramStepTest, PythonCommandRecordsItsInterpreterAndPackages) {
  CommandStepSpec command;
  command.argv = {"python3", "-c", "pass"};
  ProgramStepResult result = Run(Request(command));
  ASSERT_TRUE(result.status.ok()) << result.status;
  const nlohmann::json& python = result.python;
  ASSERT_TRUE(python.is_object()) << python.dump();
  ASSERT_FALSE(python.contains("error")) << python.dump();
  EXPECT_THAT(python["version"].get<std::string>(), StartsWith("3."));
  EXPECT_EQ(python["executable"], "/usr/bin/python3");
  for (const char* name : {"numpy", "xgboost"}) {
    ASSERT_TRUE(python["packages"].contains(name)) << python.dump();
    EXPECT_FALSE(python["packages"][name].get<std::string>().empty()) << name;
  }
  const std::vector<std::string> looked_up(std::begin(kPythonLineagePackages),
                                           std::end(kPythonLineagePackages));
  for (const auto& [name, version] : python["packages"].items()) {
    EXPECT_THAT(looked_up, Contains(name));
  }
  // What the register step reads beside model/.
  EXPECT_EQ(ReadPythonRuntime(LocalFilesystem(), JoinPath(dir_.path(), "out")),
            python);
}

TEST_F(ProgramStepTest, PythonFirstInAShellStringIsRecorded) {
  ProgramStepResult result = Run(Request(Shell("/usr/bin/python3 -c pass")));
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.python.value("executable", ""), "/usr/bin/python3")
      << result.python.dump();
}

TEST_F(ProgramStepTest, OtherProgramsRecordNoPython) {
  ProgramStepResult result = Run(Request(Shell("echo python3 >/dev/null")));
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_TRUE(result.python.is_null()) << result.python.dump();
  EXPECT_TRUE(ReadPythonRuntime(LocalFilesystem(), JoinPath(dir_.path(), "out"))
                  .is_null());
}

// The probe runs through the step's launcher as the program did; when it
// cannot run, the step still succeeds and its runtime says why.
TEST_F(ProgramStepTest, PythonProbeThatFailsIsRecordedNotFatal) {
  FakeProcessLauncher launcher;
  launcher.AddResult(FakeProcessLauncher::Exited(0));
  launcher.AddResult(absl::NotFoundError("python3: no such file"));
  CommandStepSpec command;
  command.argv = {"python3", "train.py"};
  command.env = {{"MODE", "fast"}};
  ProgramStepRequest request = Request(command);
  request.python = "/opt/venv/bin/python3";
  ProgramStepResult result =
      RunProgramStep(request, &launcher, LocalFilesystem());
  ASSERT_TRUE(result.status.ok()) << result.status;
  const std::string error = result.python.value("error", "");
  EXPECT_THAT(error, HasSubstr("/opt/venv/bin/python3"));
  EXPECT_THAT(error, HasSubstr("no such file"));
  EXPECT_EQ(ReadPythonRuntime(LocalFilesystem(), request.output_dir),
            result.python);

  const std::vector<ProcessSpec> specs = launcher.specs();
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[1].argv[0], "/opt/venv/bin/python3");
  EXPECT_EQ(specs[1].argv[1], "-c");
  EXPECT_EQ(specs[1].env, specs[0].env);
  EXPECT_EQ(specs[1].working_dir, specs[0].working_dir);
  EXPECT_EQ(specs[1].timeout_ms, 10'000);
}

TEST_F(ProgramStepTest, PythonProbeThatExitsBadlyIsRecorded) {
  FakeProcessLauncher launcher;
  launcher.AddResult(FakeProcessLauncher::Exited(0));
  launcher.AddResult(FakeProcessLauncher::Exited(1));
  CommandStepSpec command;
  command.argv = {"python3", "train.py"};
  ProgramStepResult result =
      RunProgramStep(Request(command), &launcher, LocalFilesystem());
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_THAT(result.python.value("error", ""),
              HasSubstr("exited with code 1"));
}

TEST_F(ProgramStepTest, FailedAttemptIsNotProbed) {
  FakeProcessLauncher launcher;
  launcher.AddResult(FakeProcessLauncher::Exited(3));
  CommandStepSpec command;
  command.argv = {"python3", "train.py"};
  ProgramStepResult result =
      RunProgramStep(Request(command), &launcher, LocalFilesystem());
  EXPECT_EQ(result.status.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(result.python.is_null()) << result.python.dump();
  EXPECT_EQ(launcher.specs().size(), 1u);
}

TEST_F(ProgramStepTest, NonZeroExitQuotesTheEndOfTheLog) {
  ProgramStepResult result = Run(Request(
      Shell("for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line $i; done; "
            "echo 'no such column: age' >&2; exit 3")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(result.process.exit_code, 3);
  EXPECT_EQ(result.status.message(),
            "exited with status 3; last lines of the log:\n"
            "line 4\nline 5\nline 6\nline 7\nline 8\nline 9\nline 10\n"
            "line 11\nline 12\nno such column: age");
}

TEST_F(ProgramStepTest, FailureQuotesOnlyThisAttemptsLog) {
  WriteText(JoinPath(dir_.path(), "prep.log"), "from attempt 1\n");
  ProgramStepResult result = Run(Request(Shell("exit 2")));
  EXPECT_EQ(result.status.message(), "exited with status 2; the log is empty");
}

TEST_F(ProgramStepTest, TimeoutKillsTheProcessGroup) {
  ProgramStepRequest request = Request(
      Shell("sleep 30 & echo $! > \"$SLIPWAY_OUTPUT_DIR/child.pid\"; wait"));
  request.timeout_ms = 500;
  ProgramStepResult result = Run(request);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(result.status.message()),
              StartsWith("timed out after "));
  EXPECT_THAT(std::string(result.status.message()),
              HasSubstr("(timeout: 500ms); the process group was killed"));
  EXPECT_TRUE(result.process.timed_out);

  int child = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Output("child.pid"), &child));
  EXPECT_TRUE(ProcessEnds(child)) << "pid " << child << " outlived the step";
}

TEST_F(ProgramStepTest, MemoryLimitExceededIsReported) {
  CommandStepSpec command;
  command.argv = {"python3", "-c", "x = bytearray(1 << 30)"};
  ProgramStepRequest request = Request(command);
  request.memory_bytes = int64_t{128} << 20;
  ProgramStepResult result = Run(request);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(result.status.message()),
              StartsWith("exceeded its memory limit (memory: 128MiB); last "
                         "lines of the log:\n"));
  EXPECT_THAT(std::string(result.status.message()), HasSubstr("MemoryError"));
}

TEST_F(ProgramStepTest, CancelledBeforeItEnds) {
  std::atomic<bool> cancel{true};
  ProgramStepRequest request = Request(Shell("sleep 30"));
  request.cancel = &cancel;
  ProgramStepResult result = Run(request);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(result.status.message(), "cancelled");
}

TEST_F(ProgramStepTest, MissingProgramIsNamed) {
  CommandStepSpec command;
  command.argv = {"./no_such_script.sh"};
  ProgramStepResult result = Run(Request(command));
  EXPECT_FALSE(result.status.ok());
  EXPECT_THAT(std::string(result.status.message()),
              HasSubstr("no_such_script.sh"));
}

TEST_F(ProgramStepTest, EventsOfThisAttemptAreParsedAndBadLinesKept) {
  WriteText(JoinPath(dir_.path(), "prep.events.jsonl"),
            "{\"name\": \"from attempt 1\"}\n");
  ProgramStepResult result = Run(Request(Shell(
      "echo '{\"type\": \"metric\", \"name\": \"auc\", \"value\": 0.91}' >> "
      "\"$SLIPWAY_EVENTS\"; "
      "echo 'not json at all' >> \"$SLIPWAY_EVENTS\"; "
      "echo '[1, 2]' >> \"$SLIPWAY_EVENTS\"; "
      "echo '{\"type\": \"alert\", \"name\": \"few_rows\", \"message\": "
      "\"only 12 rows\"}' >> \"$SLIPWAY_EVENTS\"; "
      "echo '{\"name\": \"rows\", \"value\": {\"train\": 10}}' >> "
      "\"$SLIPWAY_EVENTS\"")));
  ASSERT_TRUE(result.status.ok()) << result.status;
  ASSERT_EQ(result.events.size(), 5u);
  const std::vector<StepEvent>& e = result.events;
  EXPECT_EQ(e[0].line, 2);
  EXPECT_TRUE(e[0].valid);
  EXPECT_EQ(e[0].type, "metric");
  EXPECT_EQ(e[0].name, "auc");
  EXPECT_DOUBLE_EQ(e[0].value.get<double>(), 0.91);
  EXPECT_EQ(e[1].line, 3);
  EXPECT_FALSE(e[1].valid);
  EXPECT_EQ(e[1].type, "invalid");
  EXPECT_EQ(e[1].message, "not JSON: not json at all");
  EXPECT_EQ(e[2].line, 4);
  EXPECT_EQ(e[2].message, "not a JSON object: [1, 2]");
  EXPECT_EQ(e[3].type, "alert");
  EXPECT_EQ(e[3].message, "only 12 rows");
  EXPECT_TRUE(e[3].value.is_null());
  EXPECT_EQ(e[4].type, "metric");
  EXPECT_EQ(e[4].value["train"], 10);
}

TEST_F(ProgramStepTest, MetricsJsonIsRead) {
  ProgramStepResult result =
      Run(Request(Shell("echo '{\"auc\": 0.8, \"rows\": 12}' > "
                        "\"$SLIPWAY_OUTPUT_DIR/metrics.json\"")));
  ASSERT_TRUE(result.status.ok()) << result.status;
  ASSERT_TRUE(result.metrics.has_value());
  EXPECT_DOUBLE_EQ((*result.metrics)["auc"].get<double>(), 0.8);

  result =
      Run(Request(Shell("echo '0.8' > \"$SLIPWAY_OUTPUT_DIR/metrics.json\"")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status.message()), HasSubstr("metrics.json"));
}

TEST_F(ProgramStepTest, CodeHashFollowsTheScriptFile) {
  WriteText(JoinPath(dir_.path(), "prep.sh"), "echo one\n");
  const ProgramStepRequest request = Request(Shell("sh prep.sh --fast"));
  const std::string first = Run(request).code_sha256;
  EXPECT_EQ(Run(request).code_sha256, first);
  WriteText(JoinPath(dir_.path(), "prep.sh"), "echo two\n");
  const std::string changed = Run(request).code_sha256;
  EXPECT_NE(changed, first);
  EXPECT_NE(Run(Request(Shell("sh prep.sh --slow"))).code_sha256, changed);
}

// A data scientist's python3-xgboost script leaves model/; ReadModelDir
// derives its signature (categories from the table it trained on) and the
// loaded model predicts what python predicted.
TEST_F(ProgramStepTest, PythonXgboostModelReadsBackAndPredictsTheSame) {
  CommandStepSpec command;
  command.argv = {"python3", "train_xgb.py"};
  command.params_json = R"({"rounds": 20, "seed": 3})";
  ProgramStepRequest request = Request(command);
  request.source_dir = kTestdata;
  ProgramStepResult result = Run(request);
  ASSERT_TRUE(result.status.ok()) << result.status << "\n"
                                  << Slurp(request.log_path);
  ASSERT_TRUE(result.metrics.has_value());
  EXPECT_GT((*result.metrics)["train_accuracy"].get<double>(), 0.7);
  ASSERT_EQ(result.events.size(), 1u);
  EXPECT_EQ(result.events[0].name, "rows");

  absl::StatusOr<CsvData> data =
      ReadCsv(LocalFilesystem(), JoinPath(request.output_dir, "data.csv"));
  ASSERT_TRUE(data.ok()) << data.status();
  absl::StatusOr<ModelDir> model =
      ReadModelDir(LocalFilesystem(), JoinPath(request.output_dir, "model"),
                   &data->table, "unused");
  ASSERT_TRUE(model.ok()) << model.status();
  const Signature& signature = model->signature;
  EXPECT_EQ(signature.task(), Task::kBinaryClassification);
  EXPECT_EQ(signature.target(), "label");
  ASSERT_EQ(signature.features().size(), 3u);
  EXPECT_EQ(signature.features()[1].type, DataType::kInt64);
  EXPECT_THAT(signature.features()[2].categories,
              ElementsAre("blue", "green", "red"));

  absl::StatusOr<std::unique_ptr<Model>> loaded =
      LoadModel(model->format, model->model_bytes, signature);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::vector<float> rows;
  ASSERT_TRUE(EncodeTable(signature, data->table, &rows, nullptr).ok());
  std::vector<float> predicted;
  ASSERT_TRUE(
      (*loaded)->Predict(rows.data(), data->table.num_rows(), &predicted).ok());
  std::istringstream python(Output("predictions.txt"));
  std::string line;
  size_t i = 0;
  for (; std::getline(python, line); ++i) {
    ASSERT_LT(i, predicted.size());
    double expected = 0;
    ASSERT_TRUE(absl::SimpleAtod(line, &expected)) << line;
    EXPECT_FLOAT_EQ(predicted[i], static_cast<float>(expected)) << "row " << i;
  }
  EXPECT_EQ(i, predicted.size());
}

TEST_F(ProgramStepTest, NotebookGetsItsParametersAndKeepsTheExecutedCopy) {
  NotebookStepSpec notebook;
  notebook.path = "params.ipynb";
  notebook.params_json = R"({"rounds": 50, "label": "night run"})";
  ProgramStepRequest request = Request(notebook);
  request.source_dir = kTestdata;
  ProgramStepResult result = Run(request);
  ASSERT_TRUE(result.status.ok()) << result.status << "\n"
                                  << Slurp(request.log_path);
  EXPECT_EQ(Output("out.txt"), "50 night run from a file beside the notebook");
  EXPECT_THAT(Slurp(request.log_path), HasSubstr("rounds is 50"));

  const nlohmann::json executed =
      nlohmann::json::parse(Output("executed.ipynb"));
  ASSERT_EQ(executed["cells"].size(), 5u);
  // The injected cell follows the one tagged `parameters`.
  EXPECT_EQ(executed["cells"][2]["metadata"]["tags"][0], "injected-parameters");
  EXPECT_THAT(executed["cells"][3]["outputs"].dump(),
              HasSubstr("rounds is 50"));
  EXPECT_TRUE(LocalFilesystem()->Exists(
      JoinPath(request.output_dir, "notebook.ipynb")));
  EXPECT_EQ(result.code_sha256.size(), 64u);
  // The driver's interpreter, which runs nbclient.
  EXPECT_EQ(result.python.value("executable", ""), "/usr/bin/python3")
      << result.python.dump();
  EXPECT_TRUE(result.python["packages"].contains("nbclient"))
      << result.python.dump();
}

TEST_F(ProgramStepTest, NotebookCellThatRaisesIsNamed) {
  NotebookStepSpec notebook;
  notebook.path = "raises.ipynb";
  ProgramStepRequest request = Request(notebook);
  request.source_dir = kTestdata;
  ProgramStepResult result = Run(request);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(result.status.message(),
            "notebook raises.ipynb: code cell 2 (`raise ValueError('bad value "
            "%d' % (x + 1))`): ValueError: bad value 42");

  const nlohmann::json executed =
      nlohmann::json::parse(Output("executed.ipynb"));
  const std::string cells = executed["cells"].dump();
  EXPECT_THAT(cells, HasSubstr("first cell ran"));
  EXPECT_THAT(cells, HasSubstr("second cell starts"));
  EXPECT_THAT(cells, HasSubstr("\"ename\":\"ValueError\""));
  EXPECT_THAT(cells, ::testing::Not(HasSubstr("never printed\\n\"")));
}

// Jupyter starts the kernel in a session of its own, outside the step's
// process group; stopping the step must still end it.
TEST_F(ProgramStepTest, CancelledNotebookTakesItsKernelDown) {
  NotebookStepSpec notebook;
  notebook.path = "sleeps.ipynb";
  ProgramStepRequest request = Request(notebook);
  request.source_dir = kTestdata;
  std::atomic<bool> cancel{false};
  request.cancel = &cancel;
  const std::string pid_file = JoinPath(request.output_dir, "kernel.pid");
  std::thread canceller([&] {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!LocalFilesystem()->Exists(pid_file) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    cancel = true;
  });
  ProgramStepResult result = Run(request);
  canceller.join();
  EXPECT_EQ(result.status.code(), absl::StatusCode::kCancelled)
      << result.status << "\n"
      << Slurp(request.log_path);

  int kernel = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Output("kernel.pid"), &kernel));
  EXPECT_TRUE(ProcessEnds(kernel))
      << "kernel " << kernel << " outlived the step";
  EXPECT_THAT(Output("executed.ipynb"), HasSubstr("time.sleep(600)"));
}

TEST_F(ProgramStepTest, MissingNotebookIsNamed) {
  NotebookStepSpec notebook;
  notebook.path = "nope.ipynb";
  ProgramStepResult result = Run(Request(notebook));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status.message()),
              HasSubstr("nope.ipynb does not exist"));
}

}  // namespace
}  // namespace slipway
