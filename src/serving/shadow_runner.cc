#include "serving/shadow_runner.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <utility>

namespace slipway {
namespace {

// The calling thread yields the CPU to every other thread that wants it.
void LowestPriority() {
  sched_param param{};
  if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0) return;
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
}

}  // namespace

ShadowRunner::ShadowRunner(size_t max_queued)
    : max_queued_(max_queued), thread_([this] { Loop(); }) {}

ShadowRunner::~ShadowRunner() {
  std::deque<std::function<void()>> dropped;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(queue_);
    ready_.Signal();
  }
  thread_.join();
}

bool ShadowRunner::TrySubmit(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= max_queued_) return false;
  const bool was_empty = queue_.empty();
  queue_.push_back(std::move(task));
  if (was_empty) ready_.Signal();
  return true;
}

void ShadowRunner::Loop() {
  LowestPriority();
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) ready_.Wait(&mu_);
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace slipway
