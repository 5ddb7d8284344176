"""Crash recovery: SIGKILL the server while step `train` runs, restart it;
the run is `failed` with reason `interrupted`, the store passes
PRAGMA integrity_check, no temporary artifact file is left, and a new run
succeeds."""

import os
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import datagen  # noqa: E402
import harness  # noqa: E402

APP = "churn"

QUICK = """
  quick:
    kind: train
    steps:
      - ingest:   {source: customers}
      - split:    {test_fraction: 0.2, seed: 7}
      - train:    {objective: "binary:logistic", rounds: 5, threads: 1}
      - evaluate: {}
      - register: {}
"""


class CrashTest(unittest.TestCase):

    def test_kill_during_train(self):
        with harness.Workspace() as ws:
            ws.write("app/data/customers.csv",
                     datagen.to_csv(datagen.rows(20000, seed=2)))
            # Long enough training that the kill lands inside it.
            spec = datagen.APP_SPEC.format(
                app=APP, path="data/customers.csv", rounds=20000).replace(
                    "max_depth: 4", "max_depth: 10") + QUICK
            path = ws.write("app/slipway.yaml", spec)
            server = ws.server()
            server.cli("apply", path, check=True)
            status, run = server.request("POST", "/api/v1/apps/%s/runs" % APP,
                                         {"pipeline": "train"})
            self.assertEqual(status, 201, run)

            def train_running(r):
                return any(s["name"] == "train" and s["state"] == "running"
                           for s in r["steps"])
            server.wait_for_run(run["id"], until=train_running)
            server.kill()

            server = ws.server()
            status, after = server.request("GET",
                                           "/api/v1/runs/" + run["id"])
            self.assertEqual(status, 200)
            self.assertEqual(after["state"], "failed")
            self.assertEqual(after["reason"], "interrupted")
            train = next(s for s in after["steps"] if s["name"] == "train")
            self.assertEqual(train["state"], "failed")

            db = sqlite3.connect(os.path.join(ws.data_dir, "slipway.db"))
            try:
                self.assertEqual(
                    db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            finally:
                db.close()
            tmp = os.path.join(ws.data_dir, "artifacts", "tmp")
            leftovers = os.listdir(tmp) if os.path.isdir(tmp) else []
            self.assertEqual(leftovers, [])

            result = server.cli("run", APP, "quick", "--wait")
            self.assertEqual(result.returncode, 0,
                             result.stdout + result.stderr)
            status, models = server.request("GET",
                                            "/api/v1/apps/%s/models" % APP)
            self.assertEqual([m["version"] for m in models["models"]], [1])
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
