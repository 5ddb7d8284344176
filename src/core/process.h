// Process launching, injected. The pipeline's `command` steps (python3,
// Rscript, shell) run through a ProcessLauncher so tests can script outcomes
// (testing/fake_process_launcher.h) instead of starting programs.
//
// LocalProcessLauncher() runs each program in its own process group with an
// exact environment, stdin from /dev/null, stdout and stderr appended to one
// log file, and enforced limits: a wall-clock timeout and cancellation
// (SIGTERM to the whole group, SIGKILL after a grace period) and an address
// space limit (RLIMIT_AS). Run() returns only once the program has exited and
// been reaped; processes it left behind in its group are killed then, so a
// step never outlives its Run(). A process that moves itself to another group
// or session (setsid, daemons) escapes this; only cgroups would catch it.
//
// Thread safety: implementations are safe for concurrent use; each Run()
// blocks its calling thread. REQUIRES: the host process does not ignore
// SIGCHLD (children would be reaped by the kernel and Run() could not collect
// their status).
#ifndef SLIPWAY_CORE_PROCESS_H_
#define SLIPWAY_CORE_PROCESS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace slipway {

struct ProcessSpec {
  // argv[0] is the program: a path (relative ones resolve against
  // working_dir), or a bare name searched in env's PATH, or in
  // "/usr/local/bin:/usr/bin:/bin" when env has no PATH.
  std::vector<std::string> argv;
  // The whole environment of the child: nothing is inherited unless the
  // caller copies it in.
  std::map<std::string, std::string> env;
  // Empty: the caller's working directory.
  std::string working_dir;
  // stdout and stderr are appended here (created 0644 if missing), interleaved
  // in the order the program writes them. Empty: output is discarded.
  std::string log_path;
  // 0: no timeout.
  int64_t timeout_ms = 0;
  // On timeout or cancellation the group gets SIGTERM, then SIGKILL after
  // this many milliseconds if the program has not exited.
  int64_t kill_grace_ms = 2000;
  // 0: no limit. Enforced as RLIMIT_AS (virtual address space) in the child,
  // so allocations beyond it fail with ENOMEM.
  int64_t memory_limit_bytes = 0;
};

struct ProcessResult {
  // The exit status when the program exited by itself, else -1.
  int exit_code = -1;
  // The signal that ended the program, else 0.
  int signal = 0;
  // True when the launcher ended the program because of the timeout or the
  // cancel flag (then signal says which signal finally did it).
  bool timed_out = false;
  bool cancelled = false;
  // Best effort: a memory limit was set, the launcher did not end the program,
  // and it failed in a way that means an allocation was refused: killed by
  // SIGSEGV/SIGBUS/SIGKILL, or its output names an out-of-memory error
  // (Python MemoryError, std::bad_alloc, R "cannot allocate vector",
  // strerror(ENOMEM)).
  bool memory_exceeded = false;
  int64_t wall_micros = 0;
  int64_t cpu_user_micros = 0;
  int64_t cpu_system_micros = 0;
  // ru_maxrss from wait4. Linux folds the launching process's own resident
  // size at fork time into this number, so it is an upper bound of the
  // program's peak: max(launcher's resident size, program's peak).
  int64_t peak_rss_kb = 0;
  // Copied from the spec so Describe() can name them.
  int64_t timeout_ms = 0;
  int64_t memory_limit_bytes = 0;

  bool ok() const {
    return exit_code == 0 && !timed_out && !cancelled && !memory_exceeded;
  }
  // One phrase for logs and run states: "exited with code 3", "killed by
  // signal SIGSEGV", "killed after the 5 s timeout", "exceeded its 256 MiB
  // memory limit", "cancelled".
  std::string Describe() const;
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;

  // Runs spec.argv and blocks until the program has exited and its process
  // group is killed. `cancel` may be null; when it becomes true the program is
  // terminated (observed within 100 ms). A program that cannot be started
  // (not found, not executable, missing working directory, unwritable log)
  // is an error Status naming it; everything after a successful exec,
  // including a non-zero exit, is a ProcessResult.
  virtual absl::StatusOr<ProcessResult> Run(
      const ProcessSpec& spec, const std::atomic<bool>* cancel) = 0;
};

// The process-wide launcher of local child processes (fork + execve, waiting
// on a pidfd). Never destroyed.
ProcessLauncher* LocalProcessLauncher();

}  // namespace slipway

#endif  // SLIPWAY_CORE_PROCESS_H_
