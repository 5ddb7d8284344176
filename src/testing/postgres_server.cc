#include "testing/postgres_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace slipway {
namespace {

constexpr char kBinDir[] = "/usr/lib/postgresql/15/bin";
constexpr char kRunuser[] = "/usr/sbin/runuser";
constexpr auto kStartDeadline = std::chrono::seconds(60);

std::string ReadTail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

// Runs argv with stdout and stderr appended to `log`, as `user` when given.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log,
            const struct passwd* user) {
  // Everything the child needs is built before fork(): in a threaded
  // process the child may only make async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  if (user != nullptr &&
      (setgid(user->pw_gid) != 0 || setuid(user->pw_uid) != 0)) {
    _exit(126);
  }
  execv(args[0], args.data());
  _exit(127);
}

absl::StatusOr<int> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError("cannot bind a free port on 127.0.0.1");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string RandomHex(int bytes) {
  std::random_device random;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < bytes; ++i) {
    const unsigned v = random() & 0xff;
    out.push_back(kHex[v >> 4]);
    out.push_back(kHex[v & 15]);
  }
  return out;
}

absl::Status Exec(PGconn* conn, const std::string& sql) {
  PGresult* result = PQexec(conn, sql.c_str());
  const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
  std::string error = ok ? "" : PQresultErrorMessage(result);
  PQclear(result);
  if (!ok) return absl::InternalError("postgres test server: " + error);
  return absl::OkStatus();
}

}  // namespace

bool PostgresServer::Available() {
  return access((std::string(kBinDir) + "/initdb").c_str(), X_OK) == 0 &&
         access((std::string(kBinDir) + "/postgres").c_str(), X_OK) == 0;
}

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start() {
  auto server = std::unique_ptr<PostgresServer>(new PostgresServer());
  // /tmp, not $TMPDIR: the postgres user must reach the directory, and a
  // Unix socket path must stay under 108 bytes.
  std::string dir = "/tmp/slipway-pg-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::InternalError("postgres test server: mkdtemp failed");
  }
  server->dir_ = dir;
  const struct passwd* user = nullptr;
  if (geteuid() == 0) {
    // PostgreSQL refuses to run as root.
    user = getpwnam("postgres");
    if (user == nullptr) {
      return absl::FailedPreconditionError(
          "postgres test server: running as root and there is no postgres "
          "user to run the server as");
    }
    if (chown(dir.c_str(), user->pw_uid, user->pw_gid) != 0) {
      return absl::InternalError("postgres test server: chown " + dir);
    }
  }
  const std::string data = dir + "/data";
  const std::string log = dir + "/server.log";

  std::vector<std::string> initdb;
  if (user != nullptr) initdb = {kRunuser, "-u", "postgres", "--"};
  for (const char* arg :
       {"initdb", "-D", "", "-U", "postgres", "--auth-local=trust",
        "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"}) {
    initdb.emplace_back(arg);
  }
  initdb[user != nullptr ? 4 : 0] = std::string(kBinDir) + "/initdb";
  initdb[user != nullptr ? 6 : 2] = data;
  // runuser itself starts as root and switches; initdb needs no setuid.
  const pid_t init_pid = Spawn(initdb, log, nullptr);
  int status = 0;
  if (init_pid < 0 || waitpid(init_pid, &status, 0) != init_pid ||
      !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError("postgres test server: initdb failed:\n" +
                               ReadTail(log));
  }

  auto port = FreePort();
  if (!port.ok()) return port.status();
  server->port_ = *port;
  server->pid_ = Spawn({std::string(kBinDir) + "/postgres", "-D", data, "-p",
                        std::to_string(server->port_), "-k", dir, "-c",
                        "listen_addresses=127.0.0.1", "-c", "fsync=off"},
                       log, user);
  if (server->pid_ < 0) {
    return absl::InternalError("postgres test server: fork failed");
  }

  const std::string ping =
      "host=127.0.0.1 port=" + std::to_string(server->port_) +
      " dbname=postgres user=postgres connect_timeout=2";
  const auto deadline = std::chrono::steady_clock::now() + kStartDeadline;
  auto pause = std::chrono::milliseconds(5);
  while (PQping(ping.c_str()) != PQPING_OK) {
    if (waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
      server->pid_ = -1;
      return absl::InternalError("postgres test server exited at start:\n" +
                                 ReadTail(log));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(
          "postgres test server did not accept connections within 60 s:\n" +
          ReadTail(log));
    }
    // Back off from 5 ms to 100 ms between polls.
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }

  server->password_ = RandomHex(12);
  const std::string setup = "host=" + dir +
                            " port=" + std::to_string(server->port_) +
                            " user=postgres dbname=postgres";
  PGconn* conn = PQconnectdb(setup.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string error = PQerrorMessage(conn);
    PQfinish(conn);
    return absl::InternalError("postgres test server: " + error);
  }
  // The password is random hex: safe inside a literal.
  absl::Status created =
      Exec(conn, "CREATE ROLE " + server->user_ + " LOGIN PASSWORD '" +
                     server->password_ + "'");
  if (created.ok()) {
    created = Exec(conn, "CREATE DATABASE " + server->database_ + " OWNER " +
                             server->user_);
  }
  PQfinish(conn);
  if (!created.ok()) return created;
  return server;
}

PostgresServer::~PostgresServer() {
  if (pid_ > 0) {
    kill(pid_, SIGINT);  // fast shutdown: disconnects clients, then exits
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

std::string PostgresServer::Url() const {
  return "postgresql://" + user_ + "@127.0.0.1:" + std::to_string(port_) + "/" +
         database_;
}

std::string PostgresServer::SuperuserConninfo() const {
  return "host=" + dir_ + " port=" + std::to_string(port_) +
         " user=postgres dbname=" + database_;
}

}  // namespace slipway
