#!/usr/bin/env python3
"""Save processed frames of a live Mirage stream from its WebSocket watch endpoint.

    watch.py alice                      # 10 frames into ./frames-alice/
    watch.py alice --frames 100 --out /tmp/alice --api http://127.0.0.1:8080

The REST API names the stream's watch URL (GET /api/streams/USERNAME,
watch.websocket: on the media worker the stream runs on). Each binary
message there is one processed frame as JPEG (never the raw camera); the server sends the newest one and skips
frames for a viewer that falls behind. Standard library only: a minimal
WebSocket client (RFC 6455: handshake, unmasked server frames, ping/pong,
close).

When the connection drops (the stream's media worker died, or it moved the
stream to another worker: close 4001 "moved"), watch.py asks the API again and
reconnects to the watch.websocket it names now, with exponential backoff
(0.25 s doubling to 5 s, with jitter; reset once frames arrive); it stops when
the stream ends (close 1001 "stream ended", or the API says it is not live)
or after --timeout seconds without a frame.
"""
import argparse
import base64
import json
import os
import random
import socket
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class NotLive(Exception):
    """The API says the stream is not live (any more)."""


def watch_url(api, username):
    """watch.websocket of the user's live stream, from the API. Raises NotLive
    when it is not live, HTTPError for another answer, OSError when the API
    cannot be reached."""
    with urllib.request.urlopen(f"{api}/api/streams/{urllib.parse.quote(username)}", timeout=15) as response:
        info = json.loads(response.read())
    if not info.get("live") or not info["watch"].get("websocket"):
        raise NotLive()
    return info["watch"]["websocket"]


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


def connect(url, timeout, source_address=None):
    """An open WebSocket to |url|; raises ConnectionError (or OSError) when it cannot be opened."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "ws":
        sys.exit("watch.py: only ws:// URLs are supported")
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout, source_address=source_address)
    key = base64.b64encode(os.urandom(16)).decode()
    path = parts.path + ("?" + parts.query if parts.query else "")
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(1)
        if not chunk:
            sock.close()
            raise ConnectionError("the server closed the connection during the handshake")
        response += chunk
    status = response.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 101 " not in status + " ":
        sock.close()
        raise ConnectionError(f"handshake refused: {status}")
    return sock


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def send_frame(sock, opcode, payload=b""):
    """A masked client frame (clients must mask)."""
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", n)
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def messages(sock):
    """Yields (opcode, payload) of whole messages."""
    buffer, first_opcode = b"", None
    while True:
        b0, b1 = read_exact(sock, 2)
        fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", read_exact(sock, 2))[0]
        elif n == 127:
            n = struct.unpack("!Q", read_exact(sock, 8))[0]
        payload = read_exact(sock, n)
        if opcode == 0x9:  # ping
            send_frame(sock, 0xA, payload)
            continue
        if opcode == 0x8:  # close: the payload is the code (2 bytes) and the reason
            yield 0x8, payload
            return
        if opcode in (0x1, 0x2):
            first_opcode, buffer = opcode, payload
        elif opcode == 0x0:
            buffer += payload
        if fin and first_opcode is not None:
            yield first_opcode, buffer
            first_opcode, buffer = None, b""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("username")
    parser.add_argument("--api", default="http://127.0.0.1:8080", help="miraged's REST API")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--out", help="folder for the JPEG files (default ./frames-USERNAME)")
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for a frame")
    args = parser.parse_args()
    out = args.out or f"frames-{args.username}"
    os.makedirs(out, exist_ok=True)
    try:
        url = watch_url(args.api, args.username)
    except NotLive:
        sys.exit(f"watch.py: {args.username} is not live")
    except urllib.error.HTTPError as error:
        sys.exit(f"watch.py: {args.username}: {error.code} {error.reason}")
    saved = 0
    backoff = Backoff()
    last_frame = time.monotonic()  # --timeout counts from here, across reconnects
    ended = None
    while saved < args.frames and ended is None:
        left = args.timeout - (time.monotonic() - last_frame)
        if left <= 0:
            print(f"watch.py: no frame for {args.timeout:g} s", file=sys.stderr)
            break
        sock = None
        try:
            sock = connect(url, left)
            for opcode, payload in messages(sock):
                if opcode == 0x8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    reason = payload[2:].decode(errors="replace")
                    # 1001 "stream ended" (1000 with a reason for a publisher) is the
                    # end; 4001 "moved" and anything else: the stream may go on elsewhere.
                    if (code == 1001 and reason == "stream ended") or (code == 1000 and reason):
                        ended = reason
                    else:
                        print(f"watch.py: closed {code} {reason or ''}".rstrip(), file=sys.stderr)
                    break
                if opcode != 0x2 or not payload.startswith(b"\xff\xd8"):
                    continue
                path = os.path.join(out, f"frame{saved:05d}.jpg")
                with open(path, "wb") as f:
                    f.write(payload)
                saved += 1
                last_frame = time.monotonic()
                backoff.reset()
                if saved >= args.frames:
                    send_frame(sock, 0x8, struct.pack("!H", 1000))
                    break
                sock.settimeout(args.timeout)
        except (ConnectionError, OSError) as error:
            print(f"watch.py: {error}", file=sys.stderr)
        finally:
            if sock:
                sock.close()
        if saved >= args.frames or ended is not None:
            break
        # Dropped: where is the stream now? (Its worker may have died or
        # handed it to another one; the API names the new URL.)
        located = False
        while ended is None and time.monotonic() - last_frame < args.timeout:
            time.sleep(backoff.next())
            try:
                url = watch_url(args.api, args.username)
                located = True
                break
            except NotLive:
                ended = "not live any more"
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    ended = f"{error.code} {error.reason}"
                else:
                    print(f"watch.py: the API: {error}", file=sys.stderr)
            except (OSError, ValueError) as error:  # the API itself is unreachable: keep trying
                print(f"watch.py: the API: {error}", file=sys.stderr)
        if located:
            print(f"watch.py: reconnecting to {url} (attempt {backoff.attempt})", flush=True)
    if ended is not None:
        print(f"watch.py: the stream ended ({ended})")
    print(f"watch.py: saved {saved} frames to {out}/")
    sys.exit(0 if saved else 1)


if __name__ == "__main__":
    main()
