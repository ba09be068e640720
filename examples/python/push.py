#!/usr/bin/env python3
"""Stream to Mirage over SRT: log in, start a stream, push video, stop on exit.

    push.py --user alice --password secret                       # test pattern
    push.py --user alice --password secret --source /dev/video0  # a webcam
    push.py --user alice --password secret --source clip.mp4     # a video file

The REST API gives the stream's SRT URL (POST /api/streams); the video goes
there through a `gst-launch-1.0` subprocess: H.264 in MPEG-TS, 7 TS packets
per SRT message, SPS/PPS with every keyframe, the way OBS sends it. Ctrl-C
(or --seconds) stops the sender and ends the stream through the API, so
billing stops at once. Only the Python standard library is used.

When the sender stops by itself (its media worker died, or moved the stream
away), push.py asks the API again (GET /api/me/dashboard): while the stream is
still live it starts a new sender at the SRT URL it names now (the stream may
be on another worker), with exponential backoff (0.25 s doubling to 5 s, with
jitter; reset once a sender stays up); when the stream has ended it prints the
reason (credits_exhausted, worker_lost, ...) and exits.
"""
import argparse
import json
import random
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def api(base, method, path, body=None, token=None):
    """One JSON request; returns (status, parsed body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else {})
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, {"error": {"message": raw.decode(errors="replace")}}


def source_pipeline(source, width, height, fps):
    """The gst-launch description of the raw video, scaled to width x height at fps."""
    caps = f"video/x-raw,width={width},height={height},framerate={fps}/1"
    if source == "test":
        head = "videotestsrc is-live=true pattern=ball"
    elif source.startswith("/dev/video"):
        head = f"v4l2src device={shlex.quote(source)}"
    else:
        head = f"filesrc location={shlex.quote(source)} ! decodebin ! queue"
    return f"{head} ! videoconvert ! videoscale ! videorate ! {caps}"


def with_host(url, override):
    """The SRT URL the API announced, with scheme, host and port from |override| (if given)."""
    if not override:
        return url
    return override.partition("?")[0] + "?" + url.partition("?")[2]


class Backoff:
    """Exponential backoff with jitter: 0.25 s doubling to a 5 s cap; reset() after a success."""

    def __init__(self, first=0.25, cap=5.0):
        self.first, self.cap, self.attempt = first, cap, 0

    def next(self):
        """The next delay in seconds: half the step plus a random part of the other half."""
        step = min(self.cap, self.first * 2 ** self.attempt)
        self.attempt += 1
        return step / 2 + random.uniform(0, step / 2)

    def reset(self):
        self.attempt = 0


# A sender that ran this long had connected: the next failure starts the
# backoff over. (srtsink gives up on a listener that does not answer within
# 3 s, its connect timeout, so a failed attempt ends well before this.)
kSteadySeconds = 10.0


def live_srt_url(base, token, override):
    """(url, None) while the user's stream is live, (None, end reason) once it is
    not; (None, None) when the API cannot be asked right now."""
    try:
        status, body = api(base, "GET", "/api/me/dashboard", None, token)
    except (OSError, ValueError):
        return None, None
    if status != 200:
        return None, None
    if body.get("live") and (body.get("ingest") or {}).get("srt"):
        return with_host(body["ingest"]["srt"], override), None
    if body.get("live"):
        return None, None  # live, but its worker offers no SRT now: ask again
    reason = "ended"
    try:
        status, history = api(base, "GET", "/api/me/streams", None, token)
        if status == 200 and history.get("streams"):
            reason = history["streams"][0]["stream"].get("end_reason") or reason
    except (OSError, ValueError, KeyError):
        pass
    return None, reason


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", default="http://127.0.0.1:8080", help="miraged's REST base URL")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--title", default="Live from push.py")
    parser.add_argument("--style", help="the streamer's style (one the worker's model offers; '' for none)")
    parser.add_argument("--strength", type=float, help="diffusion strength, 0 to 1 (default: your last choice)")
    parser.add_argument("--source", default="test", help="'test', a /dev/videoN webcam, or a video file")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--bitrate", type=int, default=1500, help="kbit/s")
    parser.add_argument("--srt-url", help="override the SRT URL the API announces (host:port only is kept from it)")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: until Ctrl-C)")
    args = parser.parse_args()

    status, body = api(args.api, "POST", "/api/auth/login", {"username": args.user, "password": args.password})
    if status != 200:
        sys.exit(f"push.py: login failed ({status}): {body.get('error', {}).get('message', body)}")
    token = body["token"]
    start = {"title": args.title}
    if args.style is not None:
        start["style"] = args.style
    if args.strength is not None:
        if not 0.0 <= args.strength <= 1.0:
            parser.error("--strength must be between 0 and 1")
        start["strength"] = args.strength
    status, body = api(args.api, "POST", "/api/streams", start, token)
    if status != 201:
        sys.exit(f"push.py: cannot start the stream ({status}): {body.get('error', {}).get('message', body)}")
    # The URL works verbatim in srtsink (its streamid is percent-encoded).
    srt = with_host(body["ingest"]["srt"], args.srt_url)
    print(f"push.py: live; viewers watch {body['watch']['page']} (HLS {body['watch']['hls']})", flush=True)

    gop = max(1, args.fps)  # a keyframe a second: HLS segments of 1 s
    encode = (
        f"{source_pipeline(args.source, args.width, args.height, args.fps)} ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast bitrate={args.bitrate} key-int-max={gop} ! "
        f"h264parse config-interval=-1 ! mpegtsmux alignment=7 ! "
    )

    def launch(url):
        # auto-reconnect=false: srtsink would otherwise call the same URL
        # forever, while after a worker's death the stream runs elsewhere.
        # Failing instead hands the question to the API (below).
        sink = f"srtsink auto-reconnect=false uri={shlex.quote(url)}"
        return subprocess.Popen(["gst-launch-1.0", "-q"] + shlex.split(encode + sink))

    sender = launch(srt)
    sender_started = time.monotonic()
    stopping = False
    ended = None  # the end reason, once the API says the stream is over
    backoff = Backoff()

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()

    def out_of_time():
        return bool(args.seconds) and time.monotonic() - started >= args.seconds

    try:
        while not stopping and not out_of_time():
            if sender.poll() is None:
                time.sleep(0.2)
                continue
            if sender.returncode == 0:
                break  # the source ended (a video file's end): stop the stream, as before
            # The sender failed by itself: the connection dropped, or the
            # stream ended. The API says which, and where the stream is now.
            if time.monotonic() - sender_started >= kSteadySeconds:
                backoff.reset()
            url = None
            while not stopping and not out_of_time():
                time.sleep(backoff.next())
                url, ended = live_srt_url(args.api, token, args.srt_url)
                if url or ended:
                    break
            if ended or not url:
                break
            print(f"push.py: reconnecting to {url} (attempt {backoff.attempt})", flush=True)
            sender = launch(url)
            sender_started = time.monotonic()
    finally:
        if sender.poll() is None:
            sender.terminate()
            try:
                sender.wait(timeout=5)
            except subprocess.TimeoutExpired:
                sender.kill()
        if ended:
            print(f"push.py: the stream ended ({ended})", flush=True)
        else:
            status, body = api(args.api, "POST", "/api/streams/current/stop", None, token)
            billed = body.get("stream", {}).get("seconds_billed", "?") if status == 200 else "?"
            print(f"push.py: stream stopped ({status}), {billed} s billed", flush=True)
    if ended and ended != "stopped":
        sys.exit(1)


if __name__ == "__main__":
    main()
