"""Black-box harness for end-to-end tests: starts the real `slipway` binary
on 127.0.0.1 with port 0 over a fresh data directory, talks to it over HTTP
and through the CLI, and stops what it started by PID.

Tokens follow DESIGN.md's rule for clients: once a server has started, its
data directory's admin.token is sent as the bearer token by `request`,
`call`, `connection` (unless the caller gives its own Authorization header
or `token=None`) and `cli`, and is put in os.environ as SLIPWAY_TOKEN so
CLI processes a test starts itself use it too."""

import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

BINARY = os.environ.get("SLIPWAY_BINARY") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "slipway")


ADMIN = object()  # `token=` default: the server's admin token


class TokenConnection(http.client.HTTPConnection):
    """An http.client connection that sends `token` as the bearer token on
    every request that names no Authorization header of its own."""

    def __init__(self, host, port, timeout, token):
        super().__init__(host, port, timeout=timeout)
        self.token = token

    def request(self, method, url, body=None, headers=None, **kwargs):
        headers = dict(headers or {})
        if self.token and not any(k.lower() == "authorization"
                                  for k in headers):
            headers["Authorization"] = "Bearer " + self.token
        super().request(method, url, body=body, headers=headers, **kwargs)


class Server:
    """A `slipway server` child process."""

    def __init__(self, data_dir, args=()):
        self.data_dir = data_dir
        self.args = list(args)  # extra `slipway server` flags
        self.proc = None
        self.url = None
        self.token = None  # the admin token, read once the server started

    def _auth(self, token):
        """The Authorization headers for `token` (ADMIN, None or a
        string)."""
        if token is ADMIN:
            token = self.token
        return {"Authorization": "Bearer " + token} if token else {}

    def start(self, *args):
        """Starts the server with the constructor's flags plus `args`
        (e.g. "--max-body-mb", "1")."""
        log = open(os.path.join(self.data_dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [BINARY, "server", "--data-dir", self.data_dir,
             "--listen", "127.0.0.1:0"] + self.args + [str(a) for a in args],
            stdout=subprocess.PIPE, stderr=log)
        log.close()
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("listening on "):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("server did not start: %r; log:\n%s" %
                               (line, self.log()))
        self.url = line[len("listening on "):]
        # Written on first start, before the server listens.
        with open(os.path.join(self.data_dir, "admin.token")) as f:
            self.token = f.readline().strip()
        os.environ["SLIPWAY_TOKEN"] = self.token
        return self

    @property
    def pid(self):
        return self.proc.pid

    @property
    def address(self):
        """(host, port) the server listens on."""
        parsed = urllib.parse.urlsplit(self.url)
        return parsed.hostname, parsed.port

    def connection(self, timeout=60, token=ADMIN):
        """A new keep-alive http.client connection to the server, sending
        `token` (default: the admin token) unless a request names its own
        Authorization header."""
        host, port = self.address
        return TokenConnection(host, port, timeout,
                               self.token if token is ADMIN else token)

    def call(self, method, path, body=None, headers=None, timeout=60,
             token=ADMIN):
        """One request on a fresh http.client connection; `body` is bytes,
        str or a JSON-able value; `token` as for `connection`. Returns
        (status, {lower-case header: value}, raw body bytes)."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        conn = self.connection(timeout=timeout, token=token)
        try:
            conn.request(method, path, body=body, headers=dict(
                {"Content-Type": "application/json"} if body is not None
                else {}, **(headers or {})))
            resp = conn.getresponse()
            payload = resp.read()
            return (resp.status, {k.lower(): v for k, v in resp.getheaders()},
                    payload)
        finally:
            conn.close()

    def rss_kb(self):
        """Resident set size of the server process (VmRSS), in KiB."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/%d/status" % self.proc.pid)

    def metrics(self):
        """GET /metrics parsed: {(name, frozenset(labels.items())): value},
        or None when the server has no /metrics route (404)."""
        status, text = self.request("GET", "/metrics", raw=True)
        if status == 404:
            return None
        assert status == 200, (status, text)
        return parse_prometheus(text.decode())

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
                raw=False, token=ADMIN):
        """Returns (status, parsed JSON or raw bytes). `token`: ADMIN (the
        server's admin token), None (no token) or a token."""
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=self._auth(token))
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

    def cli(self, *args, check=False, token=ADMIN):
        """Runs the CLI against this server with SLIPWAY_TOKEN set to
        `token` (ADMIN: the admin token; None: unset)."""
        env = dict(os.environ, SLIPWAY_SERVER=self.url)
        env.pop("SLIPWAY_TOKEN", None)
        token = self.token if token is ADMIN else token
        if token:
            env["SLIPWAY_TOKEN"] = token
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


_SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


# Tables the server writes on its clock's schedule rather than because of a
# request (store_row_counts leaves them out): a closed monitoring window and
# the alert rules' state saved with it.
CLOCK_WRITTEN_TABLES = ("monitor_windows", "alert_engines")


def parse_prometheus(text):
    """Prometheus text exposition -> {(name, frozenset(label pairs)): value}.
    Raises AssertionError on a line that is neither a comment nor a
    sample."""
    samples = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise AssertionError("not a Prometheus sample line: %r" % line)
        labels = frozenset(
            (k, v.replace('\\"', '"').replace("\\\\", "\\"))
            for k, v in _LABEL.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def metric_values(samples, name, **labels):
    """[(labels dict, value)] of every sample named `name` whose labels
    include `labels`."""
    out = []
    for (n, pairs), value in samples.items():
        d = dict(pairs)
        if n == name and all(d.get(k) == v for k, v in labels.items()):
            out.append((d, value))
    return out


def metric_sum(samples, name, **labels):
    return sum(v for _, v in metric_values(samples, name, **labels))


def encode(signature, records):
    """Rows as Slipway's signature encodes them, for python3-xgboost: numbers
    as they are, categories as their index in the signature, anything
    missing or unseen as NaN. Needs numpy (python3-numpy)."""
    import numpy as np
    x = np.full((len(records), len(signature["features"])), np.nan,
                dtype=np.float32)
    for j, f in enumerate(signature["features"]):
        cats = {c: i for i, c in enumerate(f.get("categories", []))}
        for i, r in enumerate(records):
            v = r.get(f["name"])
            if v is None:
                continue
            if f["type"] == "string":
                if str(v) in cats:
                    x[i, j] = cats[str(v)]
            else:
                x[i, j] = float(v)
    return x


def wait_until(condition, timeout, what, interval=0.01):
    """Polls `condition()` until it returns a true value (returned) or
    `timeout` seconds pass (AssertionError naming `what`; a callable `what`
    is called then, so the message can show the last state)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" %
                                 (timeout, what() if callable(what) else what))
        time.sleep(interval)


def train_version(server, spec_path, app, pipeline="train"):
    """Applies `spec_path`, runs `pipeline` to success and returns the new
    model version number."""
    server.cli("apply", spec_path, check=True)
    status, run = server.request("POST", "/api/v1/apps/%s/runs" % app,
                                 {"pipeline": pipeline})
    assert status == 201, (status, run)
    run = server.wait_for_run(run["id"])
    assert run["state"] == "succeeded", run
    status, models = server.request("GET", "/api/v1/apps/%s/models" % app)
    assert status == 200, models
    return max(m["version"] for m in models["models"])


def promote(server, app, version, alias="champion"):
    """PUT the alias; returns (status, body)."""
    return server.request("PUT", "/api/v1/apps/%s/aliases/%s" % (app, alias),
                          {"version": version})


class Receiver:
    """A webhook receiver on 127.0.0.1 port 0 that keeps every request it
    gets as (headers dict, raw body bytes) and answers 204."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def events(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def signature(secret, body):
    """The X-Slipway-Signature a notify webhook with `secret` carries for
    the raw `body`: HMAC-SHA256 over the exact bytes."""
    return "sha256=" + hmac.new(secret.encode(), body,
                                hashlib.sha256).hexdigest()


class Workspace:
    """A temporary directory with a data directory inside; removed on exit,
    after stopping every server it started."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="slipway-e2e-")
        self.data_dir = os.path.join(self.root, "data")
        os.makedirs(self.data_dir)
        self.servers = []

    def server(self, *args):
        """Starts a server on the data directory with extra flags `args`."""
        s = Server(self.data_dir, [str(a) for a in args]).start()
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
        """Rows per table (but CLOCK_WRITTEN_TABLES), once every running
        server's prediction log has stored what it holds (it stores
        asynchronously, within a second), so that two counts differ only by
        what the requests between them did."""
        def stored(server):
            # Every answered prediction handed to the monitor (serving
            # counts a request before answering and hands it over just
            # after), and nothing left in the log's queue.
            samples = server.metrics()
            answered = sum(
                v for labels, v in metric_values(samples,
                                                 "slipway_requests_total")
                if labels.get("status") == "200" and
                labels.get("endpoint") in ("predict", "infer"))
            observed = metric_sum(samples, "slipway_predictions_observed_total")
            queued = metric_values(samples,
                                   "slipway_prediction_log_queued")[0][1]
            return observed == answered and queued == 0

        for server in self.servers:
            if server.proc is None:
                continue
            wait_until(lambda: stored(server), 30,
                       "every answered prediction to be stored")
        db = sqlite3.connect("file:%s?mode=ro" %
                             os.path.join(self.data_dir, "slipway.db"),
                             uri=True)
        try:
            tables = [r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name NOT LIKE 'sqlite_%'")]
            # A monitoring window is stored when the clock passes its end,
            # whatever the test did meanwhile (a test that straddles a
            # 5-minute boundary): not counted.
            return {t: db.execute('SELECT count(*) FROM "%s"' % t).fetchone()[0]
                    for t in tables if t not in CLOCK_WRITTEN_TABLES}
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
