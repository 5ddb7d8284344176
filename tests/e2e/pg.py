"""A throwaway PostgreSQL server for end-to-end tests, started the way
src/testing/postgres_server.cc starts one: initdb (through `runuser -u
postgres` when running as root, since PostgreSQL refuses root) into a fresh
directory under /tmp, `postgres` on a free port of 127.0.0.1, an
application role with a random password owning one database, and a stop
by PID. SQL runs through Debian's `psql` over the server's Unix socket as
the superuser (trust), so the application password never appears on a
command line."""

import csv
import io
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BIN_DIR = "/usr/lib/postgresql/15/bin"
RUNUSER = "/usr/sbin/runuser"
START_TIMEOUT_S = 60


def available():
    """True when Debian's postgresql-15 binaries are installed."""
    return all(os.access(os.path.join(BIN_DIR, b), os.X_OK)
               for b in ("initdb", "postgres", "pg_isready", "psql"))


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path, limit=2000):
    try:
        with open(path, "rb") as f:
            return f.read()[-limit:].decode(errors="replace")
    except OSError:
        return ""


class PostgresServer:
    """One `postgres` child process over its own data directory.

    `user` owns `database` and logs in over TCP with `password` (scram);
    `url` names them without the password, as an app's `url` would."""

    def __init__(self, user="slipway_app", database="slipway_test"):
        self.user = user
        self.database = database
        self.password = secrets.token_hex(16)
        self.dir = None
        self.port = None
        self.proc = None

    @property
    def url(self):
        return "postgresql://%s@127.0.0.1:%d/%s" % (self.user, self.port,
                                                     self.database)

    @property
    def log_path(self):
        return os.path.join(self.dir, "server.log")

    def start(self):
        """Starts the server; on failure stops whatever started and
        raises."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        # /tmp, not $TMPDIR: the postgres user must reach the directory and
        # a Unix socket path must stay under 108 bytes.
        self.dir = tempfile.mkdtemp(prefix="slipway-pg-", dir="/tmp")
        run_as = None
        if os.geteuid() == 0:
            run_as = pwd.getpwnam("postgres")
            os.chown(self.dir, run_as.pw_uid, run_as.pw_gid)
        data = os.path.join(self.dir, "data")
        initdb = [os.path.join(BIN_DIR, "initdb"), "-D", data, "-U",
                  "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                  "--no-sync"]
        if run_as is not None:
            initdb = [RUNUSER, "-u", "postgres", "--"] + initdb
        with open(self.log_path, "ab") as log:
            done = subprocess.run(initdb, stdout=log, stderr=log, timeout=120)
        if done.returncode != 0:
            raise RuntimeError("initdb failed (%d):\n%s" %
                               (done.returncode, _tail(self.log_path)))
        self.port = _free_port()
        log = open(self.log_path, "ab")
        try:
            # postgres itself is the child (no runuser in between), so its
            # PID is the one stop() signals.
            self.proc = subprocess.Popen(
                [os.path.join(BIN_DIR, "postgres"), "-D", data, "-p",
                 str(self.port), "-k", self.dir, "-c",
                 "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                stdout=log, stderr=log,
                user=run_as.pw_uid if run_as else None,
                group=run_as.pw_gid if run_as else None)
        finally:
            log.close()
        self._wait_ready()
        self.superuser_sql(
            "CREATE ROLE %s LOGIN PASSWORD '%s'" % (self.user, self.password),
            database="postgres")
        self.superuser_sql("CREATE DATABASE %s OWNER %s" %
                           (self.database, self.user), database="postgres")

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        pause = 0.005
        while True:
            ready = subprocess.run(
                [os.path.join(BIN_DIR, "pg_isready"), "-q", "-h", "127.0.0.1",
                 "-p", str(self.port), "-t", "2"])
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited at start (%d):\n%s" %
                                   (self.proc.returncode,
                                    _tail(self.log_path)))
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "postgres did not accept connections within %d s:\n%s" %
                    (START_TIMEOUT_S, _tail(self.log_path)))
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _psql(self, args, database, stdin=None):
        cmd = [os.path.join(BIN_DIR, "psql"), "-X", "-q", "-v",
               "ON_ERROR_STOP=1", "-h", self.dir, "-p", str(self.port), "-U",
               "postgres", "-d", database or self.database] + args
        done = subprocess.run(cmd, input=stdin, capture_output=True,
                              text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError("psql %s failed (%d): %s" %
                               (" ".join(args), done.returncode, done.stderr))
        return done.stdout

    def superuser_sql(self, sql, database=None):
        """Runs `sql` (one or more statements) as the superuser; the text
        goes through psql's stdin, never its command line."""
        return self._psql([], database, stdin=sql)

    def superuser_file(self, path, database=None):
        """Runs the SQL file `path` as the superuser."""
        return self._psql(["-f", path], database)

    def copy_csv(self, table, csv_text):
        """Loads CSV text with a header line into `table`."""
        self._psql(["-c", "COPY %s FROM STDIN WITH (FORMAT csv, HEADER true)"
                    % table], None, stdin=csv_text)

    def query(self, sql):
        """The rows of `sql` as a list of dicts of strings; NULL is None."""
        out = self._psql(["--csv", "-P", "null=\\N", "-c", sql], None)
        rows = list(csv.DictReader(io.StringIO(out)))
        return [{k: (None if v == "\\N" else v) for k, v in r.items()}
                for r in rows]

    def stop(self):
        """Fast shutdown by PID (SIGINT: disconnect clients, then exit),
        then removes the directory."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
