// ShadowRunner: where the copies of requests sent to an app's shadow are
// predicted. One thread at the lowest CPU priority Linux has (SCHED_IDLE;
// nice 19 where that is refused), so the shadow gets only the CPU time the
// answers clients wait for leave over, whatever thread answered them; the
// shadow can fall behind, never the champion. Copies wait in a bounded
// queue; when it is full a copy is refused (the caller counts it dropped).
//
// Thread safety: TrySubmit may be called from any thread.
#ifndef SLIPWAY_SERVING_SHADOW_RUNNER_H_
#define SLIPWAY_SERVING_SHADOW_RUNNER_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace slipway {

class ShadowRunner {
 public:
  // Copies queued at most.
  static constexpr size_t kDefaultMaxQueued = 8192;

  explicit ShadowRunner(size_t max_queued = kDefaultMaxQueued);
  // Drops what is still queued and joins the thread.
  ~ShadowRunner();
  ShadowRunner(const ShadowRunner&) = delete;
  ShadowRunner& operator=(const ShadowRunner&) = delete;

  // Queues `task`; false (and `task` dropped) when max_queued wait.
  bool TrySubmit(std::function<void()> task);

 private:
  void Loop();

  const size_t max_queued_;
  absl::Mutex mu_;
  absl::CondVar ready_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace slipway

#endif  // SLIPWAY_SERVING_SHADOW_RUNNER_H_
