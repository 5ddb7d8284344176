// ServerProcess: a `slipway server` child process over a data directory on
// a free port of 127.0.0.1, for `slipway demo`. Stopped (SIGTERM, then
// waited for) when the object goes away.
#ifndef SLIPWAY_CLI_SERVER_PROCESS_H_
#define SLIPWAY_CLI_SERVER_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace slipway {

class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess() { Stop(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Runs `binary server --data-dir DATA_DIR --listen 127.0.0.1:0 ARGS...`
  // with its log in DATA_DIR/server.log, and returns once it listens.
  absl::Status Start(const std::string& binary, const std::string& data_dir,
                     const std::vector<std::string>& args = {});

  const std::string& url() const { return url_; }
  pid_t pid() const { return pid_; }

  // Waits for the server to exit on its own (Ctrl-C reaches it too).
  void WaitForExit();
  void Stop();

 private:
  pid_t pid_ = -1;
  std::string url_;
};

}  // namespace slipway

#endif  // SLIPWAY_CLI_SERVER_PROCESS_H_
