#include "models/python_model.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/filesystem.h"
#include "core/logging.h"
#include "core/status.h"
#include "core/text.h"
#include "models/python_worker_source.h"

extern char** environ;

namespace slipway {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the worker protocol sends little-endian integers and floats "
              "as they lie in memory");

namespace {

// Protocol constants shared with python_worker.py.
constexpr uint32_t kMagic = 0x57504C53;
constexpr uint32_t kKindProbaClass1 = 1;
constexpr uint32_t kKindProba = 2;
constexpr uint32_t kKindPredict = 3;
constexpr uint32_t kStatusOk = 0;
constexpr int kRequestFd = 3;
constexpr int kResponseFd = 4;

// How long a stopping worker may take to exit after its request pipe closes,
// and how long a worker whose pipe hit end-of-file may take to finish exiting,
// before SIGKILL.
constexpr int64_t kStopGraceMicros = 2'000'000;
// How often the supervisor looks for workers that died while idle.
constexpr int64_t kIdleCheckMicros = 1'000'000;
constexpr int64_t kMaxRetryBackoffMicros = 60'000'000;
constexpr size_t kStderrTailBytes = 2048;
// Larger texts or outputs mean a broken worker, not a model answer.
constexpr uint32_t kMaxTextBytes = 16u << 20;
constexpr int64_t kMaxResponseValues = int64_t{1} << 28;

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string ErrnoText(int err) { return std::string(strerror(err)); }

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status))
    return absl::StrCat("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = sigabbrev_np(sig);
    return absl::StrCat("killed by signal ", sig,
                        abbrev ? absl::StrCat(" (SIG", abbrev, ")") : "");
  }
  return absl::StrCat("ended with wait status ", status);
}

// A file descriptor closed when it goes out of scope.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    Reset();
    fd_ = std::exchange(other.fd_, -1);
    return *this;
  }
  ~UniqueFd() { Reset(); }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

enum class Io { kOk, kEof, kTimeout, kCancelled, kError };

// Waits until `fd` is ready for `events`, `deadline` (monotonic micros)
// passes or `cancel_fd` (-1: none) becomes readable.
Io WaitFd(int fd, short events, int64_t deadline, int cancel_fd) {
  for (;;) {
    const int64_t now = NowMicros();
    if (now >= deadline) return Io::kTimeout;
    pollfd fds[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
    const int timeout_ms = static_cast<int>(
        std::clamp<int64_t>((deadline - now + 999) / 1000, 0, INT_MAX));
    const int n = poll(fds, cancel_fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Io::kError;
    }
    if (cancel_fd >= 0 && fds[1].revents != 0) return Io::kCancelled;
    // POLLHUP and POLLERR too: the next read or write reports them.
    if (fds[0].revents != 0) return Io::kOk;
  }
}

// Reads exactly `n` bytes from non-blocking `fd`.
Io ReadExact(int fd, void* buffer, size_t n, int64_t deadline, int cancel_fd) {
  char* p = static_cast<char*>(buffer);
  while (n > 0) {
    const ssize_t got = read(fd, p, n);
    if (got > 0) {
      p += got;
      n -= static_cast<size_t>(got);
      continue;
    }
    if (got == 0) return Io::kEof;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Io::kError;
    if (Io waited = WaitFd(fd, POLLIN, deadline, cancel_fd);
        waited != Io::kOk) {
      return waited;
    }
  }
  return Io::kOk;
}

// Writing to a pipe whose reader is gone raises SIGPIPE, which ends a host
// that does not ignore it. While this lives, SIGPIPE is blocked on the
// calling thread; the one a failed write raised is discarded at the end.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&sigpipe_);
    sigaddset(&sigpipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigpipe_, &saved_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~ScopedSigpipeBlock() {
    if (raised_ && !was_pending_) {
      const timespec zero{0, 0};
      while (sigtimedwait(&sigpipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

  void MarkRaised() { raised_ = true; }

 private:
  sigset_t sigpipe_;
  sigset_t saved_;
  bool was_pending_ = false;
  bool raised_ = false;
};

// Writes all `n` bytes to non-blocking `fd`; kEof when the reader is gone.
Io WriteAll(int fd, const void* data, size_t n, int64_t deadline,
            ScopedSigpipeBlock& sigpipe) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t put = write(fd, p, n);
    if (put >= 0) {
      p += put;
      n -= static_cast<size_t>(put);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EPIPE) {
      sigpipe.MarkRaised();
      return Io::kEof;
    }
    if (errno != EAGAIN) return Io::kError;
    if (Io waited = WaitFd(fd, POLLOUT, deadline, -1); waited != Io::kOk) {
      return waited;
    }
  }
  return Io::kOk;
}

// A close-on-exec copy of `fd` numbered 5 or higher (closing `fd`), so that
// the child's dup2 onto 0..4 never overwrites a descriptor it still needs.
absl::StatusOr<UniqueFd> AboveChildFds(UniqueFd fd) {
  if (fd.get() > kResponseFd) return fd;
  const int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, kResponseFd + 1);
  if (moved < 0) {
    return absl::InternalError(
        absl::StrCat("cannot move a pipe descriptor: ", ErrnoText(errno)));
  }
  return UniqueFd(moved);
}

absl::Status MakePipe(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create a pipe for a python worker: ", ErrnoText(errno),
        "; the host is out of file descriptors"));
  }
  *read_end = UniqueFd(fds[0]);
  *write_end = UniqueFd(fds[1]);
  return absl::OkStatus();
}

// The parent's environment without what would make Debian's python import
// other packages, with one BLAS/OpenMP thread per worker (the pool is the
// parallelism).
std::vector<std::string> WorkerEnvironment() {
  static constexpr std::string_view kDropped[] = {
      "PYTHONHOME", "PYTHONPATH", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
      "MKL_NUM_THREADS"};
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view name = entry.substr(0, entry.find('='));
    if (std::find(std::begin(kDropped), std::end(kDropped), name) ==
        std::end(kDropped)) {
      env.emplace_back(entry);
    }
  }
  env.emplace_back("OMP_NUM_THREADS=1");
  env.emplace_back("OPENBLAS_NUM_THREADS=1");
  env.emplace_back("MKL_NUM_THREADS=1");
  return env;
}

std::string RowsText(int64_t n) {
  return absl::StrCat(n, n == 1 ? " row" : " rows");
}

}  // namespace

// One python3 process running python_worker.py: its pid, the two protocol
// pipes and a thread copying its stderr to ours. Not thread-safe: one user
// at a time (the pool hands it to one Predict call or the supervisor).
class PythonWorkerProcess {
 public:
  struct CallResult {
    enum class Outcome { kOk, kModelError, kEnded, kTimedOut, kBroken };
    Outcome outcome = Outcome::kOk;
    std::string text;  // kModelError: Python's exception; kBroken: what broke
    uint32_t rows = 0;
    uint32_t width = 0;
  };

  // Starts `python -u -c <worker> dir file` in its own process group.
  static absl::StatusOr<std::unique_ptr<PythonWorkerProcess>> Spawn(
      const std::string& python, const std::string& dir,
      const std::string& file, int slot) {
    UniqueFd request_read, request_write, response_read, response_write,
        stderr_read, stderr_write;
    RETURN_IF_ERROR(MakePipe(&request_read, &request_write));
    RETURN_IF_ERROR(MakePipe(&response_read, &response_write));
    RETURN_IF_ERROR(MakePipe(&stderr_read, &stderr_write));
    UniqueFd dev_null(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (dev_null.get() < 0) {
      return absl::InternalError(
          absl::StrCat("cannot open /dev/null: ", ErrnoText(errno)));
    }
    ASSIGN_OR_RETURN(request_read, AboveChildFds(std::move(request_read)));
    ASSIGN_OR_RETURN(response_write, AboveChildFds(std::move(response_write)));
    ASSIGN_OR_RETURN(stderr_write, AboveChildFds(std::move(stderr_write)));
    ASSIGN_OR_RETURN(dev_null, AboveChildFds(std::move(dev_null)));
    for (int fd : {request_write.get(), response_read.get()}) {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }

    // dup2 gives the targets no close-on-exec flag; everything from 5 up is
    // closed in the child, including descriptors other libraries opened
    // without the flag.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, dev_null.get(), 0);
    posix_spawn_file_actions_adddup2(&actions, stderr_write.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, stderr_write.get(), 2);
    posix_spawn_file_actions_adddup2(&actions, request_read.get(), kRequestFd);
    posix_spawn_file_actions_adddup2(&actions, response_write.get(),
                                     kResponseFd);
    posix_spawn_file_actions_addclosefrom_np(&actions, kResponseFd + 1);
    // Own process group (killed as a whole), default signal dispositions
    // (a server ignores SIGPIPE), nothing blocked.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                        POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);

    std::vector<std::string> args = {python, "-u", "-c", kPythonWorkerSource,
                                     dir,    file};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env = WorkerEnvironment();
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);

    pid_t pid = 0;
    const int err = posix_spawn(&pid, python.c_str(), &actions, &attr,
                                argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (err != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot start python interpreter '", python, "': ", ErrnoText(err),
          "; set PythonPoolOptions.python to an installed python3 "
          "(/usr/bin/python3)"));
    }
    auto process = std::unique_ptr<PythonWorkerProcess>(new PythonWorkerProcess(
        pid, slot, std::move(request_write), std::move(response_read)));
    process->stderr_thread_ =
        std::thread(&PythonWorkerProcess::ForwardStderr, process.get(),
                    std::move(stderr_read));
    return process;
  }

  ~PythonWorkerProcess() { Kill(); }
  PythonWorkerProcess(const PythonWorkerProcess&) = delete;
  PythonWorkerProcess& operator=(const PythonWorkerProcess&) = delete;

  pid_t pid() const { return pid_; }
  // "python worker 1 (pid 1234)".
  const std::string& name() const { return name_; }

  // Waits for the frame the worker sends once the model is loaded: its info
  // JSON, or the load error. InvalidArgument naming `model_path` for a
  // load error, an exit or a timeout (the worker is then killed); Cancelled
  // when `cancel_fd` becomes readable first.
  absl::StatusOr<nlohmann::json> AwaitHello(const std::string& model_path,
                                            int64_t deadline,
                                            int64_t load_timeout_ms,
                                            int cancel_fd) {
    uint32_t header[3];
    Io io = ReadExact(response_fd_.get(), header, sizeof(header), deadline,
                      cancel_fd);
    std::string text;
    if (io == Io::kOk && header[0] == kMagic && header[2] <= kMaxTextBytes) {
      text.resize(header[2]);
      io = ReadExact(response_fd_.get(), text.data(), text.size(), deadline,
                     cancel_fd);
    } else if (io == Io::kOk) {
      Kill();
      return absl::InvalidArgumentError(absl::StrCat(
          "python model ", model_path, ": ", name_,
          " sent a malformed start-up frame; check that python3 runs "
          "Slipway's worker unmodified"));
    }
    switch (io) {
      case Io::kOk:
        break;
      case Io::kEof: {
        const std::string how = WaitThenKill(NowMicros() + kStopGraceMicros);
        return absl::InvalidArgumentError(absl::StrCat(
            "python model ", model_path, ": ", name_, " ", how,
            " while loading the model; fix the model so that it loads in "
            "/usr/bin/python3. Its stderr ends with:\n",
            StderrTail()));
      }
      case Io::kTimeout:
        Kill();
        return absl::InvalidArgumentError(absl::StrCat(
            "python model ", model_path, " did not load within ",
            load_timeout_ms, " ms (", name_,
            " killed); raise load_timeout_ms or make the model load faster"));
      case Io::kCancelled:
        Kill();
        return absl::CancelledError(
            absl::StrCat("loading python model ", model_path, " cancelled"));
      case Io::kError:
        Kill();
        return absl::InternalError(absl::StrCat("reading from ", name_,
                                                " of python model ", model_path,
                                                ": ", ErrnoText(errno)));
    }
    if (header[1] != kStatusOk) {
      Kill();
      return absl::InvalidArgumentError(
          absl::StrCat("python model ", model_path, ": ", text));
    }
    try {
      return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      Kill();
      return absl::InternalError(
          absl::StrCat("python model ", model_path, ": ", name_,
                       " sent start-up info that is not JSON: ", e.what()));
    }
  }

  // Sends one request frame and reads the answer into `out` (resized to
  // rows * width), all before `deadline`.
  CallResult Call(uint32_t kind, const float* rows, uint32_t num_rows,
                  uint32_t cols, int64_t deadline, std::vector<float>* out) {
    using Outcome = CallResult::Outcome;
    CallResult result;
    const uint32_t request[4] = {kMagic, kind, num_rows, cols};
    Io io;
    {
      ScopedSigpipeBlock sigpipe;
      io = WriteAll(request_fd_.get(), request, sizeof(request), deadline,
                    sigpipe);
      if (io == Io::kOk) {
        io = WriteAll(request_fd_.get(), rows,
                      sizeof(float) * size_t{num_rows} * cols, deadline,
                      sigpipe);
      }
    }
    uint32_t header[2];
    if (io == Io::kOk) {
      io = ReadExact(response_fd_.get(), header, sizeof(header), deadline, -1);
    }
    if (io == Io::kOk && header[0] != kMagic) {
      result.outcome = Outcome::kBroken;
      result.text = "sent a response frame without the protocol's magic";
      return result;
    }
    uint32_t size[2] = {0, 0};
    if (io == Io::kOk) {
      const size_t size_bytes = header[1] == kStatusOk ? 8 : 4;
      io = ReadExact(response_fd_.get(), size, size_bytes, deadline, -1);
    }
    if (io == Io::kOk && header[1] != kStatusOk) {
      if (size[0] > kMaxTextBytes) {
        result.outcome = Outcome::kBroken;
        result.text = absl::StrCat("sent an error text of ", size[0], " bytes");
        return result;
      }
      result.text.resize(size[0]);
      io = ReadExact(response_fd_.get(), result.text.data(), size[0], deadline,
                     -1);
      if (io == Io::kOk) {
        result.outcome = Outcome::kModelError;
        return result;
      }
    } else if (io == Io::kOk) {
      result.rows = size[0];
      result.width = size[1];
      const int64_t count = int64_t{size[0]} * size[1];
      if (count > kMaxResponseValues) {
        result.outcome = Outcome::kBroken;
        result.text = absl::StrCat("sent ", result.rows, " x ", result.width,
                                   " values, far beyond any request");
        return result;
      }
      out->resize(static_cast<size_t>(count));
      io = ReadExact(response_fd_.get(), out->data(),
                     sizeof(float) * out->size(), deadline, -1);
    }
    switch (io) {
      case Io::kOk:
        result.outcome = Outcome::kOk;
        break;
      case Io::kEof:
        result.outcome = Outcome::kEnded;
        break;
      case Io::kTimeout:
        result.outcome = Outcome::kTimedOut;
        break;
      case Io::kCancelled:
      case Io::kError:
        result.outcome = Outcome::kBroken;
        result.text = absl::StrCat("its pipes failed: ", ErrnoText(errno));
        break;
    }
    return result;
  }

  // True once the process has exited (it is not reaped here).
  bool HasExited() const {
    if (reaped_) return true;
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    return waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == pid_;
  }

  // Closes the request pipe: the worker finishes its frame and exits.
  void CloseRequests() { request_fd_.Reset(); }

  // Gives the process until `deadline` to exit by itself, then SIGKILLs
  // its group and reaps it. Returns how it ended.
  std::string WaitThenKill(int64_t deadline) {
    if (reaped_) return ended_;
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid_, 0)));
    while (!HasExited()) {
      const int64_t now = NowMicros();
      if (now >= deadline) break;
      // Without a pidfd (Linux < 5.3) exit is noticed every 10 ms.
      const int64_t wait = pidfd.get() >= 0
                               ? deadline - now
                               : std::min<int64_t>(deadline - now, 10'000);
      pollfd pfd{pidfd.get(), POLLIN, 0};
      poll(&pfd, pidfd.get() >= 0 ? 1 : 0,
           static_cast<int>(
               std::clamp<int64_t>((wait + 999) / 1000, 0, INT_MAX)));
    }
    return Kill();
  }

  // SIGKILLs the process group (what the worker left behind too), reaps
  // the process and waits for its stderr to drain. Returns how it ended.
  std::string Kill() {
    if (reaped_) return ended_;
    // The unreaped process keeps its group id from being reused.
    kill(-pid_, SIGKILL);
    int status = 0;
    pid_t reaped;
    do {
      reaped = waitpid(pid_, &status, 0);
    } while (reaped < 0 && errno == EINTR);
    ended_ =
        reaped == pid_
            ? DescribeWaitStatus(status)
            : absl::StrCat("ended (exit status lost: ", ErrnoText(errno), ")");
    reaped_ = true;
    request_fd_.Reset();
    response_fd_.Reset();
    if (stderr_thread_.joinable()) stderr_thread_.join();
    return ended_;
  }

  std::string StderrTail() const {
    absl::MutexLock lock(&tail_mu_);
    return stderr_tail_;
  }

 private:
  PythonWorkerProcess(pid_t pid, int slot, UniqueFd request_fd,
                      UniqueFd response_fd)
      : pid_(pid),
        name_(absl::StrCat("python worker ", slot, " (pid ", pid, ")")),
        request_fd_(std::move(request_fd)),
        response_fd_(std::move(response_fd)) {}

  // Copies the worker's stdout and stderr to ours, each line prefixed with
  // the worker's name, keeping the last kStderrTailBytes for load errors.
  // Ends at end-of-file, when the process group has exited.
  void ForwardStderr(UniqueFd fd) {
    const std::string prefix = absl::StrCat("[", name_, "] ");
    std::string line;
    char buffer[4096];
    auto emit = [&] {
      std::string text = absl::StrCat(prefix, line, "\n");
      for (size_t done = 0; done < text.size();) {
        const ssize_t n =
            write(STDERR_FILENO, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      line.clear();
    };
    for (;;) {
      const ssize_t n = read(fd.get(), buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      const std::string_view chunk(buffer, static_cast<size_t>(n));
      {
        absl::MutexLock lock(&tail_mu_);
        stderr_tail_.append(chunk);
        if (stderr_tail_.size() > kStderrTailBytes) {
          stderr_tail_.erase(0, stderr_tail_.size() - kStderrTailBytes);
        }
      }
      for (char c : chunk) {
        if (c == '\n') {
          emit();
        } else {
          line.push_back(c);
        }
      }
    }
    if (!line.empty()) emit();
  }

  const pid_t pid_;
  const std::string name_;
  UniqueFd request_fd_;
  UniqueFd response_fd_;
  std::thread stderr_thread_;
  bool reaped_ = false;
  std::string ended_;  // how the process ended, once reaped
  mutable absl::Mutex tail_mu_;
  std::string stderr_tail_ ABSL_GUARDED_BY(tail_mu_);
};

PythonModel::PythonModel(Signature signature, std::string dir, std::string file,
                         PythonPoolOptions options)
    : Model(std::move(signature)),
      dir_(std::move(dir)),
      file_(std::move(file)),
      path_(JoinPath(dir_, file_.empty() ? std::string("model.py") : file_)),
      options_(std::move(options)),
      kind_(this->signature().task() == Task::kBinaryClassification
                ? kKindProbaClass1
            : this->signature().task() == Task::kMulticlassClassification
                ? kKindProba
                : kKindPredict),
      slots_(static_cast<size_t>(options_.workers)) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) == 0) {
    wake_read_fd_ = fds[0];
    wake_write_fd_ = fds[1];
  }
}

PythonModel::~PythonModel() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (wake_write_fd_ >= 0) {
    const char byte = 1;
    while (write(wake_write_fd_, &byte, 1) < 0 && errno == EINTR) {
    }
  }
  if (supervisor_.joinable()) supervisor_.join();
  std::vector<std::unique_ptr<PythonWorkerProcess>> processes;
  {
    absl::MutexLock lock(&mu_);
    for (Slot& slot : slots_) {
      if (slot.process != nullptr) processes.push_back(std::move(slot.process));
    }
    for (auto& process : retiring_) processes.push_back(std::move(process));
    retiring_.clear();
  }
  // All exit at once; each gets the same grace.
  for (auto& process : processes) process->CloseRequests();
  const int64_t deadline = NowMicros() + kStopGraceMicros;
  for (auto& process : processes) process->WaitThenKill(deadline);
  if (wake_read_fd_ >= 0) close(wake_read_fd_);
  if (wake_write_fd_ >= 0) close(wake_write_fd_);
}

absl::StatusOr<std::unique_ptr<PythonWorkerProcess>> PythonModel::SpawnWorker(
    int slot) const {
  return PythonWorkerProcess::Spawn(options_.python, dir_, file_, slot);
}

absl::Status PythonModel::StartPool() {
  if (wake_read_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat(
        "python model ", path_, ": cannot create a pipe: ", ErrnoText(errno)));
  }
  std::vector<std::unique_ptr<PythonWorkerProcess>> started;
  for (int i = 0; i < options_.workers; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<PythonWorkerProcess> process,
                     SpawnWorker(i), absl::StrCat("python model ", path_));
    started.push_back(std::move(process));
  }
  // The workers load in parallel; a failure kills them all (their
  // destructors) and returns the first worker's reason.
  const int64_t deadline = NowMicros() + options_.load_timeout_ms * 1000;
  for (size_t i = 0; i < started.size(); ++i) {
    ASSIGN_OR_RETURN(
        nlohmann::json hello,
        started[i]->AwaitHello(path_, deadline, options_.load_timeout_ms, -1));
    if (i == 0) info_ = std::move(hello);
  }
  RETURN_IF_ERROR(CheckInfo());
  WarnVersionMismatches();
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < started.size(); ++i) {
      slots_[i].process = std::move(started[i]);
    }
  }
  const std::vector<float> zeros(signature().features().size(), 0.0f);
  std::vector<float> out;
  if (absl::Status trial = Predict(zeros.data(), 1, &out); !trial.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("trial prediction on a row of zeros: ", trial.message()));
  }
  supervisor_ = std::thread(&PythonModel::Supervise, this);
  return absl::OkStatus();
}

absl::Status PythonModel::CheckInfo() const {
  const std::vector<FeatureSpec>& features = signature().features();
  if (info_.contains("n_features_in") &&
      info_["n_features_in"].is_number_integer() &&
      info_["n_features_in"].get<int64_t>() !=
          static_cast<int64_t>(features.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "python model ", path_, " was fitted on ",
        info_["n_features_in"].get<int64_t>(),
        " features but the signature lists ", features.size(),
        "; give the signature the model's features in training order"));
  }
  if (info_.contains("feature_names_in") &&
      info_["feature_names_in"].is_array()) {
    std::vector<std::string> fitted;
    for (const auto& name : info_["feature_names_in"]) {
      fitted.push_back(name.is_string() ? name.get<std::string>()
                                        : name.dump());
    }
    std::vector<std::string> declared;
    for (const FeatureSpec& f : features) declared.push_back(f.name);
    if (fitted != declared) {
      return absl::InvalidArgumentError(absl::StrCat(
          "python model ", path_, " was fitted on features ",
          QuotedList(fitted), " but the signature lists ", QuotedList(declared),
          "; give the signature the model's features in training order"));
    }
  }
  if (signature().is_classification() && info_.contains("classes") &&
      info_["classes"].is_array() &&
      info_["classes"].size() != signature().class_labels().size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "python model ", path_, " has ", info_["classes"].size(), " classes (",
        info_["classes"].dump(), ") but the signature lists ",
        signature().class_labels().size(), " (",
        QuotedList(signature().class_labels()),
        "); give the signature the model's classes in classes_ order"));
  }
  return absl::OkStatus();
}

void PythonModel::WarnVersionMismatches() const {
  if (!options_.expected_versions.is_object()) return;
  const nlohmann::json versions =
      info_.value("versions", nlohmann::json::object());
  for (const auto& [package, expected] : options_.expected_versions.items()) {
    const std::string want =
        expected.is_string() ? expected.get<std::string>() : expected.dump();
    // A package the model did not import does not matter to it.
    if (!versions.contains(package)) continue;
    const nlohmann::json& v = versions[package];
    const std::string found = v.is_string() ? v.get<std::string>() : v.dump();
    if (found != want) {
      LogWarning("models.python_version_mismatch", {{"model", path_},
                                                    {"package", package},
                                                    {"expected", want},
                                                    {"found", found}});
    }
  }
}

bool PythonModel::HasIdleWorker() const {
  for (const Slot& slot : slots_) {
    if (slot.process != nullptr && !slot.busy) return true;
  }
  return false;
}

bool PythonModel::SupervisorHasWork() const {
  if (stopping_ || !retiring_.empty()) return true;
  const int64_t now = NowMicros();
  for (const Slot& slot : slots_) {
    if (slot.process == nullptr && !slot.starting &&
        slot.retry_at_micros <= now) {
      return true;
    }
  }
  return false;
}

absl::Status PythonModel::AcquireSlot(int64_t deadline, int* slot_index,
                                      PythonWorkerProcess** worker) const {
  absl::MutexLock lock(&mu_);
  const size_t n = slots_.size();
  for (;;) {
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (next_slot_ + k) % n;
      Slot& slot = slots_[i];
      if (slot.process == nullptr || slot.busy) continue;
      if (slot.process->HasExited()) {
        // Died while idle: the supervisor reaps and replaces it.
        retiring_.push_back(std::move(slot.process));
        continue;
      }
      slot.busy = true;
      next_slot_ = i + 1;
      *slot_index = static_cast<int>(i);
      *worker = slot.process.get();
      return absl::OkStatus();
    }
    const int64_t now = NowMicros();
    if (now >= deadline) {
      return absl::UnavailableError(absl::StrCat(
          "no worker of python model ", path_, " (", n,
          " in the pool) was free within ", options_.timeout_ms,
          " ms; retry, or raise the pool's workers or timeout_ms"));
    }
    mu_.AwaitWithTimeout(absl::Condition(this, &PythonModel::HasIdleWorker),
                         absl::Microseconds(deadline - now));
  }
}

void PythonModel::ReleaseSlot(int slot_index) const {
  absl::MutexLock lock(&mu_);
  Slot& slot = slots_[static_cast<size_t>(slot_index)];
  slot.busy = false;
  ++slot.requests;
  if (options_.recycle_after > 0 && slot.requests >= options_.recycle_after) {
    retiring_.push_back(std::move(slot.process));
  }
}

std::unique_ptr<PythonWorkerProcess> PythonModel::TakeFailedWorker(
    int slot_index) const {
  absl::MutexLock lock(&mu_);
  Slot& slot = slots_[static_cast<size_t>(slot_index)];
  slot.busy = false;
  return std::move(slot.process);
}

absl::Status PythonModel::Predict(const float* rows, size_t num_rows,
                                  std::vector<float>* out) const {
  using Outcome = PythonWorkerProcess::CallResult::Outcome;
  const size_t cols = signature().features().size();
  const int64_t width = signature().output_width();
  if (num_rows == 0) {
    out->clear();
    return absl::OkStatus();
  }
  if (num_rows > UINT32_MAX || cols > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "python model ", path_, ": ", num_rows,
        " rows in one call is beyond the worker protocol; send fewer"));
  }
  int slot = 0;
  PythonWorkerProcess* worker = nullptr;
  RETURN_IF_ERROR(
      AcquireSlot(NowMicros() + options_.timeout_ms * 1000, &slot, &worker));
  const PythonWorkerProcess::CallResult result = worker->Call(
      kind_, rows, static_cast<uint32_t>(num_rows), static_cast<uint32_t>(cols),
      NowMicros() + options_.timeout_ms * 1000, out);
  switch (result.outcome) {
    case Outcome::kOk:
      break;
    case Outcome::kModelError:
      ReleaseSlot(slot);
      out->clear();
      return absl::InvalidArgumentError(absl::StrCat(
          "python model ", path_, " failed to predict ",
          RowsText(static_cast<int64_t>(num_rows)), ": ", result.text));
    case Outcome::kEnded: {
      // The pipe closes as the process exits; give it a moment to finish
      // so its exit status is the real one.
      std::unique_ptr<PythonWorkerProcess> failed = TakeFailedWorker(slot);
      const std::string how =
          failed->WaitThenKill(NowMicros() + kStopGraceMicros);
      out->clear();
      return absl::UnavailableError(
          absl::StrCat(failed->name(), " of python model ", path_, " ", how,
                       " during the call; it is replaced, retry"));
    }
    case Outcome::kTimedOut: {
      std::unique_ptr<PythonWorkerProcess> failed = TakeFailedWorker(slot);
      failed->Kill();
      out->clear();
      return absl::UnavailableError(absl::StrCat(
          failed->name(), " of python model ", path_, " did not answer within ",
          options_.timeout_ms, " ms; killed and replaced"));
    }
    case Outcome::kBroken: {
      std::unique_ptr<PythonWorkerProcess> failed = TakeFailedWorker(slot);
      failed->Kill();
      out->clear();
      return absl::UnavailableError(
          absl::StrCat(failed->name(), " of python model ", path_, " ",
                       result.text, "; killed and replaced, retry"));
    }
  }
  ReleaseSlot(slot);
  const int64_t got = int64_t{result.rows} * result.width;
  const int64_t expected = static_cast<int64_t>(num_rows) * width;
  if (got != expected) {
    out->clear();
    return absl::InvalidArgumentError(absl::StrCat(
        "python model ", path_, " returned ", got, " predictions",
        result.width == 1
            ? std::string()
            : absl::StrCat(" (", result.rows, " x ", result.width, ")"),
        " for ", RowsText(static_cast<int64_t>(num_rows)), " (expected ",
        num_rows, " x ", width, ")"));
  }
  return absl::OkStatus();
}

std::vector<ModelWorker> PythonModel::Workers() const {
  std::vector<ModelWorker> workers;
  {
    absl::MutexLock lock(&mu_);
    for (const Slot& slot : slots_) {
      ModelWorker w;
      w.pid = slot.process != nullptr ? slot.process->pid() : 0;
      w.requests = slot.process != nullptr ? slot.requests : 0;
      w.restarts = slot.restarts;
      workers.push_back(w);
    }
  }
  // /proc is read outside the lock, so Predict never waits on it.
  for (ModelWorker& w : workers) {
    if (w.pid == 0) continue;
    std::ifstream status(absl::StrCat("/proc/", w.pid, "/status"));
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) {
        w.rss_bytes = std::strtoll(line.c_str() + 6, nullptr, 10) * 1024;
        break;
      }
    }
  }
  return workers;
}

void PythonModel::Supervise() {
  for (;;) {
    std::vector<std::unique_ptr<PythonWorkerProcess>> retiring;
    std::vector<int> to_start;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(
          absl::Condition(this, &PythonModel::SupervisorHasWork),
          absl::Microseconds(kIdleCheckMicros));
      if (stopping_) return;
      retiring.swap(retiring_);
      const int64_t now = NowMicros();
      for (size_t i = 0; i < slots_.size(); ++i) {
        Slot& slot = slots_[i];
        if (slot.process != nullptr && !slot.busy &&
            slot.process->HasExited()) {
          retiring.push_back(std::move(slot.process));
        }
        if (slot.process == nullptr && !slot.starting &&
            slot.retry_at_micros <= now) {
          slot.starting = true;
          to_start.push_back(static_cast<int>(i));
        }
      }
    }

    // Replacements start first, so their loading overlaps the old
    // processes' exit.
    std::vector<absl::StatusOr<std::unique_ptr<PythonWorkerProcess>>> started;
    for (int i : to_start) started.push_back(SpawnWorker(i));
    for (auto& process : retiring) process->CloseRequests();
    const int64_t grace = NowMicros() + kStopGraceMicros;
    for (auto& process : retiring) {
      const std::string how = process->WaitThenKill(grace);
      LogInfo("models.python_worker_stopped",
              {{"model", path_}, {"worker", process->name()}, {"how", how}});
    }
    retiring.clear();
    const int64_t deadline = NowMicros() + options_.load_timeout_ms * 1000;
    for (auto& process : started) {
      if (!process.ok()) continue;
      absl::StatusOr<nlohmann::json> hello = (*process)->AwaitHello(
          path_, deadline, options_.load_timeout_ms, wake_read_fd_);
      if (!hello.ok()) process = hello.status();
    }

    absl::MutexLock lock(&mu_);
    const int64_t now = NowMicros();
    for (size_t k = 0; k < to_start.size(); ++k) {
      Slot& slot = slots_[static_cast<size_t>(to_start[k])];
      slot.starting = false;
      if (started[k].ok()) {
        slot.process = std::move(*started[k]);
        slot.requests = 0;
        ++slot.restarts;
        slot.failed_starts = 0;
        slot.retry_at_micros = 0;
        continue;
      }
      if (absl::IsCancelled(started[k].status())) continue;
      ++slot.failed_starts;
      const int64_t backoff = std::min<int64_t>(
          kMaxRetryBackoffMicros,
          int64_t{1'000'000} << std::min(slot.failed_starts - 1, 6));
      slot.retry_at_micros = now + backoff;
      const std::string error(started[k].status().message());
      LogError("models.python_worker_start_failed",
               {{"model", path_},
                {"slot", std::to_string(to_start[k])},
                {"error", error}});
    }
  }
}

absl::StatusOr<std::unique_ptr<Model>> LoadPythonModel(
    const std::string& dir, const std::string& file, Signature signature,
    const PythonPoolOptions& options) {
  if (options.workers < 1 || options.timeout_ms <= 0 ||
      options.load_timeout_ms <= 0 || options.recycle_after < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "python model pool options for ", dir,
        " need workers >= 1, timeout_ms > 0, load_timeout_ms > 0 and "
        "recycle_after >= 0 (got ",
        options.workers, ", ", options.timeout_ms, ", ",
        options.load_timeout_ms, ", ", options.recycle_after, ")"));
  }
  const std::string path =
      JoinPath(dir, file.empty() ? std::string("model.py") : file);
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        file.empty()
            ? absl::StrCat("python model file ", path,
                           " does not exist; name the folder's joblib/pickle "
                           "file, or add a model.py defining load(path) and "
                           "predict(rows)")
            : absl::StrCat("python model file ", path,
                           " does not exist; put the joblib/pickle file in "
                           "the model folder or name the one that is there"));
  }
  std::unique_ptr<PythonModel> model(
      new PythonModel(std::move(signature), dir, file, options));
  RETURN_IF_ERROR(model->StartPool());
  return std::unique_ptr<Model>(std::move(model));
}

absl::StatusOr<nlohmann::json> PythonRuntimeVersions(
    const PythonPoolOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<PythonWorkerProcess> worker,
                   PythonWorkerProcess::Spawn(options.python, "", "", 0));
  ASSIGN_OR_RETURN(
      nlohmann::json hello,
      worker->AwaitHello(options.python,
                         NowMicros() + options.load_timeout_ms * 1000,
                         options.load_timeout_ms, -1));
  worker->WaitThenKill(NowMicros() + kStopGraceMicros);
  return hello.value("versions", nlohmann::json::object());
}

std::vector<std::string> PythonClassLabels(const nlohmann::json& classes) {
  std::vector<std::string> labels;
  for (const nlohmann::json& c : classes) {
    labels.push_back(c.is_string() ? c.get<std::string>() : c.dump());
  }
  return labels;
}

}  // namespace slipway
