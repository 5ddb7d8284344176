// A ProcessLauncher that starts nothing: each Run() records its spec and
// returns the next scripted outcome, in the order they were added. An action
// can also act like the program (write SLIPWAY_OUTPUT_DIR files, append to
// spec.log_path, watch the cancel flag). A Run() with nothing scripted left
// fails with FailedPrecondition, so an unexpected launch fails the test.
// Thread safety: safe for concurrent use; actions run outside the lock.
#ifndef SLIPWAY_TESTING_FAKE_PROCESS_LAUNCHER_H_
#define SLIPWAY_TESTING_FAKE_PROCESS_LAUNCHER_H_

#include <atomic>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/process.h"

namespace slipway {

class FakeProcessLauncher : public ProcessLauncher {
 public:
  using Action = std::function<absl::StatusOr<ProcessResult>(
      const ProcessSpec&, const std::atomic<bool>*)>;

  // A result as if the program exited with `code`.
  static ProcessResult Exited(int code) {
    ProcessResult result;
    result.exit_code = code;
    return result;
  }

  // The next Run() returns `outcome` (a result or a start-up error).
  void AddResult(absl::StatusOr<ProcessResult> outcome) {
    AddAction([outcome = std::move(outcome)](const ProcessSpec&,
                                             const std::atomic<bool>*) {
      return outcome;
    });
  }

  // The next Run() returns what `action` returns for its spec.
  void AddAction(Action action) {
    absl::MutexLock lock(&mu_);
    script_.push_back(std::move(action));
  }

  absl::StatusOr<ProcessResult> Run(const ProcessSpec& spec,
                                    const std::atomic<bool>* cancel) override {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      specs_.push_back(spec);
      if (script_.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "FakeProcessLauncher: nothing scripted for launch #",
            specs_.size(), " (", spec.argv.empty() ? "" : spec.argv[0], ")"));
      }
      action = std::move(script_.front());
      script_.pop_front();
    }
    absl::StatusOr<ProcessResult> outcome = action(spec, cancel);
    if (outcome.ok()) {
      outcome->timeout_ms = spec.timeout_ms;
      outcome->memory_limit_bytes = spec.memory_limit_bytes;
    }
    return outcome;
  }

  // Every spec passed to Run(), in call order.
  std::vector<ProcessSpec> specs() const {
    absl::MutexLock lock(&mu_);
    return specs_;
  }

 private:
  mutable absl::Mutex mu_;
  std::deque<Action> script_ ABSL_GUARDED_BY(mu_);
  std::vector<ProcessSpec> specs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipway

#endif  // SLIPWAY_TESTING_FAKE_PROCESS_LAUNCHER_H_
