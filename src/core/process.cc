#include "core/process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/filesystem.h"

namespace slipway {
namespace {

constexpr int64_t kCancelPollMicros = 100'000;
constexpr std::string_view kDefaultPath = "/usr/local/bin:/usr/bin:/bin";
// How much of the end of this run's output is searched for out-of-memory
// messages: the error is normally the last thing a program prints.
constexpr int64_t kOutputTailBytes = 64 * 1024;

int64_t MonotonicMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t TimevalMicros(const timeval& tv) {
  return static_cast<int64_t>(tv.tv_sec) * 1'000'000 + tv.tv_usec;
}

std::string ErrnoText(int err) { return std::string(strerror(err)); }

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev == nullptr) return absl::StrCat("signal ", sig);
  return absl::StrCat("SIG", abbrev);
}

std::string FormatMillis(int64_t ms) {
  if (ms % 1000 == 0) return absl::StrCat(ms / 1000, " s");
  if (ms < 1000) return absl::StrCat(ms, " ms");
  return absl::StrFormat("%.1f s", static_cast<double>(ms) / 1000.0);
}

std::string FormatBytes(int64_t bytes) {
  constexpr int64_t kMiB = int64_t{1} << 20;
  constexpr int64_t kGiB = int64_t{1} << 30;
  if (bytes % kGiB == 0) return absl::StrCat(bytes / kGiB, " GiB");
  if (bytes % kMiB == 0) return absl::StrCat(bytes / kMiB, " MiB");
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / kMiB);
}

// Where the child failed before or at execve; sent to the parent over a
// close-on-exec pipe, which reads end-of-file instead when execve succeeds.
enum class ChildStage : int { kSetpgid, kDup, kChdir, kRlimit, kExec };

struct ChildError {
  ChildStage stage;
  int err;
};

// A file descriptor closed when it goes out of scope.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Moves `fd` to a number above 2 (close-on-exec), so that dup2() onto 0, 1
// and 2 in the child never meets itself even when the host runs with a
// standard descriptor closed.
absl::StatusOr<int> AboveStandardFds(int fd, const std::string& what) {
  if (fd < 0) {
    return absl::Status(absl::ErrnoToStatusCode(errno),
                        absl::StrCat("opening ", what, ": ", ErrnoText(errno)));
  }
  if (fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int err = errno;
  close(fd);
  if (moved < 0) {
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat("opening ", what, ": ", ErrnoText(err)));
  }
  return moved;
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         access(path.c_str(), X_OK) == 0;
}

// Resolves a bare program name through the child's PATH here, in the parent,
// so the child needs only execve (execvpe would search the parent's PATH and
// allocate after fork).
absl::StatusOr<std::string> ResolveProgram(const ProcessSpec& spec) {
  const std::string& program = spec.argv[0];
  if (program.find('/') != std::string::npos) return program;
  auto it = spec.env.find("PATH");
  std::string path_list =
      it != spec.env.end() ? it->second : std::string(kDefaultPath);
  size_t begin = 0;
  while (begin <= path_list.size()) {
    size_t end = path_list.find(':', begin);
    if (end == std::string::npos) end = path_list.size();
    std::string dir = path_list.substr(begin, end - begin);
    if (dir.empty()) dir.push_back('.');  // POSIX: an empty entry is the current dir.
    if (dir[0] != '/' && !spec.working_dir.empty()) {
      dir = JoinPath(spec.working_dir, dir);
    }
    std::string candidate = JoinPath(dir, program);
    if (IsExecutableFile(candidate)) return candidate;
    begin = end + 1;
  }
  return absl::NotFoundError(absl::StrCat(
      "program '", program, "' was not found on PATH (", path_list,
      "); give its full path or set PATH in the step's environment"));
}

absl::Status CheckNoNul(const std::string& s, std::string_view what) {
  if (s.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(what), " '", s.c_str(), "...' contains a NUL byte"));
  }
  return absl::OkStatus();
}

absl::Status ValidateSpec(const ProcessSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return absl::InvalidArgumentError(
        "process spec has an empty argv; name the program to run");
  }
  for (const std::string& arg : spec.argv) {
    if (absl::Status s = CheckNoNul(arg, "argument"); !s.ok()) return s;
  }
  for (const auto& [key, value] : spec.env) {
    if (key.empty() || key.find('=') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment variable name '", key,
          "' is invalid; names are non-empty and contain no '='"));
    }
    if (absl::Status s = CheckNoNul(key, "environment variable"); !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckNoNul(value, "value of " + key); !s.ok()) {
      return s;
    }
  }
  if (spec.timeout_ms < 0 || spec.kill_grace_ms < 0 ||
      spec.memory_limit_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "process spec for '", spec.argv[0],
        "' has a negative timeout_ms, kill_grace_ms or memory_limit_bytes"));
  }
  return absl::OkStatus();
}

absl::Status ChildErrorStatus(const ChildError& e, const ProcessSpec& spec,
                              const std::string& program_path) {
  std::string program = spec.argv[0];
  switch (e.stage) {
    case ChildStage::kChdir:
      return absl::Status(
          e.err == ENOENT ? absl::StatusCode::kNotFound
                          : absl::StatusCode::kFailedPrecondition,
          absl::StrCat("cannot run '", program, "' in working directory '",
                       spec.working_dir, "': ", ErrnoText(e.err)));
    case ChildStage::kExec: {
      absl::StatusCode code = absl::ErrnoToStatusCode(e.err);
      std::string hint;
      if (e.err == ENOEXEC) {
        code = absl::StatusCode::kFailedPrecondition;
        hint = "; a script needs a #! line naming its interpreter";
      } else if (e.err == EACCES) {
        hint = "; make it executable (chmod +x) or run it via its interpreter";
      }
      std::string shown = program_path == program
                              ? absl::StrCat("'", program, "'")
                              : absl::StrCat("'", program, "' (",
                                             program_path, ")");
      return absl::Status(code, absl::StrCat("cannot start program ", shown,
                                             ": ", ErrnoText(e.err), hint));
    }
    case ChildStage::kRlimit:
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot set the memory limit of ", spec.memory_limit_bytes,
          " bytes for '", program, "': ", ErrnoText(e.err)));
    case ChildStage::kSetpgid:
    case ChildStage::kDup:
      break;
  }
  return absl::InternalError(absl::StrCat("cannot set up the process for '",
                                          program, "': ", ErrnoText(e.err)));
}

// True when the last part of the program's output (from `offset` on) names
// an out-of-memory error.
bool OutputMentionsOutOfMemory(const std::string& log_path, int64_t offset) {
  UniqueFd fd(open(log_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return false;
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return false;
  int64_t begin = std::max<int64_t>(offset, st.st_size - kOutputTailBytes);
  if (st.st_size <= begin) return false;
  std::string tail(static_cast<size_t>(st.st_size - begin), '\0');
  ssize_t n = pread(fd.get(), tail.data(), tail.size(), begin);
  if (n <= 0) return false;
  tail.resize(static_cast<size_t>(n));
  for (std::string_view needle :
       {"MemoryError", "std::bad_alloc", "cannot allocate vector",
        "Cannot allocate memory", "out of memory", "Out of memory"}) {
    if (tail.find(needle) != std::string::npos) return true;
  }
  return false;
}

// Everything the child needs, built before fork: after fork in a
// multi-threaded process only async-signal-safe calls are allowed, so no
// allocation happens there.
struct ChildPlan {
  std::string program_path;
  std::vector<std::string> env_strings;
  std::vector<char*> argv;
  std::vector<char*> envp;
  const char* working_dir = nullptr;
  int stdin_fd = -1;
  int log_fd = -1;
  int error_pipe = -1;
  int max_fd = 0;
  rlim_t memory_limit = 0;
};

[[noreturn]] void ReportAndExit(int error_pipe, ChildStage stage) {
  ChildError e{stage, errno};
  ssize_t unused = write(error_pipe, &e, sizeof(e));
  (void)unused;
  _exit(127);
}

// Runs in the forked child. Async-signal-safe calls only.
[[noreturn]] void ExecChild(const ChildPlan& plan) {
  if (setpgid(0, 0) != 0) ReportAndExit(plan.error_pipe, ChildStage::kSetpgid);
  // Handlers installed by the host would run host code here, and ignored
  // signals stay ignored across execve (a server ignores SIGPIPE): give the
  // program default dispositions, then unblock what the parent blocked.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  // The plan's descriptors are all above 2 (AboveStandardFds), and dup2
  // clears close-on-exec on the copy.
  if (dup2(plan.stdin_fd, 0) < 0 || dup2(plan.log_fd, 1) < 0 ||
      dup2(plan.log_fd, 2) < 0) {
    ReportAndExit(plan.error_pipe, ChildStage::kDup);
  }
  if (plan.working_dir != nullptr && chdir(plan.working_dir) != 0) {
    ReportAndExit(plan.error_pipe, ChildStage::kChdir);
  }
  if (plan.memory_limit > 0) {
    struct rlimit limit{plan.memory_limit, plan.memory_limit};
    if (setrlimit(RLIMIT_AS, &limit) != 0) {
      ReportAndExit(plan.error_pipe, ChildStage::kRlimit);
    }
  }
  // Our own descriptors are close-on-exec, but libraries in the host may
  // open some without it. Marking (not closing) keeps the error pipe usable
  // until execve succeeds.
  if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd <= plan.max_fd; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  execve(plan.program_path.c_str(), plan.argv.data(), plan.envp.data());
  ReportAndExit(plan.error_pipe, ChildStage::kExec);
}

class LocalLauncher : public ProcessLauncher {
 public:
  absl::StatusOr<ProcessResult> Run(const ProcessSpec& spec,
                                    const std::atomic<bool>* cancel) override {
    if (absl::Status s = ValidateSpec(spec); !s.ok()) return s;
    ProcessResult result;
    result.timeout_ms = spec.timeout_ms;
    result.memory_limit_bytes = spec.memory_limit_bytes;
    if (cancel != nullptr && cancel->load()) {
      result.cancelled = true;
      return result;
    }

    ChildPlan plan;
    auto program_path = ResolveProgram(spec);
    if (!program_path.ok()) return program_path.status();
    plan.program_path = *std::move(program_path);

    auto stdin_fd =
        AboveStandardFds(open("/dev/null", O_RDONLY | O_CLOEXEC), "/dev/null");
    if (!stdin_fd.ok()) return stdin_fd.status();
    UniqueFd stdin_owner(*stdin_fd);
    const std::string log_path =
        spec.log_path.empty() ? std::string("/dev/null") : spec.log_path;
    auto log_fd = AboveStandardFds(
        open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644),
        absl::StrCat("log file '", log_path, "' for '", spec.argv[0], "'"));
    if (!log_fd.ok()) return log_fd.status();
    UniqueFd log_owner(*log_fd);
    struct stat log_stat;
    int64_t log_offset =
        fstat(log_owner.get(), &log_stat) == 0 ? log_stat.st_size : 0;

    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
      return absl::Status(absl::ErrnoToStatusCode(errno),
                          absl::StrCat("creating a pipe to start '",
                                       spec.argv[0], "': ", ErrnoText(errno)));
    }
    UniqueFd pipe_read(pipe_fds[0]);
    UniqueFd pipe_write(pipe_fds[1]);

    std::vector<std::string> args = spec.argv;
    for (std::string& a : args) plan.argv.push_back(a.data());
    plan.argv.push_back(nullptr);
    for (const auto& [key, value] : spec.env) {
      plan.env_strings.push_back(key + "=" + value);
    }
    for (std::string& e : plan.env_strings) plan.envp.push_back(e.data());
    plan.envp.push_back(nullptr);
    if (!spec.working_dir.empty()) plan.working_dir = spec.working_dir.c_str();
    plan.stdin_fd = stdin_owner.get();
    plan.log_fd = log_owner.get();
    plan.error_pipe = pipe_write.get();
    struct rlimit nofile;
    plan.max_fd = getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
                          nofile.rlim_cur != RLIM_INFINITY
                      ? static_cast<int>(std::min<rlim_t>(nofile.rlim_cur,
                                                          1 << 20))
                      : 1 << 16;
    plan.memory_limit = static_cast<rlim_t>(spec.memory_limit_bytes);

    // Block every signal across fork so no host handler runs in the child
    // before ExecChild resets the dispositions.
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    int64_t start = MonotonicMicros();
    pid_t pid = fork();
    if (pid == 0) ExecChild(plan);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    if (pid < 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot fork to start '", spec.argv[0], "': ", ErrnoText(fork_errno),
          "; retry when the host has fewer processes or more memory"));
    }
    pipe_write.Reset();

    // End of file: execve succeeded. A ChildError: the child exits 127.
    ChildError child_error;
    ssize_t n;
    do {
      n = read(pipe_read.get(), &child_error, sizeof(child_error));
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof(child_error))) {
      int status;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return ChildErrorStatus(child_error, spec, plan.program_path);
    }

    absl::Status waited = WaitForExit(pid, spec, cancel, start, result);
    // The program has exited (a zombie, so its pid and group id cannot be
    // reused yet): kill whatever it left behind in its group, then reap it.
    kill(-pid, SIGKILL);
    int status = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof(usage));
    pid_t reaped;
    do {
      reaped = wait4(pid, &status, 0, &usage);
    } while (reaped < 0 && errno == EINTR);
    result.wall_micros = MonotonicMicros() - start;
    if (!waited.ok()) return waited;
    if (reaped < 0) {
      return absl::InternalError(absl::StrCat(
          "cannot collect the exit status of '", spec.argv[0],
          "': ", ErrnoText(errno), "; is SIGCHLD ignored by the host?"));
    }

    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
    result.cpu_user_micros = TimevalMicros(usage.ru_utime);
    result.cpu_system_micros = TimevalMicros(usage.ru_stime);
    result.peak_rss_kb = usage.ru_maxrss;

    // Peak RSS is not a criterion: under RLIMIT_AS the program's resident
    // size stays below the limit, and ru_maxrss may be the launcher's size.
    bool ended_by_us = result.timed_out || result.cancelled;
    if (spec.memory_limit_bytes > 0 && !ended_by_us && result.exit_code != 0) {
      result.memory_exceeded =
          result.signal == SIGSEGV || result.signal == SIGBUS ||
          result.signal == SIGKILL ||
          (!spec.log_path.empty() &&
           OutputMentionsOutOfMemory(spec.log_path, log_offset));
    }
    return result;
  }

 private:
  // Waits, without reaping, until `pid` has exited, enforcing the timeout
  // and the cancel flag on its group. Sleeps in poll() on a pidfd, waking at
  // least every 100 ms while there is a cancel flag to watch.
  static absl::Status WaitForExit(pid_t pid, const ProcessSpec& spec,
                                  const std::atomic<bool>* cancel,
                                  int64_t start, ProcessResult& result) {
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    const int64_t deadline = spec.timeout_ms > 0
                                 ? start + spec.timeout_ms * 1000
                                 : INT64_MAX;
    bool terminating = false;
    bool killed = false;
    int64_t kill_at = INT64_MAX;
    for (;;) {
      siginfo_t info;
      memset(&info, 0, sizeof(info));
      if (waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (errno == EINTR) continue;
        return absl::InternalError(absl::StrCat(
            "cannot wait for '", spec.argv[0], "': ", ErrnoText(errno),
            "; is SIGCHLD ignored by the host?"));
      }
      if (info.si_pid == pid) return absl::OkStatus();

      int64_t now = MonotonicMicros();
      if (!terminating) {
        if (cancel != nullptr && cancel->load()) {
          result.cancelled = true;
        } else if (now >= deadline) {
          result.timed_out = true;
        }
        if (result.cancelled || result.timed_out) {
          kill(-pid, SIGTERM);
          terminating = true;
          kill_at = now + spec.kill_grace_ms * 1000;
        }
      }
      if (terminating && !killed && now >= kill_at) {
        kill(-pid, SIGKILL);
        killed = true;
      }

      int64_t wake = INT64_MAX;
      if (!terminating) {
        wake = deadline;
        if (cancel != nullptr) wake = std::min(wake, now + kCancelPollMicros);
      } else if (!killed) {
        wake = kill_at;
      }
      // Without a pidfd (Linux < 5.3) exit is noticed by the periodic wake.
      if (pidfd.get() < 0) wake = std::min(wake, now + kCancelPollMicros);
      int timeout_ms =
          wake == INT64_MAX
              ? -1
              : static_cast<int>(
                    std::clamp<int64_t>((wake - now + 999) / 1000, 0, INT_MAX));
      pollfd pfd{pidfd.get(), POLLIN, 0};
      poll(&pfd, pidfd.get() >= 0 ? 1 : 0, timeout_ms);
    }
  }
};

}  // namespace

std::string ProcessResult::Describe() const {
  if (cancelled) return "cancelled";
  if (timed_out) {
    return absl::StrCat("killed after the ", FormatMillis(timeout_ms),
                        " timeout");
  }
  if (memory_exceeded) {
    return absl::StrCat("exceeded its ", FormatBytes(memory_limit_bytes),
                        " memory limit");
  }
  if (signal != 0) return absl::StrCat("killed by signal ", SignalName(signal));
  return absl::StrCat("exited with code ", exit_code);
}

ProcessLauncher* LocalProcessLauncher() {
  static ProcessLauncher* launcher = new LocalLauncher();
  return launcher;
}

}  // namespace slipway
