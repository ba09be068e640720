#!/usr/bin/env python3
"""Replays issue 12's findings, black-box, against any build of miraged.

    tools/bench/findings_probe.py BUILD_DIR SOURCE_DIR

Starts that build's miraged (media plane, styles model, its own PostgreSQL)
and sends what the outside tester sent; prints what came back as JSON. On
the main before issue 12 (b0a1f60) every line shows the finding; after it,
the fix. Each is a test too (tests/daemon/hardening_test.cpp,
tests/media/media_hardening_test.cpp); this is the same from outside, to run
against an old checkout (git worktree add /tmp/old b0a1f60; build it).
"""
import json, os, signal, socket, subprocess, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples", "python"))
import abuse_bench as ab
import watch

build = os.path.abspath(sys.argv[1])
src = os.path.abspath(sys.argv[2])
import tempfile
work = tempfile.mkdtemp(prefix="mirage-probe-")
pg = ab.Postgres()
model = f"{work}/styles.pt"
subprocess.run([f"{build}/tools/model/mirage-model", "styles", model], check=True, stdout=subprocess.DEVNULL)
api, media, srt = ab.free_port(), ab.free_port(), ab.free_port(socket.SOCK_DGRAM)
env = dict(os.environ, GST_PLUGIN_PATH=f"{build}/plugins", GST_REGISTRY=f"{work}/reg.bin")
common = ["--database-url", pg.url, "--argon2-memory-kib", "1024", "--argon2-iterations", "1"]
def start():
    d = subprocess.Popen([f"{build}/daemon/miraged", "serve", *common, "--http-addr", f"127.0.0.1:{api}", "--model", model,
                          "--media-addr", f"127.0.0.1:{media}", "--srt-addr", f"127.0.0.1:{srt}", "--rtsp-addr", "",
                          "--pipelines-dir", f"{src}/pipelines", "--hls-dir", f"{work}/hls", "--media-width", "160",
                          "--media-height", "120", "--meter-seconds", "1"],
                         env=env, stdout=subprocess.DEVNULL, stderr=open(f"{work}/log", "a"))
    for _ in range(200):
        if ab.http(api, "GET", "/api/streams/nobody", timeout=1)[0] == 404: return d
        time.sleep(0.1)
    raise SystemExit("no start")
d = start()
def raw(data, port=api, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            c = s.recv(65536)
            if not c: break
            out += c
            if b"\r\n\r\n" in out and len(out) > 12: break
    except OSError: pass
    s.close()
    return out[:200]
def user(name, credits=0):
    ab.http(api, "POST", "/api/auth/register", {"username": name, "email": f"{name}@x.org", "password": "password123"})
    if credits:
        subprocess.run([f"{build}/daemon/miraged", "credits", "grant", name, str(credits), "--reason", "p", *common], stdout=subprocess.DEVNULL, env=env)
    return ab.http(api, "POST", "/api/auth/login", {"username": name, "password": "password123"})[1]["token"]
results = {}
# login limit
user("dora")
for _ in range(5): ab.http(api, "POST", "/api/auth/login", {"username": "dora", "password": "wrong-pass"})
results["login: right password after 5 failures"] = ab.http(api, "POST", "/api/auth/login", {"username": "dora", "password": "password123"})[0]
results["1 MB header"] = raw(b"GET /api/streams/nobody HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")[:12]
results["20000 headers"] = raw(b"GET /api/streams/nobody HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(20000)) + b"\r\n")[:12]
results["Content-Length -5"] = raw(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}")[:12]
results["Content-Length 20 digits"] = raw(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}")[:12]
t = user("tess", 3)
bad = b'{"bio":"\xc3\x28"}'
results["bio invalid UTF-8"] = raw(b'PATCH /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + t.encode() +
                                  b'\r\nContent-Length: %d\r\n\r\n' % len(bad) + bad)[:12]
ab.http(api, "PATCH", "/api/me", {"bio": "a\u0000b"}, t)
results["bio a\\u0000b stored as"] = ab.http(api, "GET", "/api/me", None, t)[1]["bio"]
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().split()
    return (int(f[13]) + int(f[14])) / os.sysconf("SC_CLK_TCK")
c0 = cpu(d.pid)
raw(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n" + b"x" * 2097152, timeout=30)
time.sleep(1)
results["daemon CPU s for a 2 MiB body"] = round(cpu(d.pid) - c0, 2)
for i in range(12):
    ab.http(api, "POST", "/api/auth/register", {"username": f"farm{i}", "email": "f@x.org", "password": "password123"})
results["12th sign-up from one address"] = ab.http(api, "POST", "/api/auth/register", {"username": "farm99", "email": "f@x.org", "password": "password123"})[0]
# media
start_body = ab.http(api, "POST", "/api/streams", {"title": "p"}, t)[1]
secret = start_body["ingest"]["websocket"].split("secret=")[1]
srt_url = start_body["ingest"]["srt"]
time.sleep(1)
frames = ab.jpeg_frames(f"{work}/f", 20)
ing = watch.connect(f"ws://127.0.0.1:{media}/ingest/tess?secret={secret}", 10)
for f in frames * 2:
    watch.send_frame(ing, 2, f); time.sleep(0.066)
def fds(pid): return len(os.listdir(f"/proc/{pid}/fd"))
f0 = fds(d.pid)
for i in range(300):
    raw(b"GET /live/tess/index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n", port=media, timeout=2)
time.sleep(2)
results["daemon fds after 300 HLS GETs (delta)"] = fds(d.pid) - f0
for i in range(3000):
    raw(b"GET /live/tess/index.m3u8?viewer=fake%d HTTP/1.1\r\nHost: x\r\n\r\n" % i, port=media, timeout=2)
results["viewers after 3000 fake ids"] = ab.http(api, "GET", "/api/streams/tess")[1]["viewers"]
# truncated JPEGs
for i in range(5):
    watch.send_frame(ing, 2, frames[i][:150] + b"\xff\xd9")
    for f in frames[:4]:
        watch.send_frame(ing, 2, f); time.sleep(0.066)
    time.sleep(1.2)
r = ab.http(api, "GET", "/api/me/streams", None, t)[1]["streams"][0]["stream"]
results["after 5 header-truncated JPEGs: stream end_reason"] = r["end_reason"]
ing.close()
# SRT URL verbatim in gst-launch
if r["end_reason"] is not None:
    start_body = ab.http(api, "POST", "/api/streams", {"title": "p2"}, t)[1]
    srt_url = start_body["ingest"]["srt"]; time.sleep(1)
url = srt_url.replace("127.0.0.1:9000", f"127.0.0.1:{srt}")
rc = subprocess.run(["timeout", "20", "gst-launch-1.0", "-q", "videotestsrc", "num-buffers=45", "is-live=true", "!", "x264enc", "tune=zerolatency", "!", "mpegtsmux", "alignment=7", "!", "srtsink", f"uri={url}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
results["gst-launch srtsink uri=<the API's URL> exit status"] = rc
# deep JSON crash
try:
    raw(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" + b"[" * 200000, timeout=10)
except OSError: pass
time.sleep(2)
results["daemon alive after 200 KB of '['"] = d.poll() is None
if d.poll() is None: d.send_signal(signal.SIGKILL)
pg.stop()
print(json.dumps({k: (v.decode(errors="replace") if isinstance(v, bytes) else v) for k, v in results.items()}, indent=1))
