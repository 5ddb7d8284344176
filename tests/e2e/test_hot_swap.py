"""Hot swap under load: 16 keep-alive clients send single-row /v1
predictions without pause while `champion` moves 50 times between two
versions. No request fails, every answer is the prediction of the version
it names, and every request started after a promotion returned (and before
the next one started) is answered by the promoted version."""

import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import datagen  # noqa: E402
import harness  # noqa: E402

APP = "churn"
CLIENTS = 16
PROMOTIONS = 50


class Client(threading.Thread):
    """Sends the same one-row request on one keep-alive connection until
    told to stop; records (start, end, status, version, p1) per request."""

    def __init__(self, server, body, stop):
        super().__init__(daemon=True)
        self.server = server
        self.body = body
        self.stop = stop
        self.results = []
        self.error = None

    def run(self):
        conn = self.server.connection(timeout=30)
        path = "/v1/apps/%s/predict" % APP
        headers = {"Content-Type": "application/json"}
        try:
            while not self.stop.is_set():
                start = time.monotonic()
                conn.request("POST", path, body=self.body, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                end = time.monotonic()
                version, p1 = None, None
                if resp.status == 200:
                    answer = json.loads(payload)
                    version = answer["model_version"]
                    p1 = answer["predictions"][0]["probabilities"]["1"]
                    if resp.getheader("X-Model-Version") != str(version):
                        raise AssertionError(
                            "X-Model-Version %r but body says %r" %
                            (resp.getheader("X-Model-Version"), version))
                self.results.append((start, end, resp.status, version, p1,
                                     payload if resp.status != 200 else None))
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = self.server.connection(timeout=30)
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            conn.close()


def serving_during(promotions, initial, start, end):
    """The versions that may have served at some instant of [start, end],
    given (version, started, returned) per promotion: a promotion takes
    effect somewhere between its start and its return."""
    segments = []  # (from, to, versions)
    previous, since = initial, float("-inf")
    for version, started, returned in promotions:
        segments.append((since, started, {previous}))
        segments.append((started, returned, {previous, version}))
        previous, since = version, returned
    segments.append((since, float("inf"), {previous}))
    out = set()
    for lo, hi, versions in segments:
        if lo <= end and start <= hi:
            out |= versions
    return out


class HotSwapTest(unittest.TestCase):

    def test_champion_moves_under_load(self):
        with harness.Workspace() as ws:
            ws.write("app/data/customers.csv",
                     datagen.to_csv(datagen.rows(1000, seed=11)))
            path = ws.write("app/slipway.yaml", datagen.APP_SPEC.format(
                app=APP, path="data/customers.csv", rounds=10))
            server = ws.server()
            self.assertEqual(harness.train_version(server, path, APP), 1)
            path = ws.write("app/slipway.yaml", datagen.APP_SPEC.format(
                app=APP, path="data/customers.csv", rounds=40))
            self.assertEqual(harness.train_version(server, path, APP), 2)

            # A row the two versions answer differently.
            record = datagen.records(datagen.rows(1, seed=3, missing=0))[0]
            body = json.dumps({"records": [record]})
            expected = {}
            for version in (2, 1):
                status, answer = harness.promote(server, APP, version)
                self.assertEqual(status, 200, answer)
                status, answer = server.request(
                    "POST", "/v1/apps/%s/predict" % APP, body)
                self.assertEqual(status, 200, answer)
                self.assertEqual(answer["model_version"], version)
                expected[version] = \
                    answer["predictions"][0]["probabilities"]["1"]
            self.assertNotEqual(expected[1], expected[2])

            stop = threading.Event()
            clients = [Client(server, body, stop) for _ in range(CLIENTS)]
            for c in clients:
                c.start()
            # (version, started, returned) per promotion.
            promotions = []
            admin = server.connection(timeout=60)
            try:
                harness.wait_until(
                    lambda: all(c.results or c.error for c in clients), 30,
                    "every client to get a first answer")
                for i in range(PROMOTIONS):
                    version = 2 if i % 2 == 0 else 1
                    started = time.monotonic()
                    admin.request(
                        "PUT", "/api/v1/apps/%s/aliases/champion" % APP,
                        body=json.dumps({"version": version}),
                        headers={"Content-Type": "application/json"})
                    resp = admin.getresponse()
                    answer = resp.read()
                    returned = time.monotonic()
                    self.assertEqual(resp.status, 200, answer)
                    promotions.append((version, started, returned))
                    # Let a request start and finish between this promotion
                    # and the next, so every promotion is observed.
                    harness.wait_until(
                        lambda: any(r[0] > returned
                                    for c in clients for r in c.results[-3:]),
                        30, "a request after promotion %d" % i,
                        interval=0.001)
                    self.assertFalse([c.error for c in clients if c.error])
            finally:
                stop.set()
                for c in clients:
                    c.join(timeout=60)
                admin.close()

            errors = [c.error for c in clients if c.error]
            self.assertEqual(errors, [])
            results = sorted(r for c in clients for r in c.results)
            failed = [(r[2], r[5]) for r in results if r[2] // 100 != 2]
            self.assertEqual(failed, [], "non-2xx answers")
            self.assertEqual({r[3] for r in results}, {1, 2})
            for start, end, status, version, p1, _ in results:
                self.assertEqual(p1, expected[version],
                                 "answer claims v%d" % version)

            # Stable windows: between promotion i returning and promotion
            # i+1 starting, only v_i serves. A request wholly inside one is
            # answered by v_i; the first of them proves the swap happened
            # before the promotion returned.
            for i, (version, started, returned) in enumerate(promotions):
                next_start = (promotions[i + 1][1] if i + 1 < len(promotions)
                              else float("inf"))
                inside = [r for r in results
                          if returned < r[0] and r[1] < next_start]
                self.assertTrue(inside, "no request after promotion %d" % i)
                self.assertEqual(
                    inside[0][3], version,
                    "first request after promotion %d (to v%d)" % (i, version))
                self.assertEqual(
                    {r[3] for r in inside}, {version},
                    "requests between promotion %d (to v%d) and the next" %
                    (i, version))
            # Every answer comes from a version that served at some moment
            # of the request.
            for start, end, _, version, _, _ in results:
                self.assertIn(version, serving_during(promotions, 1, start,
                                                      end))

            status, serving = server.request("GET", "/api/v1/serving")
            self.assertEqual(status, 200)
            served = [m for m in serving["models"]
                      if m["app"] == APP and m["state"] == "ready"]
            self.assertEqual([m["version"] for m in served],
                             [promotions[-1][0]])
            self.assertGreater(len(results), PROMOTIONS * 2)
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
