"""Access control end to end through the real binary: the admin token a new
server writes (mode 0600, its path logged, never the token), the CLI's token
rule (SLIPWAY_TOKEN, else admin.token under --data-dir / SLIPWAY_DATA_DIR),
`slipway tokens create/list/revoke`, a table of role x control-plane
endpoint -> status over HTTP with real objects, bad tokens each with their
message, refused requests changing nothing in the store, and
`endpoint.auth: token` on predict and infer."""

import json
import os
import re
import stat
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

APP = "breast-cancer"
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                       "breast-cancer", "slipway.yaml")
ROLES = ["viewer", "operator", "approver", "admin"]
TOKEN = re.compile(r"^slw_[0-9a-f]{64}$", re.M)


def guarded_spec(auth):
    with open(EXAMPLE) as f:
        text = f.read()
    assert "endpoint:\n  model: champion\n" in text
    return text.replace("endpoint:\n  model: champion\n",
                        "endpoint:\n  model: champion\n  auth: %s\n" % auth)


class AuthTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ws = harness.Workspace()
        cls.server = cls.ws.server()
        cls.spec = cls.ws.write("app/slipway.yaml", guarded_spec("token"))
        cls.version = harness.train_version(cls.server, cls.spec, APP)
        status, body = harness.promote(cls.server, APP, cls.version)
        assert status == 200, body
        cls.tokens = {"admin": cls.server.token}
        for role in ROLES[:-1]:
            status, body = cls.server.request(
                "POST", "/api/v1/tokens", {"name": role, "role": role})
            assert status == 201, body
            cls.tokens[role] = body["token"]

    @classmethod
    def tearDownClass(cls):
        cls.ws.close()

    def cli(self, *args, env_extra=None, cwd=None):
        """The CLI with no token in its environment unless given."""
        env = dict(os.environ, SLIPWAY_SERVER=self.server.url)
        env.pop("SLIPWAY_TOKEN", None)
        env.pop("SLIPWAY_DATA_DIR", None)
        env.update(env_extra or {})
        return subprocess.run([os.path.abspath(harness.BINARY)] + list(args),
                              env=env, cwd=cwd or self.ws.root,
                              capture_output=True, text=True, timeout=600)

    def test_first_start_writes_an_owner_only_admin_token(self):
        path = os.path.join(self.ws.data_dir, "admin.token")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertTrue(TOKEN.match(self.server.token), self.server.token)
        log = self.server.log()
        self.assertIn(path, log)
        self.assertNotIn(self.server.token, log)
        # A restart keeps the token and writes no other.
        status, before = self.server.request("GET", "/api/v1/tokens")
        self.assertEqual(status, 200)
        with open(path) as f:
            self.assertEqual(f.read().strip(), self.server.token)
        self.assertFalse(any(t["name"] == "admin" and
                             t["created_by"] != "server"
                             for t in before["tokens"]))

    def test_cli_token_rule(self):
        # No SLIPWAY_TOKEN and no admin.token in ./.slipway: 401 explained.
        result = self.cli("apps", "list")
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("no API token", result.stderr)
        # --data-dir and SLIPWAY_DATA_DIR name the server's data directory.
        result = self.cli("--data-dir", self.ws.data_dir, "apps", "list")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(APP, result.stdout)
        result = self.cli("apps", "list",
                          env_extra={"SLIPWAY_DATA_DIR": self.ws.data_dir})
        self.assertEqual(result.returncode, 0, result.stderr)
        # ./.slipway under the working directory is the default.
        os.makedirs(self.ws.path("work", ".slipway"), exist_ok=True)
        with open(self.ws.path("work", ".slipway", "admin.token"), "w") as f:
            f.write(self.tokens["viewer"] + "\n")
        result = self.cli("apps", "list", cwd=self.ws.path("work"))
        self.assertEqual(result.returncode, 0, result.stderr)
        # SLIPWAY_TOKEN wins over the file.
        result = self.cli("--data-dir", self.ws.data_dir, "tokens", "list",
                          env_extra={"SLIPWAY_TOKEN": self.tokens["viewer"]})
        self.assertEqual(result.returncode, 1)
        self.assertIn("needs role admin", result.stderr)

    def test_tokens_create_list_revoke_through_the_cli(self):
        admin = {"SLIPWAY_TOKEN": self.tokens["admin"]}
        created = self.cli("tokens", "create", "--role", "operator", "--name",
                           "ci", "--expires", "30d", env_extra=admin)
        self.assertEqual(created.returncode, 0, created.stderr)
        secrets = TOKEN.findall(created.stdout)
        self.assertEqual(len(secrets), 1, created.stdout)
        secret = secrets[0]
        token_id = re.search(r"token (tok-[0-9a-f]+)", created.stdout).group(1)

        listed = self.cli("tokens", "list", env_extra=admin)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn(token_id, listed.stdout)
        self.assertNotIn(secret, listed.stdout)
        self.assertEqual(TOKEN.findall(listed.stdout), [])

        ci = {"SLIPWAY_TOKEN": secret}
        self.assertEqual(self.cli("apps", "list", env_extra=ci).returncode, 0)
        revoked = self.cli("tokens", "revoke", token_id, env_extra=admin)
        self.assertEqual(revoked.returncode, 0, revoked.stderr)
        refused = self.cli("apps", "list", env_extra=ci)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("API token 'ci'", refused.stderr)
        self.assertIn("was revoked at", refused.stderr)
        self.assertNotIn(secret, refused.stderr)

        bad_role = self.cli("tokens", "create", "--role", "root", "--name",
                            "x", env_extra=admin)
        self.assertEqual(bad_role.returncode, 1)
        self.assertIn("viewer, operator, approver, admin", bad_role.stderr)

    def test_role_times_endpoint(self):
        with open(self.spec) as f:
            spec = f.read()
        run = self.server.request("GET", "/api/v1/apps/%s/runs" % APP)[1]
        run_id = run["runs"][0]["id"]
        v = self.version
        # (method, path, body, least role, status when allowed)
        table = [
            ("GET", "/api/v1/apps", None, "viewer", 200),
            ("GET", "/api/v1/apps/%s" % APP, None, "viewer", 200),
            ("GET", "/api/v1/apps/%s/runs" % APP, None, "viewer", 200),
            ("GET", "/api/v1/runs/%s" % run_id, None, "viewer", 200),
            ("GET", "/api/v1/runs/%s/steps/train/log" % run_id, None,
             "viewer", 200),
            ("GET", "/api/v1/apps/%s/models" % APP, None, "viewer", 200),
            ("GET", "/api/v1/apps/%s/models/%d" % (APP, v), None, "viewer",
             200),
            ("GET", "/api/v1/apps/%s/models/%d/diff/%d" % (APP, v, v), None,
             "viewer", 200),
            ("GET", "/api/v1/apps/%s/models/%d/card" % (APP, v), None,
             "viewer", 200),
            ("GET", "/api/v1/apps/%s/models/%d/artifact" % (APP, v), None,
             "viewer", 200),
            ("GET", "/api/v1/apps/%s/aliases/history" % APP, None, "viewer",
             200),
            ("GET", "/api/v1/serving", None, "viewer", 200),
            ("POST", "/api/v1/apps", {"spec": spec}, "operator", 200),
            ("PUT", "/api/v1/apps/%s/aliases/challenger" % APP,
             {"version": v}, "operator", 200),
            ("POST", "/api/v1/apps/%s/aliases" % APP,
             {"moves": [{"alias": "previous", "version": v}]}, "operator",
             200),
            ("POST", "/api/v1/apps/%s/rollback" % APP, {"revision": 1},
             "operator", 200),
            ("GET", "/api/v1/tokens", None, "admin", 200),
        ]
        for method, path, body, least, ok in table:
            for role in ROLES:
                with self.subTest(method=method, path=path, role=role):
                    before = self.ws.store_row_counts()
                    status, answer = self.server.request(
                        method, path, body, raw=True,
                        token=self.tokens[role])
                    if ROLES.index(role) >= ROLES.index(least):
                        self.assertEqual(status, ok, answer[:300])
                    else:
                        self.assertEqual(status, 403, answer)
                        self.assertIn("needs role " + least,
                                      json.loads(answer)["error"])
                        self.assertEqual(self.ws.store_row_counts(), before)
            with self.subTest(method=method, path=path, role=None):
                before = self.ws.store_row_counts()
                status, answer = self.server.request(method, path, body,
                                                     token=None)
                self.assertEqual(status, 401, answer)
                self.assertIn("no API token", answer["error"])
                self.assertEqual(self.ws.store_row_counts(), before)

    def test_bad_tokens_each_with_their_message(self):
        viewer = self.tokens["viewer"]
        unknown = viewer[:-1] + ("0" if viewer[-1] != "0" else "1")
        cases = [
            ("slw_short", "malformed API token"),
            (viewer.upper(), "malformed API token"),
            (unknown, "unknown API token"),
        ]
        before = self.ws.store_row_counts()
        for token, message in cases:
            with self.subTest(message=message):
                status, headers, body = self.server.call(
                    "POST", "/api/v1/apps", {"spec": "app: sneaky\n"},
                    token=token)
                self.assertEqual(status, 401, body)
                self.assertIn(message, json.loads(body)["error"])
                self.assertNotIn(token.encode(), body)
                self.assertIn("Bearer", headers.get("www-authenticate", ""))
        status, _, body = self.server.call(
            "GET", "/api/v1/apps", headers={"Authorization": "Basic eDp5"})
        self.assertEqual(status, 401)
        self.assertIn("not a bearer token", json.loads(body)["error"])
        self.assertEqual(self.ws.store_row_counts(), before)

    def test_endpoint_auth_token_guards_predict_and_infer(self):
        s = self.server
        status, sig = s.request("GET", "/api/v1/apps/%s/models/%d" %
                                (APP, self.version))
        features = [f["name"] for f in sig["signature"]["features"]]
        records = {"records": [{f: 1.0 for f in features}]}
        infer = {"inputs": [{"name": f, "shape": [1], "datatype": "FP32",
                             "data": [1.0]} for f in features]}
        for path, body in (("/v1/apps/%s/predict" % APP, records),
                           ("/v2/models/%s/infer" % APP, infer),
                           ("/v2/models/%s/versions/%d/infer" %
                            (APP, self.version), infer)):
            with self.subTest(path=path):
                status, answer = s.request("POST", path, body, token=None)
                self.assertEqual(status, 401, answer)
                self.assertIn("endpoint.auth: token", answer["error"])
                status, answer = s.request("POST", path, body,
                                           token="slw_nope")
                self.assertEqual(status, 401, answer)
                self.assertIn("malformed API token", answer["error"])
                status, answer = s.request("POST", path, body,
                                           token=self.tokens["viewer"])
                self.assertEqual(status, 200, answer)
        # Metadata, health and metrics stay open.
        for path in ("/v2/models/%s" % APP, "/v2/models/%s/ready" % APP,
                     "/healthz", "/readyz", "/metrics"):
            status, _ = s.request("GET", path, token=None, raw=True)
            self.assertEqual(status, 200, path)

        # auth: none opens predict again without a restart.
        open_spec = self.ws.write("open/slipway.yaml", guarded_spec("none"))
        s.cli("apply", open_spec, check=True)
        try:
            status, answer = s.request("POST", "/v1/apps/%s/predict" % APP,
                                       records, token=None)
            self.assertEqual(status, 200, answer)
        finally:
            s.cli("apply", self.spec, check=True)
        status, _ = s.request("POST", "/v1/apps/%s/predict" % APP, records,
                              token=None)
        self.assertEqual(status, 401)


if __name__ == "__main__":
    unittest.main()
