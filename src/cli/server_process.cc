#include "cli/server_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "core/filesystem.h"

namespace slipway {

absl::Status ServerProcess::Start(const std::string& binary,
                                  const std::string& data_dir,
                                  const std::vector<std::string>& args) {
  int out[2];
  if (pipe(out) != 0) return absl::InternalError("pipe failed");
  const std::string log_path = JoinPath(data_dir, "server.log");
  std::vector<std::string> argv = {binary,     "server",   "--data-dir",
                                   data_dir,   "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_argv;
  for (std::string& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) return absl::InternalError("fork failed");
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    FILE* log = std::fopen(log_path.c_str(), "a");
    if (log != nullptr) dup2(fileno(log), STDERR_FILENO);
    execv(binary.c_str(), c_argv.data());
    _exit(127);
  }
  close(out[1]);
  // The server's first stdout line is "listening on http://HOST:PORT".
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  close(out[0]);
  const std::string prefix = "listening on ";
  if (line.rfind(prefix, 0) != 0) {
    return absl::InternalError("the server did not start; see " + log_path);
  }
  url_ = line.substr(prefix.size());
  return absl::OkStatus();
}

void ServerProcess::WaitForExit() {
  if (pid_ <= 0) return;
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

void ServerProcess::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  WaitForExit();
}

}  // namespace slipway
