"""`slipway demo` (what `make demo` runs) end to end: it exits 0 and its
output tells both stories, the monitored breast-cancer app and the
improvement loop, with the decisions in the order they happen."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402


class DemoTest(unittest.TestCase):

    def test_the_demo_tells_the_whole_story(self):
        work = tempfile.mkdtemp(prefix="slipway-demo-e2e-")
        try:
            result = subprocess.run(
                [harness.BINARY, "demo", "--data-dir",
                 os.path.join(work, "d")],
                capture_output=True, text=True, timeout=300)
            self.assertEqual(result.returncode, 0,
                             result.stdout + result.stderr)
            out = result.stdout
            at = 0
            for needle in (
                    "champion -> v1, serving",
                    "slipway alerts list",
                    "the improvement loop",
                    "alert accuracy-low firing",
                    "v2 beats champion v1",
                    "canary v2 (challenger) takes 30% of traffic",
                    "canary v2 vs champion v1: promote",
                    "alert accuracy-low resolved",
                    "promotion of v2 over v1 kept",
                    "v3 discarded, champion v2 kept",
                    "champion v1 rolled back to v2",
                    "alert rollback firing",
                    "slipway history churn-loop",
                    "done in"):
                found = out.find(needle, at)
                self.assertGreaterEqual(
                    found, 0, "%r not found after offset %d in:\n%s" %
                    (needle, at, out))
                at = found + len(needle)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
