#!/usr/bin/env python3
"""abuse-bench: a live stream with a viewer, then 60 s of hostile clients.

    tools/bench/abuse_bench.py BUILD_DIR [--seconds 60] [--baseline 15]

A real miraged (the media plane with the sample styles model, a PostgreSQL
cluster of its own, loopback only) serves a live stream: a publisher sends
JPEG frames over the WebSocket ingest at 15 fps, a viewer counts processed
frames on /watch, and a probe asks the REST API for the stream every 50 ms.
First a quiet baseline, then the same with these, each from loopback
addresses of its own (127.0.0.2 ...), as an outside attacker would send them:

  deep JSON          200 KB of '[' and of '{"a":' to POST /api/auth/login
  huge headers       a 1 MB header line, 20,000 header lines
  big bodies         1 MB bodies sent in full; 32 MiB announced by Content-Length
  bad text           bodies with invalid UTF-8 and U+0000 in fields
  bad frames         a second stream of the attacker's: garbage, JPEGs cut in
                     their headers, JPEGs declaring 65535x65535, 50 MB messages
  SRT junk           random UDP datagrams at the SRT port
  idle connections   2,000 held open on the REST and media ports, reopened
                     as the server closes them

It prints the daemon's RSS at the start and the end of the abuse, the
viewer's frame rate and the API's p99 latency, quiet against under abuse,
and whether the daemon lived. Targets (issue 12): nothing crashes, RSS grows
< 10 %, the viewer keeps >= 90 % of its frame rate, p99 stays < 5x.
"""
import argparse
import glob
import json
import os
import random
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
import watch  # noqa: E402  (the example's WebSocket client)


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A throwaway cluster (as the tests make one)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mirage-abuse-pg-")
        self.port = free_port()
        self.bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self.run("initdb", "-D", f"{self.dir}/data", "-U", "bench", "--auth=trust", "-E", "UTF8", "--no-locale",
                 "--no-sync")
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/pg.log", "-w", "-t", "30", "-o",
                 f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
                 "start")
        self.run("createdb", "-h", self.dir, "-p", str(self.port), "-U", "bench", "mirage")
        self.url = f"postgresql://bench@127.0.0.1:{self.port}/mirage"

    def run(self, tool, *args):
        subprocess.run(self.as_user + [f"{self.bin}/{tool}", *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def stop(self):
        subprocess.run(self.as_user + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-m", "immediate", "-w",
                                       "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def http(port, method, path, body=None, token=None, timeout=10):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None
    except (urllib.error.URLError, OSError):
        return 0, None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect_from(address, port, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((address, 0))
    s.connect(("127.0.0.1", port))
    return s


class Healthy:
    """The publisher, the viewer and the API probe: what must keep working."""

    def __init__(self, api_port, media_port, username, secret, frames):
        self.api_port, self.media_port, self.username, self.secret = api_port, media_port, username, secret
        self.frames = frames
        self.stop = threading.Event()
        self.arrivals = []   # viewer frame times
        self.latencies = []  # (time, seconds) of API probes
        self.errors = 0

    def publish(self):
        sock = watch.connect(f"ws://127.0.0.1:{self.media_port}/ingest/{self.username}?secret={self.secret}", 10)
        i, next_at = 0, time.monotonic()
        while not self.stop.is_set():
            watch.send_frame(sock, 0x2, self.frames[i % len(self.frames)])
            i += 1
            next_at += 1 / 15
            time.sleep(max(0, next_at - time.monotonic()))
        sock.close()

    def view(self):
        sock = watch.connect(f"ws://127.0.0.1:{self.media_port}/watch/{self.username}", 10)
        for opcode, _ in watch.messages(sock):
            if self.stop.is_set() or opcode == 0x8:
                break
            if opcode == 0x2:
                self.arrivals.append(time.monotonic())

    def probe(self):
        while not self.stop.is_set():
            started = time.monotonic()
            status, _ = http(self.api_port, "GET", f"/api/streams/{self.username}")
            if status != 200:
                self.errors += 1
            self.latencies.append((started, time.monotonic() - started))
            time.sleep(0.05)

    def start(self):
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self.publish, self.view, self.probe)]
        for t in self.threads:
            t.start()

    def window(self, begin, end):
        fps = sum(1 for t in self.arrivals if begin <= t < end) / (end - begin)
        lat = sorted(s for t, s in self.latencies if begin <= t < end)
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000 if lat else float("nan")
        return fps, p99, len(lat)


class Abuse:
    """The hostile clients, each kind on its own threads and addresses."""

    def __init__(self, api_port, media_port, srt_port, mallory_secret, frames, idle, only=None):
        self.only = only
        self.api_port, self.media_port, self.srt_port = api_port, media_port, srt_port
        self.secret, self.frames, self.idle = mallory_secret, frames, idle
        self.stop = threading.Event()
        self.sent = {}
        self.lock = threading.Lock()
        # Made once: the clients should spend their time sending, not building.
        deep = [b"[" * 200000, b'{"a":' * 50000]
        self.deep = [b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(d) + d for d in deep]
        self.headers = [b"GET /api/streams/nobody HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
                        b"GET /api/streams/nobody HTTP/1.1\r\nHost: x\r\n" +
                        b"".join(b"X-%d: 1\r\n" % i for i in range(20000)) + b"\r\n"]
        body = os.urandom(1 << 20)
        self.bodies = [b"POST /api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
                       b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 33554432\r\n\r\n"]
        self.junk = [os.urandom(random.randint(1, 1500)) for _ in range(100)]

    def count(self, kind):
        with self.lock:
            self.sent[kind] = self.sent.get(kind, 0) + 1

    def request(self, address, raw, read=True):
        try:
            s = connect_from(address, self.api_port, timeout=5)
            s.sendall(raw)
            if read:
                s.recv(4096)
            s.close()
        except OSError:
            pass

    def loop(self, kind, addresses, make):
        i = 0
        while not self.stop.is_set():
            make(addresses[i % len(addresses)])
            self.count(kind)
            i += 1

    def deep_json(self, address):
        self.request(address, random.choice(self.deep))

    def huge_headers(self, address):
        self.request(address, random.choice(self.headers))

    def big_bodies(self, address):
        self.request(address, random.choice(self.bodies))

    def bad_text(self, address):
        body = random.choice([b'{"username":"\xc3\x28","password":"x"}', b'{"username":"a\\u0000b","password":"x"}',
                              b'{"username":"\xed\xa0\x80","email":"\xff@x","password":"password123"}'])
        self.request(address, b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def bad_frames(self, address):
        try:
            s = watch.connect(f"ws://127.0.0.1:{self.media_port}/ingest/mallory?secret={self.secret}", 5, (address, 0))
        except (OSError, SystemExit):  # refused (one publisher at a time, caps): try again
            time.sleep(0.2)
            return
        try:
            for _ in range(200):
                if self.stop.is_set():
                    break
                choice = random.random()
                frame = random.choice(self.frames)
                if choice < 0.3:
                    payload = self.junk[random.randrange(len(self.junk))] * random.randint(1, 30)
                elif choice < 0.6:
                    payload = frame[:random.randint(20, 300)] + b"\xff\xd9"  # cut in its headers
                elif choice < 0.9:
                    payload = bytearray(frame)
                    sof = payload.find(b"\xff\xc0")
                    if sof > 0:
                        payload[sof + 5:sof + 9] = b"\xff\xff\xff\xff"  # 65535x65535
                    payload = bytes(payload)
                else:  # announce 50 MB, send a little
                    s.sendall(bytes([0x82, 0xFF]) + struct.pack("!Q", 50_000_000) + b"\x01\x02\x03\x04" + b"x" * 65536)
                    break
                watch.send_frame(s, 0x2, payload)
                time.sleep(0.005)
        except OSError:
            pass
        s.close()

    def srt_junk(self, _):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for datagram in self.junk:
            u.sendto(datagram, ("127.0.0.1", self.srt_port))
        u.close()
        time.sleep(0.01)

    def hold_idle(self):
        """Keeps |idle| connections open, half on each port, 40 per address."""
        held = []
        n = 0
        while not self.stop.is_set():
            held = [s for s in held if self.alive(s)]
            while len(held) < self.idle and not self.stop.is_set():
                port = self.api_port if n % 2 else self.media_port
                address = f"127.0.{100 + (n // 80) % 100}.{1 + (n // 2) % 40}"
                n += 1
                try:
                    held.append(connect_from(address, port, timeout=1))
                except OSError:
                    break
            self.count("idle connections (re)opened")
            time.sleep(0.5)
        for s in held:
            s.close()

    @staticmethod
    def alive(s):
        try:
            s.setblocking(False)
            data = s.recv(1, socket.MSG_PEEK)
            s.close() if data == b"" else None
            return data != b""
        except BlockingIOError:
            return True
        except OSError:
            s.close()
            return False

    def start(self):
        addresses = lambda base: [f"127.0.{base}.{i}" for i in range(2, 12)]  # noqa: E731
        kinds = [("deep JSON", 1, self.deep_json), ("huge headers", 2, self.huge_headers),
                 ("big bodies", 3, self.big_bodies), ("bad text", 4, self.bad_text),
                 ("bad frames", 5, self.bad_frames), ("SRT junk", 6, self.srt_junk)]
        self.threads = [threading.Thread(target=self.loop, args=(kind, addresses(base), make), daemon=True)
                        for kind, base, make in kinds if not self.only or kind in self.only]
        if not self.only or "idle connections" in self.only:
            self.threads.append(threading.Thread(target=self.hold_idle, daemon=True))
        for t in self.threads:
            t.start()


def jpeg_frames(folder, count, pattern="ball"):
    os.makedirs(folder, exist_ok=True)
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", f"pattern={pattern}", f"num-buffers={count}", "!",
                    "video/x-raw,width=320,height=240", "!", "jpegenc", "!", "multifilesink",
                    f"location={folder}/f%03d.jpg"], check=True)
    return [open(p, "rb").read() for p in sorted(glob.glob(f"{folder}/f*.jpg"))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline", type=float, default=15)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--only", action="append", help="one kind of abuse (repeatable), e.g. 'deep JSON'")
    args = parser.parse_args()
    build = os.path.abspath(args.build_dir)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))

    work = tempfile.mkdtemp(prefix="mirage-abuse-")
    pg = Postgres()
    daemon = None
    try:
        model = f"{work}/styles.pt"
        subprocess.run([f"{build}/tools/model/mirage-model", "styles", model], check=True, stdout=subprocess.DEVNULL)
        frames = jpeg_frames(f"{work}/frames", 30)
        api_port, media_port, srt_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
        env = dict(os.environ, GST_PLUGIN_PATH=f"{build}/plugins", GST_REGISTRY=f"{work}/registry.bin", **json.loads(os.environ.get("ABUSE_DAEMON_ENV", "{}")))
        miraged = f"{build}/daemon/miraged"
        common = ["--database-url", pg.url, "--argon2-memory-kib", "1024", "--argon2-iterations", "1"]
        daemon = subprocess.Popen(
            [miraged, "serve", *common, "--http-addr", f"127.0.0.1:{api_port}", "--model", model,
             "--media-addr", f"127.0.0.1:{media_port}", "--srt-addr", f"127.0.0.1:{srt_port}", "--rtsp-addr", "",
             "--hls-dir", f"{work}/hls", "--media-width", "320", "--media-height", "240", "--worker-name", "abuse",
             "--max-connections", "8192"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(f"{work}/miraged.log", "w"))
        for _ in range(300):
            if http(api_port, "GET", "/api/streams/nobody", timeout=1)[0] == 404:
                break
            if daemon.poll() is not None:
                sys.exit("abuse-bench: miraged did not start:\n" + open(f"{work}/miraged.log").read())
            time.sleep(0.1)
        tokens = {}
        for name in ("streamer", "mallory"):
            http(api_port, "POST", "/api/auth/register",
                 {"username": name, "email": f"{name}@example.org", "password": "password123"})
            subprocess.run([miraged, "credits", "grant", name, "100", "--reason", "bench", *common], check=True,
                           stdout=subprocess.DEVNULL, env=env)
            tokens[name] = http(api_port, "POST", "/api/auth/login", {"username": name, "password": "password123"})[1]["token"]
        secrets = {name: http(api_port, "POST", "/api/streams", {"title": "abuse"}, token)[1]["ingest"]["secret"]
                   for name, token in tokens.items()}
        time.sleep(1)

        healthy = Healthy(api_port, media_port, "streamer", secrets["streamer"], frames)
        healthy.start()
        time.sleep(2)  # warm-up
        quiet_from = time.monotonic()
        time.sleep(args.baseline)
        quiet_to = time.monotonic()
        rss_start = rss_kib(daemon.pid)
        abuse = Abuse(api_port, media_port, srt_port, secrets["mallory"], frames, args.idle, args.only)
        abuse.start()
        abuse_from = time.monotonic()
        time.sleep(args.seconds)
        abuse_to = time.monotonic()
        alive = daemon.poll() is None
        rss_end = rss_kib(daemon.pid) if alive else 0
        abuse.stop.set()
        for t in abuse.threads:
            t.join(30)
        time.sleep(5)  # the server closes what the hostile clients left
        alive = alive and daemon.poll() is None
        rss_after = rss_kib(daemon.pid) if alive else 0
        healthy.stop.set()
        quiet_fps, quiet_p99, quiet_n = healthy.window(quiet_from, quiet_to)
        abuse_fps, abuse_p99, abuse_n = healthy.window(abuse_from, abuse_to)

        print(f"\n## Abuse soak: a live stream with a viewer, {args.seconds:.0f} s of hostile clients "
              f"({os.cpu_count()} cores; quiet baseline {args.baseline:.0f} s in the same run)\n")
        print("| | quiet | under abuse | target | met |\n|---|---:|---:|---|:---|")
        print(f"| daemon alive at the end | yes | {'yes' if alive else 'NO'} | nothing crashes | "
              f"{'yes' if alive else 'no'} |")
        growth = (rss_end - rss_start) / rss_start * 100 if rss_start and alive else float("nan")
        after = (rss_after - rss_start) / rss_start * 100 if rss_start and alive else float("nan")
        print(f"| miraged RSS, MiB: start of abuse -> its end ({args.idle} idle connections still open) | "
              f"{rss_start / 1024:.1f} | {rss_end / 1024:.1f} ({growth:+.1f} %) | grows < 10 % | "
              f"{'yes' if growth < 10 else 'no'} |")
        print(f"| miraged RSS, MiB: 5 s after the hostile clients stopped | {rss_start / 1024:.1f} | "
              f"{rss_after / 1024:.1f} ({after:+.1f} %) | grows < 10 % | {'yes' if after < 10 else 'no'} |")
        keep = abuse_fps / quiet_fps * 100 if quiet_fps else float("nan")
        print(f"| viewer frames/s | {quiet_fps:.1f} | {abuse_fps:.1f} ({keep:.0f} %) | >= 90 % of quiet | "
              f"{'yes' if keep >= 90 else 'no'} |")
        ratio = abuse_p99 / quiet_p99 if quiet_p99 else float("nan")
        print(f"| API p99 ms (GET /api/streams/streamer, {quiet_n} / {abuse_n} probes) | {quiet_p99:.1f} | "
              f"{abuse_p99:.1f} ({ratio:.1f}x) | < 5x quiet | {'yes' if ratio < 5 else 'no'} |")
        print(f"| API probe errors | | {healthy.errors} | | |")
        print("\nsent by the hostile clients: " + ", ".join(f"{k} {v}" for k, v in sorted(abuse.sent.items())))
        return 0 if alive else 1
    finally:
        if daemon and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
