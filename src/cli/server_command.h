// `slipway server`: runs the daemon in the foreground until SIGTERM or
// SIGINT, then drains in-flight requests and exits 0.
#ifndef SLIPWAY_CLI_SERVER_COMMAND_H_
#define SLIPWAY_CLI_SERVER_COMMAND_H_

#include <string>

namespace slipway {

struct ServerFlags {
  std::string data_dir;
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 = any free
  std::string port_file;
  std::string roles = "api,serve,scheduler,worker";
  // HTTP server hygiene; main.cc checks the ranges.
  int threads = 0;  // 0: one per core
  int max_connections = 1024;
  int max_body_mb = 64;
  int header_timeout_ms = 10000;
  int body_timeout_ms = 30000;
  int idle_timeout_ms = 60000;
  int max_parallel_steps = 0;  // 0: one per core
  // SLIPWAY_PYTHON when set, else /usr/bin/python3 (DESIGN.md).
  std::string python;
  // RFC 3339 start of the test clock (--test-clock); empty: the real clock.
  std::string test_clock;
  // CPU list for the shadow's thread (taskset -c syntax); empty: any.
  std::string shadow_cpus;
};

int ServerCommand(const ServerFlags& flags);

}  // namespace slipway

#endif  // SLIPWAY_CLI_SERVER_COMMAND_H_
