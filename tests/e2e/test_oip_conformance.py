"""Open Inference Protocol v2 conformance through the real binary, with a
generic client that builds every request from the model metadata alone
(GET /v2/models/{model}: input names, datatypes and shapes) plus a record
of feature values per row.

Two apps: `churn` (binary; FP32, INT64 and BYTES inputs; INT64 labels) and
`tiers` (multiclass over the plan; FP32, INT64, BOOL and BYTES inputs;
string labels)."""

import json
import math
import os
import random
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import datagen  # noqa: E402
import harness  # noqa: E402

CHURN = "churn"
TIERS = "tiers"

# Every OIP datatype that carries numbers, with the range of whole numbers
# it holds exactly (FP16 holds every integer up to 2048).
INTEGER_RANGES = {
    "INT8": (-2 ** 7, 2 ** 7 - 1),
    "INT16": (-2 ** 15, 2 ** 15 - 1),
    "INT32": (-2 ** 31, 2 ** 31 - 1),
    "INT64": (-2 ** 63, 2 ** 63 - 1),
    "UINT8": (0, 2 ** 8 - 1),
    "UINT16": (0, 2 ** 16 - 1),
    "UINT32": (0, 2 ** 32 - 1),
    "UINT64": (0, 2 ** 64 - 1),
    "FP16": (-2048, 2048),
}
NUMERIC_DATATYPES = list(INTEGER_RANGES) + ["FP32", "FP64"]

# struct formats of the datatypes in binary tensor data (little-endian).
BINARY_FORMATS = {
    "BOOL": "?", "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q",
    "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q",
    "FP32": "f", "FP64": "d",
}

TIERS_SPEC = """app: {app}
data:
  customers:
    connector: csv
    path: data/tiers.csv
schema:
  target: plan
  id: customer_id
  task: multiclass_classification
pipelines:
  train:
    steps:
      - ingest:   {{source: customers}}
      - split:    {{test_fraction: 0.2, seed: 7, stratify: true}}
      - train:    {{objective: "multi:softprob", rounds: 15, max_depth: 3, eta: 0.3, seed: 3, threads: 1}}
      - evaluate: {{metrics: [accuracy, logloss]}}
      - register: {{}}
"""


def tiers_rows(n, seed):
    """customer_id, age, tenure, region, vip (bool), support_calls, plan."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        age = round(rng.uniform(18, 80), 1)
        tenure = rng.randint(0, 120)
        region = rng.choice(datagen.REGIONS)
        vip = rng.random() < 0.3
        calls = rng.randint(0, 12)
        score = tenure / 40 + (2 if vip else 0) + rng.gauss(0, 0.7)
        plan = datagen.PLANS[min(3, max(0, int(score)))]
        rows.append([5000 + i, age, tenure, region, vip, calls, plan])
    return rows


def tiers_csv(rows):
    lines = ["customer_id,age,tenure,region,vip,support_calls,plan"]
    for r in rows:
        lines.append(",".join(
            ("true" if v else "false") if isinstance(v, bool) else str(v)
            for v in r))
    return "\n".join(lines) + "\n"


def tiers_records(rows):
    names = ["age", "tenure", "region", "vip", "support_calls"]
    return [dict(zip(names, r[1:6])) for r in rows]


class OipClient:
    """A generic OIP v2 JSON client: knows nothing about the models but what
    their metadata says."""

    def __init__(self, server):
        self.server = server

    @staticmethod
    def model_path(model, version=None):
        path = "/v2/models/" + model
        if version is not None:
            path += "/versions/%s" % version
        return path

    def metadata(self, model, version=None):
        status, meta = self.server.request("GET",
                                           self.model_path(model, version))
        assert status == 200, (status, meta)
        return meta

    @staticmethod
    def convert(value, datatype):
        """One feature value as the JSON scalar `datatype` carries; None
        stays null (a missing value)."""
        if value is None:
            return None
        if datatype == "BYTES":
            return value if isinstance(value, str) else str(value)
        if datatype == "BOOL":
            return bool(value)
        if datatype in INTEGER_RANGES:
            return int(value)
        return float(value)

    def request(self, meta, records, datatypes=None, layout="flat",
                **extra):
        """An infer request for `records` built from `meta`: one tensor per
        metadata input, in its datatype unless `datatypes` overrides it.
        layout: "flat" (shape [N], data [v, ...]), "nested" (shape [N, 1],
        data [[v], ...]) or "flat2d" (shape [N, 1], data [v, ...])."""
        datatypes = datatypes or {}
        n = len(records)
        inputs = []
        for spec in meta["inputs"]:
            name = spec["name"]
            assert spec["shape"] in ([-1], [-1, 1]), spec
            datatype = datatypes.get(name, spec["datatype"])
            data = [self.convert(r[name], datatype) for r in records]
            if layout == "flat":
                shape = [n]
            elif layout == "nested":
                shape, data = [n, 1], [[v] for v in data]
            else:
                shape = [n, 1]
            inputs.append({"name": name, "datatype": datatype,
                           "shape": shape, "data": data})
        body = {"inputs": inputs}
        body.update(extra)
        return body

    def infer(self, model, body, version=None):
        return self.server.request(
            "POST", self.model_path(model, version) + "/infer", body)

    def binary_request(self, meta, records):
        """`request` with Triton's binary tensor data: each input whose
        values it can carry goes after the JSON header as little-endian
        bytes (a missing FP32/FP64 value as NaN, BYTES as a 4-byte length
        and UTF-8), the others stay JSON "data" (an integer or BYTES input
        with a missing value). Returns (body bytes, JSON header length)."""
        body = self.request(meta, records)
        chunks = []
        for tensor in body["inputs"]:
            data, datatype = tensor["data"], tensor["datatype"]
            if datatype in ("FP32", "FP64"):
                data = [math.nan if v is None else v for v in data]
            elif None in data:
                continue
            if datatype == "BYTES":
                raw = b"".join(struct.pack("<I", len(v.encode())) + v.encode()
                               for v in data)
            else:
                raw = struct.pack(
                    "<%d%s" % (len(data), BINARY_FORMATS[datatype]), *data)
            del tensor["data"]
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        header = json.dumps(body).encode()
        return header + b"".join(chunks), len(header)

    def infer_binary(self, model, body, header_length):
        status, _, raw = self.server.call(
            "POST", self.model_path(model) + "/infer", body,
            headers={"Content-Type": "application/octet-stream",
                     "Inference-Header-Content-Length": str(header_length)})
        return status, json.loads(raw)

    @staticmethod
    def outputs(response):
        """{output name: (shape, datatype, data)}."""
        return {o["name"]: (o["shape"], o["datatype"], o["data"])
                for o in response["outputs"]}


class OipConformanceTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        try:
            cls.ws.write("app/data/customers.csv",
                         datagen.to_csv(datagen.rows(800, seed=11)))
            churn_spec = cls.ws.write(
                "app/slipway.yaml", datagen.APP_SPEC.format(
                    app=CHURN, path="data/customers.csv", rounds=20))
            cls.ws.write("app/data/tiers.csv",
                         tiers_csv(tiers_rows(900, seed=5)))
            tiers_spec = cls.ws.write("app/tiers.yaml",
                                      TIERS_SPEC.format(app=TIERS))
            cls.server = cls.ws.server()
            assert harness.train_version(cls.server, churn_spec, CHURN) == 1
            assert harness.train_version(cls.server, tiers_spec, TIERS) == 1
            # tiers is registered but not served yet: not ready.
            status, body = cls.server.request("GET",
                                              "/v2/models/%s/ready" % TIERS)
            cls.tiers_ready_before_promote = (status, body)
            for app in (CHURN, TIERS):
                status, body = harness.promote(cls.server, app, 1)
                assert status == 200, body
            cls.client = OipClient(cls.server)
        except BaseException:
            cls.ws.close()
            raise

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        cls.ws.close()
        assert code == 0, code

    # --- helpers ---

    def churn_records(self, n, seed=21, missing=0.1):
        return datagen.records(datagen.rows(n, seed=seed, missing=missing))

    def infer_ok(self, model, body, version=None):
        status, response = self.client.infer(model, body, version)
        self.assertEqual(status, 200, response)
        return response

    def probabilities(self, model, body, version=None):
        shape, datatype, data = self.client.outputs(
            self.infer_ok(model, body, version))["probabilities"]
        self.assertEqual(datatype, "FP32")
        return data

    def assert_error(self, status_body, status, *needles):
        status_got, body = status_body
        self.assertEqual(status_got, status, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(list(body), ["error"], body)
        self.assertIsInstance(body["error"], str)
        for needle in needles:
            self.assertIn(needle, body["error"])

    def bad_request(self, model, body, *needles):
        """The infer body is answered 400 with an error naming `needles`."""
        self.assert_error(self.client.infer(model, body), 400, *needles)

    # --- server endpoints ---

    def test_health_and_server_metadata(self):
        s = self.server
        status, headers, raw = s.call("GET", "/v2/health/live")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("application/json"))
        self.assertEqual(json.loads(raw), {"live": True})
        self.assertEqual(s.request("GET", "/v2/health/ready"),
                         (200, {"ready": True}))
        status, meta = s.request("GET", "/v2")
        self.assertEqual(status, 200)
        self.assertEqual(meta["name"], "slipway")
        self.assertIsInstance(meta["version"], str)
        self.assertTrue(meta["version"])
        self.assertIsInstance(meta["extensions"], list)
        self.assertIn("binary_tensor_data", meta["extensions"])

    def test_model_metadata_both_forms(self):
        meta = self.client.metadata(CHURN)
        self.assertEqual(meta["name"], CHURN)
        self.assertEqual(meta["versions"], ["1"])
        self.assertEqual(meta["platform"], "xgboost")
        self.assertEqual(
            [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]],
            [("age", "FP32", [-1]), ("income", "FP32", [-1]),
             ("tenure", "INT64", [-1]), ("plan", "BYTES", [-1]),
             ("region", "BYTES", [-1]), ("support_calls", "INT64", [-1])])
        self.assertEqual(
            [(o["name"], o["datatype"], o["shape"]) for o in meta["outputs"]],
            [("probabilities", "FP32", [-1, 2]), ("label", "INT64", [-1])])
        for version in ("1", "v1"):
            self.assertEqual(self.client.metadata(CHURN, version), meta)

        tiers = self.client.metadata(TIERS)
        self.assertEqual(
            {i["name"]: i["datatype"] for i in tiers["inputs"]},
            {"age": "FP32", "tenure": "INT64", "region": "BYTES",
             "vip": "BOOL", "support_calls": "INT64"})
        self.assertEqual(
            [(o["name"], o["datatype"], o["shape"]) for o in tiers["outputs"]],
            [("probabilities", "FP32", [-1, 4]), ("label", "BYTES", [-1])])

    def test_model_ready_both_forms(self):
        for path in ("/v2/models/churn/ready",
                     "/v2/models/churn/versions/1/ready",
                     "/v2/models/tiers/versions/v1/ready"):
            status, body = self.server.request("GET", path)
            self.assertEqual(status, 200, (path, body))
            self.assertTrue(body["ready"], path)
            self.assertEqual(body["name"], path.split("/")[3])
        status, body = self.tiers_ready_before_promote
        self.assertEqual(status, 503, body)
        self.assertEqual(body["ready"], False)
        self.assertIn("tiers", body["error"])

    def test_unknown_model_and_version(self):
        s = self.server
        request = self.client.request(self.client.metadata(CHURN),
                                      self.churn_records(2))
        for method, path, body in (
                ("GET", "/v2/models/nosuch", None),
                ("GET", "/v2/models/nosuch/ready", None),
                ("GET", "/v2/models/nosuch/versions/1", None),
                ("POST", "/v2/models/nosuch/infer", request),
                ("POST", "/v2/models/nosuch/versions/1/infer", request)):
            self.assert_error(s.request(method, path, body), 404, "nosuch")
        for method, path, body in (
                ("GET", "/v2/models/churn/versions/7", None),
                ("GET", "/v2/models/churn/versions/7/ready", None),
                ("POST", "/v2/models/churn/versions/7/infer", request)):
            self.assert_error(s.request(method, path, body), 404, "v7")
        self.assert_error(s.request("GET", "/v2/models/churn/versions/x"),
                          400, "'x'")

    # --- inference ---

    def test_infer_both_forms_match_v1_predict(self):
        meta = self.client.metadata(CHURN)
        records = self.churn_records(40)
        body = self.client.request(meta, records)
        plain = self.infer_ok(CHURN, body)
        versioned = self.infer_ok(CHURN, body, version=1)
        self.assertEqual(plain["model_name"], CHURN)
        self.assertEqual(plain["model_version"], "1")
        self.assertEqual(versioned["model_version"], "1")
        self.assertEqual(self.client.outputs(plain),
                         self.client.outputs(versioned))
        self.assertTrue(plain["parameters"]["request_id"])

        outputs = self.client.outputs(plain)
        self.assertEqual(list(outputs), ["probabilities", "label"])
        shape, datatype, probs = outputs["probabilities"]
        self.assertEqual((shape, datatype), ([40, 2], "FP32"))
        self.assertEqual(len(probs), 80)
        shape, datatype, labels = outputs["label"]
        self.assertEqual((shape, datatype), ([40], "INT64"))
        for i in range(40):
            p0, p1 = probs[2 * i], probs[2 * i + 1]
            self.assertAlmostEqual(p0 + p1, 1.0, places=6)
            self.assertEqual(labels[i], 1 if p1 > p0 else 0)

        status, v1 = self.server.request(
            "POST", "/v1/apps/%s/predict" % CHURN, {"records": records})
        self.assertEqual(status, 200, v1)
        self.assertEqual([p["probabilities"]["1"] for p in v1["predictions"]],
                         probs[1::2])
        self.assertEqual([p["label"] for p in v1["predictions"]], labels)

    def test_multiclass_outputs(self):
        meta = self.client.metadata(TIERS)
        records = tiers_records(tiers_rows(30, seed=77))
        response = self.infer_ok(TIERS, self.client.request(meta, records))
        outputs = self.client.outputs(response)
        shape, datatype, probs = outputs["probabilities"]
        self.assertEqual((shape, datatype), ([30, 4], "FP32"))
        shape, datatype, labels = outputs["label"]
        self.assertEqual((shape, datatype), ([30], "BYTES"))
        # Class order is the sorted labels, as /v1 names them.
        status, v1 = self.server.request(
            "POST", "/v1/apps/%s/predict" % TIERS, {"records": records})
        self.assertEqual(status, 200, v1)
        classes = sorted(datagen.PLANS)
        self.assertEqual(sorted(v1["predictions"][0]["probabilities"]),
                         classes)
        for i, p in enumerate(v1["predictions"]):
            row = probs[4 * i:4 * i + 4]
            self.assertAlmostEqual(sum(row), 1.0, places=5)
            self.assertEqual(row, [p["probabilities"][c] for c in classes])
            self.assertEqual(labels[i], classes[row.index(max(row))])
            self.assertEqual(labels[i], p["label"])
        self.assertGreater(len(set(labels)), 1, labels)

    def test_every_numeric_datatype_matches_fp64(self):
        meta = self.client.metadata(CHURN)
        numeric = [i["name"] for i in meta["inputs"]
                   if i["datatype"] != "BYTES"]
        base = self.churn_records(25, seed=31, missing=0.0)
        for datatype in NUMERIC_DATATYPES:
            with self.subTest(datatype=datatype):
                if datatype in INTEGER_RANGES:
                    lo, hi = INTEGER_RANGES[datatype]
                    records = [dict(r, **{n: min(hi, max(lo, round(r[n])))
                                          for n in numeric}) for r in base]
                else:
                    records = base
                reference = self.probabilities(CHURN, self.client.request(
                    meta, records, {n: "FP64" for n in numeric}))
                got = self.probabilities(CHURN, self.client.request(
                    meta, records, {n: datatype for n in numeric}))
                self.assertEqual(got, reference)
        # Integral values differ between rows, so the comparison means
        # something for the narrowest type too.
        self.assertGreater(len({min(127, round(r["age"])) for r in base}), 5)

    def test_bool_feature_datatypes(self):
        meta = self.client.metadata(TIERS)
        records = tiers_records(tiers_rows(30, seed=78))
        self.assertEqual({r["vip"] for r in records}, {True, False})
        reference = self.probabilities(TIERS,
                                       self.client.request(meta, records))
        for datatype in ("INT8", "UINT8", "INT64", "FP32", "FP64"):
            with self.subTest(datatype=datatype):
                self.assertEqual(self.probabilities(TIERS, self.client.request(
                    meta, records, {"vip": datatype})), reference)
        # The feature matters: flipping it changes the answer.
        flipped = [dict(r, vip=not r["vip"]) for r in records]
        self.assertNotEqual(self.probabilities(
            TIERS, self.client.request(meta, flipped)), reference)
        self.bad_request(TIERS, self.client.request(
            meta, records, {"vip": "BYTES"}), "'vip'", "BYTES")
        self.bad_request(TIERS, self.client.request(
            meta, records, {"age": "BOOL"}), "'age'", "BOOL")
        body = self.client.request(meta, records)
        next(i for i in body["inputs"] if i["name"] == "vip")["data"][3] = 2
        self.bad_request(TIERS, body, "'vip'")

    def test_flat_and_nested_data(self):
        meta = self.client.metadata(CHURN)
        records = self.churn_records(12)
        flat = self.probabilities(CHURN, self.client.request(meta, records))
        for layout in ("nested", "flat2d"):
            with self.subTest(layout=layout):
                self.assertEqual(self.probabilities(CHURN, self.client.request(
                    meta, records, layout=layout)), flat)
        # Inputs may come in any order.
        body = self.client.request(meta, records)
        body["inputs"].reverse()
        self.assertEqual(self.probabilities(CHURN, body), flat)

    def test_outputs_selection(self):
        meta = self.client.metadata(CHURN)
        records = self.churn_records(5)
        full = self.client.outputs(self.infer_ok(
            CHURN, self.client.request(meta, records)))
        for wanted in (["label"], ["probabilities"],
                       ["label", "probabilities"]):
            with self.subTest(outputs=wanted):
                response = self.infer_ok(CHURN, self.client.request(
                    meta, records,
                    outputs=[{"name": n, "parameters": {"binary_data": False}}
                             for n in wanted]))
                got = self.client.outputs(response)
                self.assertEqual(sorted(got), sorted(wanted))
                for name in wanted:
                    self.assertEqual(got[name], full[name])
        self.bad_request(CHURN, self.client.request(
            meta, records, outputs=[{"name": "scores"}]), "'scores'")

    def test_parameters_accepted_and_id_echoed(self):
        meta = self.client.metadata(CHURN)
        records = self.churn_records(6)
        plain = self.infer_ok(CHURN, self.client.request(meta, records))
        self.assertNotIn("id", plain)
        body = self.client.request(
            meta, records, id="req-42",
            parameters={"content_type": "pd", "priority": 3, "tag": "x"})
        for tensor in body["inputs"]:
            tensor["parameters"] = {"content_type": "np"}
        response = self.infer_ok(CHURN, body)
        self.assertEqual(response["id"], "req-42")
        self.assertEqual(self.client.outputs(response),
                         self.client.outputs(plain))

    def test_binary_tensor_data_matches_json(self):
        meta = self.client.metadata(CHURN)
        records = self.churn_records(300, seed=41)
        self.assertTrue(any(r["age"] is None for r in records))
        reference = self.infer_ok(CHURN, self.client.request(meta, records))
        body, header_length = self.client.binary_request(meta, records)
        header = json.loads(body[:header_length])
        binary = {i["name"] for i in header["inputs"] if "parameters" in i}
        self.assertTrue({"age", "income", "tenure", "support_calls"} <= binary,
                        binary)
        status, response = self.client.infer_binary(CHURN, body,
                                                    header_length)
        self.assertEqual(status, 200, response)
        self.assertEqual(self.client.outputs(response),
                         self.client.outputs(reference))

    def test_truncated_binary_body(self):
        meta = self.client.metadata(CHURN)
        records = self.churn_records(50, seed=42, missing=0.0)
        body, header_length = self.client.binary_request(meta, records)
        # The last input's bytes cut short, then the JSON header itself.
        self.assert_error(self.client.infer_binary(CHURN, body[:-5],
                                                   header_length),
                          400, "'support_calls'", "binary_data_size")
        self.assert_error(self.client.infer_binary(CHURN, body[:100],
                                                   header_length),
                          400, "Inference-Header-Content-Length")
        # The server keeps serving, binary and JSON.
        status, response = self.client.infer_binary(CHURN, body,
                                                    header_length)
        self.assertEqual(status, 200, response)
        self.assertEqual(self.client.outputs(response),
                         self.client.outputs(self.infer_ok(
                             CHURN, self.client.request(meta, records))))

    # --- errors, each naming the tensor ---

    def test_shape_errors(self):
        meta = self.client.metadata(CHURN)
        records = self.churn_records(4)
        body = self.client.request(meta, records)
        body["inputs"][1]["shape"] = [5]
        self.bad_request(CHURN, body, "'income'")
        body = self.client.request(meta, records)
        body["inputs"][2]["data"].pop()
        self.bad_request(CHURN, body, "'tenure'")
        body = self.client.request(meta, records)
        body["inputs"][0]["shape"] = [2, 2]
        self.bad_request(CHURN, body, "'age'")
        body = self.client.request(meta, records, layout="nested")
        body["inputs"][3]["data"][0] = [["basic"]]
        self.bad_request(CHURN, body, "'plan'")

    def test_unknown_and_missing_inputs(self):
        meta = self.client.metadata(CHURN)
        records = self.churn_records(3)
        body = self.client.request(meta, records)
        body["inputs"].append({"name": "shoe_size", "datatype": "FP32",
                               "shape": [3], "data": [1, 2, 3]})
        self.bad_request(CHURN, body, "'shoe_size'")
        body = self.client.request(meta, records)
        del body["inputs"][4]
        self.bad_request(CHURN, body, "'region'")
        body = self.client.request(meta, records)
        body["inputs"].append(dict(body["inputs"][0]))
        self.bad_request(CHURN, body, "'age'")

    def test_wrong_datatypes(self):
        meta = self.client.metadata(CHURN)
        records = self.churn_records(3, missing=0.0)
        self.bad_request(CHURN, self.client.request(
            meta, records, {"income": "BYTES"}), "'income'")
        self.bad_request(CHURN, self.client.request(
            meta, records, {"tenure": "FP128"}), "'tenure'", "FP128")
        body = self.client.request(meta, records)
        body["inputs"][0]["data"][1] = "forty"
        self.bad_request(CHURN, body, "'age'")
        body = self.client.request(meta, records)
        body["inputs"][3]["data"][2] = {"plan": "pro"}
        self.bad_request(CHURN, body, "'plan'")

    def test_invalid_utf8_in_bytes(self):
        meta = self.client.metadata(CHURN)
        records = self.churn_records(2, missing=0.0)
        records[1]["plan"] = "PLACEHOLDER"
        text = json.dumps(self.client.request(meta, records))
        for bad in (b"ab\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80"):
            with self.subTest(bytes=bad):
                raw = text.encode("latin-1").replace(b"PLACEHOLDER", bad)
                status, body = self.server.request(
                    "POST", "/v2/models/%s/infer" % CHURN, raw)
                self.assertEqual(status, 400, body)
                # The tensor, or the byte's place in the body.
                error = body["error"]
                self.assertTrue("'plan'" in error or
                                ("UTF-8" in error and "column" in error),
                                error)
        # A lone surrogate escape is valid JSON syntax but not Unicode.
        status, body = self.server.request(
            "POST", "/v2/models/%s/infer" % CHURN,
            text.replace("PLACEHOLDER", "\\udcff"))
        self.assertEqual(status, 400, body)

    def test_non_finite_numbers(self):
        meta = self.client.metadata(CHURN)
        records = self.churn_records(2, missing=0.0)
        records[0]["age"] = 77777.0
        text = json.dumps(self.client.request(meta, records))
        self.assertIn("77777.0", text)
        # NaN and Infinity are not JSON.
        for literal in ("NaN", "Infinity", "-Infinity"):
            with self.subTest(literal=literal):
                status, body = self.server.request(
                    "POST", "/v2/models/%s/infer" % CHURN,
                    text.replace("77777.0", literal))
                self.assertEqual(status, 400, body)
                self.assertIn("JSON", body["error"])
        # A number beyond the double range: a client error, never a 500.
        for literal in ("1e999", "-1e999"):
            with self.subTest(literal=literal):
                status, body = self.server.request(
                    "POST", "/v2/models/%s/infer" % CHURN,
                    text.replace("77777.0", literal))
                self.assertEqual(status, 400, body)
                self.assertIn("error", body)
                status, body = self.server.request(
                    "POST", "/v1/apps/%s/predict" % CHURN,
                    json.dumps({"records": records}).replace("77777.0",
                                                             literal))
                self.assertEqual(status, 400, body)
        # A finite double beyond the float range is either refused naming
        # the input or read as the largest float (never NaN, i.e. missing).
        huge = self.client.request(meta, records, {"age": "FP64"})
        huge["inputs"][0]["data"][0] = 1e300
        status, body = self.client.infer(CHURN, huge)
        if status == 400:
            self.assertIn("'age'", body["error"])
        else:
            self.assertEqual(status, 200, body)
            largest = self.client.request(meta, records)
            largest["inputs"][0]["data"][0] = 3.0e38
            got = self.client.outputs(body)["probabilities"][2]
            self.assertEqual(got, self.probabilities(CHURN, largest))
            self.assertTrue(all(math.isfinite(p) for p in got))

    def test_malformed_bodies(self):
        for raw, needle in ((b"", "empty"), (b"{", "JSON"),
                            (b"[1, 2]", "object"),
                            (b'{"inputs": 3}', "inputs"),
                            (b'{"inputs": [3]}', "inputs[0]")):
            with self.subTest(body=raw):
                status, body = self.server.request(
                    "POST", "/v2/models/%s/infer" % CHURN, raw)
                self.assertEqual(status, 400, body)
                self.assertIn(needle, body["error"])


if __name__ == "__main__":
    unittest.main()
