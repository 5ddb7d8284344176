#include "pipeline/command_step.h"

#include <string.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/hash.h"
#include "core/status.h"
#include "data/secrets.h"

namespace slipway {
namespace {

using nlohmann::json;

// Lines of the log quoted in a failure message, and their byte budget.
constexpr int kLogTailLines = 10;
constexpr size_t kLogTailBytes = 2000;
// How much of an invalid event line its message quotes.
constexpr size_t kEventQuoteBytes = 120;

constexpr std::string_view kNotebookErrorMarker = "slipway-notebook-error: ";

// How long the Python probe may take: it starts the interpreter and reads
// package metadata, without importing the packages.
constexpr int64_t kPythonProbeTimeoutMs = 10'000;

// Reports the interpreter's runtime; see command_step.h. argv: the file to
// write, then the distributions to look up. Whatever goes wrong inside
// Python ends up in the file as {"error": ...}.
constexpr char kPythonProbe[] = R"PY(
import json, sys
try:
    import platform
    from importlib import metadata
    packages = {}
    for name in sys.argv[2:]:
        try:
            packages[name] = metadata.version(name)
        except Exception:
            pass
    info = {"version": platform.python_version(),
            "executable": sys.executable, "packages": packages}
except Exception as e:
    info = {"error": "%s: %s" % (type(e).__name__, e)}
with open(sys.argv[1], "w") as f:
    json.dump(info, f)
)PY";

// Executes a notebook with nbclient; see command_step.h. argv: notebook
// path, output directory, kernel name. Params come from SLIPWAY_PARAMS. A
// failure ends with one line "slipway-notebook-error: {"message": ...}".
constexpr char kNotebookDriver[] = R"PY(
import asyncio, json, keyword, os, re, signal, sys

source, out_dir, kernel = sys.argv[1:4]
state = {"client": None, "cell": None}


def fail(message):
    print("slipway-notebook-error: " + json.dumps({"message": message}),
          flush=True)
    sys.exit(1)


def on_sigterm(*args):
    # Timeout or cancel. jupyter starts the kernel in a session of its own,
    # outside the step's process group: kill its group, keep the outputs so
    # far, and name the running cell.
    try:
        os.killpg(state["client"].km.provisioner.process.pid, signal.SIGKILL)
    except Exception:
        pass
    try:
        nbformat.write(nb, os.path.join(out_dir, "executed.ipynb"))
        if state["cell"] is not None:
            print("slipway-notebook-error: " +
                  json.dumps({"message": cell_label(state["cell"])}),
                  flush=True)
    except Exception:
        pass
    os._exit(128 + signal.SIGTERM)


signal.signal(signal.SIGTERM, on_sigterm)
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

import nbformat
from jupyter_client.kernelspec import NoSuchKernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

params = json.loads(os.environ.get("SLIPWAY_PARAMS") or "{}")
for name in params:
    if not name.isidentifier() or keyword.iskeyword(name):
        fail("param '%s' is not a Python variable name; rename it in the "
             "step's params" % name)

nb = nbformat.read(source, as_version=4)
nb.cells = [c for c in nb.cells if "injected-parameters"
            not in c.get("metadata", {}).get("tags", [])]
numbers = {}
for cell in nb.cells:
    if cell.cell_type == "code":
        numbers[id(cell)] = len(numbers) + 1
position = 0
for i, cell in enumerate(nb.cells):
    if "parameters" in cell.get("metadata", {}).get("tags", []):
        position = i + 1
        break
lines = ["# Parameters injected by Slipway"]
lines += ["%s = %r" % (name, value) for name, value in params.items()]
nb.cells.insert(position, nbformat.v4.new_code_cell(
    "\n".join(lines), metadata={"tags": ["injected-parameters"]}))
nbformat.write(nb, os.path.join(out_dir, "notebook.ipynb"))

ansi = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def cell_label(index, traceback=""):
    cell = nb.cells[index]
    number = numbers.get(id(cell))
    source_lines = cell.source.splitlines()
    line = ""
    found = re.search(r"Cell In ?\[\d*\], line (\d+)", traceback)
    if found and 0 < int(found.group(1)) <= len(source_lines):
        line = source_lines[int(found.group(1)) - 1].strip()
    if not line:
        line = next((l.strip() for l in source_lines if l.strip()), "")
    if len(line) > 60:
        line = line[:57] + "..."
    name = "code cell %d" % number if number else "the injected parameters cell"
    return "%s (`%s`)" % (name, line)


def on_cell_start(cell, cell_index, **kwargs):
    state["cell"] = cell_index
    # nbclient's own SIGTERM handler shuts the kernel down gracefully,
    # which can outlast the launcher's grace period.
    asyncio.get_event_loop().add_signal_handler(signal.SIGTERM, on_sigterm)


def on_cell_executed(cell, cell_index, **kwargs):
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            sys.stdout.write(output.text)
        elif output.output_type == "error":
            sys.stdout.write(ansi.sub("", "\n".join(output.traceback)) + "\n")
    sys.stdout.flush()


client = NotebookClient(
    nb, kernel_name=kernel, timeout=None,
    resources={"metadata": {"path": os.getcwd()}},
    on_cell_start=on_cell_start, on_cell_executed=on_cell_executed)
state["client"] = client
error = None
try:
    client.execute()
except CellExecutionError as e:
    error = "%s: %s: %s" % (cell_label(state["cell"], ansi.sub("", str(e))),
                            e.ename, e.evalue)
except DeadKernelError:
    error = "the kernel died while running %s" % cell_label(state["cell"])
except NoSuchKernel:
    error = ("kernel '%s' is not installed; install it (python3-ipykernel "
             "provides python3) or set the step's kernel" % kernel)
finally:
    nbformat.write(nb, os.path.join(out_dir, "executed.ipynb"))
if error:
    fail(error)
)PY";

std::string FormatDuration(int64_t ms) {
  constexpr int64_t kHour = 3'600'000;
  constexpr int64_t kMinute = 60'000;
  if (ms >= kHour && ms % kHour == 0) return std::to_string(ms / kHour) + "h";
  if (ms >= kMinute && ms % kMinute == 0) {
    return std::to_string(ms / kMinute) + "m";
  }
  if (ms < 1000) return std::to_string(ms) + "ms";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  char text[32];
  snprintf(text, sizeof(text), "%.1fs", static_cast<double>(ms) / 1000);
  std::string out = text;
  if (out.size() > 3 && out.compare(out.size() - 3, 3, ".0s") == 0) {
    out.erase(out.size() - 3, 2);
  }
  return out;
}

std::string FormatSize(int64_t bytes) {
  constexpr int64_t kKiB = 1024;
  for (const auto& [unit, size] :
       {std::pair<const char*, int64_t>{"GiB", kKiB * kKiB * kKiB},
        {"MiB", kKiB * kKiB},
        {"KiB", kKiB}}) {
    if (bytes >= size && bytes % size == 0) {
      return std::to_string(bytes / size) + unit;
    }
  }
  return std::to_string(bytes) + "B";
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev == nullptr ? "signal " + std::to_string(sig)
                           : std::string("SIG") + abbrev;
}

// Size of `path`, or 0 when it does not exist yet.
uint64_t SizeOrZero(Filesystem* fs, const std::string& path) {
  if (path.empty() || !fs->Exists(path)) return 0;
  absl::StatusOr<uint64_t> size = fs->FileSize(path);
  return size.ok() ? *size : 0;
}

// Everything after the first `offset` bytes of `path` (all of it when the
// file shrank); empty when it cannot be read.
std::string ReadFrom(Filesystem* fs, const std::string& path, uint64_t offset) {
  if (path.empty() || !fs->Exists(path)) return std::string();
  absl::StatusOr<std::string> text = fs->ReadFile(path);
  if (!text.ok()) return std::string();
  return offset <= text->size() ? text->substr(offset) : *text;
}

// The last lines of `log`, for a failure message.
std::string LogTail(std::string_view log) {
  while (!log.empty() && (log.back() == '\n' || log.back() == '\r')) {
    log.remove_suffix(1);
  }
  if (log.empty()) return "; the log is empty";
  size_t start = 0;
  int newlines = 0;
  for (size_t i = log.size(); i > 0; --i) {
    if (log[i - 1] == '\n' && ++newlines == kLogTailLines) {
      start = i;
      break;
    }
  }
  if (log.size() - start > kLogTailBytes) start = log.size() - kLogTailBytes;
  return "; last lines of the log:\n" + std::string(log.substr(start));
}

// The message of the driver's last error marker in `log`, or empty.
std::string NotebookError(std::string_view log) {
  const size_t at = log.rfind(kNotebookErrorMarker);
  if (at == std::string_view::npos) return std::string();
  std::string_view line = log.substr(at + kNotebookErrorMarker.size());
  line = line.substr(0, line.find('\n'));
  const json parsed = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || !parsed.contains("message") ||
      !parsed["message"].is_string()) {
    return std::string();
  }
  return parsed["message"].get<std::string>();
}

absl::StatusOr<std::map<std::string, std::string>> BuildEnv(
    const ProgramStepRequest& request, const std::string& params_json,
    const std::vector<std::pair<std::string, std::string>>& step_env) {
  std::map<std::string, std::string> env = request.base_env;
  for (const auto& [name, value] : step_env) {
    ASSIGN_OR_RETURN(env[name],
                     ResolveSecret(value, "env '" + name + "' of step '" +
                                              request.step + "'"));
  }
  const std::string python_dir = DirName(request.python);
  auto path = env.find("PATH");
  env["PATH"] = python_dir + ":" +
                (path == env.end() ? std::string("/usr/local/bin:/usr/bin:/bin")
                                   : path->second);
  env["SLIPWAY_RUN_ID"] = request.run_id;
  env["SLIPWAY_STEP"] = request.step;
  env["SLIPWAY_INPUT_DIR"] = request.input_dir;
  env["SLIPWAY_OUTPUT_DIR"] = request.output_dir;
  env["SLIPWAY_PARAMS"] = params_json;
  env["SLIPWAY_EVENTS"] = request.events_path;
  env["PYTHONUNBUFFERED"] = "1";
  return env;
}

// Words of `argv` that may name files: every element, and for a shell
// string every whitespace-separated word.
std::vector<std::string> CandidateFiles(const CommandStepSpec& spec) {
  std::vector<std::string> words;
  for (size_t i = 0; i < spec.argv.size(); ++i) {
    const std::string& arg = spec.argv[i];
    if (!(spec.shell && i + 1 == spec.argv.size())) {
      words.push_back(arg);
      continue;
    }
    size_t start = 0;
    while (start < arg.size()) {
      start = arg.find_first_not_of(" \t\n", start);
      if (start == std::string::npos) break;
      size_t end = arg.find_first_of(" \t\n", start);
      if (end == std::string::npos) end = arg.size();
      words.push_back(arg.substr(start, end - start));
      start = end;
    }
  }
  return words;
}

void HashLengthPrefixed(std::string_view text, Sha256* hash) {
  hash->Update(std::to_string(text.size()));
  hash->Update(":");
  hash->Update(text);
}

// What to launch for a step, and the hash of its code.
struct Launch {
  ProcessSpec spec;
  std::string code_sha256;
  std::string notebook;  // the notebook's path as written; empty: command
  std::string python;    // the program name of a Python program; else empty
};

// python, python3 or python3.N, after any directories.
bool IsPythonProgram(std::string_view program) {
  const std::string name = BaseName(program);
  if (name == "python" || name == "python3") return true;
  constexpr std::string_view kVersioned = "python3.";
  return name.size() > kVersioned.size() &&
         name.compare(0, kVersioned.size(), kVersioned) == 0 &&
         name.find_first_not_of("0123456789", kVersioned.size()) ==
             std::string_view::npos;
}

// The program a command runs first: argv[0], or a shell string's first
// word.
std::string FirstProgram(const CommandStepSpec& command,
                         const std::vector<std::string>& argv) {
  if (!command.shell) return argv[0];
  const std::string& script = argv.back();
  const size_t start = script.find_first_not_of(" \t\n");
  if (start == std::string::npos) return std::string();
  const size_t end = script.find_first_of(" \t\n;&|", start);
  return script.substr(
      start, end == std::string::npos ? std::string::npos : end - start);
}

absl::StatusOr<Launch> PrepareCommand(const ProgramStepRequest& request,
                                      const CommandStepSpec& command,
                                      Filesystem* fs) {
  if (command.argv.empty()) {
    return absl::InvalidArgumentError(
        "the command is empty; give `run:` a program to run");
  }
  Launch launch;
  launch.spec.working_dir =
      ResolvePath(request.source_dir, command.working_dir);
  if (!fs->Exists(launch.spec.working_dir)) {
    return absl::InvalidArgumentError(
        "working directory " + launch.spec.working_dir +
        " does not exist; `working_dir:` is relative to the spec's "
        "directory");
  }
  ASSIGN_OR_RETURN(launch.spec.env,
                   BuildEnv(request, command.params_json, command.env));
  launch.spec.argv = command.argv;
  if (!command.shell &&
      (launch.spec.argv[0] == "python" || launch.spec.argv[0] == "python3")) {
    launch.spec.argv[0] = request.python;
  }
  launch.code_sha256 = CommandCodeSha256(fs, command, launch.spec.working_dir);
  std::string program = FirstProgram(command, launch.spec.argv);
  if (IsPythonProgram(program)) launch.python = std::move(program);
  return launch;
}

absl::StatusOr<Launch> PrepareNotebook(const ProgramStepRequest& request,
                                       const NotebookStepSpec& notebook,
                                       Filesystem* fs) {
  const std::string path = ResolvePath(request.source_dir, notebook.path);
  if (notebook.path.empty() || !fs->Exists(path)) {
    return absl::InvalidArgumentError(
        "notebook " + path +
        " does not exist; `path:` is relative to the spec's directory");
  }
  ASSIGN_OR_RETURN(std::string bytes, fs->ReadFile(path));
  Launch launch;
  launch.notebook = notebook.path;
  launch.spec.working_dir = DirName(path);
  ASSIGN_OR_RETURN(launch.spec.env,
                   BuildEnv(request, notebook.params_json, {}));
  launch.spec.argv = {request.python, "-c", kNotebookDriver};
  launch.spec.argv.insert(launch.spec.argv.end(),
                          {path, request.output_dir, notebook.kernel});
  launch.code_sha256 = NotebookCodeSha256(notebook, bytes);
  launch.python = request.python;
  return launch;
}

StepEvent InvalidEvent(int64_t line, std::string_view text,
                       const std::string& why) {
  StepEvent event;
  event.line = line;
  event.valid = false;
  event.type = "invalid";
  std::string quote(text.substr(0, kEventQuoteBytes));
  if (text.size() > kEventQuoteBytes) quote += "...";
  event.message = why + ": " + quote;
  return event;
}

// The string at `key`, "" when absent; false when present but not a string.
bool OptionalString(const json& object, const char* key, std::string* out) {
  auto it = object.find(key);
  if (it == object.end()) return true;
  if (!it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

StepEvent ParseEvent(int64_t line, std::string_view text) {
  const json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return InvalidEvent(line, text, "not JSON");
  if (!value.is_object()) {
    return InvalidEvent(line, text, "not a JSON object");
  }
  StepEvent event;
  event.line = line;
  event.type = "metric";
  if (!OptionalString(value, "type", &event.type) ||
      !OptionalString(value, "name", &event.name) ||
      !OptionalString(value, "message", &event.message)) {
    return InvalidEvent(line, text, "type, name and message must be strings");
  }
  auto it = value.find("value");
  if (it != value.end()) event.value = *it;
  return event;
}

// The events in the part of the events file written by this attempt;
// `before` is the part written earlier (for line numbers).
std::vector<StepEvent> ParseEvents(std::string_view before,
                                   std::string_view text) {
  std::vector<StepEvent> events;
  int64_t line =
      static_cast<int64_t>(std::count(before.begin(), before.end(), '\n'));
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view row = text.substr(start, end - start);
    ++line;
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
    if (row.find_first_not_of(" \t") != std::string_view::npos) {
      events.push_back(ParseEvent(line, row));
    }
    start = end + 1;
  }
  return events;
}

absl::Status ReadMetrics(Filesystem* fs, const std::string& output_dir,
                         std::optional<json>* metrics) {
  const std::string path = JoinPath(output_dir, "metrics.json");
  if (!fs->Exists(path)) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path));
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) {
    return absl::InvalidArgumentError(
        "metrics.json in the step's output directory is not a JSON object; "
        "write metric names and values, e.g. {\"auc\": 0.91}");
  }
  *metrics = std::move(value);
  return absl::OkStatus();
}

// Why the program failed, from its result and this attempt's log.
absl::Status Outcome(const ProcessResult& process, const Launch& launch,
                     std::string_view log) {
  if (process.cancelled) return absl::CancelledError("cancelled");
  const std::string notebook_error =
      launch.notebook.empty() ? std::string() : NotebookError(log);
  if (process.timed_out) {
    return absl::DeadlineExceededError(
        "timed out after " + FormatDuration(process.wall_micros / 1000) +
        " (timeout: " + FormatDuration(process.timeout_ms) + ")" +
        (notebook_error.empty() ? "" : " in " + notebook_error) +
        "; the process group was killed");
  }
  if (process.memory_exceeded) {
    return absl::ResourceExhaustedError(
        "exceeded its memory limit (memory: " +
        FormatSize(process.memory_limit_bytes) + ")" +
        (notebook_error.empty() ? LogTail(log) : " in " + notebook_error));
  }
  if (process.exit_code == 0) return absl::OkStatus();
  if (!notebook_error.empty()) {
    return absl::AbortedError("notebook " + launch.notebook + ": " +
                              notebook_error);
  }
  if (process.signal != 0) {
    return absl::AbortedError("killed by signal " + SignalName(process.signal) +
                              LogTail(log));
  }
  return absl::AbortedError("exited with status " +
                            std::to_string(process.exit_code) + LogTail(log));
}

// Runs the Python probe with the program's interpreter, environment and
// working directory, and records what it reported in output_dir.
json ProbePython(const ProgramStepRequest& request, const Launch& launch,
                 ProcessLauncher* launcher, Filesystem* fs) {
  const std::string path = JoinPath(request.output_dir, kPythonRuntimeFile);
  ProcessSpec spec;
  spec.argv = {launch.python, "-c", kPythonProbe, path};
  for (const char* package : kPythonLineagePackages) {
    spec.argv.push_back(package);
  }
  spec.env = launch.spec.env;
  spec.working_dir = launch.spec.working_dir;
  spec.timeout_ms = kPythonProbeTimeoutMs;
  const std::string failed =
      "could not list the versions of " + launch.python + " and its packages: ";
  json python;
  absl::StatusOr<ProcessResult> probe = launcher->Run(spec, request.cancel);
  if (!probe.ok()) {
    python = {{"error", failed + std::string(probe.status().message())}};
  } else if (!probe->ok()) {
    python = {{"error", failed + probe->Describe()}};
  } else {
    python = ReadPythonRuntime(fs, request.output_dir);
    if (python.is_null()) {
      python = {{"error", failed + "the probe wrote no " +
                              std::string(kPythonRuntimeFile)}};
    } else if (python.contains("error")) {
      const json& error = python["error"];
      const std::string why =
          error.is_string() ? error.get<std::string>() : error.dump();
      python = {{"error", failed + why}};
    } else if (!python.value("version", json()).is_string() ||
               !python.value("executable", json()).is_string() ||
               !python.value("packages", json()).is_object()) {
      python = {{"error", failed + "the probe wrote " + python.dump()}};
    }
  }
  absl::Status written = fs->WriteFileAtomic(path, python.dump());
  if (!written.ok()) {
    python = {{"error", failed + std::string(written.message())}};
  }
  return python;
}

}  // namespace

json ReadPythonRuntime(Filesystem* fs, const std::string& step_dir) {
  const std::string path = JoinPath(step_dir, kPythonRuntimeFile);
  if (!fs->Exists(path)) return json();
  absl::StatusOr<std::string> text = fs->ReadFile(path);
  if (!text.ok()) return {{"error", std::string(text.status().message())}};
  json value = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) {
    return {{"error", path + " is not a JSON object"}};
  }
  return value;
}

std::string CommandCodeSha256(Filesystem* fs, const CommandStepSpec& spec,
                              const std::string& working_dir) {
  Sha256 hash;
  hash.Update("command\n");
  for (const std::string& arg : spec.argv) HashLengthPrefixed(arg, &hash);
  std::set<std::string> seen;
  for (const std::string& word : CandidateFiles(spec)) {
    if (word.empty() || word.front() == '/' || !seen.insert(word).second) {
      continue;
    }
    const std::string path = JoinPath(working_dir, word);
    if (!fs->Exists(path)) continue;
    absl::StatusOr<std::string> bytes = fs->ReadFile(path);
    if (!bytes.ok()) continue;  // a directory, or unreadable: not code
    hash.Update("file\n");
    HashLengthPrefixed(word, &hash);
    HashLengthPrefixed(*bytes, &hash);
  }
  return hash.HexDigest();
}

std::string NotebookCodeSha256(const NotebookStepSpec& spec,
                               std::string_view bytes) {
  Sha256 hash;
  hash.Update("notebook\n");
  HashLengthPrefixed(spec.path, &hash);
  HashLengthPrefixed(spec.kernel, &hash);
  HashLengthPrefixed(bytes, &hash);
  return hash.HexDigest();
}

ProgramStepResult RunProgramStep(const ProgramStepRequest& request,
                                 ProcessLauncher* launcher, Filesystem* fs) {
  ProgramStepResult result;
  absl::StatusOr<Launch> launch = std::visit(
      [&](const auto& program) -> absl::StatusOr<Launch> {
        using T = std::decay_t<decltype(program)>;
        if constexpr (std::is_same_v<T, CommandStepSpec>) {
          return PrepareCommand(request, program, fs);
        } else {
          return PrepareNotebook(request, program, fs);
        }
      },
      request.program);
  if (!launch.ok()) {
    result.status = launch.status();
    return result;
  }
  result.code_sha256 = launch->code_sha256;
  result.status = fs->CreateDirs(request.output_dir);
  if (!result.status.ok()) return result;

  ProcessSpec& spec = launch->spec;
  spec.log_path = request.log_path;
  spec.timeout_ms = request.timeout_ms;
  spec.memory_limit_bytes = request.memory_bytes;
  const uint64_t log_start = SizeOrZero(fs, request.log_path);
  const uint64_t events_start = SizeOrZero(fs, request.events_path);

  absl::StatusOr<ProcessResult> process = launcher->Run(spec, request.cancel);
  if (!process.ok()) {
    result.status = process.status();
    return result;
  }
  result.process = *process;

  const std::string events = ReadFrom(fs, request.events_path, 0);
  const size_t split = std::min<size_t>(events_start, events.size());
  result.events = ParseEvents(std::string_view(events).substr(0, split),
                              std::string_view(events).substr(split));

  result.status = Outcome(result.process, *launch,
                          ReadFrom(fs, request.log_path, log_start));
  if (result.status.ok()) {
    result.status = ReadMetrics(fs, request.output_dir, &result.metrics);
  }
  if (result.status.ok() && !launch->python.empty()) {
    result.python = ProbePython(request, *launch, launcher, fs);
  }
  return result;
}

}  // namespace slipway
