"""Challenger evaluation through the real binary: with `policy.promote:
{metric: auc, min_gain: 0}`, each register step compares the version it
registers with the champion on its run's test rows (a paired bootstrap of
the AUC gain) and promotes it only when the whole interval is above
min_gain. A model trained on more data is promoted; one trained on far
fewer rows (its run holding most rows out) is discarded with its numbers;
one trained on shuffled labels is not promoted; every decision is in the
audit log and in `slipway history`. With `approval: required` the
promotion the evaluation decides waits for an approver. A policy metric no
evaluate step computes is refused at apply."""

import csv
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

APP = "churn"
GATED = "churn-gated"  # the same app with policy.promote.approval: required
SEED = 9

SPEC = """app: {app}
data:
  train: {{path: {data}}}
schema: {{target: churned, id: customer_id}}
pipelines:
  train:
    steps:
      - ingest: {{source: train}}
      - split: {{test_fraction: {test_fraction}, seed: 7}}
      - train: {{engine: xgboost, objective: "binary:logistic", rounds: 60, max_depth: 4}}
      - evaluate: {{metrics: [{metrics}]}}
      - register: {{alias: champion}}
policy:
  promote: {{metric: auc, min_gain: 0{approval}}}
"""


class PromotionTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.server = cls.ws.server()
        cls.data = cls.ws.path("data", "train.csv")
        os.makedirs(os.path.dirname(cls.data), exist_ok=True)
        cls.spec = cls.ws.path("app", "slipway.yaml")

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def generate(self, rows, start, shuffle_labels=False):
        """The training file for the next run: `rows` generated rows from
        global row `start` (optionally with the labels shuffled)."""
        self.server.cli("gen", "--seed", str(SEED), "--rows", str(rows),
                        "--start", str(start), "--out", self.data,
                        check=True)
        if not shuffle_labels:
            return
        with open(self.data) as f:
            table = list(csv.DictReader(f))
        labels = [r["churned"] for r in table]
        random.Random(SEED).shuffle(labels)
        with open(self.data, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            for row, label in zip(table, labels):
                row["churned"] = label
                writer.writerow(row)

    def train(self, test_fraction=0.3, app=APP):
        """Applies the spec with `test_fraction`, runs the train pipeline
        and returns its register step."""
        s = self.server
        self.ws.write("app/slipway.yaml", SPEC.format(
            app=app, data=self.data, metrics="auc, logloss, accuracy",
            test_fraction=test_fraction,
            approval=", approval: required" if app == GATED else ""))
        s.cli("apply", self.spec, check=True)
        status, run = s.request("POST", "/api/v1/apps/%s/runs" % app,
                                {"pipeline": "train"})
        self.assertEqual(status, 201, run)
        run = s.wait_for_run(run["id"])
        self.assertEqual(run["state"], "succeeded", run)
        return [st for st in run["steps"] if st["kind"] == "register"][0]

    def champion(self, app=APP):
        status, answer = self.server.request("GET", "/api/v1/apps/%s" % app)
        self.assertEqual(status, 200, answer)
        return [a["version"] for a in answer["aliases"]
                if a["alias"] == "champion"][0]

    def evaluations(self):
        status, audit = self.server.request(
            "GET", "/api/v1/audit?app=%s&action=model.evaluate" % APP)
        self.assertEqual(status, 200, audit)
        return [r["after"] for r in audit["records"]]

    def test_1_better_challenger_promoted_worse_one_discarded(self):
        # v1: the first version, from few rows, becomes champion without a
        # comparison (there is no champion to compare with).
        self.generate(150, 0)
        first = self.train()
        self.assertEqual(first["outputs"]["version"], 1)
        self.assertNotIn("evaluation", first["outputs"])
        self.assertEqual(self.champion(), 1)

        # v2: trained on 40x the rows; clearly better on its test rows.
        self.generate(6000, 10000)
        second = self.train()
        evaluation = second["outputs"]["evaluation"]
        self.assertEqual((evaluation["champion"], evaluation["challenger"],
                          evaluation["metric"], evaluation["decision"]),
                         (1, 2, "auc", "promote"), evaluation)
        comparison = evaluation["comparison"]
        self.assertEqual(comparison["rows"], 1800, comparison)
        self.assertGreater(comparison["lower"], 0, comparison)
        self.assertAlmostEqual(comparison["gain"], comparison["challenger"] -
                               comparison["champion"], places=12)
        self.assertIn("promoted to champion over v1", second["message"])
        self.assertEqual(self.champion(), 2)

        # v3: trained on 200 rows (the other 1,800 its test rows), clearly
        # worse: discarded.
        self.generate(2000, 20000)
        third = self.train(test_fraction=0.9)
        evaluation = third["outputs"]["evaluation"]
        self.assertEqual(evaluation["decision"], "keep_champion", evaluation)
        comparison = evaluation["comparison"]
        self.assertEqual(comparison["rows"], 1800, comparison)
        self.assertLess(comparison["upper"], 0, comparison)
        self.assertIn("champion v2 kept", third["message"])
        self.assertIn(evaluation["reason"], third["message"])
        self.assertEqual(self.champion(), 2)

        # v4: trained on shuffled labels. Its run's test rows are shuffled
        # too, so neither model can show a gain on them: not promoted.
        self.generate(6000, 30000, shuffle_labels=True)
        fourth = self.train()
        evaluation = fourth["outputs"]["evaluation"]
        self.assertIn(evaluation["decision"], ("inconclusive",
                                               "keep_champion"), evaluation)
        self.assertLess(evaluation["comparison"]["challenger"], 0.56,
                        evaluation)
        self.assertEqual(self.champion(), 2)

        # The audit log holds every decision, with its numbers.
        decisions = [(e["challenger"], e["decision"])
                     for e in self.evaluations()]
        self.assertEqual(decisions[:2], [(2, "promote"), (3, "keep_champion")])
        self.assertEqual([c for c, _ in decisions], [2, 3, 4])
        story = self.server.cli("history", APP, check=True).stdout
        self.assertIn("v2 beats champion v1: auc gain", story)
        self.assertIn("v3 discarded, champion v2 kept: auc gain", story)
        self.assertLess(story.index("v2 beats champion v1"),
                        story.index("champion -> v2 (was v1)"))

    def test_3_with_approval_required_the_promotion_waits_for_it(self):
        s = self.server
        # The first version's move to champion waits too; approve it.
        self.generate(150, 0)
        first = self.train(app=GATED)
        approval = first["outputs"]["approval"]
        s.cli("approvals", "approve", str(approval), check=True)
        self.assertEqual(self.champion(GATED), 1)

        # A better challenger: the evaluation promotes, which files a
        # request; the champion stays until an approver approves.
        self.generate(6000, 10000)
        second = self.train(app=GATED)
        evaluation = second["outputs"]["evaluation"]
        self.assertEqual(evaluation["decision"], "promote", evaluation)
        self.assertIn("awaits approval", second["message"])
        self.assertEqual(self.champion(GATED), 1)
        status, pending = s.request(
            "GET", "/api/v1/approvals?app=%s&state=pending" % GATED)
        self.assertEqual(status, 200, pending)
        self.assertEqual(len(pending["approvals"]), 1, pending)
        request = pending["approvals"][0]
        self.assertEqual(request["kind"], "promote", request)
        s.cli("approvals", "approve", str(request["id"]), "--comment",
              "the evaluation holds", check=True)
        self.assertEqual(self.champion(GATED), 2)
        story = s.cli("history", GATED, check=True).stdout
        order = [story.index(text) for text in (
            "v2 beats champion v1",
            "approval %d (promote) requested" % request["id"],
            # Approving carries the move out, then records the approval.
            "champion -> v2 (was v1)",
            "approval %d (promote) approved" % request["id"])]
        self.assertEqual(order, sorted(order), story)

    def test_2_a_policy_metric_no_step_computes_is_refused(self):
        before = self.ws.store_row_counts()
        spec = self.ws.write("bad/slipway.yaml", SPEC.format(
            app=APP, data=self.data, metrics="logloss, accuracy",
            test_fraction=0.3, approval=""))
        applied = self.server.cli("apply", spec)
        self.assertEqual(applied.returncode, 1, applied.stdout)
        self.assertIn("policy.promote.metric 'auc' is computed by no "
                      "evaluate step of a train pipeline (they compute "
                      "accuracy, logloss)", applied.stderr)
        self.assertEqual(self.ws.store_row_counts(), before)


if __name__ == "__main__":
    unittest.main()
