"""`meson install` gives a tree that runs as it is, from anywhere.

Installs the build into a temporary --destdir, then, with an environment
that names nothing of the build or the source tree (no GST_PLUGIN_PATH, no
LD_LIBRARY_PATH, a PATH of /usr/bin:/bin only, the working directory
elsewhere):
  - the installed mirage-model writes the sample model (it finds
    libmirage-core through its relative rpath);
  - the installed miraged migrates a fresh PostgreSQL from the installed
    migrations (every one of them applied);
  - `miraged worker` loads the model through the installed plugin (its
    styles reach the database) and `miraged serve` places a stream on it,
    whose pipeline the worker builds from the installed templates;
  - the systemd units, their paths pointed into the destdir, pass
    `systemd-analyze verify` and score "OK" in `systemd-analyze security`.
"""
import json
import os
import re
import pathlib
import shutil
import subprocess
import tempfile
import unittest

from processes import Postgres, api, free_port, stop_all, wait_for

BUILD = pathlib.Path(os.environ.get("MIRAGE_BUILD_DIR", "build")).resolve()
ROOT = pathlib.Path(__file__).resolve().parents[2]
# systemd-analyze security's scale: 0 (locked down) to 10; "OK" is below 4.
EXPOSURE_LIMIT = 3.5


def options():
    out = subprocess.run(["meson", "introspect", str(BUILD), "--buildoptions"], capture_output=True, text=True,
                         check=True).stdout
    return {o["name"]: o["value"] for o in json.loads(out)}


def under(prefix, path):
    return pathlib.Path(path if path.startswith("/") else os.path.join(prefix, path))


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="mirage-install-"))
        cls.dest = cls.tmp / "dest"
        subprocess.run(["meson", "install", "-C", str(BUILD), "--no-rebuild", "--quiet", "--destdir", str(cls.dest)],
                       check=True, capture_output=True)
        o = options()
        prefix = o["prefix"]
        cls.bindir = cls.dest / under(prefix, o["bindir"]).relative_to("/")
        cls.libdir = cls.dest / under(prefix, o["libdir"]).relative_to("/")
        cls.datadir = cls.dest / under(prefix, o["datadir"]).relative_to("/") / "mirage"
        cls.unitdir = cls.dest / pathlib.Path(prefix).relative_to("/") / "lib" / "systemd" / "system"
        cls.sysconfdir = under(prefix, o["sysconfdir"])
        cls.work = cls.tmp / "elsewhere"
        cls.work.mkdir()
        # Nothing of the build or the source tree: what runs must come from the install.
        cls.env = {"PATH": "/usr/bin:/bin", "HOME": str(cls.work), "GST_REGISTRY": str(cls.work / "registry.bin"),
                   "LANG": "C.UTF-8"}
        cls.procs = []
        cls.pg = None

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.procs)
        if cls.pg:
            cls.pg.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start(self, *args, log):
        with open(self.work / log, "w") as out:
            p = subprocess.Popen([str(self.bindir / "miraged"), *args], cwd=self.work, env=self.env,
                                 stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def log(self, name):
        return (self.work / name).read_text(errors="replace")[-3000:]

    def test_1_the_tree_holds_every_part(self):
        for path in [self.bindir / "miraged", self.bindir / "mirage-model",
                     self.libdir / "gstreamer-1.0" / "libgstmirage.so",
                     self.unitdir / "miraged.service", self.unitdir / "miraged-worker.service"]:
            self.assertTrue(path.exists(), f"{path} was not installed")
        self.assertTrue(list(self.libdir.glob("libmirage-core.so*")), "libmirage-core was not installed")
        migrations = sorted(p.name for p in (ROOT / "sql" / "migrations").glob("*.sql"))
        self.assertEqual(sorted(p.name for p in (self.datadir / "migrations").glob("*.sql")), migrations)
        pipelines = sorted(p.name for p in (ROOT / "pipelines").glob("*.pipeline"))
        self.assertEqual(sorted(p.name for p in (self.datadir / "pipelines").glob("*.pipeline")), pipelines)
        # The units name this install's binary and config, not the build tree.
        unit = (self.unitdir / "miraged.service").read_text()
        installed_bin = pathlib.Path("/") / self.bindir.relative_to(self.dest) / "miraged"
        self.assertIn(f"ExecStart={installed_bin} serve --config {self.sysconfdir / 'mirage' / 'mirage.conf'}", unit)
        self.assertNotIn(str(BUILD), unit)
        self.assertIsNone(re.search(r"@[a-z_]+@", unit), "a configure variable was left unfilled")

    def test_2_the_installed_daemon_runs_without_the_build_tree(self):
        model = self.work / "styles.pt"
        subprocess.run([str(self.bindir / "mirage-model"), "styles", str(model)], cwd=self.work, env=self.env,
                       check=True, capture_output=True)
        self.__class__.pg = Postgres(self.tmp)
        db = ["--database-url", self.pg.url]
        migrate = subprocess.run([str(self.bindir / "miraged"), "migrate", *db], cwd=self.work, env=self.env,
                                 capture_output=True, text=True, timeout=60)
        self.assertEqual(migrate.returncode, 0, migrate.stdout + migrate.stderr)
        # The binary knows the source tree too (its fallback for build/): it must not have used it.
        self.assertIn(f"migrations in {self.datadir / 'migrations'}", migrate.stdout)
        count = len(list((ROOT / "sql" / "migrations").glob("*.sql")))
        self.assertEqual(self.pg.query("SELECT count(*) FROM schema_migrations"), str(count))

        media = free_port()
        worker = self.start("worker", *db, "--model", str(model), "--worker-name", "installed",
                            "--media-addr", f"127.0.0.1:{media}", "--srt-addr", "", "--rtsp-addr", "",
                            "--hls-dir", str(self.work / "hls"), log="worker.log")

        def styles():
            if worker.poll() is not None:
                raise AssertionError("the installed worker exited:\n" + self.log("worker.log"))
            return self.pg.query("SELECT array_length(styles, 1) FROM media_workers WHERE name = 'installed'")

        self.assertGreater(int(wait_for("the worker to load the model through the installed plugin", styles, 90)), 0)
        worker_log = self.log("worker.log")
        self.assertIn(f"pipeline templates in {self.datadir / 'pipelines'}", worker_log)
        self.assertIn(f"the installed plugin folder {self.libdir / 'gstreamer-1.0'}", worker_log)

        http = free_port()
        serve = self.start("serve", *db, "--http-addr", f"127.0.0.1:{http}", log="serve.log")
        base = f"http://127.0.0.1:{http}"

        def answering():
            if serve.poll() is not None:
                raise AssertionError("the installed miraged serve exited:\n" + self.log("serve.log"))
            try:
                return api(base, "GET", "/readyz")[0] == 200
            except OSError:
                return False

        wait_for("the installed API to be ready (/readyz)", answering)
        user = {"username": "installed_user", "email": "installed@example.org", "password": "installed password"}
        self.assertEqual(api(base, "POST", "/api/auth/register", user)[0], 201)
        grant = subprocess.run([str(self.bindir / "miraged"), "credits", "grant", user["username"], "5", "--reason",
                                "install test", *db], cwd=self.work, env=self.env, capture_output=True, text=True)
        self.assertEqual(grant.returncode, 0, grant.stderr)
        status, login = api(base, "POST", "/api/auth/login", {k: user[k] for k in ("username", "password")})
        self.assertEqual(status, 200, login)
        status, started = api(base, "POST", "/api/streams", {"title": "from the install"}, login["token"])
        self.assertEqual(status, 201, started)
        self.assertEqual(started["ingest"]["worker"], "installed")

        def ready():
            if worker.poll() is not None:
                raise AssertionError("the installed worker exited:\n" + self.log("worker.log"))
            return self.pg.query(f"SELECT ready FROM stream_runtime WHERE stream_id = {int(started['stream']['id'])}")

        wait_for("the worker to build the stream's pipeline from the installed templates", lambda: ready() == "t")

    def test_3_the_units_pass_systemd_analyze(self):
        if not shutil.which("systemd-analyze"):
            self.fail("systemd-analyze is missing (./dev setup installs systemd)")
        units = self.tmp / "units"
        units.mkdir(exist_ok=True)
        for name in ("miraged.service", "miraged-worker.service"):
            text = (self.unitdir / name).read_text()
            # verify checks that ExecStart exists: point it at the destdir's binary.
            installed = "ExecStart=" + str(pathlib.Path("/") / self.bindir.relative_to(self.dest) / "miraged")
            self.assertIn(installed, text)
            (units / name).write_text(text.replace(installed, "ExecStart=" + str(self.bindir / "miraged")))
            verify = subprocess.run(["systemd-analyze", "verify", str(units / name)], capture_output=True, text=True)
            self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
            self.assertEqual(verify.stderr.strip(), "", f"{name}: {verify.stderr}")
            security = subprocess.run(["systemd-analyze", "security", "--offline=true",
                                       f"--threshold={int(EXPOSURE_LIMIT * 10)}", str(units / name)],
                                      capture_output=True, text=True)
            self.assertEqual(security.returncode, 0, f"{name} is too exposed:\n{security.stdout[-1500:]}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
