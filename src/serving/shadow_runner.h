// ShadowRunner: where the copies of requests sent to an app's shadow are
// predicted. One thread at the lowest CPU priority Linux has (SCHED_IDLE;
// nice 19 where that is refused), so the shadow gets only the CPU time the
// answers clients wait for leave over, whatever thread answered them; the
// shadow can fall behind, never the champion. Copies wait in a bounded
// queue; when it is full a copy is refused (the caller counts it dropped).
//
// Placement: by default the thread may run on any CPU the process may use.
// Options::cpus pins it to a set of CPUs (`slipway server --shadow-cpus`),
// for example CPUs that the serving threads (pinned with taskset) do not
// use, so that a shadow's predictions never share a core with answers.
// The thread may be pinned outside the process's own affinity mask (taskset
// restricts each thread only until it asks for other CPUs), not outside
// the CPUs the machine (or its cgroup) allows.
//
// Thread safety: TrySubmit may be called from any thread.
#ifndef SLIPWAY_SERVING_SHADOW_RUNNER_H_
#define SLIPWAY_SERVING_SHADOW_RUNNER_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace slipway {

class ShadowRunner {
 public:
  // Copies queued at most.
  static constexpr size_t kDefaultMaxQueued = 8192;

  struct Options {
    size_t max_queued = kDefaultMaxQueued;
    // CPU numbers the thread runs on; empty: wherever the process may run.
    std::vector<int> cpus;
  };

  // A runner whose thread runs where `options.cpus` says; InvalidArgument
  // naming the CPUs when the thread cannot be pinned there.
  static absl::StatusOr<std::shared_ptr<ShadowRunner>> Create(
      const Options& options);

  // A runner on any CPU (Options' defaults but for max_queued).
  explicit ShadowRunner(size_t max_queued = kDefaultMaxQueued);
  // Drops what is still queued and joins the thread.
  ~ShadowRunner();
  ShadowRunner(const ShadowRunner&) = delete;
  ShadowRunner& operator=(const ShadowRunner&) = delete;

  // Queues `task`; false (and `task` dropped) when max_queued wait.
  bool TrySubmit(std::function<void()> task);

 private:
  ShadowRunner(size_t max_queued, std::vector<int> cpus);
  void Loop();

  const size_t max_queued_;
  const std::vector<int> cpus_;
  absl::Mutex mu_;
  absl::CondVar ready_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Set once by the thread: whether it runs where cpus_ say.
  bool placed_ ABSL_GUARDED_BY(mu_) = false;
  int placement_error_ ABSL_GUARDED_BY(mu_) = 0;  // errno; 0: placed
  std::thread thread_;
};

// Pins the calling thread to `cpus` (none: leaves it as it is); 0 or the
// errno of the refusal.
int PinToCpus(const std::vector<int>& cpus);

// Parses a CPU list as taskset -c takes it ("1", "0,2", "2-3,6"); CPU
// numbers are distinct and sorted in the result. InvalidArgument naming
// `flag` and the bad part.
absl::StatusOr<std::vector<int>> ParseCpuList(std::string_view text,
                                              std::string_view flag);

}  // namespace slipway

#endif  // SLIPWAY_SERVING_SHADOW_RUNNER_H_
