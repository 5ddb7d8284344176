"""The improvement loop end to end, through the real binary on a test clock
(`slipway server --test-clock`, moved an hour at a time through POST
/api/v1/admin/clock), with real retraining, real HTTP traffic from `slipway
gen`'s drift stream and real feedback, and no human action after the first
deployment:

  concept drift -> the accuracy rule fires -> its kpi_decay event retrains
  on the last rows of the source -> the challenger beats the champion on the
  run's held-out rows -> it serves a canary share of live traffic -> the
  canary's feedback shows it better -> promoted -> the accuracy recovers;
  then a challenger trained on shuffled labels is evaluated and discarded;
  then a promotion that degrades in production is rolled back by itself,
  with an alert.

Each step is asserted from the app's timeline (GET /api/v1/apps/{app}/
history), in order. The same story with policy.promote.approval: required
stops at each promotion until an approver approves it. With
endpoint.shadow instead, the challenger sees a copy of every request, never
answers one, and gets its own KPIs and its agreement with the champion."""

import csv
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

SEED = 21
FEATURES = ["age", "income", "tenure", "plan", "region", "support_calls",
            "monthly_spend"]
STRINGS = {"plan", "region"}
DRIFT_AT = 3000        # global row of the stream where the drift begins
HOUR = 3600
CANARY_PERCENT = 30
MIN_ROWS = 150         # labelled predictions per side before judging
# The model trained on undrifted rows scores about 0.78 accuracy on
# undrifted rows and under 0.55 on concept-drifted ones; one trained on
# drifted rows scores about 0.78 on them.
ACCURACY_FLOOR = 0.68

SPEC = """app: {app}
data:
  customers: {{connector: csv, path: {train}}}
schema: {{target: churned, id: customer_id, task: binary_classification}}
pipelines:
  train:
    trigger: {{on: [kpi_decay]}}
    steps:
      - ingest:   {{source: customers, last_rows: 2000}}
      - split:    {{test_fraction: 0.3, seed: 7, stratify: true}}
      - train:    {{objective: "binary:logistic", rounds: 40, max_depth: 4, eta: 0.2, seed: 3, threads: 1}}
      - evaluate: {{metrics: [auc, accuracy]}}
      - register: {{alias: challenger}}
  # The same training with a bug: the training rows' labels shuffled (the
  # held-out rows keep theirs).
  train-shuffled:
    kind: train
    steps:
      - ingest:   {{source: customers, last_rows: 2000}}
      - split:    {{test_fraction: 0.3, seed: 7, stratify: true}}
      - command:  {{run: [/usr/bin/python3, shuffle.py]}}
        name: shuffle
        inputs: [split.train]
        outputs: [train]
      - train:    {{objective: "binary:logistic", rounds: 40, max_depth: 4, eta: 0.2, seed: 3, threads: 1}}
        inputs: [shuffle.train]
      - evaluate: {{metrics: [auc, accuracy]}}
        inputs: [train, split.test]
      - register: {{alias: challenger}}
        inputs: [train, split.test]
endpoint:
  model: champion
  {traffic}
monitor:
  window: 1h
  rules:
    - {{name: accuracy-low, metric: kpi.accuracy, below: {floor}, for: 1, fire: kpi_decay}}
policy:
  promote: {{metric: auc, min_gain: 0.01, confidence: 0.95{approval}}}
  rollback: {{kpi_drop: 0.05, windows: 2, min_rows: {min_rows}}}
"""


SHUFFLE = """import csv, os, random
path = os.path.join(os.environ["SLIPWAY_INPUT_DIR"], "split", "train.csv")
with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
labels = [r["churned"] for r in rows]
random.Random(7).shuffle(labels)
out = os.path.join(os.environ["SLIPWAY_OUTPUT_DIR"], "train.csv")
with open(out, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    for r, label in zip(rows, labels):
        r["churned"] = label
        w.writerow(r)
"""


def record(row):
    """A generated row as a client sends it: features only."""
    return {name: (None if row[name] == "" else
                   row[name] if name in STRINGS else float(row[name]))
            for name in FEATURES}


class Scenario:
    """One app's story on a shared server and clock."""

    def __init__(self, test, server, ws, app, approval, shadow=False):
        self.t = test
        self.s = server
        self.ws = ws
        self.app = app
        self.approval = approval
        self.shadow = shadow
        self.train_csv = ws.path(app, "customers.csv")
        self.spec = ws.path(app, "slipway.yaml")
        self.next_row = 10_000   # live traffic rows, after the training rows
        self.rows_cache = {}

    # --- data --------------------------------------------------------------

    def gen(self, path, rows, start, drift=True, shuffle=False):
        args = ["gen", "--seed", str(SEED), "--rows", str(rows), "--start",
                str(start), "--out", path]
        if drift:
            args += ["--concept-drift-at", str(DRIFT_AT),
                     "--covariate-shift-at", str(DRIFT_AT)]
        self.s.cli(*args, check=True)
        if shuffle:
            with open(path) as f:
                table = list(csv.DictReader(f))
            labels = [r["churned"] for r in table]
            random.Random(SEED).shuffle(labels)
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(table[0]))
                w.writeheader()
                for r, label in zip(table, labels):
                    r["churned"] = label
                    w.writerow(r)

    def write_training_rows(self, rows, drift=True, shuffle=False):
        """The source the train pipeline reads: the stream's first `rows`."""
        os.makedirs(os.path.dirname(self.train_csv), exist_ok=True)
        self.gen(self.train_csv, rows, 0, drift=drift, shuffle=shuffle)

    def apply(self):
        self.ws.write(os.path.join(self.app, "shuffle.py"), SHUFFLE)
        self.ws.write(os.path.join(self.app, "slipway.yaml"), SPEC.format(
            app=self.app, train=self.train_csv,
            traffic=("shadow: {model: challenger}" if self.shadow else
                     "canary: {model: challenger, percent: %d, min_rows: %d}"
                     % (CANARY_PERCENT, MIN_ROWS)),
            min_rows=MIN_ROWS, floor=ACCURACY_FLOOR,
            approval=", approval: required" if self.approval else ""))
        self.s.cli("apply", self.spec, check=True)

    # --- traffic -----------------------------------------------------------

    def send(self, rows, batch=4, before_feedback=None):
        """Predicts the next `rows` live rows (drifted) in requests of
        `batch` rows, calls `before_feedback()` if given, sends their labels
        back, and returns {version: rows} of who answered."""
        path = self.ws.path(self.app, "live-%d.csv" % self.next_row)
        self.gen(path, rows, self.next_row)
        self.next_row += rows
        with open(path) as f:
            table = list(csv.DictReader(f))
        items = []
        answered = {}
        for i in range(0, len(table), batch):
            chunk = table[i:i + batch]
            status, body = self.s.request(
                "POST", "/v1/apps/%s/predict" % self.app,
                {"records": [record(r) for r in chunk]})
            self.t.assertEqual(status, 200, body)
            v = body["model_version"]
            answered[v] = answered.get(v, 0) + len(chunk)
            items += [{"request_id": "%s/%d" % (body["request_id"], j),
                       "label": int(r["churned"])}
                      for j, r in enumerate(chunk)]
        if before_feedback is not None:
            before_feedback()
        status, body = self.s.request("POST",
                                      "/v1/apps/%s/feedback" % self.app,
                                      {"feedback": items})
        self.t.assertEqual(status, 200, body)
        self.t.assertEqual(body["accepted"], len(items), body)
        return answered

    # --- state -------------------------------------------------------------

    def aliases(self):
        status, body = self.s.request("GET",
                                      "/api/v1/apps/%s/models" % self.app)
        self.t.assertEqual(status, 200, body)
        return {a["alias"]: a["version"] for a in body["aliases"]}

    def history(self):
        status, body = self.s.request("GET",
                                      "/api/v1/apps/%s/history" % self.app)
        self.t.assertEqual(status, 200, body)
        return body["events"]

    def story(self):
        return "\n".join("  %s %-16s %-22s %s" % (
            e["at"], e["action"], e["object"], e["summary"])
            for e in self.history())

    def events(self, action, object_suffix=None):
        return [e for e in self.history() if e["action"] == action and
                (object_suffix is None or e["object"].endswith(object_suffix))]

    def wait_event(self, action, object_suffix=None, timeout=120):
        return harness.wait_until(
            lambda: self.events(action, object_suffix), timeout,
            lambda: "%s %s in the timeline of %s:\n%s" % (
                action, object_suffix or "", self.app, self.story()))

    def windows(self):
        status, body = self.s.request("GET",
                                      "/api/v1/apps/%s/monitor" % self.app)
        self.t.assertEqual(status, 200, body)
        return body["windows"]

    def approve_pending(self):
        """Approves every pending request of the app, oldest first; returns
        them."""
        def pending():
            status, body = self.s.request(
                "GET", "/api/v1/approvals?app=%s&state=pending" % self.app)
            self.t.assertEqual(status, 200, body)
            return body["approvals"]
        requests = harness.wait_until(
            pending, 120, lambda: "a pending approval of %s:\n%s" % (
                self.app, self.story()))
        for r in sorted(requests, key=lambda r: r["id"]):
            self.s.cli("approvals", "approve", str(r["id"]),
                       "--comment", "reviewed", check=True,
                       token=self.t.approver)
        return requests


class ContinuousOptimizationTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.server = cls.ws.server("--test-clock", "2030-01-01T00:00:00Z")
        status, body = cls.server.request(
            "POST", "/api/v1/tokens", {"name": "ada", "role": "approver"})
        assert status == 201, (status, body)
        cls.approver = body["token"]

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def advance(self, seconds=HOUR):
        """Moves the test clock on and waits until every app's window that
        just ended is stored and judged."""
        status, before = self.server.request("GET", "/api/v1/admin/clock")
        self.assertEqual(status, 200, before)
        status, now = self.server.request("POST", "/api/v1/admin/clock",
                                          {"advance_seconds": seconds})
        self.assertEqual(status, 200, now)
        self.assertGreaterEqual(now["now_micros"] - before["now_micros"],
                                seconds * 1_000_000)
        return now["now_micros"]

    def wait_window(self, sc, end_micros):
        """Waits for sc's window ending at or before `end_micros` whose end is
        the latest aligned hour."""
        boundary = end_micros - end_micros % (HOUR * 1_000_000)
        harness.wait_until(
            lambda: [w for w in sc.windows()
                     if harness_time(w["end"]) >= boundary], 60,
            lambda: "the window of %s ending at %d" % (sc.app, boundary))

    def close_window(self, *scenarios):
        now = self.advance()
        for sc in scenarios:
            self.wait_window(sc, now)

    def first_deployment(self, sc):
        """v1 trained on undrifted rows and made champion by hand."""
        sc.write_training_rows(2000, drift=False)
        sc.apply()
        version = harness.train_version(self.server, sc.spec, sc.app)
        self.assertEqual(version, 1)
        status, body = harness.promote(self.server, sc.app, 1)
        if sc.approval:
            self.assertEqual(status, 202, body)
            sc.approve_pending()
        else:
            self.assertEqual(status, 200, body)
        self.assertEqual(sc.aliases()["champion"], 1)

    def drift_to_canary(self, sc):
        """Drifted traffic fires the accuracy rule, whose event retrains on
        the last rows of the source (now drifted); the challenger wins its
        evaluation and becomes the canary."""
        # The warehouse now holds the drifted rows the labels came back for.
        sc.write_training_rows(5000)
        answered = sc.send(600)
        self.assertEqual(set(answered), {1})
        self.close_window(sc)
        sc.wait_event("alert.fire", "accuracy-low")
        evaluation = sc.wait_event("model.evaluate", "v2", timeout=300)
        self.assertIn("v2 beats champion v1", evaluation[0]["summary"])
        if sc.approval:
            sc.approve_pending()
        sc.wait_event("canary.start", "v2")
        self.assertEqual(sc.aliases()["challenger"], 2)
        self.assertEqual(sc.aliases()["champion"], 1)

    def canary_to_promotion(self, sc):
        answered = sc.send(1200)
        # Keyless requests: exactly the canary's share, request by request.
        self.assertEqual(set(answered), {1, 2}, answered)
        self.assertAlmostEqual(answered[2] / 1200, CANARY_PERCENT / 100,
                               delta=0.02)
        self.close_window(sc)
        decided = sc.wait_event("canary.decide", "v2")
        self.assertIn("promote", decided[0]["summary"])
        if sc.approval:
            self.assertEqual(sc.aliases()["champion"], 1)
            sc.approve_pending()
        harness.wait_until(lambda: sc.aliases()["champion"] == 2, 60,
                           lambda: "champion v2:\n" + sc.story())
        sc.wait_event("canary.end", "v2")

    def test_1_drift_retrain_canary_promote_recover_discard_rollback(self):
        sc = Scenario(self, self.server, self.ws, "churn", approval=False)
        self.first_deployment(sc)
        # Undrifted hours first: nothing fires.
        sc.next_row = 0
        answered = sc.send(400)
        self.assertEqual(set(answered), {1})
        sc.next_row = 10_000
        self.close_window(sc)
        self.assertEqual(sc.events("alert.fire"), [], sc.story())

        self.drift_to_canary(sc)
        self.canary_to_promotion(sc)

        # The accuracy recovers on the new champion and the alert resolves.
        answered = sc.send(600)
        self.assertEqual(set(answered), {2})
        self.close_window(sc)
        sc.wait_event("alert.resolve", "accuracy-low")
        last = [w for w in sc.windows() if w["model_version"] == 2][-1]
        self.assertGreater(last["kpis"]["accuracy"], ACCURACY_FLOOR, last)
        # The promotion's watch ends: it stands.
        sc.send(400)
        self.close_window(sc)
        kept = sc.wait_event("rollback.check", "v2")
        self.assertIn("kept", kept[0]["summary"])

        # A challenger trained on shuffled labels is evaluated on the
        # run's held-out rows and discarded.
        result = self.server.cli("run", sc.app, "train-shuffled", "--wait",
                                 check=True)
        self.assertIn("v3", result.stdout + result.stderr)
        evaluation = sc.wait_event("model.evaluate", "v3")
        self.assertIn("v3 discarded", evaluation[0]["summary"])
        self.assertEqual(sc.aliases()["challenger"], 2)
        self.assertEqual(sc.events("canary.start", "v3"), [])

        # Someone promotes the old model by hand; production shows it worse
        # and the policy moves champion back, with an alert.
        sc.send(400)
        status, body = self.server.request(
            "POST", "/api/v1/apps/%s/aliases" % sc.app,
            {"moves": [{"alias": "champion", "version": 1},
                       {"alias": "challenger", "version": 1}],
             "comment": "back to the model we know"})
        self.assertEqual(status, 200, body)
        answered = sc.send(600)
        self.assertEqual(set(answered), {1})
        self.close_window(sc)
        rollback = sc.wait_event("model.rollback", "v1")
        self.assertIn("champion v1 rolled back to v2", rollback[0]["summary"])
        harness.wait_until(lambda: sc.aliases()["champion"] == 2, 60,
                           lambda: "champion back at v2:\n" + sc.story())
        sc.wait_event("alert.fire", "rollback")
        # v2 answers again. (The accuracy alert of v1's window also started
        # a retraining; when its version registers before the rollback it
        # is evaluated against v1 and may serve as a canary beside v2, to be
        # judged on feedback like any other.)
        answered = sc.send(200)
        self.assertIn(2, answered)
        self.assertNotIn(1, answered)

        # The whole story, in order.
        self.assert_in_order(sc, [
            ("alias.move", None, "champion -> v1"),
            ("alert.fire", "accuracy-low", None),
            ("run.start", None, None),
            ("model.register", "v2", None),
            ("model.evaluate", None, "v2 beats champion v1"),
            ("alias.move", None, "challenger -> v2"),
            ("canary.start", "v2", None),
            ("canary.decide", "v2", "promote"),
            ("alias.move", None, "champion -> v2"),
            ("canary.end", "v2", "promoted"),
            ("alert.resolve", "accuracy-low", None),
            ("rollback.check", "v2", "kept"),
            ("model.evaluate", None, "v3 discarded"),
            ("alias.move", None, "champion -> v1 (was v2)"),
            ("alias.move", None, "champion -> v2 (was v1)"),
            ("model.rollback", "v1", "rolled back to v2"),
            ("alert.fire", "rollback", None),
        ])
        # `slipway history` tells the same story.
        text = self.server.cli("history", sc.app, check=True).stdout
        for needle in ("canary.decide", "model.rollback", "rollback.check"):
            self.assertIn(needle, text)

    def test_2_with_approval_required_each_promotion_waits_for_it(self):
        sc = Scenario(self, self.server, self.ws, "churn-gated",
                      approval=True)
        self.first_deployment(sc)
        self.drift_to_canary(sc)
        self.canary_to_promotion(sc)
        self.assert_in_order(sc, [
            ("model.evaluate", None, "v2 beats champion v1"),
            ("approval.request", None, None),
            ("alias.move", None, "challenger -> v2"),
            ("canary.start", "v2", None),
            ("approval.approve", None, None),
            ("canary.decide", "v2", "promote"),
            ("approval.request", None, None),
            ("alias.move", None, "champion -> v2"),
            ("approval.approve", None, None),
        ])

    def test_3_a_shadow_sees_every_request_and_never_answers(self):
        sc = Scenario(self, self.server, self.ws, "churn-shadow",
                      approval=False, shadow=True)
        self.first_deployment(sc)
        # v2 learns the drifted customers and shadows v1.
        sc.write_training_rows(5000)
        version = harness.train_version(self.server, sc.spec, sc.app)
        self.assertEqual(version, 2)
        self.assertEqual(sc.aliases()["challenger"], 2)
        sc.wait_event("shadow.start", "v2")

        def shadowed(outcome):
            return harness.metric_sum(
                self.server.metrics(), "slipway_shadow_predictions_total",
                app=sc.app, outcome=outcome)
        before = shadowed("ok")

        def all_shadowed():
            # The shadow predicts after each answer went out; its last
            # predictions may still be on their way when the feedback
            # comes, and a prediction not yet logged is not labelled. A
            # counted one is logged.
            harness.wait_until(lambda: shadowed("ok") - before == 200, 60,
                               lambda: "200 shadowed requests, got %d" % (
                                   shadowed("ok") - before))
        # Every answer came from the champion, and the feedback's answer
        # counts the client's 800 labels only (sc.send checks "accepted"),
        # though they label the shadow's predictions too.
        answered = sc.send(800, before_feedback=all_shadowed)
        self.assertEqual(answered, {1: 800})
        self.assertEqual(shadowed("error") + shadowed("dropped"), 0)
        self.close_window(sc)
        harness.wait_until(
            lambda: 2 in {w["model_version"] for w in sc.windows()
                          if w["rows"] > 0}, 60, "the shadow's window")
        windows = {w["model_version"]: w for w in sc.windows()
                   if w["rows"] > 0}
        champion, shadow = windows[1]["kpis"], windows[2]["kpis"]
        # The shadow's own KPIs from the same feedback: it knows the new
        # customers, the champion does not.
        self.assertEqual(shadow["rows"], 800, shadow)
        self.assertGreater(shadow["accuracy"], champion["accuracy"] + 0.1,
                           (shadow, champion))
        # How often it agreed with the answers the clients got.
        self.assertEqual(shadow["agreement_rows"], 800, shadow)
        self.assertGreater(shadow["agreement"], 0.2, shadow)
        self.assertLess(shadow["agreement"], 0.95, shadow)
        self.assertNotIn("agreement", champion)

    def assert_in_order(self, sc, expected):
        """Each (action, text in object or summary, text in summary) is found
        in the timeline after the one before it."""
        events = sc.history()
        at = 0
        for action, where, what in expected:
            for i in range(at, len(events)):
                e = events[i]
                text = e["object"] + " " + e["summary"]
                if (e["action"].startswith(action) and
                        (where is None or where in text) and
                        (what is None or what in e["summary"])):
                    at = i + 1
                    break
            else:
                self.fail("%s %s %s not found after event %d; timeline:\n%s"
                          % (action, where, what, at, sc.story()))


def harness_time(text):
    """An API timestamp as unix micros."""
    import datetime
    t = datetime.datetime.strptime(text.replace("Z", "+00:00"),
                                   "%Y-%m-%dT%H:%M:%S.%f%z")
    return int(t.timestamp()) * 1_000_000 + t.microsecond


if __name__ == "__main__":
    unittest.main()
