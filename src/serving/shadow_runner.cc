#include "serving/shadow_runner.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace slipway {
namespace {

// The calling thread yields the CPU to every other thread that wants it.
void LowestPriority() {
  sched_param param{};
  if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0) return;
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
}

}  // namespace

int PinToCpus(const std::vector<int>& cpus) {
  if (cpus.empty()) return 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) {
    if (cpu >= CPU_SETSIZE) return EINVAL;
    CPU_SET(cpu, &set);
  }
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

absl::StatusOr<std::shared_ptr<ShadowRunner>> ShadowRunner::Create(
    const Options& options) {
  std::shared_ptr<ShadowRunner> runner(
      new ShadowRunner(options.max_queued, options.cpus));
  int error = 0;
  {
    absl::MutexLock lock(&runner->mu_);
    runner->mu_.Await(absl::Condition(&runner->placed_));
    error = runner->placement_error_;
  }
  if (error != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the shadow's thread cannot run on CPUs ",
        absl::StrJoin(options.cpus, ","), " (", std::strerror(error),
        "); name CPUs this machine has (this one has ",
        sysconf(_SC_NPROCESSORS_ONLN), " online, numbered from 0)"));
  }
  return runner;
}

ShadowRunner::ShadowRunner(size_t max_queued)
    : ShadowRunner(max_queued, {}) {}

ShadowRunner::ShadowRunner(size_t max_queued, std::vector<int> cpus)
    : max_queued_(max_queued),
      cpus_(std::move(cpus)),
      thread_([this] { Loop(); }) {}

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
  if (stopping_ || placement_error_ != 0 || queue_.size() >= max_queued_) {
    return false;
  }
  const bool was_empty = queue_.empty();
  queue_.push_back(std::move(task));
  if (was_empty) ready_.Signal();
  return true;
}

void ShadowRunner::Loop() {
  const int error = PinToCpus(cpus_);
  LowestPriority();
  {
    absl::MutexLock lock(&mu_);
    placement_error_ = error;
    placed_ = true;
    if (error != 0) return;
  }
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

absl::StatusOr<std::vector<int>> ParseCpuList(std::string_view text,
                                              std::string_view flag) {
  auto bad = [&](std::string_view part) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(flag), " '", std::string(text), "': '", std::string(part),
        "' is not a CPU number or range; give a list as taskset -c takes it, "
        "for example 1 or 2-3,6"));
  };
  auto number = [](std::string_view digits, int* out) {
    if (digits.empty()) return false;
    auto [end, ec] =
        std::from_chars(digits.data(), digits.data() + digits.size(), *out);
    return ec == std::errc() && end == digits.data() + digits.size() &&
           *out >= 0 && *out < CPU_SETSIZE;
  };
  std::vector<int> cpus;
  for (absl::string_view piece : absl::StrSplit(
           absl::string_view(text.data(), text.size()), ',')) {
    std::string_view part(piece.data(), piece.size());
    size_t dash = part.find('-');
    int first = 0;
    int last = 0;
    if (dash == std::string_view::npos) {
      if (!number(part, &first)) return bad(part);
      last = first;
    } else if (!number(part.substr(0, dash), &first) ||
               !number(part.substr(dash + 1), &last) || last < first) {
      return bad(part);
    }
    for (int cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

}  // namespace slipway
