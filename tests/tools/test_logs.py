"""The logs of `miraged serve` and `miraged worker`: one line per event, a
request id from the API's X-Request-Id into the worker's lines, no secret.

A PostgreSQL of its own that wants a password on TCP, the fake Stripe of the
browser test (tests/e2e/fake-stripe.mjs), the API logging JSON and a worker
logging logfmt (--log-format), both from the build tree. What is tried,
with a secret of every kind in play:
  - sign-up, a wrong password, a login, a password change, a checkout paid
    through the fake Stripe (its signed webhook), a forged webhook;
  - a stream started (its X-Request-Id kept), its key rotated, a real SRT
    publisher (gst-launch, with the SRT passphrase) on the new key, a
    WebSocket ingest and a WHIP offer with wrong secrets (the worker says it
    refused them, and why), the stream stopped;
  - X-Request-Id from the client: a plain one is kept (answered, logged);
    one with a quote and spaces (a log injection) is replaced by a fresh id;
  - an unknown route and a body over the limit (the guard's refusal) carry
    an id too.
Then: every line of the API's log is a JSON object and every line of the
worker's a logfmt record, each with ts, level and msg; the request that
started the stream has its line in the API's log (route, status 201), and
the worker's lines about that stream (placed, publisher connected,
stopped) carry the same request_id; and none of the secrets (passwords
right and wrong, session tokens, both stream keys, the wrong keys, the SRT
passphrase, the Stripe keys, the database password) appears in either log,
in PostgreSQL's, or in what miraged printed anywhere.
"""
import hashlib
import hmac
import http.client
import json
import pathlib
import re
import socket
import subprocess
import time
import unittest
import urllib.parse

from processes import MIRAGED, Processes, build_env, free_port, sample_model, stop_all, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]

DB_PASSWORD = "pg-Secret-4u7Zq9"
STRIPE_KEY = "sk_test_logcheck_9d8f7a6b5c4e3d2f"
WEBHOOK_SECRET = "whsec_logcheck_1a2b3c4d5e6f7a8b"
SRT_PASSPHRASE = "srt-passphrase-Qm3x8Lw2"
PASSWORD = "first password P1x9"
WRONG_PASSWORD = "wrong password W7k2"
NEW_PASSWORD = "second password N4b8"

LOGFMT = re.compile(r'^ts=\S+ level=(debug|info|warn|error) msg=("(?:[^"\\]|\\.)*"|[^\s"=]+)'
                    r'( [A-Za-z0-9_]+=("(?:[^"\\]|\\.)*"|[^\s"=]+))*$')
LOGFMT_PAIR = re.compile(r'([A-Za-z0-9_]+)=("(?:[^"\\]|\\.)*"|[^\s"=]+)')


def logfmt(line):
    """A logfmt line's {key: value} (quoted values unescaped)."""
    out = {}
    for key, value in LOGFMT_PAIR.findall(line):
        out[key] = json.loads(value) if value.startswith('"') else value
    return out


class Logs(Processes):
    prefix = "mirage-logs-"
    pg_password = DB_PASSWORD

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        model = sample_model(cls.tmp)
        cls.env = build_env(cls.tmp, MIRAGE_STRIPE_SECRET_KEY=STRIPE_KEY, MIRAGE_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                            MIRAGE_SRT_PASSPHRASE=SRT_PASSPHRASE)
        http_port, media, srt, stripe = free_port(), free_port(), free_port(), free_port()
        cls.http_port, cls.media_port = http_port, media
        cls.api_base = f"http://127.0.0.1:{http_port}"
        cls.logs = {}

        def start(name, args, env=None):
            cls.logs[name] = cls.tmp / f"{name}.log"
            with open(cls.tmp / f"{name}.out", "w") as out, open(cls.logs[name], "w") as err:
                cls.procs.append(subprocess.Popen(args, env=env or cls.env, stdout=out, stderr=err))

        start("stripe", ["node", str(ROOT / "tests" / "e2e" / "fake-stripe.mjs"), "--port", str(stripe),
                         "--secret-key", STRIPE_KEY, "--webhook-secret", WEBHOOK_SECRET,
                         "--webhook-url", f"{cls.api_base}/api/stripe/webhook"])
        db = ["--database-url", cls.pg.url, "--meter-seconds", "2"]
        start("serve", [MIRAGED, "serve", "--http-addr", f"127.0.0.1:{http_port}", "--log-format", "json",
                        "--stripe-api-base", f"http://127.0.0.1:{stripe}", "--argon2-memory-kib", "8192", *db])
        start("worker", [MIRAGED, "worker", "--model", str(model), "--worker-name", "logged", "--log-format", "logfmt",
                         "--media-addr", f"127.0.0.1:{media}", "--srt-addr", f"127.0.0.1:{srt}", "--rtsp-addr", "",
                         "--hls-dir", str(cls.tmp / "hls"), *db])
        for port in (http_port, media):
            wait_for(f"port {port} ready", lambda port=port: cls.ready(port), 60)
        wait_for("the fake Stripe", lambda: "listening" in (cls.tmp / "stripe.out").read_text(), 30)

    @classmethod
    def ready(cls, port):
        cls.check_running()
        try:
            return cls.request(port, "GET", "/readyz")[0] == 200
        except OSError:
            return False

    @staticmethod
    def request(port, method, path, body=None, token=None, headers=None):
        """(status, {lower-case header: value}, parsed JSON body or None)."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        h = {"Content-Type": "application/json", **(headers or {})}
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
        conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return r.status, {k.lower(): v for k, v in r.getheaders()}, parsed

    def api(self, method, path, body=None, token=None, headers=None):
        return self.request(self.http_port, method, path, body, token, headers)

    @staticmethod
    def raw(port, request):
        """Sends |request| bytes as they are; the response head."""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.decode(errors="replace")

    def test_one_line_per_event_request_ids_and_no_secret(self):
        secrets = {"the database password": DB_PASSWORD, "the Stripe secret key": STRIPE_KEY,
                   "the webhook secret": WEBHOOK_SECRET, "the SRT passphrase": SRT_PASSPHRASE,
                   "a password": PASSWORD, "a wrong password": WRONG_PASSWORD, "the new password": NEW_PASSWORD}
        user = {"username": "logged", "email": "logged@example.org", "password": PASSWORD}
        status, headers, body = self.api("POST", "/api/auth/register", user)
        self.assertEqual(status, 201, body)
        self.assertEqual(self.api("POST", "/api/auth/login", {"username": "logged", "password": WRONG_PASSWORD})[0], 401)
        status, _, body = self.api("POST", "/api/auth/login", {"username": "logged", "password": PASSWORD})
        self.assertEqual(status, 200, body)
        token = secrets["the login's session token"] = body["token"]
        status, _, body = self.api("POST", "/api/me/password",
                                   {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, token)
        self.assertEqual(status, 204, body)
        status, _, body = self.api("POST", "/api/auth/login", {"username": "logged", "password": NEW_PASSWORD})
        self.assertEqual(status, 200, body)
        secrets["the second login's session token"] = body["token"]

        # Credits through Checkout: the fake Stripe's "Pay" sends the signed webhook.
        status, _, body = self.api("POST", "/api/credits/checkout", {"pack": "small"}, token)
        self.assertEqual(status, 200, body)
        pay = urllib.parse.urlparse(body["checkout_url"])
        conn = http.client.HTTPConnection(pay.hostname, pay.port, timeout=20)
        conn.request("POST", pay.path)
        self.assertIn(conn.getresponse().status, (302, 303))
        conn.close()
        wait_for("the webhook to credit the account",
                 lambda: (self.api("GET", "/api/me/credits", token=token)[2] or {}).get("credits", 0) > 1, 30)
        forged = json.dumps({"id": "evt_forged", "type": "checkout.session.completed", "data": {"object": {}}})
        t = str(int(time.time()))
        signature = hmac.new(b"whsec_not_the_secret", f"{t}.{forged}".encode(), hashlib.sha256).hexdigest()
        self.assertEqual(self.api("POST", "/api/stripe/webhook", forged,
                                  headers={"Stripe-Signature": f"t={t},v1={signature}"})[0], 400)

        # The stream: started (its request id kept), key rotated, SRT on the new key.
        status, headers, body = self.api("POST", "/api/streams", {"title": "logged live"}, token)
        self.assertEqual(status, 201, body)
        start_id = headers.get("x-request-id", "")
        self.assertRegex(start_id, r"^[0-9a-f]{32}$")
        stream_id = body["stream"]["id"]
        secrets["the first stream key"] = body["ingest"]["secret"]
        status, _, body = self.api("POST", "/api/streams/current/secret", None, token)
        self.assertEqual(status, 200, body)
        key = secrets["the rotated stream key"] = body["ingest"]["secret"]
        srt_url = body["ingest"]["srt"]
        self.assertIn(urllib.parse.quote(key), srt_url)
        # The worker hears of the rotation through PostgreSQL: until then it
        # refuses the new key, and srtsink (auto-reconnect=false) exits; so
        # a sender that exited is started again.
        senders = []

        def send():
            out = open(self.tmp / "srt.out", "a")
            p = subprocess.Popen(
                ["gst-launch-1.0", "-q", "videotestsrc", "is-live=true", "!",
                 "video/x-raw,width=320,height=240,framerate=15/1", "!", "x264enc", "tune=zerolatency",
                 "speed-preset=ultrafast", "key-int-max=15", "!", "h264parse", "config-interval=-1", "!",
                 "mpegtsmux", "alignment=7", "!", "srtsink", "auto-reconnect=false", f"uri={srt_url}"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT)
            senders.append(p)
            self.procs.append(p)

        def processing():
            if senders[-1].poll() is not None:
                send()
            health = (self.api("GET", "/api/me/dashboard", token=token)[2] or {}).get("processing") or {}
            return health.get("frames_processed", 0) > 5

        send()
        try:
            wait_for("frames processed", processing, 90)
        except AssertionError:
            print((self.tmp / "srt.out").read_text()[-2000:], self.logs["worker"].read_text()[-3000:], sep="\n---\n")
            raise
        sender = senders[-1]

        # Wrong keys at the worker: a WebSocket ingest and a WHIP offer.
        wrong_ws = secrets["a wrong WebSocket key"] = "wrongWebSocketKey0123456789abcdefghijklmno"
        head = self.raw(self.media_port, (
            f"GET /ingest/logged?secret={wrong_ws} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode())
        self.assertNotIn(" 101 ", head.splitlines()[0] if head else "", head)
        wrong_whip = secrets["a wrong WHIP token"] = "wrongWhipBearer0123456789abcdefghijklmnopq"
        status, _, _ = self.request(self.media_port, "POST", "/whip/logged", "v=0\r\n",
                                    headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {wrong_whip}"})
        self.assertEqual(status, 401)

        # Client request ids: a plain one is kept; an injection is replaced.
        status, headers, _ = self.api("GET", "/api/streams/logged", headers={"X-Request-Id": "trace-7f.A_1"})
        self.assertEqual((status, headers.get("x-request-id")), (200, "trace-7f.A_1"))
        status, headers, _ = self.api("GET", "/api/streams/logged",
                                      headers={"X-Request-Id": 'x" level=error msg="forged'})
        self.assertEqual(status, 200)
        self.assertRegex(headers.get("x-request-id", ""), r"^[0-9a-f]{32}$")
        status, headers, _ = self.api("GET", "/api/no/such/route")
        self.assertEqual(status, 404)
        self.assertRegex(headers.get("x-request-id", ""), r"^[0-9a-f]{32}$")
        head = self.raw(self.http_port, b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
        self.assertIn(" 413 ", head.splitlines()[0])
        self.assertRegex(head, r"(?i)\r\nX-Request-Id: [0-9a-f]{32}\r\n")

        status, _, body = self.api("POST", "/api/streams/current/stop", None, token)
        self.assertEqual(status, 200, body)
        sender.wait(timeout=30)  # the worker drops the SRT caller when the stream ends

        def worker_lines_of_the_stream():
            lines = [logfmt(l) for l in self.logs["worker"].read_text().splitlines()]
            about = [l for l in lines if l.get("stream_id") == str(stream_id)]
            return about if any(l.get("msg") == "stream stopped here" for l in about) else None

        about = wait_for("the worker's line of the stream's stop", worker_lines_of_the_stream, 30)
        stop_all(self.procs)

        # Every line parses, in its format, with ts, level and msg.
        serve = self.logs["serve"].read_text().splitlines()
        worker = self.logs["worker"].read_text().splitlines()
        self.assertGreater(len(serve), 10)
        self.assertGreater(len(worker), 5)
        records = []
        for line in serve:
            record = json.loads(line)  # raises on a line that is not JSON
            self.assertTrue({"ts", "level", "msg"} <= record.keys(), line)
            self.assertIn(record["level"], ("debug", "info", "warn", "error"), line)
            records.append(record)
        for line in worker:
            self.assertRegex(line, LOGFMT)

        # The request that started the stream, in both logs.
        start = [r for r in records if r.get("request_id") == start_id]
        self.assertTrue(any(r.get("msg") == "request" and r.get("route") == "/api/streams" and r.get("status") == 201
                            for r in start), start)
        by_msg = {l["msg"]: l for l in about}
        for msg in ("stream placed here", "publisher connected", "stream stopped here"):
            self.assertIn(msg, by_msg, about)
            self.assertEqual(by_msg[msg].get("request_id"), start_id, by_msg[msg])
        self.assertEqual(by_msg["publisher connected"].get("via"), "srt")
        self.assertEqual(by_msg["stream stopped here"].get("reason"), "stopped")
        # What was refused is said, without the secret tried.
        refused = [logfmt(l) for l in worker if 'msg="ingest refused"' in l]
        self.assertEqual({(r.get("via"), r.get("reason")) for r in refused},
                         {("websocket", "wrong_secret"), ("whip", "wrong_secret")}, refused)
        self.assertTrue(any(r.get("msg") == "webhook" and r.get("type") == "checkout.session.completed"
                            and r.get("outcome") == "applied" for r in records))
        self.assertTrue(any(r.get("msg") == "webhook refused" and r.get("outcome") == "invalid_signature"
                            for r in records))
        # The client's plain id was logged with its request; the forged one never reached the log.
        self.assertTrue(any(r.get("request_id") == "trace-7f.A_1" and r.get("route") == "/api/streams/:username"
                            for r in records))
        self.assertFalse([r for r in records if "forged" in json.dumps(r)])
        self.assertTrue(any(r.get("msg") == "request refused" and r.get("status") == 413 for r in records))
        self.assertTrue(any(r.get("route") == "(unknown)" and r.get("status") == 404 for r in records))
        # A line per request, by template: never a username or a key in a path.
        self.assertTrue(any(r.get("route") == "/api/auth/login" and r.get("status") == 401 for r in records))

        # No secret anywhere miraged wrote, nor in PostgreSQL's log.
        texts = {f.name: f.read_text(errors="replace") for f in self.tmp.glob("*.log") if f.name != "stripe.log"}
        texts.update({f.name: f.read_text(errors="replace") for f in self.tmp.glob("*.out")
                      if f.name in ("serve.out", "worker.out")})
        texts["postgresql"] = (self.pg.dir / "log").read_text(errors="replace")
        for what, secret in secrets.items():
            self.assertGreaterEqual(len(secret), 10, what)
            for variant in {secret, urllib.parse.quote(secret), json.dumps(secret)[1:-1]}:
                for name, text in texts.items():
                    self.assertNotIn(variant, text, f"{what} is in {name}")
        print(f"{len(serve)} API lines, {len(worker)} worker lines; {len(secrets)} secrets, none logged")


if __name__ == "__main__":
    unittest.main(verbosity=2)
