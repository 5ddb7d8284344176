// A throwaway PostgreSQL server for tests: a fresh cluster (initdb, run as
// the postgres user when the test runs as root) in a temporary directory,
// listening on 127.0.0.1 at a free port with its Unix socket in the same
// directory, holding a database and a login role with a random password.
// The destructor stops the server by PID (fast shutdown, then waits for it)
// and removes the directory.
//
// Needs Debian's postgresql-15 (/usr/lib/postgresql/15/bin); tests call
// Available() first and skip when it is absent:
//   if (!PostgresServer::Available()) GTEST_SKIP() << "no PostgreSQL";
// Start() waits until the server accepts connections, polling with a
// deadline.
//
// Thread safety: not thread-safe; one test suite owns one server.
#ifndef SLIPWAY_TESTING_POSTGRES_SERVER_H_
#define SLIPWAY_TESTING_POSTGRES_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace slipway {

class PostgresServer {
 public:
  // True when the PostgreSQL 15 server binaries are installed.
  static bool Available();
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start();

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  const std::string& database() const { return database_; }
  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }
  // "postgresql://<user>@127.0.0.1:<port>/<database>" (no password).
  std::string Url() const;
  // libpq key/value string for the superuser over the Unix socket (trust
  // authentication), for checking what a test wrote.
  std::string SuperuserConninfo() const;

 private:
  PostgresServer() = default;

  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string database_ = "slipway";
  std::string user_ = "slipway";
  std::string password_;
};

}  // namespace slipway

#endif  // SLIPWAY_TESTING_POSTGRES_SERVER_H_
