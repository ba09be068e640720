#!/usr/bin/env python3
"""tools/gpu/device-run.sh --dry-run: the GPU machine's script, run here on the CPU with the tiny
config, so that the script itself is tested before GPU time is spent. Checks that every step ran
and the report holds every table."""
import os
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MIRAGE_BUILD_DIR", os.path.join(ROOT, "build"))


class DeviceRun(unittest.TestCase):
    def test_dry_run_writes_the_whole_report(self):
        out = os.path.join(BUILD, "gpu-dry-run-report")
        env = dict(os.environ, BUILD=os.path.join(BUILD, "gpu-dry-run"))
        env.pop("OUT", None)
        run = subprocess.run(["bash", os.path.join(ROOT, "tools", "gpu", "device-run.sh"), "--dry-run", "--out", out],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        self.assertEqual(run.returncode, 0, run.stdout[-3000:])
        report = open(os.path.join(out, "gpu-report.md")).read()
        for heading in ("# GPU report", "DRY RUN", "## Build", "## GPU test suite", "## Plain PyTorch",
                        "## Core path", "## Streams sharing one model", "## Lag of one live 30 fps stream",
                        "## Files"):
            self.assertIn(heading, report, report[-3000:])
        # The core path ran (no failed rows) and the test suite ran and skipped without CUDA.
        self.assertNotIn("| failed:", report)  # a core-path row that failed
        self.assertNotIn("load failed", report)
        self.assertIn("SKIPPED", report)
        self.assertIn("exit status 0", report)
        for name in ("run.log", "build.log", "export.log", "tests.log", "bench.log", "plain.json", "core.json"):
            self.assertTrue(os.path.exists(os.path.join(out, name)), name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
