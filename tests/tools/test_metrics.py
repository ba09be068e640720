"""Prometheus metrics of `miraged serve` and `miraged worker`, end to end.

A PostgreSQL of its own, the API and a worker (the sample model) from the
build tree, each with --metrics-addr on loopback. Traffic: a sign-up, a
taken username, a wrong password, a login, then examples/python/push.py
streams a test pattern over SRT for a while. Then:
  - each /metrics passes `promtool check metrics` (Prometheus's own lint:
    names, units, _total on counters, help text);
  - the numbers say what happened: logins by outcome, a registration
    refused as taken, requests by route template (never a username in a
    label), the stream's processed frames and its inference histogram, the
    worker's capacity, the streams live and the seconds billed from
    PostgreSQL;
  - viewers: an HLS player (the playlist and its segments, fetched here,
    counted as one HLS viewer)
    and examples/python/watch.py on the WebSocket; the stream's bytes sent
    by protocol are at least what they received, and the shared model's
    batch-size histogram counts as many frames as the stream processed;
  - Debian's `prometheus` scrapes both (on loopback, every second) and its
    HTTP API answers queries for them.
"""
import json
import pathlib
import re
import subprocess
import sys
import unittest
import urllib.parse
import urllib.request

from processes import MIRAGED, Processes, api, build_env, free_port, sample_model, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
CAPACITY = 3


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def samples(text, name):
    """{labels-string: value} of metric |name| in an exposition text."""
    out = {}
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


class Metrics(Processes):
    prefix = "mirage-metrics-"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        model = sample_model(cls.tmp)
        cls.env = build_env(cls.tmp)
        http, media, srt = free_port(), free_port(), free_port()
        cls.api_metrics, cls.worker_metrics = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        cls.api = f"http://127.0.0.1:{http}"
        cls.media = f"http://127.0.0.1:{media}"
        db = ["--database-url", cls.pg.url]

        def start(name, *args):
            with open(cls.tmp / f"{name}.log", "w") as out:
                cls.procs.append(subprocess.Popen([MIRAGED, *args, *db], env=cls.env, stdout=out,
                                                  stderr=subprocess.STDOUT))

        start("serve", "serve", "--http-addr", f"127.0.0.1:{http}", "--metrics-addr", cls.api_metrics,
              "--meter-seconds", "2")
        start("worker", "worker", "--model", str(model), "--worker-name", "measured", "--capacity", str(CAPACITY),
              "--media-addr", f"127.0.0.1:{media}", "--srt-addr", f"127.0.0.1:{srt}", "--rtsp-addr", "",
              "--metrics-addr", cls.worker_metrics, "--hls-dir", str(cls.tmp / "hls"))
        for base in (cls.api, f"http://127.0.0.1:{media}"):
            wait_for(f"{base}/readyz", lambda base=base: cls.ready(base), 60)

    @classmethod
    def ready(cls, base):
        cls.check_running()
        try:
            return urllib.request.urlopen(base + "/readyz", timeout=5).status == 200
        except OSError:
            return False

    def test_metrics_from_the_processes_to_prometheus(self):
        user = {"username": "metered", "email": "metered@example.org", "password": "metered password"}
        self.assertEqual(api(self.api, "POST", "/api/auth/register", user)[0], 201)
        self.assertEqual(api(self.api, "POST", "/api/auth/register", user)[0], 409)
        self.assertEqual(api(self.api, "POST", "/api/auth/login", {"username": "metered", "password": "wrong one!!"})[0], 401)
        self.assertEqual(api(self.api, "GET", "/api/streams/metered")[0], 200)
        grant = subprocess.run([MIRAGED, "credits", "grant", "metered", "5", "--reason", "test",
                                "--database-url", self.pg.url], capture_output=True, text=True)
        self.assertEqual(grant.returncode, 0, grant.stderr)
        with open(self.tmp / "push.log", "w") as out:
            push = subprocess.Popen([sys.executable, str(ROOT / "examples" / "python" / "push.py"), "--api", self.api,
                                     "--user", "metered", "--password", user["password"], "--seconds", "60"],
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(push)

        def processed():
            text = get(f"http://{self.worker_metrics}/metrics")
            frames = samples(text, "mirage_stream_processed_frames_total")
            inferred = samples(text, "mirage_stream_inference_seconds_count")
            return text if frames and min(frames.values()) >= 10 and min(inferred.values()) >= 10 else None

        try:
            worker_text = wait_for("the worker's metrics to count 10 processed frames", processed, 90)
        except AssertionError:
            print((self.tmp / "push.log").read_text()[-3000:], (self.tmp / "worker.log").read_text()[-3000:],
                  sep="\n---\n")
            raise
        self.viewers_are_counted(worker_text)
        worker_text = get(f"http://{self.worker_metrics}/metrics")
        billed = wait_for("the API's metrics to show seconds billed",
                          lambda: (t := get(f"http://{self.api_metrics}/metrics")) and
                          samples(t, "mirage_credits_billed_seconds_total").get("", 0) > 0 and t, 60)
        api_text = billed

        for name, text in (("api", api_text), ("worker", worker_text)):
            check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
            self.assertEqual(check.returncode, 0, f"promtool on the {name}'s metrics:\n{check.stdout}{check.stderr}")

        logins = samples(api_text, "mirage_logins_total")
        self.assertEqual(logins.get('{outcome="invalid_credentials"}'), 1, logins)
        self.assertGreaterEqual(logins.get('{outcome="success"}', 0), 1, logins)  # push.py's
        self.assertEqual(samples(api_text, "mirage_registrations_total").get('{outcome="taken"}'), 1)
        requests = samples(api_text, "mirage_http_requests_total")
        self.assertIn('{method="GET",route="/api/streams/:username",status="200"}', requests)
        self.assertFalse([k for k in requests if "metered" in k], "a username leaked into a label")
        self.assertEqual(samples(api_text, "mirage_streams_live").get(""), 1)
        self.assertGreater(samples(api_text, "mirage_db_query_duration_seconds_count").get(""), 0)
        self.assertIn('{worker="measured"}', samples(worker_text, "mirage_worker_capacity"))
        self.assertEqual(samples(worker_text, "mirage_worker_capacity")['{worker="measured"}'], CAPACITY)
        self.assertEqual(samples(worker_text, "mirage_worker_streams")['{worker="measured"}'], 1)
        buckets = samples(worker_text, "mirage_stream_inference_seconds_bucket")
        self.assertTrue(any('le="+Inf"' in k for k in buckets), buckets)
        self.assertTrue(all(re.search(r'stream_id="\d+"', k) for k in buckets), buckets)

        batches = samples(worker_text, "mirage_model_batch_size_bucket")
        # No label (one model a worker), buckets 1 to 64 frames.
        self.assertEqual(set(batches), {f'{{le="{b}"}}' for b in ("1", "2", "4", "8", "16", "32", "64", "+Inf")})
        self.assertEqual(batches['{le="+Inf"}'], samples(worker_text, "mirage_model_batch_size_count")[""])

        # Debian's Prometheus scrapes both and answers for them.
        port = free_port()
        config = self.tmp / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "mirage", "static_configs": [
                {"targets": [self.api_metrics, self.worker_metrics]}]}],
        }))
        with open(self.tmp / "prometheus.log", "w") as log:
            prom = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.tmp / 'tsdb'}",
                                     f"--web.listen-address=127.0.0.1:{port}"],
                                    stdout=subprocess.DEVNULL, stderr=log)
        self.procs.append(prom)

        def query(expr):
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            try:
                body = json.loads(get(url))
            except OSError:
                return None
            return body["data"]["result"] if body.get("status") == "success" and body["data"]["result"] else None

        capacity = wait_for("Prometheus to have scraped the worker", lambda: query("mirage_worker_capacity"), 60)
        self.assertEqual(float(capacity[0]["value"][1]), CAPACITY)
        up = wait_for("both targets up", lambda: (r := query("sum(up)")) and float(r[0]["value"][1]) == 2 and r, 30)
        self.assertTrue(up)
        rate = wait_for("a processed-frames rate", lambda: query("sum(rate(mirage_stream_processed_frames_total[5s])) > 0"), 30)
        self.assertGreater(float(rate[0]["value"][1]), 0)

        # Every query of the Grafana dashboard is valid PromQL over these series, and those of the
        # panels that must show something now (streams live, fps, capacity, bytes out) have data.
        dashboard = json.loads((ROOT / "docs" / "grafana" / "mirage.json").read_text())
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        self.assertGreaterEqual(len(exprs), 10)
        for expr in exprs:
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            body = json.loads(get(url))
            self.assertEqual(body.get("status"), "success", f"{expr}: {body}")
        for expr in ("max(mirage_streams_live)", "mirage_stream_processed_fps", "mirage_worker_capacity",
                     "sum by (protocol) (rate(mirage_stream_sent_bytes_total[1m]))"):
            self.assertIn(expr, exprs)
            self.assertTrue(query(expr), f"no data for the dashboard's {expr}")

    def viewers_are_counted(self, before_text):
        """An HLS player and a WebSocket viewer: the bytes sent to them are counted, by protocol; the model's
        batch histogram goes on counting the stream's frames."""
        playlist = wait_for("an HLS playlist with a segment",
                            lambda: (t := self.fetch(f"{self.media}/live/metered/index.m3u8?viewer=hls-player")) and b"segment" in t and t, 30)
        hls = len(playlist)
        for name in re.findall(rb"^segment\d+\.ts$", playlist, re.M):
            hls += len(self.fetch(f"{self.media}/live/metered/{name.decode()}") or b"")
        frames = self.tmp / "frames"
        watch = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / "watch.py"), "metered", "--api", self.api,
                                "--frames", "5", "--out", str(frames), "--timeout", "30"],
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(watch.returncode, 0, watch.stderr)
        websocket = sum(f.stat().st_size for f in frames.glob("*.jpg"))
        self.assertEqual(len(list(frames.glob("*.jpg"))), 5)

        text = get(f"http://{self.worker_metrics}/metrics")
        sent = samples(text, "mirage_stream_sent_bytes_total")
        by_protocol = {re.search(r'protocol="(\w+)"', k).group(1): v for k, v in sent.items()}
        self.assertEqual(set(by_protocol), {"hls", "websocket", "whep", "thumbnail"}, sent)
        self.assertTrue(all(re.search(r'stream_id="\d+"', k) for k in sent), sent)
        self.assertGreaterEqual(by_protocol["hls"], hls, sent)
        self.assertGreaterEqual(by_protocol["websocket"], websocket, sent)
        # Viewers by protocol: the HLS player (its ?viewer= id) is an HLS viewer for 30 s after its request.
        self.assertEqual(list(samples(text, "mirage_stream_hls_viewers").values()), [1.0])

        def frames_of(t):
            return (sum(samples(t, "mirage_stream_processed_frames_total").values()),
                    samples(t, "mirage_model_batch_size_count")[""], samples(t, "mirage_model_batch_size_sum")[""])
        processed_before, calls_before, _ = frames_of(before_text)
        # The stream's count moves with the element's stats messages (about one a second).
        text = wait_for("more processed frames", lambda: (t := get(f"http://{self.worker_metrics}/metrics")) and
                        frames_of(t)[0] > processed_before and t, 30)
        processed, calls, batched = frames_of(text)
        self.assertGreater(calls, calls_before)
        # One stream: every frame it processed went through the model once (the model counts first).
        self.assertGreaterEqual(batched, processed)

    @staticmethod
    def fetch(url):
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.read()
        except OSError:
            return None


if __name__ == "__main__":
    unittest.main(verbosity=2)
