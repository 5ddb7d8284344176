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
  int threads = 0;
};

int ServerCommand(const ServerFlags& flags);

}  // namespace slipway

#endif  // SLIPWAY_CLI_SERVER_COMMAND_H_
