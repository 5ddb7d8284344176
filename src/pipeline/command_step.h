// Command and notebook steps: one attempt of a user program (a `command:`
// or a `notebook:` step) run with the step contract of DESIGN.md through an
// injected ProcessLauncher, and what it left behind read back.
//
// Environment of the program: the caller's `base_env` (PATH, HOME, LANG of
// the server), then the step's `env:` values (each "env:NAME" resolved with
// data/secrets.h; values are never logged), then the contract, which wins
// over both: SLIPWAY_RUN_ID, SLIPWAY_STEP, SLIPWAY_INPUT_DIR,
// SLIPWAY_OUTPUT_DIR, SLIPWAY_PARAMS (the step's params, a JSON object),
// SLIPWAY_EVENTS, and PYTHONUNBUFFERED=1 so the log follows the program.
// The directory of `python` is put first on PATH, and a command whose argv
// (not a shell string) starts with `python` or `python3` runs `python`, so
// "python3 train.py" sees Debian's python3-xgboost and not an earlier
// python3 on PATH.
//
// Command: argv as the spec gives it (a shell string is already
// {"/bin/sh", "-c", string}), in working_dir (relative to source_dir;
// empty: source_dir).
//
// Notebook: a small driver (shipped in command_step.cc, run with `python`)
// executes the notebook with nbclient, the library under `jupyter nbconvert
// --execute`. It first writes `notebook.ipynb` into output_dir: the notebook
// with a code cell assigning every param (`rounds = 50`) placed after the
// cell tagged `parameters`, or first when none is (papermill's convention;
// an earlier injected cell is replaced). It runs in the notebook's own
// directory so relative paths work, streams cell output into the log, and
// always writes `executed.ipynb` into output_dir, with the outputs up to
// and including a failing cell. A cell that raises fails the step naming the
// cell by its position among the notebook's code cells, its source line and
// the exception: "code cell 2 (`model.fit(X, y)`): ValueError: ...". On
// SIGTERM (timeout, cancel) the driver kills the kernel, which jupyter
// starts in a session of its own, outside the step's process group, keeps
// executed.ipynb, and a timeout names the cell that was running.
//
// Python runtime (model lineage): after an attempt of a Python program
// succeeds, the interpreter it ran under reports its version,
// sys.executable and the installed versions of kPythonLineagePackages
// (those missing are absent). A Python program is a notebook (`python`
// runs the driver) or a command whose program is named python, python3 or
// python3.N: argv[0], or a shell string's first word. The probe runs that
// same program name with the program's environment and working directory,
// so a virtualenv's interpreter or PYTHONPATH from `env:` is what it sees,
// for at most 10 s and once per step (a failed attempt is not probed). The
// result is ProgramStepResult::python and output_dir/slipway-python.json:
// the file lies beside model/, travels with the step directory when a
// later run reuses it (step caching), and is what the register step
// records. A probe that cannot run records {"error": "..."} and never fails
// the step.
//
// Thread safety: RunProgramStep may run concurrently for different steps
// (different output directories, logs and event files).
#ifndef SLIPWAY_PIPELINE_COMMAND_STEP_H_
#define SLIPWAY_PIPELINE_COMMAND_STEP_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "core/filesystem.h"
#include "core/process.h"
#include "nlohmann/json.hpp"
#include "pipeline/app_spec.h"

namespace slipway {

// The distributions whose versions the Python probe reports, by their
// package index names.
inline constexpr const char* kPythonLineagePackages[] = {
    "numpy",    "pandas", "scipy",   "scikit-learn", "xgboost",  "torch",
    "lightgbm", "joblib", "pyarrow", "nbclient",     "nbformat", "papermill"};

// The file in a program step's output directory that holds its Python
// runtime (see above).
inline constexpr char kPythonRuntimeFile[] = "slipway-python.json";

struct ProgramStepRequest {
  std::string run_id;
  std::string step;  // the step's name
  std::variant<CommandStepSpec, NotebookStepSpec> program;
  std::string source_dir;    // the applied spec's directory (absolute)
  std::string input_dir;     // SLIPWAY_INPUT_DIR, prepared by the caller
  std::string output_dir;    // SLIPWAY_OUTPUT_DIR, created when missing
  std::string log_path;      // stdout and stderr are appended here
  std::string events_path;   // SLIPWAY_EVENTS
  int64_t timeout_ms = 0;    // 0: none
  int64_t memory_bytes = 0;  // address-space limit; 0: none
  const std::atomic<bool>* cancel = nullptr;  // may be null
  std::string python = "/usr/bin/python3";
  std::map<std::string, std::string> base_env;
};

// One line the program appended to SLIPWAY_EVENTS, e.g.
//   {"type": "metric", "name": "val_auc", "value": 0.93}
//   {"type": "alert", "name": "few_rows", "message": "only 12 rows"}
// `type` defaults to "metric"; other keys are ignored. A line that is not a
// JSON object with string type/name/message is kept with valid = false,
// type "invalid", and a message saying why (with the line's start), so a
// bad line never fails the step.
struct StepEvent {
  int64_t line = 0;  // 1-based line number in the events file
  bool valid = true;
  std::string type;
  std::string name;
  nlohmann::json value;  // null when absent
  std::string message;
};

struct ProgramStepResult {
  // OK, or why the attempt failed, in words for the user:
  //   Aborted            "exited with status 3; last lines of the log:\n..."
  //                      "killed by signal SIGSEGV; last lines of the log:..."
  //                      "notebook train.ipynb: code cell 4 (`...`): ..."
  //   DeadlineExceeded   "timed out after 10s (timeout: 10s); the process
  //                      group was killed" (a notebook's: "... (timeout:
  //                      10s) in code cell 3 (`...`); ...")
  //   ResourceExhausted  "exceeded its memory limit (memory: 64MiB); ..."
  //   Cancelled          "cancelled"
  //   InvalidArgument    the notebook or working directory does not exist,
  //                      an env: secret is unset, metrics.json is not a
  //                      JSON object
  // and the launcher's error when the program cannot be started (not
  // found, not executable), the Filesystem's when output_dir cannot be
  // created.
  absl::Status status;
  // Exit code or signal, timed_out, cancelled, memory_exceeded, wall and
  // CPU time, peak RSS. All zero when the program never started.
  ProcessResult process;
  // SHA-256 of what ran (step caching): the argv, plus the bytes of every
  // argv element (every whitespace-separated word of a shell string) that
  // names an existing file relative to the working directory; for a
  // notebook, its path, kernel and bytes. Absolute paths (interpreters) are
  // not read.
  std::string code_sha256;
  // Lines appended to events_path during this attempt, in order.
  std::vector<StepEvent> events;
  // output_dir/metrics.json when the program wrote one (a JSON object).
  std::optional<nlohmann::json> metrics;
  // A Python program's runtime once the attempt succeeded:
  //   {"version": "3.11.2", "executable": "/usr/bin/python3",
  //    "packages": {"numpy": "1.24.2", ...}}
  // or {"error": "..."} when the probe failed; null for other programs and
  // failed attempts.
  nlohmann::json python;
};

// The code_sha256 of a command step run in `working_dir`, and of a
// notebook step whose file holds `bytes` (see ProgramStepResult): what the
// step cache keys on and model lineage records.
std::string CommandCodeSha256(Filesystem* fs, const CommandStepSpec& spec,
                              const std::string& working_dir);
std::string NotebookCodeSha256(const NotebookStepSpec& spec,
                               std::string_view bytes);

// The Python runtime a program step recorded in its output directory
// `step_dir` (kPythonRuntimeFile): null when it recorded none (not a
// Python program, or a built-in step), {"error": "..."} when the file
// cannot be read as a JSON object.
nlohmann::json ReadPythonRuntime(Filesystem* fs, const std::string& step_dir);

// Runs one attempt of the command or notebook in `request` and blocks until
// it has ended (the launcher's Run contract), then, for a Python program
// that succeeded, runs the Python probe through the same launcher. Every
// failure is reported in the result's status; events and usage are filled
// in as far as they exist.
ProgramStepResult RunProgramStep(const ProgramStepRequest& request,
                                 ProcessLauncher* launcher, Filesystem* fs);

}  // namespace slipway

#endif  // SLIPWAY_PIPELINE_COMMAND_STEP_H_
