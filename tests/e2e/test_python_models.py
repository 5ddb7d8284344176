"""Python and TorchScript models end to end through the real binary, on one
server shared by every test (each test has its own app):

- parity: a scikit-learn Pipeline (StandardScaler + LogisticRegression on
  the breast cancer data) imported with `slipway models import --format
  python --sample`, and a scripted MLP (`output: logits`) imported with
  `--format torchscript --signature`, answer /v1 predict and OIP v2 infer
  with Python's own predict_proba / softmax within 1e-6;
- a worker that crashes (os._exit) or hangs (past `runtime.timeout`) fails
  its own request only (503 naming the worker), concurrent and later
  requests succeed, /metrics counts the restart, the server stays up;
- a Python challenger promoted over an XGBoost champion under continuous
  load: no request fails and the answers switch to the new version;
- bad models are refused at import (CLI and HTTP) with a message naming the
  problem, the store unchanged, the server still serving;
- `runtime.recycle_after` replaces workers without failing a request.

Everything that needs scikit-learn, numpy or torch runs in
/usr/bin/python3 child processes (FIXTURES builds the models and Python's
reference answers), so the test itself needs only the standard library.
The server hands models float32 rows (python_worker.py), which moves these
probabilities by about 1e-7: within the tolerance."""

import base64
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import datagen  # noqa: E402
import harness  # noqa: E402

PYTHON = "/usr/bin/python3"
PLUGIN = os.path.join(os.path.dirname(os.path.abspath(harness.BINARY)),
                      "libslipway_torch.so")
TOLERANCE = 1e-6

# Run as `/usr/bin/python3 -c FIXTURES OUT_DIR`: writes every model folder
# and file the tests import, and Python's answers for the parity tests to
# OUT_DIR/reference.json.
FIXTURES = r'''
import json, os, sys
import joblib
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

out = sys.argv[1]
reference = {}

def folder(*parts):
    path = os.path.join(out, *parts)
    os.makedirs(path, exist_ok=True)
    return path

# 1. scikit-learn: trained on 469 rows, 100 held out for the requests.
data = load_breast_cancer(as_frame=True)
x = data.data.rename(columns=lambda c: c.replace(" ", "_"))
y = data.target
rng = np.random.RandomState(7)
order = rng.permutation(len(x))
train, test = order[:469], order[469:]
pipeline = Pipeline([("scale", StandardScaler()),
                     ("model", LogisticRegression(max_iter=5000))])
pipeline.fit(x.iloc[train], y.iloc[train])
joblib.dump(pipeline, os.path.join(folder("cancer", "model"), "model.joblib"))
sample = x.iloc[train].copy()
sample["diagnosis"] = y.iloc[train].values
sample.to_csv(os.path.join(out, "cancer", "sample.csv"), index=False)
x_test = x.iloc[test]
reference["cancer"] = {
    "features": list(x.columns),
    "records": [{c: float(v) for c, v in row.items()}
                for row in x_test.to_dict(orient="records")],
    "p1": pipeline.predict_proba(x_test)[:, 1].tolist(),
}

# 2. TorchScript: a fixed-seed MLP, 6 features -> 3 classes, giving logits.
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(),
                          torch.nn.Linear(16, 3)).eval()
mlp = folder("mlp", "model")
torch.jit.save(torch.jit.script(net), os.path.join(mlp, "model.pt"))
with open(os.path.join(mlp, "model.yaml"), "w") as f:
    f.write("format: torchscript\nfile: model.pt\noutput: logits\n")
names = ["x%d" % i for i in range(6)]
with open(os.path.join(out, "mlp", "signature.json"), "w") as f:
    json.dump({"task": "multiclass_classification", "target": "kind",
               "label_type": "int64", "class_labels": ["0", "1", "2"],
               "features": [{"name": n, "type": "float64"} for n in names]}, f)
rows = torch.from_numpy(
    np.random.RandomState(3).normal(0, 2, (100, 6)).astype(np.float32))
with torch.no_grad():
    logits = net(rows).double()
reference["mlp"] = {
    "features": names,
    "records": [dict(zip(names, r)) for r in rows.double().tolist()],
    "probabilities": torch.softmax(logits, dim=1).tolist(),
}

# 6. Bad models.
class Forecaster:  # pickled from __main__: no worker can find the class
    def predict(self, rows):
        return rows[:, 0]

joblib.dump(Forecaster(), os.path.join(folder("bad", "pickle"),
                                       "model.joblib"))
torch.save(net.state_dict(), os.path.join(folder("bad", "state_dict"),
                                          "model.pt"))

with open(os.path.join(out, "reference.json"), "w") as f:
    json.dump(reference, f)
'''

# model.py for the crash and hang tests: a row whose `a` is MARK writes
# marker (so the test knows the call is in the worker) and then, for
# "crash", waits until the test creates go and exits with status 3; for
# "hang", sleeps forever. Other rows: y = a + 2 b.
FRAGILE_PY = r'''import json, os, time
import numpy as np

settings = {}


def load(path):
    with open(os.path.join(path, "settings.json")) as f:
        settings.update(json.load(f))


def predict(rows):
    if (rows[:, 0] == settings["mark"]).any():
        open(settings["marker"], "w").close()
        if settings["mode"] == "crash":
            deadline = time.monotonic() + 60
            while not os.path.exists(settings["go"]) and \
                    time.monotonic() < deadline:
                time.sleep(0.01)
            os._exit(3)
        while True:
            time.sleep(3600)
    return rows[:, 0] + 2 * rows[:, 1]
'''

# Regression over features a and b, for the crash, hang and recycle apps.
AB_SIGNATURE = {"task": "regression", "target": "y", "label_type": "float64",
                "class_labels": [],
                "features": [{"name": "a", "type": "float64"},
                             {"name": "b", "type": "float64"}]}

AB_SPEC = """app: {app}
schema: {{target: y, task: regression}}
endpoint: {{model: champion, runtime: {runtime}}}
"""

# Answers the process id of the worker that ran the call.
PID_PY = """import os
import numpy as np


def load(path):
    pass


def predict(rows):
    return np.full(len(rows), float(os.getpid()))
"""

# The hot-swap challenger: P(churned) = 0.25 for every row.
CONSTANT_PY = """import numpy as np


def load(path):
    pass


def predict(rows):
    return np.full(len(rows), 0.25)
"""

NO_PREDICT_PY = """def load(path):
    pass


def score(rows):
    return rows[:, 0]
"""

WRONG_COUNT_PY = """import numpy as np


def load(path):
    pass


def predict(rows):
    return np.zeros(len(rows) + 1)
"""


def bundle(folder):
    """`folder` as a model bundle (model_bundle.h: a pax tar of its files,
    sorted, mtime 0), as `slipway models import` sends it."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


class PythonModelsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.fixtures = cls.ws.path("fixtures")
        os.makedirs(cls.fixtures)
        subprocess.run([PYTHON, "-c", FIXTURES, cls.fixtures], check=True,
                       env=dict(os.environ, PYTHONHASHSEED="0",
                                OMP_NUM_THREADS="1"), timeout=300)
        with open(os.path.join(cls.fixtures, "reference.json")) as f:
            cls.reference = json.load(f)
        # The server unpacks model bundles under $TMPDIR/slipway-models:
        # keep them inside the workspace.
        cls.saved_tmpdir = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = cls.ws.path("tmp")
        os.makedirs(os.environ["TMPDIR"])
        cls.server = cls.ws.server()
        cls.cancer_served = threading.Lock()
        cls.cancer_ready = False

    @classmethod
    def tearDownClass(cls):
        if cls.saved_tmpdir is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = cls.saved_tmpdir
        cls.ws.close()

    # --- helpers ---

    def apply(self, app, text):
        path = self.ws.write("%s/slipway.yaml" % app, text)
        self.server.cli("apply", path, check=True)

    def import_model(self, app, folder, fmt, *args):
        """Imports `folder` and returns the new version number."""
        out = self.server.cli("models", "import", app, folder, "--format",
                              fmt, *args, check=True).stdout
        match = re.search(r"as %s v(\d+)" % app, out)
        self.assertTrue(match, out)
        return int(match.group(1))

    def promote(self, app, version):
        status, body = harness.promote(self.server, app, version)
        self.assertEqual(status, 200, body)

    def write_model_py(self, name, source, **settings):
        """A model folder holding model.py (and settings.json)."""
        folder = self.ws.path("models", name)
        os.makedirs(folder)
        with open(os.path.join(folder, "model.py"), "w") as f:
            f.write(source)
        if settings:
            with open(os.path.join(folder, "settings.json"), "w") as f:
                json.dump(settings, f)
        return folder

    def serve_ab_model(self, app, folder, runtime):
        """Applies an a, b -> y regression app with `runtime`, imports the
        model.py in `folder` and makes it the champion."""
        self.apply(app, AB_SPEC.format(app=app, runtime=runtime))
        signature = self.ws.write("%s/signature.json" % app,
                                  json.dumps(AB_SIGNATURE))
        version = self.import_model(app, folder, "python", "--signature",
                                    signature)
        self.promote(app, version)

    def predict(self, app, records, timeout=60):
        status, _, raw = self.server.call(
            "POST", "/v1/apps/%s/predict" % app, {"records": records},
            timeout=timeout)
        return status, json.loads(raw)

    def predict_ab(self, app, a, b=1.0):
        """y for one (a, b) row, asserting the request succeeded."""
        status, body = self.predict(app, [{"a": a, "b": b}])
        self.assertEqual(status, 200, body)
        return body["predictions"][0]

    def restarts(self, app):
        return harness.metric_sum(self.server.metrics(),
                                  "slipway_model_worker_restarts_total",
                                  app=app)

    def serve_cancer(self):
        """The cancer app's sklearn model as champion; imported once."""
        with self.cancer_served:
            if not PythonModelsTest.cancer_ready:
                self.apply("cancer", "app: cancer\nschema: {target: "
                           "diagnosis, task: binary_classification}\n")
                version = self.import_model(
                    "cancer", os.path.join(self.fixtures, "cancer", "model"),
                    "python", "--sample",
                    os.path.join(self.fixtures, "cancer", "sample.csv"))
                self.promote("cancer", version)
                PythonModelsTest.cancer_ready = True

    def infer(self, app, features, records):
        """OIP v2 infer with one FP64 tensor per feature; returns
        {output name: (shape, data)}."""
        body = {"inputs": [{"name": n, "datatype": "FP64",
                            "shape": [len(records)],
                            "data": [r[n] for r in records]}
                           for n in features]}
        status, answer = self.server.request(
            "POST", "/v2/models/%s/infer" % app, body)
        self.assertEqual(status, 200, answer)
        return {o["name"]: (o["shape"], o["data"]) for o in answer["outputs"]}

    def assert_close(self, got, expected, what):
        self.assertEqual(len(got), len(expected), what)
        worst = max(abs(g - e) for g, e in zip(got, expected))
        self.assertLessEqual(worst, TOLERANCE, what)

    # --- 1. scikit-learn parity ---

    def test_sklearn_pipeline_parity(self):
        self.serve_cancer()
        ref = self.reference["cancer"]
        status, model = self.server.request("GET",
                                            "/api/v1/apps/cancer/models/1")
        self.assertEqual(status, 200, model)
        self.assertEqual(model["format"], "python")
        signature = model["signature"]
        self.assertEqual([f["name"] for f in signature["features"]],
                         ref["features"])
        self.assertEqual((signature["task"], signature["target"]),
                         ("binary_classification", "diagnosis"))

        status, body = self.predict("cancer", ref["records"])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["model_version"], 1)
        got = [p["probabilities"]["1"] for p in body["predictions"]]
        self.assert_close(got, ref["p1"], "/v1 predict")
        for p in body["predictions"]:
            self.assertAlmostEqual(p["probabilities"]["0"] +
                                   p["probabilities"]["1"], 1.0, places=6)
            self.assertEqual(p["label"], 1 if p["probabilities"]["1"] > 0.5
                             else 0)
        self.assertEqual(len({p["label"] for p in body["predictions"]}), 2)

        outputs = self.infer("cancer", ref["features"], ref["records"])
        shape, probs = outputs["probabilities"]
        self.assertEqual(shape, [100, 2])
        self.assert_close(probs[1::2], ref["p1"], "OIP v2 infer")

    # --- 2. TorchScript parity ---

    def test_torchscript_parity(self):
        if not os.path.isfile(PLUGIN):
            self.skipTest("no LibTorch plugin next to the binary (%s)" %
                          PLUGIN)
        ref = self.reference["mlp"]
        self.apply("mlp", "app: mlp\nschema: {target: kind, task: "
                   "multiclass_classification}\n")
        version = self.import_model(
            "mlp", os.path.join(self.fixtures, "mlp", "model"),
            "torchscript", "--signature",
            os.path.join(self.fixtures, "mlp", "signature.json"))
        self.promote("mlp", version)

        status, body = self.predict("mlp", ref["records"])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["model_version"], version)
        got = [[p["probabilities"][c] for c in ("0", "1", "2")]
               for p in body["predictions"]]
        self.assert_close(sum(got, []), sum(ref["probabilities"], []),
                          "/v1 predict")
        for p, expected in zip(body["predictions"], ref["probabilities"]):
            self.assertEqual(p["label"], expected.index(max(expected)))

        outputs = self.infer("mlp", ref["features"], ref["records"])
        shape, probs = outputs["probabilities"]
        self.assertEqual(shape, [100, 3])
        self.assert_close(probs, sum(ref["probabilities"], []),
                          "OIP v2 infer")

    # --- 3. crash ---

    def test_worker_crash_fails_only_its_request(self):
        app = "crashy"
        marker, go = self.ws.path("crash.marker"), self.ws.path("crash.go")
        folder = self.write_model_py(app, FRAGILE_PY, mode="crash", mark=999,
                                     marker=marker, go=go)
        self.serve_ab_model(app, folder, "{workers: 2, timeout: 30s}")
        self.assertEqual(self.predict_ab(app, 1.0, 2.0), 5.0)
        restarts_before = self.restarts(app)

        crashed = {}

        def send_marked():
            crashed["answer"] = self.predict(app, [{"a": 999, "b": 0}])

        marked = threading.Thread(target=send_marked)
        marked.start()
        harness.wait_until(lambda: os.path.exists(marker), 30,
                           "the marked row to reach a worker")
        # While the crashing call is in its worker, the other one answers.
        results = [None] * 8

        def send(i):
            results[i] = self.predict(app, [{"a": float(i), "b": 0.5}])

        clients = [threading.Thread(target=send, args=(i,)) for i in range(8)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(60)
        self.assertEqual(results, [(200, {"predictions": [i + 1.0],
                                          "model_version": 1,
                                          "request_id":
                                              r[1].get("request_id")})
                                   for i, r in enumerate(results)])

        open(go, "w").close()
        marked.join(60)
        status, body = crashed["answer"]
        self.assertEqual(status, 503, body)
        self.assertRegex(body["error"], r"python worker \d+ \(pid \d+\)")
        self.assertIn("exited with code 3", body["error"])

        for i in range(10):
            self.assertEqual(self.predict_ab(app, float(i)), i + 2.0)
        harness.wait_until(lambda: self.restarts(app) >= restarts_before + 1,
                           30, lambda: "a restart in /metrics (%s)" %
                           self.restarts(app))
        self.assertIsNone(self.server.proc.poll())
        status, _ = self.server.request("GET", "/healthz")
        self.assertEqual(status, 200)

    # --- 4. hang ---

    def test_worker_hang_times_out(self):
        app = "hangy"
        marker = self.ws.path("hang.marker")
        folder = self.write_model_py(app, FRAGILE_PY, mode="hang", mark=777,
                                     marker=marker)
        self.serve_ab_model(app, folder, "{workers: 2, timeout: 2s}")
        self.assertEqual(self.predict_ab(app, 1.0, 2.0), 5.0)

        hung = {}

        def send_marked():
            start = time.monotonic()
            hung["answer"] = self.predict(app, [{"a": 777, "b": 0}])
            hung["seconds"] = time.monotonic() - start

        marked = threading.Thread(target=send_marked)
        marked.start()
        harness.wait_until(lambda: os.path.exists(marker), 30,
                           "the marked row to reach a worker")
        self.assertEqual(self.predict_ab(app, 3.0), 5.0)
        marked.join(30)
        self.assertFalse(marked.is_alive(), "the hung request never returned")
        status, body = hung["answer"]
        self.assertEqual(status, 503, body)
        self.assertRegex(body["error"], r"python worker \d+ \(pid \d+\)")
        self.assertIn("2000 ms", body["error"])
        self.assertGreaterEqual(hung["seconds"], 1.9)
        self.assertLess(hung["seconds"], 6.0)
        for i in range(10):
            self.assertEqual(self.predict_ab(app, float(i)), i + 2.0)
        harness.wait_until(lambda: self.restarts(app) >= 1, 30,
                           "a restart in /metrics")
        self.assertIsNone(self.server.proc.poll())

    # --- 5. hot swap under load ---

    def test_python_challenger_replaces_xgboost_champion_under_load(self):
        app = "swap"
        self.ws.write("swap/customers.csv",
                      datagen.to_csv(datagen.rows(400, seed=11)))
        path = self.ws.write("swap/slipway.yaml", datagen.APP_SPEC.format(
            app=app, path="customers.csv", rounds=10))
        champion = harness.train_version(self.server, path, app)
        self.promote(app, champion)
        status, model = self.server.request(
            "GET", "/api/v1/apps/%s/models/%d" % (app, champion))
        self.assertEqual(status, 200, model)
        self.assertEqual(model["format"], "xgboost-json")
        signature = self.ws.write("swap/signature.json",
                                  json.dumps(model["signature"]))
        challenger = self.import_model(
            app, self.write_model_py(app, CONSTANT_PY), "python",
            "--signature", signature)

        records = datagen.records(datagen.rows(8, seed=5))
        status, body = self.predict(app, records)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["model_version"], champion)
        xgboost_p1 = [p["probabilities"]["1"] for p in body["predictions"]]
        self.assertNotIn(0.25, xgboost_p1)

        stop = threading.Event()
        # Per client: (started, status, version, p1, expected xgboost p1).
        answers = [[] for _ in range(4)]

        def client(out):
            conn = self.server.connection(timeout=30)
            try:
                i = 0
                while not stop.is_set():
                    k = i % len(records)
                    i += 1
                    started = time.monotonic()
                    conn.request("POST", "/v1/apps/%s/predict" % app,
                                 body=json.dumps({"records": [records[k]]}),
                                 headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    answer = json.loads(resp.read())
                    if resp.status != 200:
                        out.append((started, resp.status, None, answer, None))
                        continue
                    out.append((started, 200, answer["model_version"],
                                answer["predictions"][0]["probabilities"]["1"],
                                xgboost_p1[k]))
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(out,), daemon=True)
                   for out in answers]
        for t in threads:
            t.start()
        try:
            harness.wait_until(lambda: all(len(a) >= 20 for a in answers), 30,
                               "every client to get 20 answers")
            before = time.monotonic()
            self.promote(app, challenger)
            promoted = time.monotonic()
            harness.wait_until(
                lambda: all(sum(1 for r in a if r[0] > promoted) >= 20
                            for a in answers), 30,
                "every client to get 20 answers after the promotion")
        finally:
            stop.set()
            for t in threads:
                t.join(30)

        failed = [r for a in answers for r in a if r[1] != 200]
        self.assertEqual(failed, [])
        for a in answers:
            versions = [r[2] for r in a]
            # Each client sends one request at a time: once it is answered
            # by the challenger, every later answer is the challenger's.
            switched = versions.index(challenger)
            self.assertEqual(set(versions[:switched]), {champion})
            self.assertEqual(set(versions[switched:]), {challenger})
            for started, _, version, p1, expected in a:
                if started < before:
                    self.assertEqual(version, champion)
                if started > promoted:
                    self.assertEqual(version, challenger)
                self.assertEqual(p1, 0.25 if version == challenger
                                 else expected)

    # --- 6. bad models at import ---

    def test_bad_models_refused_at_import(self):
        self.serve_cancer()
        app = "refused"
        self.apply(app, AB_SPEC.format(app=app, runtime="{workers: 1}"))
        signature = self.ws.write("%s/signature.json" % app,
                                  json.dumps(AB_SIGNATURE))
        bad = os.path.join(self.fixtures, "bad")
        # (name, format, folder, substrings of the error, whether the
        # signature is to blame)
        cases = [
            ("pickle that fails to unpickle", "python",
             os.path.join(bad, "pickle"),
             ["model 'pickle'", "cannot unpickle", "model.joblib",
              "Forecaster"], False),
            ("model.py without predict", "python",
             self.write_model_py("no_predict", NO_PREDICT_PY),
             ["model 'no_predict'", "model.py defines no predict function"],
             False),
            ("a .pt that is not TorchScript", "torchscript",
             os.path.join(bad, "state_dict"),
             ["model 'state_dict'", "LibTorch cannot load it"], False),
            ("wrong number of predictions", "python",
             self.write_model_py("wrong_count", WRONG_COUNT_PY),
             ["model 'wrong_count'", "returned 2 predictions",
              "expected 1 x 1"], True),
        ]
        good = self.reference["cancer"]["records"][:3]
        for name, fmt, folder, needles, signature_at_fault in cases:
            with self.subTest(name):
                if fmt == "torchscript" and not os.path.isfile(PLUGIN):
                    self.skipTest("no LibTorch plugin next to the binary "
                                  "(%s)" % PLUGIN)
                before = self.ws.store_row_counts()
                result = self.server.cli("models", "import", app, folder,
                                         "--format", fmt, "--signature",
                                         signature)
                self.assertEqual(result.returncode, 1,
                                 result.stdout + result.stderr)
                for needle in needles:
                    self.assertIn(needle, result.stderr)
                if not signature_at_fault:
                    # A model that cannot load at all is not a signature
                    # mismatch; saying so sends the user to the wrong fix.
                    self.assertNotIn("does not accept the signature",
                                     result.stderr)
                status, body = self.server.request(
                    "POST", "/api/v1/apps/%s/models" % app,
                    {"format": fmt, "source": os.path.basename(folder),
                     "bundle": True, "signature": AB_SIGNATURE,
                     "model_base64":
                         base64.b64encode(bundle(folder)).decode()})
                self.assertEqual(status, 400, body)
                for needle in needles:
                    self.assertIn(needle, body["error"])
                self.assertEqual(self.ws.store_row_counts(), before)
                status, answer = self.predict("cancer", good)
                self.assertEqual(status, 200, answer)
        status, models = self.server.request("GET",
                                             "/api/v1/apps/%s/models" % app)
        self.assertEqual(status, 200, models)
        self.assertEqual(models["models"], [])

    # --- 7. recycling ---

    def test_recycle_after_replaces_workers_without_failing(self):
        app = "recycled"
        self.serve_ab_model(app, self.write_model_py(app, PID_PY),
                            "{workers: 2, recycle_after: 5}")
        pids = [int(self.predict_ab(app, float(i))) for i in range(30)]
        counts = {pid: pids.count(pid) for pid in pids}
        # Every process answers at most 5 calls, so 30 took at least 6.
        self.assertLessEqual(max(counts.values()), 5, counts)
        self.assertGreaterEqual(len(counts), 6, counts)
        for pid in counts:
            self.assertNotEqual(pid, self.server.pid)
        harness.wait_until(
            lambda: self.restarts(app) >= len(counts) - 2, 30,
            lambda: "%d restarts in /metrics for %d worker processes" % (
                self.restarts(app), len(counts)))
        # Both slots report their current process.
        def worker_gauges():
            samples = self.server.metrics()
            rss = harness.metric_values(
                samples, "slipway_model_worker_resident_bytes", app=app)
            requests = harness.metric_values(
                samples, "slipway_model_worker_requests", app=app)
            return (len(rss) == 2 and all(v > 0 for _, v in rss) and
                    len(requests) == 2 and
                    all(0 <= v <= 5 for _, v in requests))
        harness.wait_until(worker_gauges, 30,
                           "two live workers in /metrics with at most 5 "
                           "requests each")
        # Retired workers are stopped and reaped: at most the pool's two
        # current processes are still alive.
        harness.wait_until(
            lambda: sum(os.path.exists("/proc/%d" % p) for p in counts) <= 2,
            30, "the retired workers to exit")


if __name__ == "__main__":
    unittest.main()
