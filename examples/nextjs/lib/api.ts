// Every call this app makes to miraged, typed after docs/api.md and
// docs/media.md. Media URLs always come from the API's answers (the stream's
// worker), never from a fixed media address. Requests carry the session cookie (`credentials:
// "include"`): the API sets it at login and allows this app's origin with
// credentials (`--cors-origin`), so no token is ever visible to scripts.
import { API_URL } from "./config";

export type User = {
  id: number;
  username: string;
  email: string;
  display_name: string;
  bio: string;
  created_at: string;
  comments_enabled: boolean;
  styles_enabled: boolean;
  default_style?: string;
  default_strength?: number;
};

export type Stream = {
  id: number;
  title: string;
  started_at: string;
  ended_at: string | null;
  end_reason: string | null;
  style: string;
  streamer_style?: string;
  strength?: number;
  seconds_billed: number;
};

/** The style queue of a live stream: the request applied now (for `seconds_left`), then the waiting ones (`position` 1 = next). */
export type StyleQueue = {
  active: { id?: number; style: string; requested_by: string; activated_at: string; ends_at?: string; seconds_left?: number } | null;
  queue: { id: number; style: string; requested_by: string; position?: number }[];
  style_seconds?: number;
  cooldown_seconds?: number;
};

/** The streamer's switches and picture: `style` "" is none; `strength` 0.0–1.0. */
export type Settings = { comments_enabled: boolean; styles_enabled: boolean; style?: string; strength?: number };

/** Who may not write in a channel's chat: `until` null is a ban until lifted, else the end of a time-out. */
export type ChatBan = { username: string; until: string | null };

/** A channel live now, for the home page. `thumbnail`: a recent processed frame (JPEG) or null. */
export type LiveChannel = {
  username: string;
  display_name: string;
  title: string;
  viewers: number;
  started_at: string;
  thumbnail: string | null;
};

export type PastStream = { id: number; title: string; started_at: string; ended_at: string | null; comment_count: number };

/** The media plane's health of a live stream (docs/media.md, "Health"). */
export type Health = {
  ingest: string;
  publisher: string;
  frames_received: number;
  frames_decoded: number;
  frames_refused: number;
  ingest_fps: number;
  processed_fps: number;
  frames_processed: number;
  frames_dropped: number;
  inference_ms: number;
  lag_ms: number;
  last_error: string | null;
  watch_frames_skipped: number;
  restarts_last_minute: number;
  previous_error: string | null;
};

/** Where a channel is watched: its page, and on the stream's media worker
 * the HLS playlist, the frame WebSocket, the WHEP endpoint and the events
 * WebSocket (events: while offline, any live worker's; null when none is).
 * `whep` is absent where the API predates WebRTC playback: the page then
 * offers HLS and the WebSocket only. */
export type Watch = { page: string; hls: string | null; websocket: string | null; whep?: string | null; events: string | null };

/** The URLs a publisher uses, on the stream's worker; each carries the secret,
 * except `whip`, whose bearer token is `secret` (absent where the API
 * predates WHIP: the camera then goes over the WebSocket). */
export type Ingest = {
  secret: string;
  worker: string;
  websocket: string;
  whip?: string | null;
  srt: string | null;
  rtsp: string | null;
};

export type Dashboard = {
  credits: number;
  /** The balance less the live stream's time not billed yet, as of the answer. */
  seconds_remaining: number;
  /** A live stream is being billed: the balance goes down 1 s a second until the next answer. */
  counting_down?: boolean;
  live: boolean;
  stream: Stream | null;
  ingest: Ingest | null;
  watch: Watch | null;
  viewers: number;
  comment_count: number;
  processing: Health | null;
  styles: StyleQueue;
  /** The styles the live stream offers, else those a new stream would get. */
  available_styles?: string[];
  settings: Settings;
};

export type StreamSummary = {
  stream: Stream;
  duration_seconds: number;
  credits_used: number;
  peak_viewers: number;
  average_viewers: number;
  unique_viewers: number;
  comments: number;
  styles_applied: number;
};

export type GoLive = { stream: Stream; ingest: Ingest; watch: Watch };

export type StreamInfo = {
  username: string;
  display_name: string;
  live: boolean;
  bio?: string;
  title: string;
  started_at: string;
  /** The latest stream's end (its start while live); null when never live. */
  last_live_at?: string | null;
  end_reason: string | null; // offline: why the latest stream ended (null: never live)
  viewers: number;
  comments_enabled: boolean;
  styles_enabled: boolean;
  style: string; // the effective style: a viewer's request while one is active, else the streamer's
  streamer_style?: string;
  strength?: number;
  styles: string[];
  watch: Watch;
};

export type Comment = { id: number; author: string; text: string; created_at: string; stream_id?: number };

export type Pack = { id: string; credits: number; amount: number; currency: string };

export type Receipt = {
  id: number;
  number: string;
  date: string;
  pack: string;
  credits: number;
  amount: number;
  currency: string;
  status: string;
  amount_refunded: number;
  receipt_url: string | null;
};

/** An error answer: `{"error":{"code","message","field"}}`, the message a sentence; `field` the
 * request's JSON key it is about, when one; `retryAfter` the seconds of a Retry-After header. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(API_URL + path, {
    method,
    credentials: "include",
    headers: body === undefined ? undefined : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await response.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    // Only Pistache's own 413 answer is plain text.
  }
  if (!response.ok) {
    const error = (data as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
    const retry = Number(response.headers.get("Retry-After"));
    throw new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.message ?? (text || response.statusText),
      error?.field ?? null,
      response.headers.has("Retry-After") && Number.isFinite(retry) ? retry : null,
    );
  }
  return data as T;
}

const user = (u: string) => encodeURIComponent(u);

export const api = {
  // accounts
  register: (username: string, email: string, password: string) =>
    call<{ user: User }>("POST", "/api/auth/register", { username, email, password }),
  login: (username: string, password: string) => call<{ user: User }>("POST", "/api/auth/login", { username, password }),
  logout: () => call<void>("POST", "/api/auth/logout"),
  me: () => call<User>("GET", "/api/me"),
  updateMe: (changes: { display_name?: string; bio?: string }) => call<User>("PATCH", "/api/me", changes),
  changePassword: (current_password: string, new_password: string) =>
    call<void>("POST", "/api/me/password", { current_password, new_password }),

  // the streamer
  dashboard: () => call<Dashboard>("GET", "/api/me/dashboard"),
  streamHistory: () => call<{ streams: StreamSummary[] }>("GET", "/api/me/streams"),
  goLive: (options: { title: string; style?: string; strength?: number }) => call<GoLive>("POST", "/api/streams", options),
  rotateSecret: () => call<GoLive>("POST", "/api/streams/current/secret"),
  stopStream: () => call<{ stream: Stream }>("POST", "/api/streams/current/stop"),
  updateSettings: (settings: Partial<Settings>) => call<Settings>("PATCH", "/api/streams/current/settings", settings),
  skipStyle: () => call<StyleQueue>("POST", "/api/streams/current/styles/skip"),
  clearStyles: () => call<StyleQueue>("POST", "/api/streams/current/styles/clear"),
  rejectStyle: (id: number) => call<StyleQueue>("DELETE", `/api/streams/current/styles/${id}`),
  bans: () => call<{ bans: ChatBan[] }>("GET", "/api/streams/current/chat/bans"),
  /** `seconds` null: banned until lifted; 600: the 10-minute time-out. */
  ban: (username: string, seconds: number | null) =>
    call<ChatBan>("POST", "/api/streams/current/chat/bans", seconds === null ? { username } : { username, duration_seconds: seconds }),
  unban: (username: string) => call<void>("DELETE", `/api/streams/current/chat/bans/${user(username)}`),

  // a channel, public or as a viewer
  streamInfo: (username: string) => call<StreamInfo>("GET", `/api/streams/${user(username)}`),
  /** The live stream's chat (offline: the latest stream's), or stream |stream|'s, an earlier one of this channel. */
  comments: (username: string, stream: number | null = null, limit = 50) =>
    call<{ comments: Comment[] }>("GET", `/api/streams/${user(username)}/comments?limit=${limit}${stream === null ? "" : `&stream=${stream}`}`),
  pastStreams: (username: string) => call<{ streams: PastStream[] }>("GET", `/api/streams/${user(username)}/past`),
  liveChannels: () => call<{ channels: LiveChannel[] }>("GET", "/api/channels/live"),
  postComment: (username: string, text: string) => call<Comment>("POST", `/api/streams/${user(username)}/comments`, { text }),
  deleteComment: (username: string, id: number) => call<void>("DELETE", `/api/streams/${user(username)}/comments/${id}`),
  styleQueue: (username: string) => call<StyleQueue>("GET", `/api/streams/${user(username)}/styles`),
  requestStyle: (username: string, style: string) =>
    call<StyleQueue>("POST", `/api/streams/${user(username)}/styles`, { style }),

  // credits
  packs: () => call<{ packs: Pack[] }>("GET", "/api/credits/packs"),
  checkout: (pack: string) => call<{ checkout_url: string; session_id: string }>("POST", "/api/credits/checkout", { pack }),
  cancelCheckout: (sessionId: string) => call<Receipt>("POST", `/api/credits/checkout/${encodeURIComponent(sessionId)}/cancel`),
  transactions: () => call<{ transactions: Receipt[] }>("GET", "/api/me/transactions"),
  receiptUrl: (id: number) => `${API_URL}/api/me/transactions/${id}/receipt?format=html`,
};

// The media plane (docs/media.md): URLs from a Watch.
export const media = {
  /** The streamer's own preview: frames, but not counted as a viewer. */
  preview: (websocket: string) => withQuery(websocket, "preview", "1"),
  /** Tells the worker which tab this is (`?viewer=`): one tab is one viewer in every mode (HLS, WebSocket, WHEP) and across switches. */
  asViewer: (url: string, viewer: string) => withQuery(url, "viewer", viewer),
};

function withQuery(url: string, key: string, value: string): string {
  return `${url}${url.includes("?") ? "&" : "?"}${key}=${encodeURIComponent(value)}`;
}

export type StreamEvent =
  | { type: "live" }
  | { type: "offline"; reason?: string }
  | { type: "moved" } // the stream went to another worker: re-read its URLs
  | { type: "style"; style: string }
  | { type: "viewers"; count: number }
  | { type: "comment"; id: number; author: string; text: string }
  | { type: "comment_deleted"; id: number }
  | { type: "styles" } // the style queue changed: re-read it
  | { type: "chat_ban"; username: string; until: string | null }
  | { type: "chat_unban"; username: string } // asked of daemon16 (contract16 Changes); harmless until then
  | { type: "settings"; comments_enabled: boolean; styles_enabled: boolean };

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min ${String(s % 60).padStart(2, "0")} s`;
}

/** "1:02:03" / "2:03": a running clock (uptime, time live). */
export function formatClock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** Seconds since |iso| (0 before it or without it). */
export function secondsSince(iso: string | null | undefined, now = Date.now()): number {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(t) ? Math.max(0, (now - t) / 1000) : 0;
}

/** Seconds until |iso| (0 once past, or without it). */
export function secondsUntil(iso: string | null | undefined, now = Date.now()): number {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(t) ? Math.max(0, (t - now) / 1000) : 0;
}

/** A comment's time of day, "14:05". */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function formatMoney(amount: number, currency: string): string {
  return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(amount / 100);
}
