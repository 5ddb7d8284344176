"""The churn-postgres example end to end: a real PostgreSQL holds the
customer history and today's customers; Slipway applies
examples/churn-postgres, trains with the example's Jupyter notebook,
registers the champion, scores the customers from a PostgreSQL query into a
PostgreSQL table, and the scored table matches, row by row, python3-xgboost
predictions of the model exported with `slipway models export`. The
connection password reaches the server only through `env:` and is found
nowhere Slipway writes."""

import io
import json
import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import pg  # noqa: E402

import numpy as np  # noqa: E402
import xgboost as xgb  # noqa: E402

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                       "examples", "churn-postgres")
sys.path.insert(0, EXAMPLE)
import generate  # noqa: E402

APP = "churn-postgres"
HISTORY_ROWS = 3000
CUSTOMER_ROWS = 1200


def csv_text(kind, rows):
    out = io.StringIO()
    generate.write_csv(kind, rows, out)
    return out.getvalue()


@unittest.skipUnless(pg.available(),
                     "needs Debian's postgresql-15 (/usr/lib/postgresql/15)")
class ExamplePostgresTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pg = pg.PostgresServer(user="churn_app", database="shop").start()
        cls.ws = harness.Workspace()
        try:
            cls.app_dir = cls.ws.path("churn-postgres")
            shutil.copytree(EXAMPLE, cls.app_dir,
                            ignore=shutil.ignore_patterns("__pycache__"))
            cls.pg.superuser_file(os.path.join(cls.app_dir, "schema.sql"))
            cls.pg.superuser_sql(
                "GRANT SELECT ON customer_history, customers TO churn_app")
            cls.history = generate.rows("history", HISTORY_ROWS, seed=1)
            cls.customers = generate.rows("customers", CUSTOMER_ROWS, seed=2)
            for table, kind, rows in (("customer_history", "history",
                                       cls.history),
                                      ("customers", "customers",
                                       cls.customers)):
                cls.pg.copy_csv(table, csv_text(kind, rows))
            # The secrets reach the server's environment only: not the CLI
            # calls, not the spec, not a command line.
            os.environ["CHURN_PG_URL"] = cls.pg.url
            os.environ["CHURN_PG_PASSWORD"] = cls.pg.password
            try:
                cls.server = cls.ws.server()
            finally:
                del os.environ["CHURN_PG_URL"]
                del os.environ["CHURN_PG_PASSWORD"]
        except BaseException:
            cls.ws.close()
            cls.pg.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()
        cls.pg.stop()

    def run_json(self, run_id):
        out = self.server.cli("--json", "runs", "show", run_id, check=True)
        return json.loads(out.stdout)

    def run_id_of(self, pipeline):
        status, runs = self.server.request("GET",
                                           "/api/v1/apps/%s/runs" % APP)
        self.assertEqual(status, 200, runs)
        ids = [r["id"] for r in runs["runs"] if r["pipeline"] == pipeline]
        self.assertEqual(len(ids), 1, runs)
        return ids[0]

    def test_example_end_to_end(self):
        s = self.server
        spec = os.path.join(self.app_dir, "slipway.yaml")
        out = s.cli("apply", spec, check=True).stdout
        self.assertIn("app %s revision 1" % APP, out)

        # --- train: PostgreSQL -> validate -> notebook -> register ---
        train = s.cli("run", APP, "train", "--wait")
        self.assertEqual(train.returncode, 0, train.stdout + train.stderr)
        for step in ("ingest", "validate", "fit", "register"):
            self.assertIn("%s: succeeded" % step, train.stdout)
        train_id = self.run_id_of("train")

        status, models = s.request("GET", "/api/v1/apps/%s/models" % APP)
        self.assertEqual(status, 200, models)
        self.assertEqual([m["version"] for m in models["models"]], [1])
        v1 = models["models"][0]
        self.assertEqual(v1["run_id"], train_id)
        self.assertIn("champion", v1["aliases"])
        # metrics.json written by the notebook is stored with the version.
        self.assertGreater(v1["metrics"]["auc"], 0.6, v1["metrics"])
        self.assertIn("logloss", v1["metrics"])

        # The executed notebook is kept in the run directory, with the
        # injected parameters and the cells' outputs.
        executed = os.path.join(self.ws.data_dir, "runs", train_id, "fit",
                                "executed.ipynb")
        self.assertTrue(os.path.isfile(executed), executed)
        with open(executed) as f:
            nb = json.load(f)
        code = ["".join(c["source"]) for c in nb["cells"]
                if c["cell_type"] == "code"]
        injected = [c for c in nb["cells"] if "injected-parameters" in
                    c.get("metadata", {}).get("tags", [])]
        self.assertEqual(len(injected), 1, code)
        self.assertIn("rounds = 120", "".join(injected[0]["source"]))
        outputs = [o for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", [])]
        self.assertTrue(any("test AUC" in "".join(o.get("text", ""))
                            for o in outputs), outputs)

        # The notebook's events appear with the run.
        run = self.run_json(train_id)
        events = {(e["step"], e["type"], e["name"]): e for e in run["events"]}
        self.assertIn(("fit", "metric", "val_auc"), events, run["events"])
        self.assertAlmostEqual(events[("fit", "metric", "val_auc")]["value"],
                               v1["metrics"]["auc"], places=5)
        self.assertEqual(
            events[("fit", "stat", "history_rows")]["value"], HISTORY_ROWS)
        shown = s.cli("runs", "show", train_id, check=True).stdout
        self.assertIn("val_auc", shown)

        # --- nightly score: PostgreSQL query -> champion -> PostgreSQL ---
        score = s.cli("run", APP, "nightly_score", "--wait")
        self.assertEqual(score.returncode, 0, score.stdout + score.stderr)
        self.assertIn("score: succeeded", score.stdout)
        score_id = self.run_id_of("nightly_score")

        scored = self.pg.query("SELECT * FROM churn_scores "
                               "ORDER BY customer_id")
        self.assertEqual(len(scored), CUSTOMER_ROWS)
        self.assertEqual(list(scored[0].keys()),
                         ["customer_id", "prediction", "probability",
                          "model_version"])

        export_dir = self.ws.path("export")
        s.cli("models", "export", APP, "1", export_dir, check=True)
        with open(os.path.join(export_dir, "signature.json")) as f:
            signature = json.load(f)
        self.assertEqual([f["name"] for f in signature["features"]],
                         generate.FEATURES)
        plan = next(f for f in signature["features"] if f["name"] == "plan")
        self.assertEqual(plan["categories"], sorted(generate.PLANS))
        booster = xgb.Booster(model_file=os.path.join(export_dir,
                                                      "model.json"))
        records = [dict(zip(generate.CUSTOMER_COLUMNS, r))
                   for r in self.customers]
        self.assertTrue(any(r["monthly_spend"] is None for r in records))
        self.assertTrue(any(r["contract"] is None for r in records))
        expected = booster.predict(xgb.DMatrix(
            harness.encode(signature, records), missing=np.nan,
            feature_names=[f["name"] for f in signature["features"]]))

        worst = 0.0
        for record, row, p in zip(records, scored, expected):
            self.assertEqual(int(row["customer_id"]), record["customer_id"])
            self.assertEqual(int(row["model_version"]), 1, row)
            got = float(row["probability"])
            worst = max(worst, abs(got - p))
            self.assertLessEqual(abs(got - p), 1e-6,
                                 "customer %s: scored %r, python3-xgboost %r"
                                 % (row["customer_id"], got, p))
            self.assertEqual(int(row["prediction"]), 1 if p >= 0.5 else 0,
                             row)
        print("scored %d rows; worst |difference| %.3g" % (len(scored), worst))

        # --- the password is nowhere Slipway writes or prints ---
        # (It did reach PostgreSQL: the app's role logs in over TCP with
        # scram-sha-256, so both pipelines would have failed without it.)
        secret = self.pg.password
        texts = {"server log": s.log()}
        for run_id in (train_id, score_id):
            for args in (("runs", "show", run_id),
                         ("--json", "runs", "show", run_id),
                         ("runs", "logs", run_id)):
                texts[" ".join(args)] = s.cli(*args, check=True).stdout
        texts["apps show"] = s.cli("apps", "show", APP, check=True).stdout
        texts["runs list"] = s.cli("--json", "runs", "list", APP,
                                   check=True).stdout
        for where, text in texts.items():
            self.assertNotIn(secret, text, where)
        self.assertTrue(texts["runs logs %s" % train_id].strip())

        files = 0
        for root, _, names in os.walk(self.ws.data_dir):
            for name in names:
                path = os.path.join(root, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                files += 1
                self.assertNotIn(secret.encode(), data, path)
        self.assertTrue(os.path.isfile(os.path.join(self.ws.data_dir,
                                                    "slipway.db")))
        self.assertGreater(files, 10)
        self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main()
