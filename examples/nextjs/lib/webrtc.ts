// WHIP (RFC 9725) and WHEP: one RTCPeerConnection per session, the SDP
// offer POSTed to the stream's worker, the answer applied. The worker does
// no trickle ICE: the offer is sent once gathering is complete (or after
// 2 s with what was gathered), and its answer carries all its candidates.
// `DELETE <Location>` ends a session.
//
// A peer connection to a worker that dies, or that hands the stream to
// another worker, just fails (ICE consent, DTLS): ReconnectingPeer treats
// that as a dropped socket, as lib/reconnecting-socket.ts does. It waits
// with the same backoff, asks `resolve` for the URL the API names now, and
// offers there. An error that no retry can fix (no RTCPeerConnection in
// this browser, a worker without WHIP/WHEP, an offer the worker refuses)
// is `fatal`: the caller falls back to the WebSocket or HLS.
import { resolveAfterBackoff } from "./backoff";

/** A failed WHIP/WHEP exchange: the HTTP status (0: no answer) and the worker's error code. */
export class WebRtcError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Worth another attempt (the worker is down, moving, or still starting the stream). */
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export function webRtcSupported(): boolean {
  return typeof window !== "undefined" && typeof window.RTCPeerConnection === "function";
}

// Statuses a retry can fix: 404 not live here (moved, or not started
// yet), 401 a rotated secret (re-read from the API next time), 409 our own
// previous session the worker has not let go yet, 408/429/5xx a busy or
// missing worker (nginx answers 502 for a dead one). 400 (bad SDP), 405,
// 415 and 501 will not change.
const kRetryable = new Set([401, 404, 408, 409, 425, 429, 500, 502, 503, 504]);

/** H.264 first (constrained baseline, packetization-mode 1, before the others), then the rest as the browser ranks them. */
export function preferH264(codecs: RTCRtpCodec[]): RTCRtpCodec[] {
  const rank = (c: RTCRtpCodec) => {
    if (c.mimeType.toLowerCase() !== "video/h264") return 3;
    const fmtp = (c.sdpFmtpLine ?? "").toLowerCase();
    const mode1 = fmtp.includes("packetization-mode=1");
    const baseline = /profile-level-id=42e0/.test(fmtp);
    return mode1 && baseline ? 0 : mode1 ? 1 : 2;
  };
  return codecs.map((c, i) => ({ c, i, r: rank(c) })).sort((a, b) => a.r - b.r || a.i - b.i).map((x) => x.c);
}

/** Sets the codec order on a transceiver where the browser allows it; otherwise it picks. */
export function applyH264Preference(transceiver: RTCRtpTransceiver, kind: "sender" | "receiver") {
  try {
    const caps = kind === "sender" ? RTCRtpSender.getCapabilities?.("video") : RTCRtpReceiver.getCapabilities?.("video");
    if (caps && typeof transceiver.setCodecPreferences === "function") transceiver.setCodecPreferences(preferH264(caps.codecs));
  } catch {
    // An older browser: its own order (VP8 is accepted too).
  }
}

function waitForGathering(pc: RTCPeerConnection, ms = 2000): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      done();
    }
    function check() {
      if (pc.iceGatheringState === "complete") finish();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** Offers |pc| at |url| (a WHIP or WHEP endpoint) and applies the answer; returns the session's URL (Location), absolute. */
export async function negotiate(pc: RTCPeerConnection, url: string, token: string | null, signal?: AbortSignal): Promise<string | null> {
  await pc.setLocalDescription(await pc.createOffer());
  await waitForGathering(pc);
  const offer = pc.localDescription?.sdp;
  if (!offer) throw new WebRtcError(0, "no_offer", "the browser made no SDP offer", false);
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/sdp", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: offer,
      cache: "no-store",
      signal,
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new WebRtcError(0, "unreachable", `${url} did not answer`, true);
  }
  const text = await response.text();
  if (response.status !== 201 && response.status !== 200) {
    let code = `http_${response.status}`;
    let message = text || response.statusText;
    try {
      const error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      if (error?.code) code = error.code;
      if (error?.message) message = error.message;
    } catch {
      // not the worker's JSON (nginx's own page, say)
    }
    throw new WebRtcError(response.status, code, message, kRetryable.has(response.status));
  }
  if (!text.startsWith("v=")) throw new WebRtcError(response.status, "bad_answer", "the answer is not SDP", false);
  await pc.setRemoteDescription({ type: "answer", sdp: text });
  const location = response.headers.get("Location");
  return location ? new URL(location, url).href : null;
}

/** Ends a session (`DELETE <Location>`); errors are ignored: a dead worker has forgotten it anyway. */
export function endSession(location: string | null, token: string | null) {
  if (!location) return;
  void fetch(location, {
    method: "DELETE",
    headers: token ? { Authorization: `Bearer ${token}` } : undefined,
    keepalive: true, // also when the page is being closed
  }).catch(() => {});
}

export type PeerState =
  | { kind: "connecting" } // offering, or ICE/DTLS in progress
  | { kind: "open" } // connected: media flows
  | { kind: "down"; attempt: number } // dropped; attempt N is being prepared
  | { kind: "ended" } // the API says the stream is not live any more
  | { kind: "fatal"; error: WebRtcError }; // no retry will help: fall back

export type PeerTarget = { url: string; token: string | null };

export type PeerOptions = {
  first: PeerTarget;
  /** The URL (and token) the API names now; null when the stream is not live any more. A rejection counts as a failed attempt. */
  resolve: () => Promise<PeerTarget | null>;
  /** Adds the transceivers to each new connection (and its ontrack). */
  setup: (pc: RTCPeerConnection) => void;
  onState?: (state: PeerState) => void;
  /** For the console line "NAME: reconnecting to URL (attempt N)". */
  name: string;
};

// How long a connection may stay "disconnected" before it counts as gone
// (a dead worker answers no consent checks; a brief loss recovers by
// itself), and how long an answered offer may take to connect.
const kDisconnectedMs = 2500;
const kConnectMs = 15000;
// Chromium keeps a peer whose worker was killed "connected" for 15 s and
// more (only ICE consent, 30 s, fails it). So liveness is also read from
// getStats once a second: on the selected candidate pair, bytes received
// (RTP/RTCP from the worker) plus STUN requests and responses received (the
// browser's consent checks, every 2.5 s at most, are answered while the
// worker lives). Nothing at all for this long is a dead worker.
const kSilentMs = 5000;
// A worker that answers but never connects, attempt after attempt, from
// the start: UDP does not get through here. Fall back instead of retrying.
const kNeverConnectedAttempts = 3;
// Before the first success, this many failed attempts in a row (about 20 s
// of backoff) end the tries too: the stream's start has had time enough.
// Once a session has worked, tries go on until the API says the stream ended.
const kAttemptsBeforeFirst = 8;

export class ReconnectingPeer {
  private pc: RTCPeerConnection | null = null;
  private location: string | null = null;
  private token: string | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private watchdog: ReturnType<typeof setTimeout> | undefined;
  private liveness: ReturnType<typeof setInterval> | undefined;
  private abort: AbortController | null = null;
  private attempt = 0;
  private stopped = false;
  private worked = false;
  private unanswered = 0; // answered offers that never connected, before the first success
  private generation = 0;
  private current: string;

  constructor(private readonly options: PeerOptions) {
    this.current = options.first.url;
    if (!webRtcSupported()) {
      this.stopped = true;
      queueMicrotask(() =>
        options.onState?.({ kind: "fatal", error: new WebRtcError(0, "unsupported", "this browser has no WebRTC (RTCPeerConnection)", false) }),
      );
      return;
    }
    // A closed tab runs no React cleanup: end the session here, or the
    // worker holds a WHIP publisher's slot until ICE gives up on it.
    window.addEventListener("pagehide", this.onPageHide);
    void this.connect(options.first);
  }

  private readonly onPageHide = () => this.close();

  get url(): string {
    return this.current;
  }
  /** The connection now, if any (for getStats). */
  get connection(): RTCPeerConnection | null {
    return this.pc;
  }

  /** The API names another URL (the page re-read it): go there now. */
  moveTo(target: PeerTarget) {
    if (this.stopped || target.url === this.current) return;
    this.drop();
    this.attempt = 0;
    void this.connect(target);
  }

  close() {
    this.stopped = true;
    if (typeof window !== "undefined") window.removeEventListener("pagehide", this.onPageHide);
    this.drop();
  }

  private drop() {
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    clearInterval(this.liveness);
    this.generation++;
    this.abort?.abort();
    this.abort = null;
    const pc = this.pc;
    this.pc = null;
    if (pc) {
      pc.onconnectionstatechange = null;
      pc.ontrack = null;
      pc.close();
    }
    endSession(this.location, this.token);
    this.location = null;
  }

  private async connect(target: PeerTarget) {
    this.current = target.url;
    this.token = target.token;
    const generation = ++this.generation;
    this.options.onState?.({ kind: "connecting" });
    let pc: RTCPeerConnection;
    try {
      pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
      this.options.setup(pc);
    } catch (err) {
      this.fail(new WebRtcError(0, "unsupported", `WebRTC: ${String(err)}`, false));
      return;
    }
    this.pc = pc;
    let connected = false;
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      const state = pc.connectionState;
      if (state === "connected") {
        connected = true;
        clearTimeout(this.watchdog);
        this.attempt = 0;
        this.worked = true;
        this.unanswered = 0;
        this.options.onState?.({ kind: "open" });
      } else if (state === "failed" || state === "closed") {
        this.lost();
      } else if (state === "disconnected") {
        clearTimeout(this.watchdog);
        this.watchdog = setTimeout(() => this.pc === pc && pc.connectionState !== "connected" && this.lost(), kDisconnectedMs);
      }
    };
    const abort = new AbortController();
    this.abort = abort;
    try {
      const location = await negotiate(pc, target.url, target.token, abort.signal);
      if (generation !== this.generation) {
        endSession(location, target.token); // overtaken while offering
        return;
      }
      this.location = location;
    } catch (err) {
      if (generation !== this.generation) return;
      const error = err instanceof WebRtcError ? err : new WebRtcError(0, "offer_failed", `WebRTC: ${String(err)}`, false);
      if (!error.retryable || (!this.worked && this.attempt + 1 >= kAttemptsBeforeFirst)) this.fail(error);
      else this.lost();
      return;
    }
    this.watchLiveness(pc);
    // Answered: ICE and DTLS must follow within the bound.
    this.watchdog = setTimeout(() => {
      if (this.pc !== pc || connected) return;
      if (!this.worked && ++this.unanswered >= kNeverConnectedAttempts) {
        this.fail(new WebRtcError(201, "ice_failed", "the media server answered but no media connection came up (UDP blocked?)", false));
      } else this.lost();
    }, kConnectMs);
  }

  /** Drops |pc| once nothing has come from the worker for kSilentMs while connected. */
  private watchLiveness(pc: RTCPeerConnection) {
    let last = -1;
    let since = Date.now();
    clearInterval(this.liveness);
    this.liveness = setInterval(async () => {
      if (this.pc !== pc || pc.connectionState !== "connected") {
        since = Date.now();
        return;
      }
      let received = 0;
      try {
        const report = await pc.getStats();
        let selected: string | undefined;
        report.forEach((entry) => {
          if (entry.type === "transport" && entry.selectedCandidatePairId) selected = entry.selectedCandidatePairId;
        });
        report.forEach((entry) => {
          if (entry.type !== "candidate-pair") return;
          if (selected ? entry.id !== selected : !entry.nominated) return;
          received += (entry.bytesReceived ?? 0) + (entry.responsesReceived ?? 0) + (entry.requestsReceived ?? 0);
        });
      } catch {
        return; // closed meanwhile
      }
      if (this.pc !== pc) return;
      if (received !== last) {
        last = received;
        since = Date.now();
      } else if (Date.now() - since > kSilentMs) {
        console.info(`${this.options.name}: nothing received for ${kSilentMs / 1000} s from ${this.current}: the connection is gone`);
        this.lost();
      }
    }, 1000);
  }

  private fail(error: WebRtcError) {
    this.close();
    this.options.onState?.({ kind: "fatal", error });
  }

  /** The connection is gone (or never came): wait, ask the API, offer again. */
  private lost() {
    if (this.stopped) return;
    this.drop();
    const attempt = ++this.attempt;
    const generation = this.generation;
    this.options.onState?.({ kind: "down", attempt });
    this.timer = resolveAfterBackoff(attempt, this.options.resolve, () => !this.stopped && generation === this.generation, {
      ended: () => {
        this.close();
        this.options.onState?.({ kind: "ended" });
      },
      failed: () => this.lost(),
      next: (target) => {
        console.info(`${this.options.name}: reconnecting to ${target.url} (attempt ${attempt})`);
        void this.connect(target);
      },
    });
  }
}
