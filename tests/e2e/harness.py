"""Black-box harness for end-to-end tests: starts the real `slipway` binary
on 127.0.0.1 with port 0 over a fresh data directory, talks to it over HTTP
and through the CLI, and stops what it started by PID."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

BINARY = os.environ.get("SLIPWAY_BINARY") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "slipway")


class Server:
    """A `slipway server` child process."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.proc = None
        self.url = None

    def start(self):
        log = open(os.path.join(self.data_dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [BINARY, "server", "--data-dir", self.data_dir,
             "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=log)
        log.close()
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("listening on "):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("server did not start: %r; log:\n%s" %
                               (line, self.log()))
        self.url = line[len("listening on "):]
        return self

    def log(self):
        with open(os.path.join(self.data_dir, "server.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        """SIGTERM, then wait; returns the exit code."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.proc.stdout.close()
        self.proc = None
        return code

    def kill(self):
        """SIGKILL: a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.proc = None

    def request(self, method, path, body=None, content_type="application/json",
                raw=False):
        """Returns (status, parsed JSON or raw bytes)."""
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, payload = e.code, e.read()
        if raw:
            return status, payload
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:
            return status, payload

    def cli(self, *args, check=False):
        env = dict(os.environ, SLIPWAY_SERVER=self.url)
        result = subprocess.run([BINARY] + list(args), env=env,
                                capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError("slipway %s failed (%d):\n%s\n%s" % (
                " ".join(args), result.returncode, result.stdout,
                result.stderr))
        return result

    def wait_for_run(self, run_id, timeout=600, until=None):
        """Polls a run until `until(run)` (default: a final state) holds."""
        until = until or (lambda r: r["state"] in
                          ("succeeded", "failed", "cancelled"))
        deadline = time.monotonic() + timeout
        while True:
            status, run = self.request("GET", "/api/v1/runs/" + run_id)
            assert status == 200, run
            if until(run):
                return run
            if time.monotonic() > deadline:
                raise AssertionError("run %s: condition not reached: %s" %
                                     (run_id, run))
            time.sleep(0.02)


class Workspace:
    """A temporary directory with a data directory inside; removed on exit,
    after stopping every server it started."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="slipway-e2e-")
        self.data_dir = os.path.join(self.root, "data")
        os.makedirs(self.data_dir)
        self.servers = []

    def server(self):
        s = Server(self.data_dir).start()
        self.servers.append(s)
        return s

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write(self, name, text):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def store_row_counts(self):
        db = sqlite3.connect("file:%s?mode=ro" %
                             os.path.join(self.data_dir, "slipway.db"),
                             uri=True)
        try:
            tables = [r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name NOT LIKE 'sqlite_%'")]
            return {t: db.execute('SELECT count(*) FROM "%s"' % t).fetchone()[0]
                    for t in tables}
        finally:
            db.close()

    def close(self):
        for s in self.servers:
            if s.proc is not None:
                s.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
