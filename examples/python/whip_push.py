#!/usr/bin/python3
"""Stream to Mirage over WebRTC (WHIP, RFC 9725): log in, start a stream, publish, stop on exit.

    whip_push.py --user alice --password secret                          # test pattern, H.264
    whip_push.py --user alice --password secret --source v4l2:/dev/video0
    whip_push.py --user alice --password secret --source clip.mp4 --codec vp8
    whip_push.py --offer-only                                            # print an offer, no server

The REST API gives the stream's WHIP URL and bearer token (`ingest.whip`,
`ingest.secret` from POST /api/streams, or the dashboard when the stream is
already live). The video goes there from GStreamer's webrtcbin (Debian 12's
GStreamer 1.22 has no whipsink): H.264 constrained baseline (x264enc
tune=zerolatency, a keyframe a second, packetization-mode=1) or VP8, video
only. Non-trickle: the offer is POSTed once ICE gathering is complete, with
every candidate in it, and the 201's answer carries the worker's. Ctrl-C (or
--seconds) DELETEs the WHIP session and ends the stream through the API
(--keep-stream leaves it live).

ICE is gathered only on --ice-address (default 127.0.0.1), with libnice's
UPnP off, and with no STUN or TURN server unless --stun or --turn names one.

When the session is over while the stream goes on (connection state failed
or disconnected for 3 s; the worker's RTCP silent for 10 s or an RTCP BYE: the
worker died, dropped the session or moved the stream), or the POST is refused
(401 after a secret rotation, 404 before the worker has the stream or after
it moved, 409, no answer), whip_push.py asks the API again (GET
/api/me/dashboard): while the stream is still live it POSTs a new offer from a
new webrtcbin to the WHIP URL named now, with exponential backoff (0.25 s
doubling to 5 s, with jitter; reset once a session stayed connected 10 s);
when the stream has ended it prints the reason and exits.

Log lines a test can look for: "whip: 201, session URL", "whip: connected",
"whip: reconnecting to URL (attempt N)", "whip: DELETE URL -> STATUS".
Needs python3-gst-1.0, gir1.2-gst-plugins-bad-1.0, gir1.2-nice-0.1,
gstreamer1.0-nice (and gstreamer1.0-plugins-ugly for x264enc).
"""
import argparse
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from push import Backoff, api  # noqa: E402  (the same REST helper and backoff as push.py)

import gi  # noqa: E402

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import Gst, GstSdp, GstWebRTC, Nice  # noqa: E402

# A session that stayed connected this long worked: the next failure starts
# the backoff over.
kSteadySeconds = 10.0
# Failed or disconnected this long and the session is given up (ICE may
# recover from a short "disconnected" by itself).
kFailedSeconds = 3.0
# ICE gathering on loopback takes milliseconds; STUN or TURN may take seconds.
kGatherSeconds = 15.0
# A worker that died, or dropped the session, says nothing: ICE stays
# "connected" until libnice's keepalives time out (about 45 s here). Its RTCP
# receiver reports stop, though; they come every 5 s or so (randomised
# 2.5-7.5 s), so this long without one means nobody is receiving.
kRtcpSilenceSeconds = 10.0


class LocalError(Exception):
    """This side cannot make an offer (no source, no encoder, no candidates): retrying will not help."""


class WhipError(Exception):
    """A WHIP request the endpoint refused; status is the HTTP status (0: not reached)."""

    def __init__(self, status, message):
        super().__init__(f"{status}: {message}")
        self.status = status


def log(line):
    print(f"whip: {line}", flush=True)


def source_description(source, width, height, fps):
    """The gst-launch description of the raw video, scaled to width x height at fps."""
    caps = f"video/x-raw,width={width},height={height},framerate={fps}/1"
    if source == "test":
        head = "videotestsrc is-live=true pattern=ball"
    elif source.startswith("v4l2:") or source.startswith("/dev/video"):
        device = source[len("v4l2:"):] if source.startswith("v4l2:") else source
        head = f'v4l2src device="{device}"'
    else:
        # clocksync: a file is decoded faster than real time; send it at its pace.
        head = f'filesrc location="{source}" ! decodebin ! queue ! clocksync'
    return f"{head} ! videoconvert ! videoscale ! videorate ! {caps}"


def encoder_description(codec, fps, bitrate):
    """Encoder and RTP payloader, ending in the caps webrtcbin turns into the offer's m-line."""
    gop = max(1, fps)  # a keyframe a second
    if codec == "vp8":
        return (
            f"vp8enc deadline=1 keyframe-max-dist={gop} target-bitrate={bitrate * 1000} ! "
            "rtpvp8pay ! application/x-rtp,media=video,encoding-name=VP8,payload=96"
        )
    return (
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={bitrate} ! "
        "video/x-h264,profile=constrained-baseline ! "
        "rtph264pay config-interval=-1 aggregate-mode=zero-latency ! "
        "application/x-rtp,media=video,encoding-name=H264,payload=96"
    )


def stun_uri(url):
    """webrtcbin wants stun://host:port; accept the RFC 7064 form stun:host:port too."""
    return url if url.startswith("stun://") else "stun://" + url.removeprefix("stun:")


def turn_uri(url):
    """webrtcbin wants turn://user:pass@host:port (or turns://); accept turn:user:pass@host:port too."""
    for scheme in ("turns", "turn"):
        if url.startswith(scheme + ":") and not url.startswith(scheme + "://"):
            return scheme + "://" + url[len(scheme) + 1:]
    return url


def ice_servers(link_headers):
    """The rel="ice-server" URLs of a WHIP response's Link headers (for the log)."""
    found = []
    for header in link_headers:
        for link in header.split(","):
            if 'rel="ice-server"' in link and "<" in link and ">" in link:
                found.append(link[link.index("<") + 1:link.index(">")])
    return found


def whip_request(method, url, secret, body=None, content_type=None, timeout=15):
    """One WHIP HTTP request: (status, headers, body text). Refusals come back as statuses."""
    request = urllib.request.Request(url, data=body.encode() if body is not None else None, method=method)
    request.add_header("Authorization", "Bearer " + secret)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode(errors="replace")


class Session:
    """One WHIP session: a pipeline ending in a webrtcbin, whose offer is POSTed to |url|.

    webrtcbin's signals come on its own threads; |lock_| guards the fields
    they write and poll() reads: bad_since_, connected_at_, error_, last_rtcp_, bye_."""

    def __init__(self, args, url, secret):
        self.args, self.url, self.secret = args, url, secret
        self.location = None
        self.lock_ = threading.Lock()
        self.bad_since_ = None  # monotonic time the connection went failed/disconnected
        self.connected_at_ = None
        self.error_ = None  # a pipeline error, or "eos" when a file source ended
        self.last_rtcp_ = None  # monotonic time of the endpoint's last RTCP packet
        self.bye_ = False  # the endpoint sent an RTCP BYE
        description = (
            f"{source_description(args.source, args.width, args.height, args.fps)} ! "
            f"{encoder_description(args.codec, args.fps, args.bitrate)} ! "
            "webrtc. webrtcbin name=webrtc bundle-policy=max-bundle"
        )
        self.pipeline = Gst.parse_launch(description)
        self.webrtc = self.pipeline.get_by_name("webrtc")
        # Safety first: before anything gathers, turn libnice's UPnP off (it
        # multicasts discovery out of the real interface by default) and
        # gather only on the addresses given. Python keeps both objects:
        # dropping the ice-agent's wrapper frees it under webrtcbin.
        self.ice = self.webrtc.get_property("ice-agent")
        self.agent = self.ice.get_property("agent")
        self.agent.set_property("upnp", False)
        # Keepalives that need an answer: a worker that died (no ICMP, no DTLS
        # close) then turns the connection "failed" instead of leaving it
        # "connected" forever. (libnice's consent-freshness would be RFC 7675's
        # answer, but it is construct-only and webrtcbin makes the agent.)
        self.agent.set_property("keepalive-conncheck", True)
        for address in args.ice_address:
            nice_address = Nice.Address.new()
            if not nice_address.set_from_string(address):
                raise SystemExit(f"whip_push.py: --ice-address {address!r} is not an IP address")
            self.agent.add_local_address(nice_address)
        if args.stun:
            self.webrtc.set_property("stun-server", stun_uri(args.stun))
        for turn in args.turn:
            self.webrtc.emit("add-turn-server", turn_uri(turn))
        if args.relay_only:
            self.webrtc.set_property("ice-transport-policy", GstWebRTC.WebRTCICETransportPolicy.RELAY)
        self.webrtc.connect("notify::connection-state", self._on_connection_state)
        self.webrtc.connect("notify::ice-connection-state", self._on_ice_state)
        self.webrtc.connect("notify::ice-gathering-state", self._on_gathering_state)
        rtpbin = next((child for child in self.webrtc.iterate_elements()
                       if child.get_factory() and child.get_factory().get_name() == "rtpbin"), None)
        if rtpbin:  # webrtcbin's own rtpbin: the endpoint's RTCP is its heartbeat
            rtpbin.connect("on-ssrc-active", self._on_rtcp)
            rtpbin.connect("on-bye-ssrc", self._on_bye)
        self.rtpbin = rtpbin
        # webrtcbin posts no EOS on the bus (its sinks are live): a file's end
        # is seen as the EOS event reaching it.
        self.webrtc.get_static_pad("sink_0").add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, self._on_event)
        self.bus = self.pipeline.get_bus()  # no GLib main loop here: poll() pops it

    # --- webrtcbin's threads -------------------------------------------------

    def _on_connection_state(self, webrtc, _spec):
        state = webrtc.get_property("connection-state")
        log(f"connection-state {state.value_nick}")
        with self.lock_:
            if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
                self.bad_since_ = None
                self.connected_at_ = time.monotonic()
            elif state in (GstWebRTC.WebRTCPeerConnectionState.FAILED,
                           GstWebRTC.WebRTCPeerConnectionState.DISCONNECTED):
                self.bad_since_ = self.bad_since_ or time.monotonic()
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
            log("connected")

    def _on_event(self, _pad, info):
        if info.get_event().type == Gst.EventType.EOS:
            with self.lock_:
                self.error_ = self.error_ or "eos"
        return Gst.PadProbeReturn.OK

    def _on_rtcp(self, _rtpbin, _session, _ssrc):
        with self.lock_:
            self.last_rtcp_ = time.monotonic()

    def _on_bye(self, _rtpbin, _session, ssrc):
        log(f"the endpoint sent RTCP BYE (ssrc {ssrc})")
        with self.lock_:
            self.bye_ = True

    def _on_ice_state(self, webrtc, _spec):
        log(f"ice-connection-state {webrtc.get_property('ice-connection-state').value_nick}")

    def _on_gathering_state(self, webrtc, _spec):
        log(f"ice-gathering-state {webrtc.get_property('ice-gathering-state').value_nick}")

    # --- the caller's thread -------------------------------------------------

    def _wait(self, what, done, seconds):
        deadline = time.monotonic() + seconds
        while not done():
            self._pop_bus()
            with self.lock_:
                error = self.error_
            if error:
                raise LocalError(f"pipeline error while waiting for {what}: {error}")
            if time.monotonic() > deadline:
                raise LocalError(f"no {what} within {seconds:g} s")
            time.sleep(0.02)

    def create_offer(self):
        """Start the pipeline, make the offer, gather every candidate: the offer's SDP text."""
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise LocalError("the pipeline does not start (is the source there?)")
        # The offer's fmtp (profile-level-id, packetization-mode) comes from the
        # payloader's caps, which exist once the first frame is encoded.
        sink = self.webrtc.get_static_pad("sink_0")
        self._wait("encoded video", lambda: sink.get_current_caps() is not None, 10)
        transceiver = self.webrtc.emit("get-transceiver", 0)
        transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        # The offer lives in the promise's reply: keep both referenced while it
        # is used (PyGObject does not copy it; dropping the promise frees it,
        # and webrtcbin then reads freed memory: seen as crashes here).
        offer_promise = Gst.Promise.new()
        self.webrtc.emit("create-offer", None, offer_promise)
        offer_promise.wait()
        reply = offer_promise.get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None:
            raise LocalError(f"webrtcbin made no offer: {reply}")
        set_promise = Gst.Promise.new()
        self.webrtc.emit("set-local-description", offer, set_promise)
        set_promise.wait()
        del offer, reply, offer_promise
        self._wait("complete ICE gathering", lambda: self.webrtc.get_property("ice-gathering-state")
                   == GstWebRTC.WebRTCICEGatheringState.COMPLETE, kGatherSeconds)
        return self.webrtc.get_property("local-description").sdp.as_text()

    def start(self):
        """Offer, POST, answer. Raises LocalError (no offer), WhipError (the endpoint's status)
        or OSError (not reached)."""
        offer = self.create_offer()
        if self.args.print_offer:
            print(offer, end="", flush=True)
        status, headers, body = whip_request("POST", self.url, self.secret, offer, "application/sdp")
        if status != 201:
            raise WhipError(status, body.strip()[:300])
        location = headers.get("Location")
        if not location:
            raise WhipError(status, "201 without a Location header")
        self.location = urllib.parse.urljoin(self.url, location)
        log(f"201, session {self.location}")
        for server in ice_servers(headers.get_all("Link") or []):
            log(f"the endpoint offers ice-server {server} (not used: this offer has gathered)")
        if self.args.print_answer:
            print(body, end="" if body.endswith("\n") else "\n", flush=True)
        ok, sdp = GstSdp.SDPMessage.new_from_text(body)
        if ok != GstSdp.SDPResult.OK:
            raise WhipError(status, "the answer is not SDP")
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        promise = Gst.Promise.new()
        self.webrtc.emit("set-remote-description", answer, promise)
        promise.wait()

    def _pop_bus(self):
        while True:
            message = self.bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.EOS)
            if message is None:
                return
            if message.type == Gst.MessageType.EOS:
                why = "eos"
            else:
                error, _debug = message.parse_error()
                log(f"pipeline error: {error.message} ({message.src.get_name()})")
                why = error.message
            with self.lock_:
                self.error_ = self.error_ or why

    def poll(self):
        """None while the session is fine; else why it is over ('eos', an error, 'failed')."""
        self._pop_bus()
        with self.lock_:
            if self.error_:
                return self.error_
            now = time.monotonic()
            if self.bad_since_ and now - self.bad_since_ >= kFailedSeconds:
                return "failed"
            if self.bye_:
                return "the endpoint ended the session (RTCP BYE)"
            if self.connected_at_ and not self.bad_since_ and self.rtpbin:
                heard = max(self.connected_at_, self.last_rtcp_ or 0)
                if now - heard >= kRtcpSilenceSeconds:
                    return f"no RTCP from the endpoint for {kRtcpSilenceSeconds:g} s"
        return None

    def connected_for(self):
        with self.lock_:
            return time.monotonic() - self.connected_at_ if self.connected_at_ else 0.0

    def close(self):
        """DELETE the WHIP session (best effort: a dead worker does not answer) and stop the pipeline."""
        if self.location:
            try:
                status, _, _ = whip_request("DELETE", self.location, self.secret, timeout=3)
                log(f"DELETE {self.location} -> {status}")
            except OSError as error:
                log(f"DELETE {self.location} failed: {error}")
            self.location = None
        self.pipeline.set_state(Gst.State.NULL)


def live_whip(base, token):
    """((url, secret), None) while the user's stream is live with a WHIP URL, (None, end reason)
    once it is not live; (None, None) when the API cannot be asked right now."""
    try:
        status, body = api(base, "GET", "/api/me/dashboard", None, token)
    except (OSError, ValueError):
        return None, None
    if status != 200:
        return None, None
    ingest = body.get("ingest") or {}
    if body.get("live") and ingest.get("whip"):
        return (ingest["whip"], ingest["secret"]), None
    if body.get("live"):
        return None, None  # live, but between workers: ask again
    reason = "ended"
    try:
        status, history = api(base, "GET", "/api/me/streams", None, token)
        if status == 200 and history.get("streams"):
            reason = history["streams"][0]["stream"].get("end_reason") or reason
    except (OSError, ValueError, KeyError):
        pass
    return None, reason


def offer_only(args):
    """--offer-only: make an offer as a real session would and print it; no server involved."""
    session = Session(args, None, None)
    try:
        print(session.create_offer(), end="", flush=True)
    except LocalError as error:
        sys.exit(f"whip_push.py: {error}")
    finally:
        session.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", default="http://127.0.0.1:8080", help="miraged's REST base URL")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--title", default="Live from whip_push.py")
    parser.add_argument("--source", default="test", help="'test', v4l2:/dev/videoN (a webcam), or a video file")
    parser.add_argument("--codec", choices=["h264", "vp8"], default="h264")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=1500, help="kbit/s")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: until Ctrl-C)")
    parser.add_argument("--ice-address", action="append", default=[],
                        help="gather ICE candidates on this local address (repeatable; default 127.0.0.1)")
    parser.add_argument("--stun", help="a STUN server, stun:HOST:PORT (none by default)")
    parser.add_argument("--turn", action="append", default=[], help="a TURN server, turn://USER:PASS@HOST:PORT (repeatable)")
    parser.add_argument("--relay-only", action="store_true", help="use TURN relay candidates only")
    parser.add_argument("--keep-stream", action="store_true", help="on exit, end the WHIP session but leave the stream live")
    parser.add_argument("--print-offer", action="store_true", help="print each SDP offer sent")
    parser.add_argument("--print-answer", action="store_true", help="print each SDP answer received")
    parser.add_argument("--offer-only", action="store_true", help="print an SDP offer and exit (no API, no WHIP)")
    args = parser.parse_args()
    args.ice_address = args.ice_address or ["127.0.0.1"]
    if args.relay_only and not args.turn:
        parser.error("--relay-only needs --turn")

    Gst.init(None)
    if args.offer_only:
        offer_only(args)
        return
    if not args.user or not args.password:
        parser.error("--user and --password are required (or --offer-only)")

    status, body = api(args.api, "POST", "/api/auth/login", {"username": args.user, "password": args.password})
    if status != 200:
        sys.exit(f"whip_push.py: login failed ({status}): {body.get('error', {}).get('message', body)}")
    token = body["token"]
    status, body = api(args.api, "POST", "/api/streams", {"title": args.title}, token)
    if status == 409:  # already live (started in the dashboard): publish to that stream
        status, body = api(args.api, "GET", "/api/me/dashboard", None, token)
        if status != 200 or not body.get("live"):
            sys.exit(f"whip_push.py: cannot reuse the live stream ({status}): {body}")
        log("the stream is already live: publishing to it")
    elif status != 201:
        sys.exit(f"whip_push.py: cannot start the stream ({status}): {body.get('error', {}).get('message', body)}")
    ingest = body.get("ingest") or {}
    if not ingest.get("whip"):
        sys.exit("whip_push.py: the API gives no ingest.whip URL (a worker without WebRTC?)")
    target = (ingest["whip"], ingest["secret"])
    watch = body.get("watch") or {}
    log(f"live; viewers watch {watch.get('page')} (WHEP {watch.get('whep')})")

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()

    def out_of_time():
        return bool(args.seconds) and time.monotonic() - started >= args.seconds

    backoff = Backoff()
    ended = None  # the end reason, once the API says the stream is over
    session = None
    first = True
    try:
        while not stopping and not out_of_time():
            if not first:
                # The last session failed, or its POST was refused: the API
                # says whether the stream goes on, and where.
                if session and session.connected_for() >= kSteadySeconds:
                    backoff.reset()
                target = None
                while not stopping and not out_of_time():
                    time.sleep(backoff.next())
                    target, ended = live_whip(args.api, token)
                    if target or ended:
                        break
                if ended or not target:
                    break
                log(f"reconnecting to {target[0]} (attempt {backoff.attempt})")
            first = False
            if session:
                session.close()
            session = Session(args, *target)
            try:
                session.start()
            except LocalError as error:
                log(f"cannot make an offer: {error}")
                sys.exit(1)
            except WhipError as error:
                log(f"POST {session.url} refused ({error})")
                session.close()
                if error.status in (400, 415):
                    sys.exit(1)  # our offer or request is wrong: trying again will not help
                continue
            except OSError as error:
                log(f"POST {session.url} failed: {error}")
                session.close()
                continue
            why = None
            while not stopping and not out_of_time():
                why = session.poll()
                if why:
                    break
                time.sleep(0.1)
            if why == "eos":
                log("the source ended")
                break
            if why:
                log(f"session over: {why}")
                session.close()  # DELETE now: the endpoint may still hold it
    finally:
        if session:
            session.close()
        if ended:
            log(f"the stream ended ({ended})")
        elif not args.keep_stream:
            status, body = api(args.api, "POST", "/api/streams/current/stop", None, token)
            billed = body.get("stream", {}).get("seconds_billed", "?") if status == 200 else "?"
            log(f"stream stopped ({status}), {billed} s billed")
    if ended and ended != "stopped":
        sys.exit(1)


if __name__ == "__main__":
    main()
