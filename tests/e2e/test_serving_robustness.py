"""The serving stack under abuse, through the real binary: a corrupt model
artifact, SIGTERM with requests in flight, truncated and oversized bodies,
more connections than allowed, slow clients, memory, dynamic batching and a
full batch queue."""

import json
import os
import select
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import datagen  # noqa: E402
import harness  # noqa: E402

APP = "churn"
QUEUED = "queued"
MIB = 1 << 20

# A batch waits up to 1 s to fill 16 rows and at most 16 rows may wait:
# 3-row requests arriving together fill 15 rows, and the next one is
# refused (a request never splits, and 15 rows do not yet flush a batch).
QUEUED_ENDPOINT = """endpoint:
  model: champion
  batching: {max_batch: 16, max_delay_us: 1000000, max_queue: 16}
"""
QUEUED_ROWS = 3
DRAIN_ENDPOINT = """endpoint:
  batching: {max_queue: 1000000}
"""


# --- raw sockets ---

def connect(server, timeout=10):
    sock = socket.create_connection(server.address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_some(sock, timeout):
    """What the peer sends within `timeout` seconds: bytes, b"" when it
    closed (or reset) the connection, None when nothing came."""
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        return None
    try:
        return sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return b""


def read_response(sock, timeout=10):
    """Reads one HTTP response (Content-Length framed) from a raw socket:
    (status, {lower-case header: value}, body). (None, {}, b"") when the
    server closed the connection without an answer."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = recv_some(sock, max(0.0, deadline - time.monotonic()))
        if chunk is None:
            raise AssertionError("no answer within %ss: %r" % (timeout, data))
        if not chunk:
            if not data:
                return None, {}, b""
            raise AssertionError("connection closed mid-answer: %r" % data)
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = recv_some(sock, max(0.0, deadline - time.monotonic()))
        if not chunk:
            raise AssertionError("short answer body: %r" % body)
        body += chunk
    return status, headers, body


def send_all_tolerant(sock, data):
    """Sends what the server accepts; a server that answers early and stops
    reading may reset the connection."""
    try:
        sock.sendall(data)
        return True
    except (ConnectionResetError, BrokenPipeError):
        return False


def request_bytes(method, path, body=b"", headers=None):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    if body or method == "POST":
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def alive(server):
    """The server process runs and answers a fresh connection."""
    if server.proc.poll() is not None:
        return False
    try:
        status, _, _ = server.call("GET", "/v2/health/live", timeout=10)
    except OSError:
        return False
    return status == 200


def unread_bytes(server_port, client_ports):
    """Bytes sent by the clients on `client_ports` to the server that the
    server process has not read yet: the clients' send queues plus the
    server sockets' receive queues, from /proc/net/tcp."""
    total = 0
    found = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote = fields[1], fields[2]
            tx, rx = (int(x, 16) for x in fields[4].split(":"))
            lport, rport = int(local.split(":")[1], 16), int(
                remote.split(":")[1], 16)
            if lport == server_port and rport in client_ports:
                total += rx  # the server side has not read these
                found += 1
            elif lport in client_ports and rport == server_port:
                total += tx  # not yet acknowledged by the server's kernel
    return total if found == len(client_ports) else None  # None: gone


def parse_body(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return raw


# --- HTTP limits and timeouts (no model needed) ---

class ConnectionLimitsTest(unittest.TestCase):
    """--max-body-mb 1 --max-connections 8: truncated bodies, 413, the
    connection limit and memory."""

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        try:
            cls.server = cls.ws.server("--max-body-mb", 1,
                                       "--max-connections", 8,
                                       "--threads", 2)
            cls.base_rss_kb = cls.server.rss_kb()
        except BaseException:
            cls.ws.close()
            raise

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        cls.ws.close()
        assert code == 0, code

    def assert_rss_bounded(self, what):
        rss = self.server.rss_kb()
        self.assertLess(rss, self.base_rss_kb + 96 * 1024,
                        "RSS %d KiB after %s (at start %d KiB)" %
                        (rss, what, self.base_rss_kb))
        self.assertLess(rss, 512 * 1024, what)

    def test_truncated_bodies(self):
        s = self.server
        # One left open with half a body does not hold up other clients.
        hanging = connect(s)
        try:
            hanging.sendall(
                b"POST /v1/apps/churn/predict HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: 100000\r\n\r\n" + b"{" * 5000)
            self.assertTrue(alive(s))
            for _ in range(6):  # fewer than the connection limit at once
                sock = connect(s)
                sock.sendall(
                    b"POST /v1/apps/churn/predict HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\n"
                    b"Content-Length: 50000\r\n\r\n" + b'{"records": [' * 100)
                sock.close()
            self.assertTrue(harness.wait_until(lambda: alive(s), 10,
                                               "the server to answer"))
        finally:
            hanging.close()
        self.assertIsNone(s.proc.poll())

    def test_body_over_limit(self):
        s = self.server
        # Exactly the limit is read (and answered by the route: no app).
        status, _, raw = s.call("POST", "/v1/apps/nosuch/predict",
                                b" " * MIB)
        self.assertEqual(status, 404, raw)
        # Fewer than the connection limit: a refused connection may stay
        # counted while the server drains the rest of its body.
        for _ in range(5):
            sock = connect(s)
            try:
                body = b"x" * (2 * MIB)
                head = request_bytes("POST", "/v1/apps/nosuch/predict",
                                     body, {"Content-Type":
                                            "application/json"})
                send_all_tolerant(sock, head)
                status, headers, raw = read_response(sock)
            finally:
                sock.close()
            self.assertEqual(status, 413, raw)
            self.assertIn("error", json.loads(raw))
            self.assertIn("close", headers.get("connection", ""))
        # A chunked body is counted as it arrives.
        sock = connect(s)
        try:
            sock.sendall(b"POST /v1/apps/nosuch/predict HTTP/1.1\r\n"
                         b"Host: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n%s\r\n" % (256 * 1024, b"y" * (256 * 1024))
            for _ in range(8):
                if not send_all_tolerant(sock, chunk):
                    break
            send_all_tolerant(sock, b"0\r\n\r\n")
            status, _, raw = read_response(sock)
        finally:
            sock.close()
        self.assertEqual(status, 413, raw)
        self.assert_rss_bounded("oversized bodies")
        harness.wait_until(lambda: alive(s), 10, "the server to answer")

    def open_idle_connections(self, count, refused):
        """Opens `count` connections that send nothing; waits until at
        least `refused` of them were answered or closed by the server.
        Returns (sockets, {index: what the server sent, b"" if closed})."""
        socks = [connect(self.server) for _ in range(count)]
        answered = {}

        def enough_answered():
            for i, sock in enumerate(socks):
                if i not in answered:
                    got = recv_some(sock, 0)
                    if got is not None:
                        answered[i] = got
            return len(answered) >= refused
        try:
            harness.wait_until(enough_answered, 10,
                               "%d connections over the limit refused" %
                               refused)
        except BaseException:
            for sock in socks:
                sock.close()
            raise
        return socks, answered

    def test_connection_limit(self):
        s = self.server
        # A connection of an earlier check may still be counted for a
        # moment after the client closed it: then one more of the 20 is
        # refused, and the round is tried again.
        for attempt in range(3):
            harness.wait_until(lambda: alive(s), 10, "the server to answer")
            socks, answered = self.open_idle_connections(20, 12)
            accepted = [sock for i, sock in enumerate(socks)
                        if i not in answered]
            if len(accepted) == 8 or attempt == 2:
                break
            for sock in socks:
                sock.close()
        try:
            for got in answered.values():
                if got:  # a 503 (with Retry-After), else a plain close
                    self.assertTrue(got.startswith(b"HTTP/1.1 503"), got)
                    self.assertIn(b"Retry-After:", got)
                    self.assertIn(b'{"error":', got)
            self.assertEqual(len(accepted), 8)
            # Accepted connections are kept and work.
            self.assertTrue(all(recv_some(sock, 0) is None
                                for sock in accepted))
            accepted[0].sendall(request_bytes("GET", "/v2/health/live"))
            status, _, raw = read_response(accepted[0])
            self.assertEqual(status, 200, raw)
            # Still full: a fresh connection is refused.
            extra = connect(s)
            got = recv_some(extra, 10)
            extra.close()
            self.assertIsNotNone(got, "a 9th connection was kept")
            self.assertTrue(got == b"" or got.startswith(b"HTTP/1.1 503"),
                            got)
            # One closes: a fresh connection is served.
            accepted[1].close()
            harness.wait_until(lambda: alive(s), 10,
                               "a fresh connection to be served")
        finally:
            for sock in socks:
                sock.close()

        # A flood of idle connections leaves memory bounded and the server
        # serving once they go.
        flood = []
        try:
            for _ in range(300):
                flood.append(connect(s))
            self.assert_rss_bounded("300 idle connections")
        finally:
            for sock in flood:
                sock.close()
        harness.wait_until(lambda: alive(s), 15,
                           "the server to serve after the flood")
        self.assert_rss_bounded("the flood")


class TimeoutsTest(unittest.TestCase):
    """--header-timeout-ms 500 --body-timeout-ms 500 --idle-timeout-ms 500:
    slow clients are dropped within a bounded time."""

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        try:
            cls.server = cls.ws.server("--header-timeout-ms", 500,
                                       "--body-timeout-ms", 500,
                                       "--idle-timeout-ms", 500)
        except BaseException:
            cls.ws.close()
            raise

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        cls.ws.close()
        assert code == 0, code

    def assert_dropped(self, sock, started, bound, trickle=b""):
        """Sends `trickle` one byte every 0.25 s (a slow client) until the
        server closes the connection, which must happen within `bound`
        seconds of `started` and without a successful answer."""
        deadline = started + bound
        pending = list(trickle)
        while time.monotonic() < deadline:
            if pending and not send_all_tolerant(sock,
                                                 bytes([pending.pop(0)])):
                break  # reset: dropped
            got = recv_some(sock, 0.25)
            if got is None:
                continue
            if got == b"":
                break
            # An answer is allowed only if it is an error (e.g. 408).
            self.assertFalse(got.startswith(b"HTTP/1.1 2"), got)
        else:
            self.fail("connection still open after %ss" % bound)
        return time.monotonic() - started

    def test_slow_headers_dropped(self):
        started = time.monotonic()
        sock = connect(self.server)
        try:
            elapsed = self.assert_dropped(
                sock, started, 4.0,
                request_bytes("GET", "/v2/health/live",
                              headers={"User-Agent": "slow" * 20}))
        finally:
            sock.close()
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertTrue(alive(self.server))

    def test_slow_body_dropped(self):
        started = time.monotonic()
        sock = connect(self.server)
        try:
            sock.sendall(b"POST /v1/apps/churn/predict HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 1000\r\n\r\n{")
            self.assert_dropped(sock, started, 4.0, b'"records": [' * 40)
        finally:
            sock.close()
        self.assertTrue(alive(self.server))

    def test_idle_keep_alive_closed(self):
        sock = connect(self.server)
        try:
            sock.sendall(request_bytes("GET", "/v2/health/live"))
            status, _, raw = read_response(sock)
            self.assertEqual(status, 200, raw)
            started = time.monotonic()
            self.assertIsNone(recv_some(sock, 0.2), "closed too early")
            self.assert_dropped(sock, started, 4.0)
        finally:
            sock.close()


# --- models: corrupt artifacts, batching, queue limits ---

def churn_spec(ws, rounds, app=APP, endpoint=""):
    return ws.write("app/%s.yaml" % app, datagen.APP_SPEC.format(
        app=app, path="data/customers.csv", rounds=rounds) + endpoint)


class ModelServingTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        try:
            cls.ws.write("app/data/customers.csv",
                         datagen.to_csv(datagen.rows(1000, seed=11)))
            cls.server = cls.ws.server("--threads", 4)
            s = cls.server
            assert harness.train_version(s, churn_spec(cls.ws, 10), APP) == 1
            assert harness.train_version(s, churn_spec(cls.ws, 30), APP) == 2
            status, body = harness.promote(s, APP, 1)
            assert status == 200, body
            # The same data and training parameters as churn v1: the same
            # model bytes, so churn v1 gives the reference predictions.
            assert harness.train_version(s, churn_spec(
                cls.ws, 10, QUEUED, QUEUED_ENDPOINT), QUEUED) == 1
            status, body = harness.promote(s, QUEUED, 1)
            assert status == 200, body
        except BaseException:
            cls.ws.close()
            raise

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        cls.ws.close()
        assert code == 0, code

    def model(self, app, version):
        status, model = self.server.request(
            "GET", "/api/v1/apps/%s/models/%d" % (app, version))
        self.assertEqual(status, 200, model)
        return model

    def predict(self, app, records):
        status, body = self.server.request(
            "POST", "/v1/apps/%s/predict" % app, {"records": records})
        self.assertEqual(status, 200, body)
        return body

    def metrics(self):
        samples = self.server.metrics()
        if samples is None:
            self.fail("GET /metrics is 404: the metrics route is missing")
        return samples

    def test_corrupt_artifact_keeps_serving_v1(self):
        s = self.server
        sha = self.model(APP, 2)["artifact_sha256"]
        self.assertEqual(len(sha), 64)
        path = os.path.join(s.data_dir, "artifacts", "objects", sha[:2],
                            sha[2:])
        with open(path, "rb") as f:
            original = f.read()
        status, serving = s.request("GET", "/api/v1/serving")
        self.assertNotIn(2, [m["version"] for m in serving["models"]
                             if m["app"] == APP], "v2 loaded already")
        os.chmod(path, 0o644)
        with open(path, "wb") as f:
            f.write(b"\x00garbage\xff" * 100)
        try:
            status, body = harness.promote(s, APP, 2)
            self.assertGreaterEqual(status, 400, body)
            self.assertTrue(sha in body["error"] or "v2" in body["error"],
                            body)
            result = s.cli("models", "promote", APP, "2")
            self.assertNotEqual(result.returncode, 0, result.stdout)
            self.assertTrue(sha in result.stderr or "v2" in result.stderr,
                            result.stderr)

            status, serving = s.request("GET", "/api/v1/serving")
            self.assertEqual(status, 200)
            failed = [m for m in serving["models"]
                      if m["app"] == APP and m["version"] == 2]
            self.assertTrue(failed, serving)
            self.assertEqual(failed[-1]["state"], "failed", serving)
            self.assertTrue(failed[-1]["reason"], serving)
            self.assertIn({"app": APP, "version": 1, "state": "ready"},
                          [{k: m[k] for k in ("app", "version", "state")}
                           for m in serving["models"]])

            records = datagen.records(datagen.rows(3, seed=4))
            self.assertEqual(self.predict(APP, records)["model_version"], 1)
            status, body = s.request(
                "POST", "/v2/models/%s/infer" % APP, {"inputs": [
                    {"name": k, "shape": [1],
                     "datatype": "BYTES" if isinstance(v, str) else "FP64",
                     "data": [v]} for k, v in records[0].items()]})
            self.assertEqual(status, 200, body)
            self.assertEqual(body["model_version"], "1")
            status, models = s.request("GET", "/api/v1/apps/%s/models" % APP)
            self.assertEqual(
                [a["version"] for a in models["aliases"]
                 if a["alias"] == "champion"], [1], models["aliases"])
        finally:
            with open(path, "wb") as f:
                f.write(original)
        # Repaired, v2 loads; then back to v1 for the other tests.
        status, body = harness.promote(s, APP, 2)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.predict(APP, records)["model_version"], 2)
        status, body = harness.promote(s, APP, 1)
        self.assertEqual(status, 200, body)

    def test_batches_under_concurrency(self):
        s = self.server
        records = datagen.records(datagen.rows(64, seed=8))
        before = self.metrics()
        clients, per_client = 64, 15
        failures = []

        def client(i):
            conn = s.connection(timeout=60)
            try:
                body = json.dumps({"records": [records[i]]})
                for _ in range(per_client):
                    conn.request("POST", "/v1/apps/%s/predict" % APP,
                                 body=body,
                                 headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    payload = resp.read()
                    if resp.status != 200:
                        failures.append((resp.status, payload))
            except Exception as e:  # reported below
                failures.append(repr(e))
            finally:
                conn.close()
        threads = [threading.Thread(target=client, args=(i,))
                   for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertEqual(failures, [])
        after = self.metrics()
        total = clients * per_client

        def delta(name, **labels):
            return (harness.metric_sum(after, name, **labels) -
                    harness.metric_sum(before, name, **labels))
        self.assertEqual(delta("slipway_requests_total", app=APP,
                               endpoint="predict", status="200"), total)
        self.assertEqual(delta("slipway_request_failures_total", app=APP),
                         0)
        self.assertEqual(delta("slipway_request_duration_seconds_count",
                               app=APP, endpoint="predict"), total)
        self.assertEqual(delta("slipway_batch_rows_sum", app=APP), total)
        self.assertEqual(delta("slipway_batch_requests_sum", app=APP), total)
        self.assertEqual(delta("slipway_queue_wait_seconds_count", app=APP),
                         total)
        batches = delta("slipway_batch_rows_count", app=APP)
        self.assertEqual(delta("slipway_backend_duration_seconds_count",
                               app=APP), batches)
        single = delta("slipway_batch_rows_bucket", app=APP, le="1")
        self.assertLess(single, batches,
                        "every one of %d batches had 1 row" % batches)
        self.assertGreater(total / batches, 1.0)
        self.assertEqual(
            delta("slipway_batch_rows_bucket", app=APP, le="+Inf"), batches)

    def test_metrics_exposition(self):
        s = self.server
        self.predict(APP, datagen.records(datagen.rows(2, seed=9)))
        status, headers, raw = s.call("GET", "/metrics")
        self.assertEqual(status, 200, raw)
        self.assertEqual(headers["content-type"],
                         "text/plain; version=0.0.4; charset=utf-8")
        samples = harness.parse_prometheus(raw.decode())
        self.assertEqual(
            [v for _, v in harness.metric_values(
                samples, "slipway_model_version_state", app=APP,
                version="1", state="ready")], [1.0])
        build = harness.metric_values(samples, "slipway_build_info")
        self.assertEqual([v for _, v in build], [1.0])
        self.assertTrue(build[0][0].get("version"))
        self.assertIn(("slipway_requests_in_flight", frozenset()), samples)

    def test_full_queue_answers_503(self):
        s = self.server
        self.assertEqual(self.model(QUEUED, 1)["artifact_sha256"],
                         self.model(APP, 1)["artifact_sha256"])
        k = QUEUED_ROWS
        rows = datagen.rows(40 * k, seed=12)
        records = datagen.records(rows)
        reference = [p["probabilities"]["1"]
                     for p in self.predict(APP, records)["predictions"]]
        senders = 40
        outcomes = []
        for attempt in range(5):
            conns = [s.connection(timeout=60) for _ in range(senders)]
            for c in conns:
                c.connect()
            barrier = threading.Barrier(senders)
            results = [None] * senders

            def send(i):
                body = json.dumps({"records": records[k * i:k * i + k]})
                barrier.wait(timeout=30)
                try:
                    conns[i].request(
                        "POST", "/v1/apps/%s/predict" % QUEUED, body=body,
                        headers={"Content-Type": "application/json"})
                    resp = conns[i].getresponse()
                    results[i] = (resp.status, resp.getheader("Retry-After"),
                                  parse_body(resp.read()))
                except Exception as e:  # reported below
                    results[i] = (None, None, repr(e))
            threads = [threading.Thread(target=send, args=(i,))
                       for i in range(senders)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            for c in conns:
                c.close()
            outcomes.append(results)
            for i, (status, retry_after, body) in enumerate(results):
                self.assertIn(status, (200, 503), body)
                if status == 503:
                    self.assertIsNotNone(retry_after, body)
                    self.assertGreaterEqual(int(retry_after), 0)
                    self.assertEqual(list(body), ["error"], body)
                else:
                    self.assertEqual(body["model_version"], 1)
                    self.assertEqual(
                        [p["probabilities"]["1"]
                         for p in body["predictions"]],
                        reference[k * i:k * i + k], "request %d" % i)
            if any(r[0] == 503 for r in results):
                break
        statuses = [r[0] for results in outcomes for r in results]
        self.assertIn(503, statuses, "the queue never filled")
        self.assertIn(200, statuses)


# --- SIGTERM with requests in flight ---

class DrainTest(unittest.TestCase):

    def test_sigterm_lets_requests_in_flight_finish(self):
        with harness.Workspace() as ws:
            ws.write("app/data/customers.csv",
                     datagen.to_csv(datagen.rows(600, seed=11)))
            server = ws.server("--threads", 4)
            # Room in the batch queue for all eight requests at once.
            self.assertEqual(harness.train_version(server, churn_spec(
                ws, 20, endpoint=DRAIN_ENDPOINT), APP), 1)
            status, body = harness.promote(server, APP, 1)
            self.assertEqual(status, 200, body)

            rows_per_request = 50000
            body = json.dumps({"records": datagen.records(
                datagen.rows(rows_per_request, seed=13))}).encode()
            requests = 8
            sent = [threading.Event() for _ in range(requests)]
            results = [None] * requests
            conns = [server.connection(timeout=120) for _ in range(requests)]
            for c in conns:
                c.connect()
            client_ports = [c.sock.getsockname()[1] for c in conns]

            def send(i):
                try:
                    conns[i].request(
                        "POST", "/v1/apps/%s/predict" % APP, body=body,
                        headers={"Content-Type": "application/json"})
                    sent[i].set()
                    resp = conns[i].getresponse()
                    payload = resp.read()
                    results[i] = (resp.status, time.monotonic(), payload)
                except Exception as e:  # reported below
                    results[i] = (None, time.monotonic(), repr(e))
                finally:
                    sent[i].set()
                    conns[i].close()
            threads = [threading.Thread(target=send, args=(i,))
                       for i in range(requests)]
            for t in threads:
                t.start()
            port = server.address[1]
            harness.wait_until(lambda: all(e.is_set() for e in sent), 60,
                               "every request to be sent")
            if server.metrics() is not None:
                # Inside a data-plane handler, i.e. read and being served.
                harness.wait_until(
                    lambda: harness.metric_sum(
                        server.metrics(), "slipway_requests_in_flight") >= 1,
                    60, "slipway_requests_in_flight >= 1", interval=0.002)
            else:
                # Without /metrics: the server has read every body (nothing
                # left in the clients' send queues or the server sockets'
                # receive queues), unless its answer already came.
                def bodies_read():
                    waiting = {p for p, r in zip(client_ports, results)
                               if r is None}
                    return unread_bytes(port, waiting) == 0
                harness.wait_until(bodies_read, 60,
                                   "the server to read every request body",
                                   interval=0.002)
            signalled = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            for t in threads:
                t.join(timeout=120)
            code = server.proc.wait(timeout=60)
            server.proc.stdout.close()
            server.proc = None

            self.assertTrue(any(r[1] > signalled for r in results),
                            "every request finished before SIGTERM; the "
                            "test needs slower requests")
            for i, (status, _, payload) in enumerate(results):
                self.assertEqual(status, 200, (i, payload[:300]))
                self.assertEqual(
                    len(json.loads(payload)["predictions"]), rows_per_request)
            self.assertEqual(code, 0)


if __name__ == "__main__":
    unittest.main()
