"""Step 1 lifecycle end to end through the real binary, and prediction
parity: the exported model loaded by python3-xgboost predicts what both
HTTP endpoints answer, within 1e-6."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import datagen  # noqa: E402
import harness  # noqa: E402

import numpy as np  # noqa: E402
import xgboost as xgb  # noqa: E402

APP = "churn"


class LifecycleParityTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.ws.write("app/data/customers.csv",
                     datagen.to_csv(datagen.rows(1500, seed=11)))
        cls.spec = cls.ws.write("app/slipway.yaml", datagen.APP_SPEC.format(
            app=APP, path="data/customers.csv", rounds=60))
        cls.server = cls.ws.server()

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def test_lifecycle_and_parity(self):
        s = self.server
        out = s.cli("apply", self.spec, check=True).stdout
        self.assertIn("app churn revision 1", out)
        self.assertIn("+app: churn", out)
        out = s.cli("apply", self.spec, check=True).stdout
        self.assertIn("unchanged (revision 1)", out)

        run = s.cli("run", APP, "train", "--wait")
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        for step in ("ingest", "validate", "split", "train", "evaluate",
                     "register"):
            self.assertIn("%s: succeeded" % step, run.stdout)

        status, models = s.request("GET", "/api/v1/apps/%s/models" % APP)
        self.assertEqual(status, 200)
        self.assertEqual(len(models["models"]), 1)
        v1 = models["models"][0]
        self.assertEqual(v1["version"], 1)
        self.assertEqual(v1["row_count"], 1500)
        self.assertEqual(len(v1["data_fingerprint"]), 64)
        self.assertGreater(v1["metrics"]["auc"], 0.7)
        for key in ("run_id", "artifact_sha256", "signature", "params",
                    "created_at"):
            self.assertTrue(v1[key], key)
        self.assertIn("v1", s.cli("models", "list", APP, check=True).stdout)

        # Nothing is served before the promotion.
        status, body = s.request("POST", "/v1/apps/%s/predict" % APP,
                                 {"records": datagen.records(
                                     datagen.rows(1, seed=1))})
        self.assertEqual(status, 503, body)
        self.assertIn("champion", body["error"])

        out = s.cli("models", "promote", APP, "1", check=True).stdout
        self.assertIn("champion -> v1", out)
        status, serving = s.request("GET", "/api/v1/serving")
        self.assertEqual(status, 200)
        self.assertIn({"app": APP, "version": 1, "state": "ready"},
                      [{k: m[k] for k in ("app", "version", "state")}
                       for m in serving["models"]])

        export_dir = self.ws.path("export")
        s.cli("models", "export", APP, "1", export_dir, check=True)
        with open(os.path.join(export_dir, "signature.json")) as f:
            signature = json.load(f)
        booster = xgb.Booster(model_file=os.path.join(export_dir,
                                                      "model.json"))

        # 250 fresh rows with missing values and an unseen category.
        rows = datagen.rows(250, seed=99, missing=0.15, unseen=0.05)
        records = datagen.records(rows)
        x = harness.encode(signature, records)
        # The trees hold the categorical splits: a plain float matrix of
        # category codes reproduces them.
        expected = booster.predict(xgb.DMatrix(
            x, missing=np.nan,
            feature_names=[f["name"] for f in signature["features"]]))
        self.assertEqual(expected.shape, (250,))
        self.assertTrue(any(r["region"] == "atlantis" for r in records))
        self.assertTrue(any(v is None for r in records for v in r.values()))

        def check(got, where):
            self.assertEqual(len(got), len(expected), where)
            worst = max(abs(g - e) for g, e in zip(got, expected))
            self.assertLessEqual(worst, 1e-6, where)

        status, body = s.request("POST", "/v1/apps/%s/predict" % APP,
                                 {"records": records})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["model_version"], 1)
        self.assertTrue(body["request_id"])
        check([p["probabilities"]["1"] for p in body["predictions"]],
              "/v1 records")
        labels = [p["label"] for p in body["predictions"]]
        self.assertEqual(labels, [1 if e >= 0.5 else 0 for e in expected])

        columns = [f["name"] for f in signature["features"]]
        status, body = s.request("POST", "/v1/apps/%s/predict" % APP, {
            "columns": columns,
            "data": [[r[c] for c in columns] for r in records]})
        self.assertEqual(status, 200, body)
        check([p["probabilities"]["1"] for p in body["predictions"]],
              "/v1 columns+data")

        csv = datagen.to_csv(rows)
        status, body = s.request("POST", "/v1/apps/%s/predict" % APP, csv,
                                 content_type="text/csv")
        self.assertEqual(status, 200, body)
        check([p["probabilities"]["1"] for p in body["predictions"]],
              "/v1 CSV")

        inputs = []
        for f in signature["features"]:
            values = [r[f["name"]] for r in records]
            if f["type"] == "string":
                inputs.append({"name": f["name"], "datatype": "BYTES",
                               "shape": [len(values)],
                               "data": ["" if v is None else v
                                        for v in values]})
            else:
                inputs.append({"name": f["name"], "datatype": "FP64",
                               "shape": [len(values)],
                               "data": [float("nan") if v is None else v
                                        for v in values]})
        status, body = s.request(
            "POST", "/v2/models/%s/infer" % APP,
            json.dumps({"id": "parity-1", "inputs": inputs}).replace(
                "NaN", "null"))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["id"], "parity-1")
        self.assertEqual(body["model_version"], "1")
        probs = next(o for o in body["outputs"]
                     if o["name"] == "probabilities")
        self.assertEqual(probs["shape"], [250, 2])
        check(probs["data"][1::2], "/v2 infer")

        status, meta = s.request("GET", "/v2/models/%s" % APP)
        self.assertEqual(status, 200)
        self.assertEqual([i["name"] for i in meta["inputs"]], columns)
        self.assertEqual(s.request("GET", "/v2/health/ready")[0], 200)

        self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main()
