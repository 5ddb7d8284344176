"""Monitoring end to end through the real binary: a model trained on rows of
`slipway gen`'s drift stream serves undrifted traffic, then traffic whose
income and region are shifted, then traffic whose labels follow a drifted
concept, then undrifted traffic again, with the labels sent back as
feedback. Windows of 2 s; the drift alerts fire for the shifted features
only, the accuracy rule fires on the concept drift and starts the pipeline
its event triggers, everything resolves on normal traffic, the webhook gets
signed alert events, /metrics carries the gauges, `slipway monitor` and
`slipway alerts list` show them, and bad feedback and a rule on a metric
that does not exist are refused with their message, changing nothing."""

import csv
import datetime
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

APP = "churn-watch"
SECRET = "monitoring-e2e-secret"
SEED = 5
FEATURES = ["age", "income", "tenure", "plan", "region", "support_calls",
            "monthly_spend"]
SHIFTED = {"income", "region"}
STRINGS = {"plan", "region"}
# Accuracy of the model below on 2,000 rows of each stream (measured once
# with this seed and spec): undrifted 0.78, covariate-shifted 0.82,
# concept-drifted 0.48. The rule sits between undrifted and drifted, about
# 7 standard deviations of a 600-row window from either.
ACCURACY_FLOOR = 0.65
WINDOW_S = 2
BURST = 600        # rows per replayed window
BATCH = 145        # rows per multi-row predict request
SINGLES = 20       # single-row requests per burst
MAX_BURSTS = 8     # per phase, before it fails naming what it waited for

SPEC = """app: {app}
description: churn model watched by its monitor
data:
  customers: {{connector: csv, path: {train}}}
schema: {{target: churned, id: customer_id, task: binary_classification}}
pipelines:
  train:
    steps:
      - ingest:   {{source: customers}}
      - split:    {{test_fraction: 0.2, seed: 7, stratify: true}}
      - train:    {{objective: "binary:logistic", rounds: 40, max_depth: 4, eta: 0.2, seed: 3, threads: 1}}
      - evaluate: {{metrics: [auc, accuracy]}}
      - register: {{alias: champion}}
  on-decay:
    kind: check
    trigger: {{on: [kpi_decay]}}
    steps:
      - command: {{run: "echo accuracy fell, time to retrain"}}
        name: note
monitor:
  window: {window}s
  rules:
    - {{name: accuracy-low, metric: {metric}, below: {floor}, for: 1, fire: kpi_decay}}
notify:
  - {{webhook: "http://127.0.0.1:{port}/hook", secret: "env:HOOK_SECRET"}}
"""


def spec_text(train_csv, port, metric="kpi.accuracy"):
    return SPEC.format(app=APP, train=train_csv, window=WINDOW_S,
                       metric=metric, floor=ACCURACY_FLOOR, port=port)


def parse_time(text):
    return datetime.datetime.fromisoformat(
        text.replace("Z", "+00:00")).timestamp()


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def record(row):
    """A CSV row of the stream as a client sends it: features only, numbers
    as numbers, empty cells as null."""
    out = {}
    for name in FEATURES:
        text = row[name]
        out[name] = (None if text == "" else
                     text if name in STRINGS else float(text))
    return out


def drifted_features(window):
    return sorted(name for name, f in window["features"].items()
                  if f.get("drift"))


def summary(windows):
    """One line per window, for failure messages."""
    return "\n".join(
        "  %s rows=%s drift=%s accuracy=%s" % (
            w["start"], w["rows"], drifted_features(w),
            w["kpis"].get("accuracy") if isinstance(w["kpis"], dict)
            else None) for w in windows)


class Traffic:
    """Rows of one generated slice: the no-label file replayed as requests,
    the labeled copy of the same rows kept for the feedback."""

    def __init__(self, name, unlabeled_path, labeled_path):
        self.name = name
        unlabeled = read_rows(unlabeled_path)
        labeled = read_rows(labeled_path)
        assert len(unlabeled) == len(labeled), name
        for u, lab in zip(unlabeled, labeled):
            # Same seed and start: the same rows, the label aside.
            assert u == {k: v for k, v in lab.items() if k != "churned"}, (
                name, u, lab)
        self.rows = [(record(u), int(lab["churned"]))
                     for u, lab in zip(unlabeled, labeled)]
        self.next = 0

    def take(self, n):
        if self.next + n > len(self.rows):
            raise AssertionError("ran out of %s traffic (%d rows)" %
                                 (self.name, len(self.rows)))
        taken = self.rows[self.next:self.next + n]
        self.next += n
        return taken


class MonitoringTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.started = time.monotonic()
        cls.receiver = harness.Receiver()
        os.environ["HOOK_SECRET"] = SECRET  # the server inherits it
        cls.ws = harness.Workspace()
        cls.server = cls.ws.server()
        s = cls.server

        def gen(name, rows, start, *flags):
            """The slice twice: labeled (training, feedback) and as
            traffic (--no-label)."""
            labeled = cls.ws.path("data", name + ".csv")
            unlabeled = cls.ws.path("data", name + "-traffic.csv")
            os.makedirs(os.path.dirname(labeled), exist_ok=True)
            common = ["gen", "--seed", str(SEED), "--rows", str(rows),
                      "--start", str(start)] + list(flags)
            s.cli(*(common + ["--out", labeled]), check=True)
            s.cli(*(common + ["--no-label", "--out", unlabeled]), check=True)
            return unlabeled, labeled

        cls.train_csv = train_csv = gen("train", 4000, 0)[1]
        # Undrifted traffic for two phases.
        cls.normal = Traffic("undrifted", *gen(
            "normal", 2 * MAX_BURSTS * BURST, 100000))
        cls.shifted = Traffic("covariate-shifted", *gen(
            "shifted", MAX_BURSTS * BURST, 200000,
            "--covariate-shift-at", "200000", "--shift", "income,region"))
        cls.concept = Traffic("concept-drifted", *gen(
            "concept", MAX_BURSTS * BURST, 300000,
            "--concept-drift-at", "300000"))

        cls.spec = cls.ws.write("app/slipway.yaml",
                                spec_text(train_csv, cls.receiver.port))
        cls.version = harness.train_version(s, cls.spec, APP)
        status, app = s.request("GET", "/api/v1/apps/%s" % APP)
        assert status == 200, app
        assert {"alias": "champion", "version": cls.version} in [
            {k: a[k] for k in ("alias", "version")} for a in app["aliases"]
        ], app
        harness.wait_until(
            lambda: s.request("POST", "/v1/apps/%s/predict" % APP,
                              {"records": [cls.normal.rows[0][0]]})[0] == 200,
            30, "the champion to serve")
        cls.last_request_id = None

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()
        cls.receiver.close()
        print("monitoring scenario took %.1fs" %
              (time.monotonic() - cls.started), file=sys.stderr)

    # --- helpers -----------------------------------------------------------

    def send(self, traffic, feedback):
        """One burst of BURST rows: multi-row predict requests and
        single-row ones, then (with `feedback`) their labels in one
        feedback request. Returns the wall time after the last request."""
        s = self.server
        rows = traffic.take(BURST)
        labeled = []  # (request id, label)
        i = 0
        while i < BURST - SINGLES:
            chunk = rows[i:i + min(BATCH, BURST - SINGLES - i)]
            status, body = s.request("POST", "/v1/apps/%s/predict" % APP,
                                     {"records": [r for r, _ in chunk]})
            self.assertEqual(status, 200, body)
            self.assertEqual(len(body["predictions"]), len(chunk))
            # A request of N rows logs row j as "<request_id>/<j>".
            labeled += [("%s/%d" % (body["request_id"], j), label)
                        for j, (_, label) in enumerate(chunk)]
            i += len(chunk)
        for r, label in rows[i:]:
            status, body = s.request("POST", "/v1/apps/%s/predict" % APP,
                                     {"records": [r]})
            self.assertEqual(status, 200, body)
            labeled.append((body["request_id"], label))
        type(self).last_request_id = labeled[-1][0]
        if feedback:
            # Labels as numbers and as text: 1 and "1" are the same class.
            items = [{"request_id": rid,
                      "label": str(label) if k % 5 == 0 else label}
                     for k, (rid, label) in enumerate(labeled)]
            status, body = s.request("POST", "/v1/apps/%s/feedback" % APP,
                                     {"feedback": items})
            self.assertEqual(status, 200, body)
            self.assertEqual((body["accepted"], body["duplicate"],
                              body["unknown_request"], body["wrong_app"]),
                             (BURST, 0, 0, 0), body)
        return time.time()

    def windows(self, since=None):
        status, body = self.server.request(
            "GET", "/api/v1/apps/%s/monitor" % APP)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["app"], APP)
        return [w for w in body["windows"]
                if since is None or parse_time(w["start"]) >= since]

    def alerts(self, **query):
        path = "/api/v1/alerts?app=" + APP + "".join(
            "&%s=%s" % kv for kv in query.items())
        status, body = self.server.request("GET", path)
        self.assertEqual(status, 200, body)
        return body["alerts"]

    def alert_states(self):
        """{rule: its latest alert's state}."""
        latest = {}
        for a in sorted(self.alerts(), key=lambda a: a["updated_at"]):
            latest[a["rule"]] = a
        return {rule: a["state"] for rule, a in latest.items()}

    def wait_window_closed(self, after):
        """Waits for the stored window that holds wall time `after`: windows
        are aligned to multiples of monitor.window since the epoch."""
        end = (int(after // WINDOW_S) + 1) * WINDOW_S
        return harness.wait_until(
            lambda: [w for w in self.windows(since=end - WINDOW_S - 0.001)
                     if parse_time(w["end"]) >= end - 0.001],
            5 * WINDOW_S + 10,
            lambda: "the window ending at %s to be stored; windows:\n%s" % (
                datetime.datetime.fromtimestamp(
                    end, datetime.timezone.utc).isoformat(),
                summary(self.windows())), interval=0.05)

    def replay(self, traffic, feedback, done, what):
        """Replays `traffic` a burst per window until `done(windows of this
        phase)` holds; fails after MAX_BURSTS bursts printing the windows
        and alerts. Returns the phase's windows."""
        # The start of the window the first burst lands in.
        since = int(time.time() // WINDOW_S) * WINDOW_S
        for _ in range(MAX_BURSTS):
            sent = self.send(traffic, feedback)
            self.wait_window_closed(sent)
            windows = self.windows(since=since)
            if done(windows):
                return windows
        raise AssertionError(
            "%s: not reached after %d bursts of %s traffic; windows:\n%s\n"
            "alerts: %s" % (what, MAX_BURSTS, traffic.name,
                            summary(self.windows()),
                            json.dumps(self.alerts(), indent=1)))

    def metrics(self):
        status, text = self.server.request("GET", "/metrics", raw=True)
        self.assertEqual(status, 200, text)
        return text.decode()

    def runs(self, pipeline):
        status, body = self.server.request("GET",
                                           "/api/v1/apps/%s/runs" % APP)
        self.assertEqual(status, 200, body)
        return [r for r in body["runs"] if r["pipeline"] == pipeline]

    # --- the scenario --------------------------------------------------------

    def test_1_undrifted_traffic_raises_nothing(self):
        def three_full_windows(windows):
            return len([w for w in windows if w["rows"] >= 500 and
                        "accuracy" in w["kpis"]]) >= 3

        windows = self.replay(self.normal, True, three_full_windows,
                              "3 undrifted windows of >= 500 rows with "
                              "feedback")
        for w in windows:
            self.assertEqual(w["model_version"], self.version)
            self.assertEqual(sorted(w["features"]), sorted(FEATURES))
            self.assertEqual(drifted_features(w), [], summary(windows))
            if w["kpis"]:
                # One burst's feedback, all of it joined with its
                # predictions, single-row and "<request_id>/<i>" alike.
                self.assertEqual(w["kpis"]["rows"], BURST, w["kpis"])
                self.assertGreater(w["kpis"]["accuracy"], ACCURACY_FLOOR,
                                   summary(windows))
        active = [a for a in self.alerts()
                  if a["state"] in ("pending", "firing")]
        self.assertEqual(active, [])
        listed = self.server.cli("alerts", "list", "--app", APP, check=True)
        self.assertEqual(listed.stdout, "no alerts\n")
        self.assertEqual(self.runs("on-decay"), [])

    def test_2_covariate_shift_fires_for_the_shifted_features_only(self):
        s = self.server

        def shift_alerts_firing(windows):
            states = self.alert_states()
            return all(states.get("drift:" + f) == "firing" for f in SHIFTED)

        windows = self.replay(self.shifted, False, shift_alerts_firing,
                              "drift:income and drift:region firing")
        # Drift for income and region and nothing else, in every window of
        # the shifted traffic. (The prediction, a function of the shifted
        # features, may drift too; it is not a feature and is not checked.)
        for w in windows:
            self.assertLessEqual(set(drifted_features(w)), SHIFTED,
                                 summary(windows))
        self.assertEqual(drifted_features(windows[-1]), sorted(SHIFTED),
                         summary(windows))
        drift_alerts = {a["rule"] for a in self.alerts()
                        if a["rule"].startswith("drift:")}
        self.assertEqual(drift_alerts, {"drift:income", "drift:region"})
        firing = self.alerts(state="firing")
        self.assertEqual(sorted(a["rule"] for a in firing),
                         ["drift:income", "drift:region"])
        for a in firing:
            self.assertEqual(a["app"], APP)
            self.assertEqual(a["metric"], a["rule"].replace(":", ".") +
                             ".drift")
            self.assertEqual(a["comparison"], "above")
            self.assertEqual(a["threshold"], 0.5)
            self.assertEqual(a["value"], 1)
            self.assertEqual(a["fire"], "drift")
            self.assertLessEqual(parse_time(a["since"]), time.time())
        self.assertNotIn("accuracy-low", self.alert_states())

        # The gauges of the latest window and the alert states.
        text = self.metrics()
        samples = harness.parse_prometheus(text)
        version = str(self.version)
        for feature in FEATURES:
            detected = harness.metric_values(
                samples, "slipway_drift_detected", app=APP, version=version,
                feature=feature)
            self.assertEqual([v for _, v in detected],
                             [1.0 if feature in SHIFTED else 0.0], feature)
            self.assertEqual(len(harness.metric_values(
                samples, "slipway_drift_score", app=APP, version=version,
                feature=feature)), 1, feature)
        for feature in SHIFTED:
            self.assertEqual(harness.metric_values(
                samples, "slipway_alert_firing", app=APP,
                rule="drift:" + feature)[0][1], 1.0)
        self.assertEqual(harness.metric_sum(
            samples, "slipway_monitor_window_rows", app=APP, version=version),
            windows[-1]["rows"])
        self.assertGreaterEqual(harness.metric_sum(
            samples, "slipway_feedback_total", app=APP, outcome="accepted"),
            3 * BURST)
        promtool = shutil.which("promtool")
        if promtool is None:
            print("promtool is not on PATH: `promtool check metrics` "
                  "skipped", file=sys.stderr)
        else:
            checked = subprocess.run([promtool, "check", "metrics"],
                                     input=text, capture_output=True,
                                     text=True, timeout=60)
            self.assertEqual(checked.returncode, 0,
                             checked.stdout + checked.stderr)
            self.assertEqual(checked.stdout + checked.stderr, "")

        # `slipway monitor` prints the latest window, flagging the shifted
        # features.
        shown = s.cli("monitor", APP, check=True).stdout
        flagged = set()
        for line in shown.splitlines():
            cells = line.split()
            if line.startswith("  ") and cells and cells[0] in FEATURES:
                if cells[-1] == "DRIFT":
                    flagged.add(cells[0])
        self.assertEqual(flagged, SHIFTED, shown)
        self.assertEqual(self.runs("on-decay"), [])

    def test_3_concept_drift_fires_the_kpi_rule_and_its_pipeline(self):
        s = self.server

        def accuracy_low_firing(windows):
            return self.alert_states().get("accuracy-low") == "firing"

        windows = self.replay(self.concept, True, accuracy_low_firing,
                              "accuracy-low firing")
        # The covariates are the undrifted ones: no feature drifts.
        for w in windows:
            self.assertEqual(drifted_features(w), [], summary(windows))
        low = [w for w in windows if "accuracy" in w["kpis"] and
               w["kpis"]["accuracy"] < ACCURACY_FLOOR]
        self.assertTrue(low, summary(windows))
        alert = [a for a in self.alerts(state="firing")
                 if a["rule"] == "accuracy-low"]
        self.assertEqual(len(alert), 1, alert)
        self.assertEqual((alert[0]["metric"], alert[0]["comparison"],
                          alert[0]["threshold"], alert[0]["fire"]),
                         ("kpi.accuracy", "below", ACCURACY_FLOOR,
                          "kpi_decay"))
        self.assertLess(alert[0]["value"], ACCURACY_FLOOR)

        # The rule's event started the pipeline that listens for it.
        runs = harness.wait_until(
            lambda: self.runs("on-decay"), 30,
            lambda: "a run of on-decay; the app's runs: %s" %
            self.server.request("GET", "/api/v1/apps/%s/runs" % APP)[1])
        self.assertEqual(len(runs), 1, runs)
        run = s.wait_for_run(runs[0]["id"], timeout=60)
        self.assertEqual(run["state"], "succeeded", run)
        status, audit = s.request("GET", "/api/v1/audit?app=%s" % APP)
        self.assertEqual(status, 200, audit)
        starts = [r for r in audit["records"] if r["action"] == "run.start"
                  and r["object"] == "run " + run["id"]]
        self.assertEqual(len(starts), 1, starts)
        self.assertIn("kpi_decay", starts[0]["actor"])
        self.assertIn("accuracy-low", starts[0]["actor"])
        listed = s.cli("runs", "list", APP, check=True).stdout
        self.assertIn(run["id"], listed)

        # The app's history tells it in order: the alert, then the run it
        # started, then the run's end.
        status, history = s.request("GET", "/api/v1/apps/%s/history" % APP)
        self.assertEqual(status, 200, history)
        story = [e["summary"] for e in history["events"]]
        fired = [i for i, e in enumerate(story)
                 if e.startswith("alert accuracy-low firing: kpi.accuracy = ")
                 and e.endswith("(below %g), fires kpi_decay" % ACCURACY_FLOOR)]
        started = [i for i, e in enumerate(story) if e == (
            "on-decay run %s started by event kpi_decay by monitor (alert "
            "accuracy-low)" % run["id"])]
        finished = [i for i, e in enumerate(story)
                    if e == "on-decay run %s succeeded" % run["id"]]
        self.assertEqual((len(fired), len(started), len(finished)), (1, 1, 1),
                         "\n".join(story))
        self.assertLess(fired[0], started[0], "\n".join(story))
        self.assertLess(started[0], finished[0], "\n".join(story))
        printed = s.cli("history", APP, check=True).stdout
        self.assertIn("alert accuracy-low firing", printed)
        self.assertIn("registered by run", printed)

    def test_4_normal_traffic_resolves_every_alert(self):
        expected = {"drift:income", "drift:region", "accuracy-low"}

        def all_resolved(windows):
            states = self.alert_states()
            return (expected <= set(states) and
                    all(v == "resolved" for v in states.values()))

        windows = self.replay(self.normal, True, all_resolved,
                              "every alert resolved")
        self.assertEqual(self.alerts(state="firing"), [])
        self.assertEqual(self.alerts(state="pending"), [])
        self.assertEqual({a["rule"] for a in self.alerts(state="resolved")},
                         expected)
        with_kpis = [w for w in windows if "accuracy" in w["kpis"]]
        self.assertGreater(with_kpis[-1]["kpis"]["accuracy"], ACCURACY_FLOOR)
        samples = harness.parse_prometheus(self.metrics())
        for rule in expected:
            self.assertEqual([v for _, v in harness.metric_values(
                samples, "slipway_alert_firing", app=APP, rule=rule)],
                [0.0], rule)
        listed = self.server.cli("alerts", "list", "--app", APP,
                                 check=True).stdout.splitlines()
        self.assertEqual(listed[0].split()[:3], ["APP", "RULE", "STATE"])
        self.assertEqual(sorted(tuple(line.split()[:3]) for line in listed[1:]),
                         sorted((APP, rule, "resolved") for rule in expected))

    def test_5_the_webhook_got_signed_alert_events(self):
        wanted = {("alert.firing", "drift:income"),
                  ("alert.resolved", "drift:income"),
                  ("alert.firing", "drift:region"),
                  ("alert.firing", "accuracy-low"),
                  ("alert.resolved", "accuracy-low")}

        def alert_events():
            return [(h, b) for h, b in self.receiver.events()
                    if h.get("X-Slipway-Event", "").startswith("alert.")]

        def seen():
            return {(json.loads(b)["event"],
                     json.loads(b)["audit"]["after"]["rule"])
                    for _, b in alert_events()}

        harness.wait_until(
            lambda: wanted <= seen(), 30,
            lambda: "the alert events at the webhook; got %s" % sorted(seen()))
        got = alert_events()
        for headers, body in got:
            self.assertEqual(headers["X-Slipway-Signature"],
                             harness.signature(SECRET, body))
            event = json.loads(body)
            self.assertEqual(event["event"], headers["X-Slipway-Event"])
            self.assertEqual(event["app"], APP)
            self.assertEqual(event["sent_by"], "slipway")
            audit = event["audit"]
            self.assertEqual(audit["actor"], "monitor")
            self.assertEqual(audit["object"],
                             "alert " + audit["after"]["rule"])
            firing = event["event"] == "alert.firing"
            self.assertEqual(audit["action"],
                             "alert.fire" if firing else "alert.resolve")
            self.assertEqual(audit["after"]["state"],
                             "firing" if firing else "resolved")
            self.assertEqual(audit["after"]["app"], APP)
        # Nothing fired for a feature the shift left alone.
        rules = {json.loads(b)["audit"]["after"]["rule"] for _, b in got}
        self.assertEqual(rules, {"drift:income", "drift:region",
                                 "accuracy-low"})

    def test_6_bad_input_is_refused_and_changes_nothing(self):
        s = self.server
        # Quiet: the last traffic's window is stored (replay waited for it)
        # and its alerts are delivered, so nothing but the requests below
        # could write.
        harness.wait_until(
            lambda: all(d["state"] == "delivered" for d in s.request(
                "GET", "/api/v1/apps/%s/deliveries" % APP)[1]["deliveries"]),
            30, "every webhook delivery recorded as delivered")
        known = self.last_request_id
        before = self.ws.store_row_counts()

        status, body = s.request("POST", "/v1/apps/%s/feedback" % APP,
                                 {"request_id": "req-never-issued",
                                  "label": 1})
        self.assertEqual(status, 404, body)
        self.assertIn("no prediction with request id 'req-never-issued' was "
                      "logged for app '%s'" % APP, body["error"])

        status, body = s.request("POST", "/v1/apps/%s/feedback" % APP, {
            "feedback": [{"request_id": known, "label": 1},
                         {"request_id": known, "label": {"a": 1}}]})
        self.assertEqual(status, 400, body)
        self.assertIn("feedback item 1", body["error"])
        self.assertIn("field 'label'", body["error"])
        self.assertIn("is not a class of app '%s'" % APP, body["error"])

        status, body = s.request("POST", "/v1/apps/%s/feedback" % APP,
                                 [{"request_id": known, "label": "maybe"}])
        self.assertEqual(status, 400, body)
        self.assertIn("feedback item 0 (request %s): field 'label'" % known,
                      body["error"])
        self.assertIn("its classes are: 0, 1", body["error"])

        typo = self.ws.write("typo/slipway.yaml",
                             spec_text(self.train_csv, self.receiver.port,
                                       metric="kpi.acuracy"))
        applied = s.cli("apply", typo)
        self.assertEqual(applied.returncode, 1, applied.stdout)
        self.assertIn("alert rule metric 'kpi.acuracy' does not exist; "
                      "valid metrics: ", applied.stderr)
        with open(typo) as f:
            status, body = s.request("POST", "/api/v1/apps", {
                "spec": f.read(), "file": "slipway.yaml",
                "source_dir": os.path.dirname(typo)})
        self.assertEqual(status, 400, body)
        self.assertIn("'kpi.acuracy' does not exist", body["error"])

        self.assertEqual(self.ws.store_row_counts(), before)
        status, app = s.request("GET", "/api/v1/apps/%s" % APP)
        self.assertIn("metric: kpi.accuracy,", app["spec"])

        # Serving is unaffected.
        status, body = s.request("POST", "/v1/apps/%s/predict" % APP,
                                 {"records": [self.normal.rows[0][0]]})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["model_version"], self.version)

    def test_7_acknowledged_feedback_survives_a_crash(self):
        s = self.server
        status, body = s.request("POST", "/v1/apps/%s/predict" % APP,
                                 {"records": [self.normal.rows[1][0]]})
        self.assertEqual(status, 200, body)
        request_id = body["request_id"]
        status, body = s.request("POST", "/v1/apps/%s/feedback" % APP,
                                 {"request_id": request_id, "label": 1,
                                  "kpis": {"revenue": 4.5}})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["accepted"], 1, body)
        s.kill()  # right after the 200: nothing gets a chance to flush
        s.start()
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(
            s.data_dir, "slipway.db"), uri=True)
        try:
            stored = db.execute(
                "SELECT label, kpis_json FROM feedback WHERE request_id = ?",
                (request_id,)).fetchall()
        finally:
            db.close()
        self.assertEqual(len(stored), 1, stored)
        self.assertEqual(stored[0][0], "1")
        self.assertEqual(json.loads(stored[0][1]), {"revenue": 4.5})
        # The restarted server knows it: sending it again is a duplicate.
        harness.wait_until(
            lambda: s.request("POST", "/v1/apps/%s/predict" % APP,
                              {"records": [self.normal.rows[0][0]]})[0] == 200,
            30, "the champion to serve again")
        status, body = s.request("POST", "/v1/apps/%s/feedback" % APP,
                                 {"request_id": request_id, "label": 1})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["duplicate"], 1, body)


if __name__ == "__main__":
    unittest.main()
