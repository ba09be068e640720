"""The exported tiny model runs through diffusionfilter in a real pipeline.

Needs the plugin built (build/plugins, or $MIRAGE_BUILD_DIR/plugins) and gst-launch-1.0; skips
with the reason otherwise.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import export_paths

PLUGIN_DIR = os.path.join(export_paths.BUILD_DIR, "plugins")


class ThroughTheElement(unittest.TestCase):
    def setUp(self):
        if not os.path.isfile(os.path.join(PLUGIN_DIR, "libgstmirage.so")):
            self.skipTest("%s/libgstmirage.so is absent: build the project first (./dev build) or set "
                          "MIRAGE_BUILD_DIR; element test skipped" % PLUGIN_DIR)
        if shutil.which("gst-launch-1.0") is None:
            self.skipTest("gst-launch-1.0 is not installed (gstreamer1.0-tools); element test skipped")
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def test_gst_launch(self):
        model = os.path.join(self.dir.name, "tiny.pt")
        run = subprocess.run([sys.executable, export_paths.EXPORT_PY, "--config", "tiny", "--random-weights",
                              "--out", model], capture_output=True, text=True, timeout=300)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        env = dict(os.environ, GST_PLUGIN_PATH=PLUGIN_DIR, GST_REGISTRY=os.path.join(self.dir.name, "registry.bin"))
        for extra in ([], ["style=neon", "strength=0.7", "seed=3"]):
            cmd = ["gst-launch-1.0", "videotestsrc", "num-buffers=5", "!", "video/x-raw,width=64,height=64", "!",
                   "diffusionfilter", "model=" + model] + extra + ["!", "fakesink"]
            # Generous deadline: loading libtorch and the plugin takes a few seconds on a 2-core machine.
            run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
            self.assertEqual(run.returncode, 0, " ".join(cmd) + "\n" + run.stdout + run.stderr)
            self.assertIn("Got EOS", run.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
