"""Governance end to end through the real binary: an app whose policy needs
approval for promotions and for spec changes, an operator and an approver
with their own tokens, the CLI's `models promote`, `approvals
list/approve/reject`, `apply`, `audit list/verify`, registry events POSTed
to a webhook with a valid HMAC-SHA256 signature, and tampering with the
audit table detected and named."""

import json
import os
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

APP = "breast-cancer"
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                       "breast-cancer", "slipway.yaml")
SECRET = "governance-e2e-secret"


def governed_spec(port, comment=""):
    with open(EXAMPLE) as f:
        text = f.read()
    # A second pipeline whose register step asks to move an alias.
    train = text[text.index("  train:\n"):text.index("      - register: {}\n")]
    assert train
    text = text.replace(
        "      - register: {}\n",
        "      - register: {}\n" + train.replace("  train:\n", "  retrain:\n    kind: train\n") +
        "      - register: {alias: challenger}\n")
    return text + comment + """
policy:
  promote: {approval: required}
  apply: {approval: required}
  approvals: {expire_after: 1h}
notify:
  - {webhook: "http://127.0.0.1:%d/hook", secret: "env:HOOK_SECRET"}
""" % port


class GovernanceTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.receiver = harness.Receiver()
        os.environ["HOOK_SECRET"] = SECRET  # the server inherits it
        cls.ws = harness.Workspace()
        cls.server = cls.ws.server()
        cls.spec = cls.ws.write("app/slipway.yaml",
                                governed_spec(cls.receiver.port))
        cls.version = harness.train_version(cls.server, cls.spec, APP)
        cls.tokens = {}
        for name, role in (("olga", "operator"), ("ada", "approver"),
                           ("max", "approver")):
            status, body = cls.server.request(
                "POST", "/api/v1/tokens", {"name": name, "role": role})
            assert status == 201, body
            cls.tokens[name] = body["token"]

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()
        cls.receiver.close()

    def as_(self, name, *args):
        return self.server.cli(*args, token=self.tokens[name])

    def champion(self):
        status, body = self.server.request(
            "GET", "/api/v1/apps/%s" % APP)
        self.assertEqual(status, 200, body)
        return {a["alias"]: a["version"] for a in body["aliases"]}.get(
            "champion")

    def audit_verify(self):
        return self.server.cli("audit", "verify")

    def test_1_reject_request_again_approve_moves_and_audits_in_order(self):
        s = self.server
        # Operator asks; nothing moves yet.
        asked = self.as_("olga", "models", "promote", APP, str(self.version))
        self.assertEqual(asked.returncode, 0, asked.stderr)
        self.assertIn("approval 1 requested", asked.stdout)
        self.assertIn("slipway approvals approve 1", asked.stdout)
        self.assertIsNone(self.champion())
        status, _ = s.request("POST", "/v1/apps/%s/predict" % APP,
                              {"records": [{"mean_radius": 1.0}]})
        self.assertEqual(status, 503)

        # An operator may not decide; the approver rejects with a reason.
        denied = self.as_("olga", "approvals", "approve", "1")
        self.assertEqual(denied.returncode, 1)
        self.assertIn("needs role approver", denied.stderr)
        rejected = self.as_("ada", "approvals", "reject", "1", "--comment",
                            "run the fairness report first")
        self.assertEqual(rejected.returncode, 0, rejected.stderr)
        self.assertIn("approval 1 rejected", rejected.stdout)
        self.assertIsNone(self.champion())

        # Approving a decided request: refused, nothing changes.
        before = self.ws.store_row_counts()
        late = self.as_("ada", "approvals", "approve", "1")
        self.assertEqual(late.returncode, 1)
        self.assertIn("approval 1 of app 'breast-cancer' was already "
                      "rejected by cli:ada", late.stderr)
        self.assertEqual(self.ws.store_row_counts(), before)

        # Asked again, approved: the alias moves and serving swaps.
        again = self.as_("olga", "models", "promote", APP, str(self.version))
        self.assertIn("approval 2 requested", again.stdout)
        listed = self.as_("ada", "approvals", "list", "--state", "pending")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("champion -> v%d" % self.version, listed.stdout)
        self.assertIn("cli:olga", listed.stdout)
        approved = self.as_("ada", "approvals", "approve", "2", "--comment",
                            "fairness report attached")
        self.assertEqual(approved.returncode, 0, approved.stderr)
        self.assertIn("approval 2 approved", approved.stdout)
        self.assertEqual(self.champion(), self.version)
        status, meta = s.request("GET", "/v2/models/%s" % APP)
        self.assertEqual(status, 200, meta)
        record = {i["name"]: None for i in meta["inputs"]}
        record.update({"mean_radius": 14.0, "mean_texture": 19.0})
        status, body = s.request("POST", "/v1/apps/%s/predict" % APP,
                                 {"records": [record]})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["model_version"], self.version)

        status, history = s.request(
            "GET", "/api/v1/apps/%s/aliases/history" % APP)
        self.assertEqual(history["history"][-1]["actor"],
                         "cli:ada (approval 2)")

        # The audit log shows each step in order, and verifies.
        status, body = s.request("GET", "/api/v1/audit?app=%s" % APP)
        self.assertEqual(status, 200, body)
        steps = [(r["action"], r["actor"]) for r in body["records"]
                 if r["action"].startswith(("approval.", "alias."))]
        self.assertEqual(steps, [
            ("approval.request", "cli:olga"),
            ("approval.reject", "cli:ada"),
            ("approval.request", "cli:olga"),
            ("alias.move", "cli:ada (approval 2)"),
            ("approval.approve", "cli:ada"),
        ])
        actions = [r["action"] for r in body["records"]]
        for expected in ("app.apply", "run.start", "run.finish",
                         "model.register"):
            self.assertIn(expected, actions)
        listed = s.cli("audit", "list", "--object", "approval 2")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("approval.approve", listed.stdout)
        self.assertNotIn("approval.reject", listed.stdout)
        verified = self.audit_verify()
        self.assertEqual(verified.returncode, 0, verified.stderr)
        self.assertIn("audit log intact", verified.stdout)

        # Registry events reached the webhook, each signed.
        wanted = {"model.registered", "approval.requested",
                  "approval.decided", "alias.moved"}
        got = harness.wait_until(
            lambda: wanted <= {h["X-Slipway-Event"]
                               for h, _ in self.receiver.events()} and
            self.receiver.events(), 30, "the registry events at the webhook")
        for headers, body in got:
            self.assertEqual(headers["X-Slipway-Signature"],
                             harness.signature(SECRET, body))
            event = json.loads(body)
            self.assertEqual(event["app"], APP)
            self.assertEqual(event["event"], headers["X-Slipway-Event"])
        status, deliveries = s.request(
            "GET", "/api/v1/apps/%s/deliveries" % APP)
        self.assertEqual(status, 200, deliveries)
        self.assertTrue(deliveries["deliveries"])
        harness.wait_until(
            lambda: all(d["state"] == "delivered" for d in s.request(
                "GET", "/api/v1/apps/%s/deliveries" % APP)[1]["deliveries"]),
            30, "every delivery recorded as delivered")

    def test_2_self_approval_is_refused(self):
        asked = self.as_("max", "models", "promote", APP, str(self.version),
                         "--alias", "challenger")
        self.assertEqual(asked.returncode, 0, asked.stderr)
        approval = asked.stdout.split()[1]
        own = self.as_("max", "approvals", "approve", approval)
        self.assertEqual(own.returncode, 1)
        self.assertIn("forbids self-approval", own.stderr)
        other = self.as_("ada", "approvals", "approve", approval)
        self.assertEqual(other.returncode, 0, other.stderr)
        status, body = self.server.request("GET", "/api/v1/apps/%s" % APP)
        self.assertIn({"alias": "challenger", "version": self.version},
                      [{k: a[k] for k in ("alias", "version")}
                       for a in body["aliases"]])

    def test_3_spec_changes_of_a_serving_app_need_approval(self):
        s = self.server
        status, app = s.request("GET", "/api/v1/apps/%s" % APP)
        revision = app["revision"]
        changed = self.ws.write(
            "app/slipway.yaml",
            governed_spec(self.receiver.port, "# reviewed by the ML board\n"))
        asked = self.as_("olga", "apply", changed)
        self.assertEqual(asked.returncode, 0, asked.stderr)
        self.assertIn("requested (apply of app %s" % APP, asked.stdout)
        status, app = s.request("GET", "/api/v1/apps/%s" % APP)
        self.assertEqual(app["revision"], revision)
        approval = asked.stdout.split()[1]
        status, pending = s.request("GET", "/api/v1/approvals/" + approval)
        self.assertIn("+# reviewed by the ML board", pending["change"]["diff"])
        approved = self.as_("ada", "approvals", "approve", approval)
        self.assertEqual(approved.returncode, 0, approved.stderr)
        status, app = s.request("GET", "/api/v1/apps/%s" % APP)
        self.assertEqual(app["revision"], revision + 1)
        self.assertIn("# reviewed by the ML board", app["spec"])

    def test_4_bad_decisions_change_nothing(self):
        s = self.server
        before = self.ws.store_row_counts()
        for path, body, code, message in [
            ("/api/v1/approvals/999/approve", {}, 404, "approval 999"),
            ("/api/v1/approvals/abc/approve", {}, 400, "not an approval id"),
            ("/api/v1/approvals/1/reject", {}, 400, "needs a comment"),
            ("/api/v1/approvals/1/reject", {"comment": 7}, 400,
             "'comment' must be a string"),
        ]:
            status, answer = s.request("POST", path, body,
                                       token=self.tokens["ada"])
            self.assertEqual(status, code, (path, answer))
            self.assertIn(message, answer["error"], path)
        status, answer = s.request("GET", "/api/v1/approvals?state=open")
        self.assertEqual(status, 400)
        self.assertIn("give pending, approved, rejected or expired",
                      answer["error"])
        # A promotion of a version that does not exist is refused up front.
        status, answer = s.request(
            "PUT", "/api/v1/apps/%s/aliases/champion" % APP, {"version": 99},
            token=self.tokens["olga"])
        self.assertEqual(status, 404, answer)
        self.assertEqual(self.ws.store_row_counts(), before)

    def test_4b_a_register_step_requests_approval_instead_of_moving(self):
        s = self.server
        status, run = s.request("POST", "/api/v1/apps/%s/runs" % APP,
                                {"pipeline": "retrain"})
        self.assertEqual(status, 201, run)
        run = s.wait_for_run(run["id"])
        self.assertEqual(run["state"], "succeeded", run)
        register = [st for st in run["steps"] if st["name"] == "register"][0]
        self.assertIn("moving challenger to it awaits approval",
                      register["message"])
        approval = register["outputs"]["approval"]
        status, pending = s.request("GET", "/api/v1/approvals/%d" % approval)
        self.assertEqual(pending["state"], "pending")
        self.assertEqual(pending["requested_by"], "run " + run["id"])
        new_version = max(m["version"] for m in s.request(
            "GET", "/api/v1/apps/%s/models" % APP)[1]["models"])
        self.assertEqual(pending["change"]["moves"],
                         [{"alias": "challenger", "version": new_version}])
        approved = self.as_("ada", "approvals", "approve", str(approval))
        self.assertEqual(approved.returncode, 0, approved.stderr)
        status, body = s.request("GET", "/api/v1/apps/%s" % APP)
        self.assertIn({"alias": "challenger", "version": new_version},
                      [{k: a[k] for k in ("alias", "version")}
                       for a in body["aliases"]])

    def test_5_tampering_with_the_audit_table_is_named(self):
        self.assertEqual(self.audit_verify().returncode, 0)
        db = sqlite3.connect(os.path.join(self.ws.data_dir, "slipway.db"))
        try:
            actor = db.execute(
                "SELECT actor FROM audit_log WHERE seq = 3").fetchone()[0]
            with db:
                db.execute("UPDATE audit_log SET actor = 'cli:mallory' "
                           "WHERE seq = 3")
            edited = self.audit_verify()
            self.assertEqual(edited.returncode, 1)
            self.assertIn("audit record 3", edited.stderr)
            with db:
                db.execute("UPDATE audit_log SET actor = ? WHERE seq = 3",
                           (actor,))
            self.assertEqual(self.audit_verify().returncode, 0)

            last = db.execute("SELECT MAX(seq) FROM audit_log").fetchone()[0]
            with db:
                db.execute("DELETE FROM audit_log WHERE seq = ?", (last,))
            deleted = self.audit_verify()
            self.assertEqual(deleted.returncode, 1)
            self.assertIn("were deleted", deleted.stderr)
            self.assertIn(str(last), deleted.stderr)
        finally:
            db.close()


if __name__ == "__main__":
    unittest.main()
