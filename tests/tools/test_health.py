"""/healthz and /readyz of `miraged serve` and `miraged worker`, real processes.

A PostgreSQL cluster of its own, the API (no model) and a worker with the
sample model, from the build tree. What is tried:
  - both answer /healthz 200 and, once up, /readyz 200 with every check ok
    (the test waits on /readyz, not on a 404 of some route);
  - the database one migration behind this build: the API is not ready
    (migrations: "run `miraged migrate`") until the migration is back;
  - PostgreSQL stopped: /healthz still 200 on both; the API's /readyz says
    the database is unreachable, the worker's that its heartbeat is stale;
    PostgreSQL started again: both ready again, without a restart;
  - 60 probes in a burst: all answered, on one database connection of the
    API's own (application_name miraged-readyz), none from its pool;
  - the media port refuses POST /readyz (405).
"""
import json
import pathlib
import subprocess
import unittest
import urllib.error
import urllib.request

from processes import MIRAGED, Processes, build_env, free_port, sample_model, wait_for

TIMEOUT = 3  # --worker-timeout-seconds


def probe(url, method="GET"):
    """(status, JSON body) of a probe; (0, None) when nothing answers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, None
    except OSError:
        return 0, None


class Health(Processes):
    prefix = "mirage-health-"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        db = ["--database-url", cls.pg.url, "--worker-timeout-seconds", str(TIMEOUT)]
        model = sample_model(cls.tmp)
        env = build_env(cls.tmp)
        http, media = free_port(), free_port()
        cls.api = f"http://127.0.0.1:{http}"
        cls.media = f"http://127.0.0.1:{media}"

        def start(name, *args):
            with open(cls.tmp / f"{name}.log", "w") as out:
                cls.procs.append(subprocess.Popen([MIRAGED, *args, *db], env=env, stdout=out, stderr=subprocess.STDOUT))

        start("serve", "serve", "--http-addr", f"127.0.0.1:{http}")
        start("worker", "worker", "--model", str(model), "--worker-name", "probed", "--media-addr",
              f"127.0.0.1:{media}", "--srt-addr", "", "--rtsp-addr", "", "--hls-dir", str(cls.tmp / "hls"))

    def logs(self):
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in self.tmp.glob("*.log"))

    def ready(self, base, want=200, timeout=30):
        def check():
            for p in self.procs:
                if p.poll() is not None:
                    raise AssertionError(f"a miraged process exited:\n{self.logs()}")
            status, body = probe(base + "/readyz")
            return (status, body) if status == want else None

        return wait_for(f"{base}/readyz to answer {want}", check, timeout)

    def test_1_both_ready_once_up(self):
        _, api = self.ready(self.api)
        self.assertEqual(api["status"], "ready")
        self.assertEqual(set(api["checks"]), {"database", "migrations"})
        self.assertTrue(all(c["ok"] for c in api["checks"].values()), api)
        newest = max(int(p.name[:3]) for p in (pathlib.Path(__file__).parents[2] / "sql" / "migrations").glob("*.sql"))
        self.assertIn(f"this build needs {newest}", api["checks"]["migrations"]["detail"])
        _, worker = self.ready(self.media)
        self.assertEqual(set(worker["checks"]), {"model", "heartbeat", "migrations"})
        self.assertTrue(all(c["ok"] for c in worker["checks"].values()), worker)
        self.assertIn("styles.pt", worker["checks"]["model"]["detail"])
        for base in (self.api, self.media):
            self.assertEqual(probe(base + "/healthz"), (200, {"status": "ok"}))
        self.assertEqual(probe(self.media + "/readyz", "POST")[0], 405)

    def test_2_a_migration_behind_is_not_ready(self):
        self.ready(self.api)
        newest = self.pg.query("SELECT max(version) FROM schema_migrations")
        name = self.pg.query(f"SELECT name FROM schema_migrations WHERE version = {int(newest)}")
        self.pg.query(f"DELETE FROM schema_migrations WHERE version = {int(newest)}")
        try:
            _, body = self.ready(self.api, 503, timeout=10)
            self.assertEqual(body["status"], "not_ready")
            self.assertTrue(body["checks"]["database"]["ok"])
            self.assertFalse(body["checks"]["migrations"]["ok"])
            self.assertIn("miraged migrate", body["checks"]["migrations"]["detail"])
        finally:
            self.pg.query(f"INSERT INTO schema_migrations (version, name) VALUES ({int(newest)}, '{name}')")
        self.ready(self.api, 200, timeout=10)

    def test_3_probes_cannot_load_the_database(self):
        self.ready(self.api)
        statuses = [probe(self.api + "/readyz")[0] for _ in range(60)]
        self.assertEqual(set(statuses), {200})
        self.assertEqual(self.pg.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'miraged-readyz'"),
                         "1")

    def test_4_postgres_down_then_back(self):
        self.ready(self.api)
        self.ready(self.media)
        self.pg.stop()
        try:
            _, api = self.ready(self.api, 503, timeout=15)
            self.assertFalse(api["checks"]["database"]["ok"])
            self.assertIn("unreachable", api["checks"]["database"]["detail"])
            _, worker = self.ready(self.media, 503, timeout=TIMEOUT + 15)
            self.assertFalse(worker["checks"]["heartbeat"]["ok"])
            self.assertTrue(worker["checks"]["model"]["ok"])
            for base in (self.api, self.media):
                self.assertEqual(probe(base + "/healthz"), (200, {"status": "ok"}), base)
        finally:
            self.pg.start()
        self.ready(self.api, 200, timeout=30)
        self.ready(self.media, 200, timeout=30)


if __name__ == "__main__":
    unittest.main(verbosity=2)
