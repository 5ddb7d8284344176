"""Step-3 pipelines through the real binary on CSV data (no PostgreSQL):
transform parity between batch scoring and HTTP serving, step caching,
command steps that fail and retry, event triggers, and following a running
step's log."""

import csv
import datetime
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import datagen  # noqa: E402
import harness  # noqa: E402

FEATURES = [h for h in datagen.HEADER if h not in ("customer_id", "churned")]

PARITY_SPEC = """app: parity
data:
  customers: {connector: csv, path: data/customers.csv}
  fresh: {connector: csv, path: data/fresh.csv}
  scored: {connector: csv, path: data/scored.csv}
schema: {target: churned, id: customer_id, task: binary_classification}
pipelines:
  train:
    steps:
      - ingest: {source: customers}
      - split: {test_fraction: 0.2, seed: 7, stratify: true}
      - transform:
          impute: {numeric: median, categorical: most_frequent}
          encode: onehot
          standardize: true
      - train: {rounds: 40, max_depth: 4, eta: 0.2, seed: 3, threads: 1}
      - evaluate: {metrics: [auc, logloss]}
      - register: {alias: champion}
  score:
    kind: score
    steps:
      - score: {source: fresh, model: champion, sink: scored, keep: [customer_id]}
"""

CACHE_SPEC = """app: cachey
data:
  customers: {{connector: csv, path: data/customers.csv}}
schema: {{target: churned, id: customer_id, task: binary_classification}}
pipelines:
  train:
    steps:
      - ingest: {{source: customers}}
      - validate: {{max_null_fraction: 0.3, min_rows: 100}}
      - split: {{test_fraction: 0.25, seed: 11}}
      - transform: {{impute: {{numeric: mean, categorical: most_frequent}}}}
      - train: {{rounds: {rounds}, max_depth: 3, eta: 0.3, seed: 1, threads: 1}}
      - evaluate: {{}}
      - register: {{}}
"""

COMMAND_SPEC = """app: cmds
pipelines:
  fail:
    kind: check
    steps:
      - command: {run: "echo preparing the report; echo disk is full >&2; exit 3"}
        name: boom
  flaky:
    kind: check
    steps:
      - command: {run: [/usr/bin/python3, flaky.py]}
        name: flaky
        retries: 1
        retry_backoff: 100ms
"""

FLAKY_PY = """import os, sys
state = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flaky.state")
if not os.path.exists(state):
    open(state, "w").close()
    print("attempt 1: failing on purpose", flush=True)
    sys.exit(1)
print("attempt 2: fine", flush=True)
"""

EVENT_SPEC = """app: eventy
pipelines:
  refresh:
    kind: check
    trigger: {on: [new_data]}
    steps:
      - command: {run: "echo refreshed"}
        name: refresh
  nightly:
    kind: check
    trigger: {on: [drift]}
    steps:
      - command: {run: "echo nightly"}
"""

FOLLOW_SPEC = """app: tail
pipelines:
  slow:
    kind: check
    steps:
      - command: {run: [/usr/bin/python3, slow.py]}
        name: slow
"""

# Prints a line, then waits (bounded) for the test to create go-<n> before
# the next one: a line can only reach the test while the step is running.
SLOW_PY = """import os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
for n in (1, 2, 3):
    print("line %d" % n, flush=True)
    marker = os.path.join(here, "go-%d" % n)
    deadline = time.monotonic() + 120
    while not os.path.exists(marker):
        if time.monotonic() > deadline:
            print("gave up waiting for " + marker, flush=True)
            sys.exit(2)
        time.sleep(0.01)
print("all lines written", flush=True)
"""


def timestamp(text):
    """Seconds since the epoch of an API time ("2026-11-27T16:07:32.236Z")."""
    return datetime.datetime.fromisoformat(
        text.replace("Z", "+00:00")).timestamp()


class PipelinesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.server = cls.ws.server()

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def cli(self, *args, check=True):
        return self.server.cli(*args, check=check)

    def run_json(self, run_id):
        return json.loads(self.cli("--json", "runs", "show", run_id).stdout)

    def start_run(self, app, pipeline):
        status, run = self.server.request(
            "POST", "/api/v1/apps/%s/runs" % app, {"pipeline": pipeline})
        self.assertEqual(status, 201, run)
        return run["id"]

    def run_wait(self, app, pipeline):
        """`slipway run APP PIPELINE --wait`; returns (result, run id)."""
        result = self.cli("run", app, pipeline, "--wait", check=False)
        m = re.search(r"^run (\S+) \(", result.stdout, re.M)
        self.assertIsNotNone(m, result.stdout + result.stderr)
        return result, m.group(1)

    @staticmethod
    def steps(run):
        return {s["name"]: s for s in run["steps"]}

    # --- transform parity -------------------------------------------------

    def test_transform_parity(self):
        app_dir = self.ws.path("parity")
        self.ws.write("parity/data/customers.csv",
                      datagen.to_csv(datagen.rows(1200, seed=5,
                                                  missing=0.12)))
        fresh = datagen.rows(300, seed=77, missing=0.15, unseen=0.05)
        lines = [",".join(["customer_id"] + FEATURES)]
        for r in fresh:
            lines.append(",".join("" if v is None else str(v)
                                  for v in r[:-1]))
        self.ws.write("parity/data/fresh.csv", "\n".join(lines) + "\n")
        spec = self.ws.write("parity/slipway.yaml", PARITY_SPEC)
        self.cli("apply", spec)

        result, train_id = self.run_wait("parity", "train")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("transform: succeeded", result.stdout)
        status, version = self.server.request(
            "GET", "/api/v1/apps/parity/models/1")
        self.assertEqual(status, 200, version)
        # Serving takes raw features: the transform is part of the version.
        self.assertEqual(sorted(f["name"] for f in
                                version["signature"]["features"]),
                         sorted(FEATURES))
        # ...while the trees see the transformed columns (one-hot).
        self.assertTrue(os.path.isfile(os.path.join(
            self.ws.data_dir, "runs", train_id, "transform",
            "transform.json")))
        export_dir = self.ws.path("parity-export")
        self.cli("models", "export", "parity", "1", export_dir)
        with open(os.path.join(export_dir, "model.json")) as f:
            trees_see = json.load(f)["learner"]["feature_names"]
        self.assertGreater(len(trees_see), len(FEATURES), trees_see)

        result, score_id = self.run_wait("parity", "score")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        with open(os.path.join(app_dir, "data", "scored.csv")) as f:
            scored = list(csv.DictReader(f))
        self.assertEqual(len(scored), len(fresh))
        self.assertEqual(list(scored[0].keys()),
                         ["customer_id", "prediction", "probability",
                          "model_version"])
        self.assertEqual([int(r["customer_id"]) for r in scored],
                         [r[0] for r in fresh])

        records = datagen.records(fresh)
        self.assertTrue(any(r["region"] == "atlantis" for r in records))
        self.assertTrue(any(v is None for r in records for v in r.values()))
        body = harness.wait_until(
            lambda: self.ok_predict("parity", records), 60,
            "parity v1 to serve")
        self.assertEqual(body["model_version"], 1)
        served = [p["probabilities"]["1"] for p in body["predictions"]]
        worst = max(abs(float(r["probability"]) - p)
                    for r, p in zip(scored, served))
        self.assertLessEqual(worst, 1e-6)
        print("%d rows; worst |score - HTTP| %.3g" % (len(scored), worst))
        self.assertEqual([int(r["prediction"]) for r in scored],
                         [int(p["label"]) for p in body["predictions"]])

    def ok_predict(self, app, records):
        status, body = self.server.request(
            "POST", "/v1/apps/%s/predict" % app, {"records": records})
        if status == 503:
            return None
        self.assertEqual(status, 200, body)
        return body

    # --- step caching -----------------------------------------------------

    def test_step_caching(self):
        self.ws.write("cachey/data/customers.csv",
                      datagen.to_csv(datagen.rows(800, seed=21)))
        spec = self.ws.write("cachey/slipway.yaml",
                             CACHE_SPEC.format(rounds=20))
        self.cli("apply", spec)
        cacheable = ("validate", "split", "transform", "train", "evaluate")

        first, run1 = self.run_wait("cachey", "train")
        self.assertEqual(first.returncode, 0, first.stdout + first.stderr)
        for step in self.steps(self.run_json(run1)).values():
            self.assertFalse(step["cached_from_run"], step)

        second, run2 = self.run_wait("cachey", "train")
        self.assertEqual(second.returncode, 0, second.stdout + second.stderr)
        steps = self.steps(self.run_json(run2))
        for name in cacheable:
            self.assertEqual(steps[name]["state"], "succeeded", steps[name])
            self.assertEqual(steps[name]["cached_from_run"], run1,
                             steps[name])
        for name in ("ingest", "register"):  # they never reuse
            self.assertFalse(steps[name]["cached_from_run"], steps[name])
        self.assertIn("reused from " + run1,
                      self.cli("runs", "show", run2).stdout)

        # A new train param: the steps before train are reused, train and
        # everything after it run again.
        with open(spec, "w") as f:
            f.write(CACHE_SPEC.format(rounds=25))
        self.assertIn("revision 2", self.cli("apply", spec).stdout)
        third, run3 = self.run_wait("cachey", "train")
        self.assertEqual(third.returncode, 0, third.stdout + third.stderr)
        steps = self.steps(self.run_json(run3))
        for name in ("validate", "split", "transform"):
            self.assertIn(steps[name]["cached_from_run"], (run1, run2),
                          steps[name])
        for name in ("ingest", "train", "evaluate", "register"):
            self.assertEqual(steps[name]["state"], "succeeded", steps[name])
            self.assertFalse(steps[name]["cached_from_run"], steps[name])
        status, models = self.server.request("GET",
                                             "/api/v1/apps/cachey/models")
        self.assertEqual(status, 200, models)
        self.assertEqual(len(models["models"]), 3)

    # --- command steps ----------------------------------------------------

    def apply_commands(self):
        if not os.path.exists(self.ws.path("cmds", "slipway.yaml")):
            self.ws.write("cmds/flaky.py", FLAKY_PY)
            self.cli("apply", self.ws.write("cmds/slipway.yaml",
                                            COMMAND_SPEC))

    def test_command_failure(self):
        self.apply_commands()
        result, run_id = self.run_wait("cmds", "fail")
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertIn("boom", result.stderr)
        run = self.run_json(run_id)
        self.assertEqual(run["state"], "failed", run)
        step = self.steps(run)["boom"]
        self.assertEqual(step["state"], "failed", step)
        self.assertIn("exited with status 3", step["message"])
        self.assertEqual(step["attempts"], 1, step)
        self.assertIn("step 'boom' failed", run["reason"])
        self.assertIn("exited with status 3", result.stderr)
        logs = self.cli("runs", "logs", run_id, "boom").stdout
        self.assertIn("preparing the report", logs)
        self.assertIn("disk is full", logs)

    def test_command_retry(self):
        self.apply_commands()
        result, run_id = self.run_wait("cmds", "flaky")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        step = self.steps(self.run_json(run_id))["flaky"]
        self.assertEqual(step["state"], "succeeded", step)
        self.assertEqual(step["attempts"], 2, step)
        logs = self.cli("runs", "logs", run_id, "flaky").stdout
        self.assertIn("attempt 1: failing on purpose", logs)
        self.assertIn("attempt 2: fine", logs)
        # The second attempt waited for the backoff.
        took = (timestamp(step["finished_at"]) -
                timestamp(step["started_at"]))
        self.assertGreaterEqual(took, 0.1, step)

    # --- events -----------------------------------------------------------

    def test_event_fires_pipeline(self):
        self.cli("apply", self.ws.write("eventy/slipway.yaml", EVENT_SPEC))
        out = self.cli("events", "fire", "eventy", "new_data").stdout
        m = re.search(r"started run (\S+) of pipeline refresh", out)
        self.assertIsNotNone(m, out)
        run = self.server.wait_for_run(m.group(1), timeout=120)
        self.assertEqual(run["state"], "succeeded", run)
        status, runs = self.server.request("GET", "/api/v1/apps/eventy/runs")
        self.assertEqual(status, 200, runs)
        self.assertEqual([r["pipeline"] for r in runs["runs"]], ["refresh"])
        self.assertIn("refreshed", self.cli("runs", "logs", m.group(1),
                                            "refresh").stdout)
        out = self.cli("events", "fire", "eventy", "kpi_decay").stdout
        self.assertIn("no pipeline of eventy is triggered by kpi_decay", out)

    # --- runs logs -f -----------------------------------------------------

    def test_logs_follow(self):
        app_dir = self.ws.path("tail")
        self.ws.write("tail/slow.py", SLOW_PY)
        self.cli("apply", self.ws.write("tail/slipway.yaml", FOLLOW_SPEC))
        run_id = self.start_run("tail", "slow")
        env = dict(os.environ, SLIPWAY_SERVER=self.server.url)
        proc = subprocess.Popen([harness.BINARY, "runs", "logs", "-f", run_id,
                                 "slow"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        lines = queue.Queue()

        def pump():
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        seen = []

        def wait_line(text, timeout=120):
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %r from runs logs -f; got %r" %
                                         (text, seen))
                try:
                    line = lines.get(timeout=left)
                except queue.Empty:
                    continue
                if line is None:
                    raise AssertionError("runs logs -f ended before %r; "
                                         "got %r" % (text, seen))
                seen.append(line)
                if line == text:
                    return

        try:
            for n in (1, 2, 3):
                wait_line("line %d" % n)
                # The program waits for go-<n>: the line came while it ran.
                status, run = self.server.request("GET",
                                                  "/api/v1/runs/" + run_id)
                self.assertEqual(run["state"], "running", run)
                with open(os.path.join(app_dir, "go-%d" % n), "w"):
                    pass
            wait_line("all lines written")
            proc.wait(timeout=60)
        finally:
            # Whatever happened, let the program finish.
            for n in (1, 2, 3):
                with open(os.path.join(app_dir, "go-%d" % n), "w"):
                    pass
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(timeout=10)
            stderr = proc.stderr.read()
            proc.stdout.close()
            proc.stderr.close()
        self.assertEqual(proc.returncode, 0, stderr)
        run = self.server.wait_for_run(run_id, timeout=1)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(seen[0], "==> slow (command) <==")


if __name__ == "__main__":
    unittest.main()
