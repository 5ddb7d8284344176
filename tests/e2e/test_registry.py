"""Registry end to end through the real binary: lineage on every version
(shown by the API, `models show` and MODEL_CARD.md), `models diff`, alias
moves recorded in the alias history (several in one transaction), export
paths that would leave their folder, and import of models trained by
python3-xgboost (a plain JSON file and an MLflow model directory holding
UBJSON), served with predictions equal to python3-xgboost's within 1e-6.
Bad imports fail with their message and change nothing in the store."""

import base64
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import datagen  # noqa: E402
import harness  # noqa: E402

import pandas as pd  # noqa: E402
import xgboost as xgb  # noqa: E402

APP = "churn"
IMPORTED = "imported"
FEATURES = ["age", "income", "tenure", "plan", "region", "support_calls"]
USE_CASE = """use_case:
  problem: which customers will leave next month
  integration: [rest, batch]
  owner: growth-team
  business_kpi: retained_revenue
"""

MLMODEL = """artifact_path: model
flavors:
  python_function:
    data: model.ubj
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.xgboost
    python_version: 3.11.2
  xgboost:
    code: null
    data: model.ubj
    model_class: xgboost.core.Booster
    model_format: ubj
    xgb_version: {version}
mlflow_version: 2.9.2
model_uuid: 0b6b3f5e2a8c4d7f9e1a2b3c4d5e6f70
utc_time_created: '2026-11-27 16:00:00.000000'
"""


def frame(rows):
    """Feature rows as pandas gives them to XGBoost (categories sorted)."""
    df = pd.DataFrame(rows, columns=datagen.HEADER)
    x = df[FEATURES].copy()
    for name, values in (("plan", datagen.PLANS), ("region", datagen.REGIONS)):
        x[name] = pd.Categorical(x[name], categories=sorted(values))
    for name in ("age", "income"):
        x[name] = x[name].astype("float64")
    return x, df["churned"]


TRAIN_PY = """import os
import pandas as pd
import xgboost as xgb

data = pd.read_csv(os.path.join(os.environ["SLIPWAY_INPUT_DIR"], "ingest",
                                "data.csv"))
features = ["age", "income", "tenure", "support_calls"]
booster = xgb.train({"objective": "binary:logistic", "max_depth": 3,
                     "nthread": 1},
                    xgb.DMatrix(data[features], label=data["churned"]), 10)
model_dir = os.path.join(os.environ["SLIPWAY_OUTPUT_DIR"], "model")
os.makedirs(model_dir)
booster.save_model(os.path.join(model_dir, "model.json"))
with open(os.path.join(model_dir, "model.yaml"), "w") as f:
    f.write("format: xgboost\\n")
"""

COMMAND_SPEC = """app: scripted
data:
  customers: {connector: csv, path: customers.csv}
schema: {target: churned, id: customer_id, task: binary_classification}
pipelines:
  train:
    steps:
      - ingest: {source: customers}
      - command: {run: [/usr/bin/python3, train.py]}
        name: fit
      - register: {}
"""


class RegistryTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.ws.write("app/data/customers.csv",
                     datagen.to_csv(datagen.rows(800, seed=21)))
        spec = datagen.APP_SPEC.format(app=APP, path="data/customers.csv",
                                       rounds=20)
        cls.spec = cls.ws.write("app/slipway.yaml", spec + USE_CASE)
        cls.spec2 = cls.ws.write(
            "app2/slipway.yaml",
            datagen.APP_SPEC.format(app=APP, path="../app/data/customers.csv",
                                    rounds=30) + USE_CASE)
        cls.ws.write("imported/customers.csv",
                     datagen.to_csv(datagen.rows(200, seed=22)))
        cls.imported_spec = cls.ws.write(
            "imported/slipway.yaml",
            datagen.APP_SPEC.format(app=IMPORTED, path="customers.csv",
                                    rounds=10))
        cls.server = cls.ws.server()

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def test_command_step_lineage(self):
        s = self.server
        self.ws.write("scripted/customers.csv",
                      datagen.to_csv(datagen.rows(300, seed=23)))
        self.ws.write("scripted/train.py", TRAIN_PY)
        spec = self.ws.write("scripted/slipway.yaml", COMMAND_SPEC)
        version = harness.train_version(s, spec, "scripted")
        status, model = s.request("GET", "/api/v1/apps/scripted/models/%d" %
                                  version)
        self.assertEqual(status, 200, model)
        status, run = s.request("GET", "/api/v1/runs/" + model["run_id"])
        fit = next(step for step in run["steps"] if step["name"] == "fit")
        code = fit["outputs"]["code_sha256"]
        self.assertEqual(len(code), 64)
        lineage = model["lineage"]
        self.assertEqual(lineage["code_sha256"], code)
        self.assertEqual(lineage["created_by"], "run " + run["id"])
        self.assertEqual([(d["name"], d["step"], d["rows"])
                          for d in lineage["data_sources"]],
                         [("customers", "ingest", 300)])
        self.assertEqual(lineage["data_sources"][0]["fingerprint"],
                         model["data_fingerprint"])

    def cli_in(self, cwd, *args):
        env = dict(os.environ, SLIPWAY_SERVER=self.server.url)
        return subprocess.run([os.path.abspath(harness.BINARY)] + list(args),
                              env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=600)

    def test_lineage_history_diff_and_export(self):
        s = self.server
        v1 = harness.train_version(s, self.spec, APP)
        status, model = s.request("GET", "/api/v1/apps/%s/models/%d" %
                                  (APP, v1))
        self.assertEqual(status, 200, model)
        lineage = model["lineage"]
        self.assertEqual(lineage["created_by"], "run " + model["run_id"])
        self.assertEqual(lineage["parent_version"], 0)
        self.assertEqual(lineage["code_sha256"], "")
        self.assertEqual(lineage["runtime"]["xgboost"], xgb.__version__)
        self.assertTrue(lineage["runtime"]["slipway"])
        self.assertEqual(lineage["data_sources"], [{
            "name": "customers", "step": "ingest",
            "fingerprint": model["data_fingerprint"], "rows": 800}])
        self.assertEqual(lineage["row_count"], 800)

        # The training baseline monitoring will compare traffic with: every
        # feature of the signature and the prediction, over the training
        # rows, stored with the version.
        self.assertEqual(len(lineage["baseline_sha256"]), 64)
        status, baseline = s.request(
            "GET", "/api/v1/apps/%s/models/%d/baseline" % (APP, v1))
        self.assertEqual(status, 200, baseline)
        train_rows = baseline["rows"]
        self.assertGreater(train_rows, 500)
        self.assertLess(train_rows, 800)
        self.assertEqual(sorted(f["name"] for f in baseline["features"]),
                         sorted(f["name"] for f in
                                model["signature"]["features"]))
        for feature in baseline["features"]:
            self.assertEqual(feature["count"] + feature["missing"], train_rows,
                             feature["name"])
        plan = next(f for f in baseline["features"] if f["name"] == "plan")
        self.assertEqual(plan["kind"], "categorical")
        self.assertEqual(set(plan["counts"]), set(datagen.PLANS))
        prediction = baseline["prediction"]
        self.assertEqual(prediction["kind"], "numeric")
        self.assertEqual(prediction["count"], train_rows)
        self.assertGreaterEqual(prediction["min"], 0.0)
        self.assertLessEqual(prediction["max"], 1.0)

        out = s.cli("models", "promote", APP, str(v1), check=True).stdout
        self.assertIn("now serving", out)
        v2 = harness.train_version(s, self.spec2, APP)
        status, model2 = s.request("GET", "/api/v1/apps/%s/models/%d" %
                                   (APP, v2))
        self.assertEqual(model2["lineage"]["parent_version"], v1)
        self.assertEqual(model2["lineage"]["revision"], 2)

        shown = s.cli("models", "show", APP, str(v2), check=True).stdout
        self.assertIn("created by:   run " + model2["run_id"], shown)
        self.assertIn("parent:       v%d" % v1, shown)
        self.assertIn("runtime:      xgboost " + xgb.__version__, shown)
        self.assertIn("baseline:     " + model2["lineage"]["baseline_sha256"],
                      shown)
        self.assertIn(model2["data_fingerprint"], shown)

        diff = s.cli("models", "diff", APP, str(v1), str(v2),
                     check=True).stdout
        self.assertIn("rounds: 20 -> 30", diff)
        self.assertIn("auc", diff)
        status, body = s.request("GET", "/api/v1/apps/%s/models/%d/diff/%d" %
                                 (APP, v1, v2))
        self.assertEqual(status, 200, body)
        auc = next(m for m in body["metrics"] if m["name"] == "auc")
        self.assertAlmostEqual(auc["difference"], auc["to"] - auc["from"])
        self.assertEqual(body["signature"]["features_added"], [])

        # champion -> v2 and previous -> v1 in one request and transaction.
        status, body = s.request("POST", "/api/v1/apps/%s/aliases" % APP, {
            "moves": [{"alias": "champion", "version": v2},
                      {"alias": "previous", "version": v1}]})
        self.assertEqual(status, 200, body)
        self.assertTrue(body["serving"])
        before = self.ws.store_row_counts()
        status, body = s.request("POST", "/api/v1/apps/%s/aliases" % APP, {
            "moves": [{"alias": "challenger", "version": v1},
                      {"alias": "champion", "version": 99}]})
        self.assertEqual(status, 404, body)
        self.assertIn("model churn v99", body["error"])
        self.assertEqual(self.ws.store_row_counts(), before)

        status, history = s.request(
            "GET", "/api/v1/apps/%s/aliases/history" % APP)
        self.assertEqual(status, 200, history)
        moves = [(h["alias"], h["from_version"], h["to_version"], h["actor"])
                 for h in history["history"]]
        self.assertEqual(moves, [("champion", None, v1, "cli:admin"),
                                 ("champion", v1, v2, "api:admin"),
                                 ("previous", None, v1, "api:admin")])
        self.assertEqual(history["history"][1]["at"],
                         history["history"][2]["at"])
        out = s.cli("models", "history", APP, check=True).stdout.splitlines()
        self.assertEqual(out[0].split(), ["AT", "ALIAS", "FROM", "TO", "ACTOR"])
        self.assertEqual([line.split()[1:] for line in out[1:]],
                         [["champion", "-", "v%d" % v1, "cli:admin"],
                          ["champion", "v%d" % v1, "v%d" % v2, "api:admin"],
                          ["previous", "-", "v%d" % v1, "api:admin"]])

        export_dir = self.ws.path("export")
        s.cli("models", "export", APP, str(v2), export_dir, check=True)
        with open(os.path.join(export_dir, "MODEL_CARD.md")) as f:
            card = f.read()
        self.assertIn("# Model card: churn v%d" % v2, card)
        self.assertIn("| problem | which customers will leave next month |",
                      card)
        self.assertIn("| customers | ingest | %s | 800 |" %
                      model2["data_fingerprint"], card)
        self.assertIn("| auc |", card)
        self.assertIn("| rounds | 30 |", card)
        self.assertIn("| parent version | v%d |" % v1, card)
        self.assertIn("| plan | string |", card)
        self.assertIn("## Aliases\n\nchampion\n", card)

        # Export paths that leave their folder are refused, nothing written.
        inside = self.ws.path("cwd")
        os.makedirs(inside)
        outside = self.ws.path("outside")
        os.makedirs(outside)
        os.symlink(outside, os.path.join(inside, "link"))
        for target, message in (
                ("sub/../../escape", "leaves the current directory"),
                ("link/model", "through a symlink")):
            r = self.cli_in(inside, "models", "export", APP, str(v2), target)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn(message, r.stderr)
        self.assertEqual(os.listdir(outside), [])
        self.assertFalse(os.path.exists(self.ws.path("escape")))
        trap_dir = os.path.join(inside, "trap")
        os.makedirs(trap_dir)
        os.symlink(os.path.join(outside, "card"),
                   os.path.join(trap_dir, "MODEL_CARD.md"))
        r = self.cli_in(inside, "models", "export", APP, str(v2), "trap")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("is a symlink", r.stderr)
        self.assertEqual(os.listdir(outside), [])
        r = self.cli_in(inside, "models", "export", APP, str(v2), "ok/dir")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.exists(
            os.path.join(inside, "ok", "dir", "MODEL_CARD.md")))

    def test_import_serves_python_models_and_refuses_bad_input(self):
        s = self.server
        train_rows = datagen.rows(600, seed=31)
        x, y = frame(train_rows)
        booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": 4, "eta": 0.3,
             "tree_method": "hist", "nthread": 1, "seed": 1},
            xgb.DMatrix(x, label=y, enable_categorical=True), 25)
        model_json = self.ws.path("py", "model.json")
        os.makedirs(os.path.dirname(model_json))
        booster.save_model(model_json)
        mlflow_dir = self.ws.path("py", "mlflow-model")
        os.makedirs(mlflow_dir)
        booster.save_model(os.path.join(mlflow_dir, "model.ubj"))
        self.ws.write("py/mlflow-model/MLmodel",
                      MLMODEL.format(version=xgb.__version__))
        self.ws.write("py/mlflow-model/requirements.txt",
                      "mlflow==2.9.2\nxgboost==%s\n" % xgb.__version__)
        sample = [r[1:] for r in train_rows]  # without customer_id
        sample_csv = self.ws.write("py/sample.csv", "\n".join(
            [",".join(datagen.HEADER[1:])] +
            [",".join("" if v is None else str(v) for v in r)
             for r in sample]) + "\n")

        s.cli("apply", self.imported_spec, check=True)
        out = s.cli("models", "import", IMPORTED, model_json, "--format",
                    "xgboost", "--sample", sample_csv, check=True).stdout
        self.assertIn("as imported v1", out)
        status, v1 = s.request("GET", "/api/v1/apps/%s/models/1" % IMPORTED)
        self.assertEqual(status, 200, v1)
        self.assertEqual(v1["lineage"]["created_by"], "import")
        self.assertEqual(v1["lineage"]["runtime"]["xgboost"], xgb.__version__)
        signature = v1["signature"]
        self.assertEqual([f["name"] for f in signature["features"]], FEATURES)
        self.assertEqual(signature["target"], "churned")
        self.assertEqual(signature["task"], "binary_classification")
        plan = signature["features"][3]
        self.assertEqual(plan["categories"], sorted(datagen.PLANS))

        signature_file = self.ws.write("py/signature.json",
                                       json.dumps(signature))
        out = s.cli("models", "import", IMPORTED, mlflow_dir, "--format",
                    "xgboost", "--signature", signature_file,
                    check=True).stdout
        self.assertIn("as imported v2", out)
        status, body = s.request(
            "GET", "/api/v1/apps/%s/models/2/baseline" % IMPORTED)
        self.assertEqual(status, 404, body)
        self.assertIn("has no baseline profile", body["error"])

        test_rows = datagen.rows(200, seed=41, missing=0.1)
        records = datagen.records(test_rows)
        expected = booster.predict(
            xgb.DMatrix(frame(test_rows)[0], enable_categorical=True))
        self.assertTrue(any(v is None for r in records for v in r.values()))
        for version in (1, 2):
            status, body = harness.promote(s, IMPORTED, version)
            self.assertEqual(status, 200, body)
            status, body = s.request("POST", "/v1/apps/%s/predict" % IMPORTED,
                                     {"records": records})
            self.assertEqual(status, 200, body)
            self.assertEqual(body["model_version"], version)
            got = [p["probabilities"]["1"] for p in body["predictions"]]
            worst = max(abs(g - e) for g, e in zip(got, expected))
            self.assertLessEqual(worst, 1e-6, "v%d" % version)

        # Bad input: each refused with its message, the store unchanged.
        corrupt = self.ws.path("py", "corrupt.json")
        with open(model_json) as f:
            text = f.read()
        with open(corrupt, "w") as f:
            f.write(text[:len(text) // 2])
        garbage = self.ws.path("py", "garbage.bin")
        with open(garbage, "wb") as f:
            f.write(b"\x00\x01binary junk" * 10)
        wrong = dict(signature)
        wrong["features"] = signature["features"][:-1]
        wrong_file = self.ws.write("py/wrong.json", json.dumps(wrong))
        sklearn_dir = self.ws.path("py", "sklearn-model")
        self.ws.write("py/sklearn-model/MLmodel",
                      "flavors:\n  python_function:\n    data: model.pkl\n"
                      "  sklearn:\n    pickled_model: model.pkl\n")
        before = self.ws.store_row_counts()
        for args, message in (
                ((corrupt, "--sample", sample_csv),
                 "model file 'corrupt.json': XGBoost cannot load it"),
                ((garbage, "--sample", sample_csv),
                 "is neither XGBoost JSON nor UBJSON"),
                ((model_json, "--signature", wrong_file),
                 "model file 'model.json' does not accept the signature"),
                ((model_json, "--sample", sample_csv, "--format", "onnx"),
                 "unknown model format 'onnx'; import takes: xgboost"),
                ((sklearn_dir,),
                 "has no xgboost flavor (its flavors: python_function, "
                 "sklearn)")):
            fmt = [] if "--format" in args else ["--format", "xgboost"]
            r = s.cli("models", "import", IMPORTED, *(list(args) + fmt))
            self.assertEqual(r.returncode, 1, (args, r.stdout, r.stderr))
            self.assertIn(message, r.stderr, args)
        status, body = s.request("POST", "/api/v1/apps/%s/models" % IMPORTED, {
            "format": "xgboost", "model_base64": "%%%not base64"})
        self.assertEqual(status, 400, body)
        self.assertIn("not base64", body["error"])
        status, body = s.request("POST", "/api/v1/apps/%s/models" % IMPORTED, {
            "format": "xgboost",
            "model_base64": base64.b64encode(b"{}").decode()})
        self.assertEqual(status, 400, body)
        self.assertEqual(self.ws.store_row_counts(), before)


if __name__ == "__main__":
    unittest.main()
