#include "cli/server_command.h"

#include <signal.h>

#include <cstdlib>
#include <iostream>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/server.h"
#include "core/logging.h"
#include "serving/shadow_runner.h"

namespace slipway {

int ServerCommand(const ServerFlags& flags) {
  size_t colon = flags.listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    try {
      size_t used = 0;
      port = std::stoi(flags.listen.substr(colon + 1), &used);
      if (used != flags.listen.size() - colon - 1) port = -1;
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
    std::cerr << "error: --listen '" << flags.listen
              << "' must be HOST:PORT, for example 127.0.0.1:8080 or "
                 "127.0.0.1:0 for any free port\n";
    return 2;
  }
  if (flags.roles != "api,serve,scheduler,worker") {
    std::cerr << "error: --roles '" << flags.roles
              << "': this release runs every role in one process; pass "
                 "api,serve,scheduler,worker or leave --roles out\n";
    return 2;
  }

  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // Debian's Abseil checks lock order on every absl::Mutex acquisition
  // through one process-wide spin lock; the serving hot path cannot afford
  // it. Unit tests keep the check.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  signal(SIGPIPE, SIG_IGN);

  Server::Options options;
  options.data_dir = flags.data_dir;
  options.host = flags.listen.substr(0, colon);
  options.port = port;
  options.port_file = flags.port_file;
  options.threads = flags.threads;
  options.max_connections = flags.max_connections;
  options.max_body_bytes = static_cast<size_t>(flags.max_body_mb) << 20;
  options.header_timeout_ms = flags.header_timeout_ms;
  options.body_timeout_ms = flags.body_timeout_ms;
  options.idle_timeout_ms = flags.idle_timeout_ms;
  options.max_parallel_steps = flags.max_parallel_steps;
  if (!flags.python.empty()) {
    options.python = flags.python;
  } else if (const char* python = std::getenv("SLIPWAY_PYTHON");
             python != nullptr && *python != '\0') {
    options.python = python;
  }
  if (!flags.shadow_cpus.empty()) {
    absl::StatusOr<std::vector<int>> cpus =
        ParseCpuList(flags.shadow_cpus, "--shadow-cpus");
    if (!cpus.ok()) {
      std::cerr << "error: " << cpus.status().message() << "\n";
      return 2;
    }
    options.shadow_cpus = *std::move(cpus);
  }
  if (!flags.test_clock.empty()) {
    absl::Time start;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, flags.test_clock, &start,
                         &error)) {
      std::cerr << "error: --test-clock '" << flags.test_clock
                << "': give an RFC 3339 time such as 2030-01-01T00:00:00Z\n";
      return 2;
    }
    options.test_clock_start_micros = absl::ToUnixMicros(start);
  }
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
  if (!server.ok()) {
    std::cerr << "error: " << server.status().message() << "\n";
    return 1;
  }
  std::cout << "listening on http://" << options.host << ":"
            << (*server)->port() << std::endl;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LogInfo("server.stopping", {{"signal", std::to_string(signal_number)}});
  (*server)->Shutdown();
  (*server)->Wait();
  return 0;
}

}  // namespace slipway
