// Server: one `slipway server` process — metadata store, artifact store,
// registry, run executor, model manager, the data-plane and control-plane
// routes, and the HTTP server — wired together over one data directory.
//
// Start-up order: open the store (migrating it forward, or refusing a newer
// data directory), remove temporary artifact files of interrupted writes,
// on first start (no API token yet) write an admin token to
// DATA_DIR/admin.token (mode 0600; the log names the file, never the token),
// mark runs left unfinished by a crash `failed` (reason `interrupted`), load
// every app's champion (batched as its spec's endpoint.batching says), then
// accept connections. GET /metrics exposes the data plane's counters.
// Control-plane routes need a token (api/access.h); the data plane is open,
// except predict and infer of apps with `endpoint.auth: token`.
// Thread safety: Shutdown may be called from any thread (a signal watcher);
// Routes from any thread.
#ifndef SLIPWAY_API_SERVER_H_
#define SLIPWAY_API_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "serving/http.h"

namespace slipway {

class Server {
 public:
  struct Options {
    std::string data_dir = ".slipway";
    std::string host = "127.0.0.1";
    int port = 8080;        // 0: any free port
    std::string port_file;  // written with the bound port when set
    // HTTP server hygiene (serving/http_server.h explains each).
    int threads = 0;  // HTTP threads; 0: one per core
    int max_connections = 1024;
    size_t max_body_bytes = 64 << 20;
    int header_timeout_ms = 10000;
    int body_timeout_ms = 30000;
    int idle_timeout_ms = 60000;
    // Pipelines (pipeline/run_executor.h).
    int max_parallel_steps = 0;  // steps of one run at once; 0: one per core
    std::string python = "/usr/bin/python3";  // of command and notebook steps
    // Non-zero: run on a core/test_clock.h TestClock that starts at this
    // wall-clock time (unix micros) and serve GET/POST /api/v1/admin/clock,
    // which moves it forward. For scenario tests only.
    int64_t test_clock_start_micros = 0;
    // CPUs the thread predicting shadow copies is pinned to
    // (serving/shadow_runner.h); empty: any the process may use.
    std::vector<int> shadow_cpus;
  };

  static absl::StatusOr<std::unique_ptr<Server>> Start(const Options& options);
  virtual ~Server() = default;

  virtual int port() const = 0;
  // Every HTTP route the server answers (method and pattern), in
  // registration order; docs/openapi.yaml documents exactly these.
  virtual std::vector<RouteInfo> Routes() const = 0;
  // Stops accepting, lets in-flight requests finish, cancels running
  // pipeline runs (they end `cancelled`), closes the store.
  virtual void Shutdown() = 0;
  // Blocks until Shutdown has completed.
  virtual void Wait() = 0;
};

}  // namespace slipway

#endif  // SLIPWAY_API_SERVER_H_
