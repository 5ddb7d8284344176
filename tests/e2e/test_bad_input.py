"""Bad input, as a table: each case gives an input, the HTTP status or exit
code it must get, and a substring of the message. The store's row counts
are the same before and after every bad request, and the server answers a
good request afterwards."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import datagen  # noqa: E402
import harness  # noqa: E402

APP = "churn"

GOOD_SPEC = datagen.APP_SPEC.format(app=APP, path="data/customers.csv",
                                    rounds=20)

# (name, spec text, substring of the error)
BAD_SPECS = [
    ("malformed YAML", "app: churn\ndata: [unclosed\n", "slipway.yaml:3:1"),
    ("unknown key", GOOD_SPEC.replace("rounds: 20", "epochs: 20"),
     "slipway.yaml:17:50"),
    ("unknown key names it", GOOD_SPEC.replace("rounds: 20", "epochs: 20"),
     "unknown key 'epochs'"),
    ("wrong type", GOOD_SPEC.replace("test_fraction: 0.2",
                                     "test_fraction: abc"),
     "slipway.yaml:16:35"),
    ("wrong type names it", GOOD_SPEC.replace("test_fraction: 0.2",
                                              "test_fraction: abc"),
     "test_fraction"),
]

HEADER = "customer_id,age,income,tenure,plan,region,support_calls,churned\n"
ROW = "1,30.5,50000,12,basic,north,2,0\n"

# (name, CSV text, extra data-source keys, substring of the run's error)
BAD_CSVS = [
    ("ragged row", HEADER + ROW * 5 + "7,31,1,2,basic\n" + ROW * 200, "",
     "bad.csv:7"),
    ("unterminated quote", HEADER + ROW * 5 + '8,"30,1,2,basic,north,2,0\n' +
     ROW * 200, "", "bad.csv:7"),
    ("text in a numeric column", HEADER + ROW * 9 + "9,abc,1,2,basic,north,2,0\n"
     + ROW * 200, "\n    types: {age: float64}", "bad.csv:11"),
]


class BadInputTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.ws.write("app/data/customers.csv",
                     datagen.to_csv(datagen.rows(600, seed=5)))
        cls.spec_path = cls.ws.write("app/slipway.yaml", GOOD_SPEC)
        cls.server = cls.ws.server()
        cls.server.cli("apply", cls.spec_path, check=True)
        cls.server.cli("run", APP, "train", "--wait", check=True)
        cls.server.cli("models", "promote", APP, "1", check=True)
        cls.good_record = datagen.records(datagen.rows(1, seed=3))[0]

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def assert_good_request_works(self):
        status, body = self.server.request(
            "POST", "/v1/apps/%s/predict" % APP,
            {"records": [self.good_record]})
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["predictions"]), 1)

    def test_bad_specs(self):
        for name, text, expected in BAD_SPECS:
            with self.subTest(name):
                before = self.ws.store_row_counts()
                path = self.ws.write("bad/slipway.yaml", text)
                result = self.server.cli("apply", path)
                self.assertEqual(result.returncode, 1, result.stdout)
                self.assertIn(expected, result.stderr)
                with open(path) as f:
                    status, body = self.server.request(
                        "POST", "/api/v1/apps",
                        {"spec": f.read(), "file": "slipway.yaml"})
                self.assertEqual(status, 400)
                self.assertIn(expected, body["error"])
                self.assertEqual(self.ws.store_row_counts(), before)
                self.assert_good_request_works()

    def test_bad_csv_files(self):
        for i, (name, text, extra, expected) in enumerate(BAD_CSVS):
            with self.subTest(name):
                app = "badcsv%d" % i
                self.ws.write("csv%d/bad.csv" % i, text)
                spec = datagen.APP_SPEC.format(
                    app=app, path="bad.csv", rounds=5).replace(
                        "path: bad.csv", "path: bad.csv" + extra)
                path = self.ws.write("csv%d/slipway.yaml" % i, spec)
                self.server.cli("apply", path, check=True)
                before = self.ws.store_row_counts()
                result = self.server.cli("run", app, "train", "--wait")
                self.assertEqual(result.returncode, 1, result.stdout)
                self.assertIn("step 'ingest'", result.stderr)
                self.assertIn(expected, result.stderr)
                after = self.ws.store_row_counts()
                # The failed run itself is recorded; nothing else changed.
                self.assertEqual(after.get("model_versions"),
                                 before.get("model_versions"))
                self.assert_good_request_works()

    def test_bad_predict_requests(self):
        record = dict(self.good_record)
        missing = {k: v for k, v in record.items() if k != "age"}
        unknown = dict(record, agee=3)
        wrong = dict(record, age="abc")
        path = "/v1/apps/%s/predict" % APP
        cases = [
            ("missing feature", path, {"records": [missing]}, 400, "age"),
            ("unknown feature", path, {"records": [unknown]}, 400, "agee"),
            ("wrong type", path, {"records": [wrong]}, 400, "age"),
            ("empty body", path, "", 400, "empty"),
            ("invalid JSON", path, "{\"records\": [", 400, "JSON"),
            ("unknown app", "/v1/apps/nosuchapp/predict",
             {"records": [record]}, 404, "nosuchapp"),
            ("OIP unknown app", "/v2/models/nosuchapp/infer",
             {"inputs": []}, 404, "nosuchapp"),
        ]
        for name, target, body, status, expected in cases:
            with self.subTest(name):
                before = self.ws.store_row_counts()
                got, answer = self.server.request("POST", target, body)
                self.assertEqual(got, status, answer)
                self.assertIn(expected, answer["error"])
                self.assertEqual(self.ws.store_row_counts(), before)
                self.assert_good_request_works()

    def test_unknown_objects_in_cli(self):
        result = self.server.cli("run", APP, "nosuchpipeline", "--wait")
        self.assertEqual(result.returncode, 1)
        self.assertIn("nosuchpipeline", result.stderr)
        result = self.server.cli("models", "promote", APP, "9")
        self.assertEqual(result.returncode, 1)
        self.assertIn("v9", result.stderr)
        self.assert_good_request_works()


if __name__ == "__main__":
    unittest.main()
