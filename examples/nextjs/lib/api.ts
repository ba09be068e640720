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
};

export type Stream = {
  id: number;
  title: string;
  started_at: string;
  ended_at: string | null;
  end_reason: string | null;
  style: string;
  seconds_billed: number;
};

export type StyleQueue = {
  active: { style: string; requested_by: string; activated_at: string } | null;
  queue: { id: number; style: string; requested_by: string }[];
};

export type Settings = { comments_enabled: boolean; styles_enabled: boolean };

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
  seconds_remaining: number;
  live: boolean;
  stream: Stream | null;
  ingest: Ingest | null;
  watch: Watch | null;
  viewers: number;
  comment_count: number;
  processing: Health | null;
  styles: StyleQueue;
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
  title: string;
  started_at: string;
  end_reason: string | null; // offline: why the latest stream ended (null: never live)
  viewers: number;
  comments_enabled: boolean;
  styles_enabled: boolean;
  style: string;
  styles: string[];
  watch: Watch;
};

export type Comment = { id: number; author: string; text: string; created_at: string };

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

/** An error answer: `{"error":{"code","message"}}`, the message a sentence. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
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
    const error = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiError(response.status, error?.code ?? `http_${response.status}`, error?.message ?? (text || response.statusText));
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
  goLive: (title: string) => call<GoLive>("POST", "/api/streams", { title }),
  stopStream: () => call<{ stream: Stream }>("POST", "/api/streams/current/stop"),
  updateSettings: (settings: Partial<Settings>) => call<Settings>("PATCH", "/api/streams/current/settings", settings),
  skipStyle: () => call<StyleQueue>("POST", "/api/streams/current/styles/skip"),
  clearStyles: () => call<StyleQueue>("POST", "/api/streams/current/styles/clear"),

  // a channel, public or as a viewer
  streamInfo: (username: string) => call<StreamInfo>("GET", `/api/streams/${user(username)}`),
  comments: (username: string, limit = 50) =>
    call<{ comments: Comment[] }>("GET", `/api/streams/${user(username)}/comments?limit=${limit}`),
  postComment: (username: string, text: string) => call<Comment>("POST", `/api/streams/${user(username)}/comments`, { text }),
  deleteComment: (username: string, id: number) => call<void>("DELETE", `/api/streams/${user(username)}/comments/${id}`),
  styleQueue: (username: string) => call<StyleQueue>("GET", `/api/streams/${user(username)}/styles`),
  requestStyle: (username: string, style: string) =>
    call<StyleQueue>("POST", `/api/streams/${user(username)}/styles`, { style }),

  // credits
  packs: () => call<{ packs: Pack[] }>("GET", "/api/credits/packs"),
  checkout: (pack: string) => call<{ checkout_url: string; session_id: string }>("POST", "/api/credits/checkout", { pack }),
  transactions: () => call<{ transactions: Receipt[] }>("GET", "/api/me/transactions"),
  receiptUrl: (id: number) => `${API_URL}/api/me/transactions/${id}/receipt?format=html`,
};

// The media plane (docs/media.md): URLs from a Watch.
export const media = {
  /** The streamer's own preview: frames, but not counted as a viewer. */
  preview: (websocket: string) => `${websocket}?preview=1`,
  /** Tells the worker this tab is one HLS viewer (`?viewer=`). */
  hlsPlaylist: (hls: string, viewer: string) => `${hls}?viewer=${encodeURIComponent(viewer)}`,
};

export type StreamEvent =
  | { type: "live" }
  | { type: "offline"; reason?: string }
  | { type: "moved" } // the stream went to another worker: re-read its URLs
  | { type: "style"; style: string }
  | { type: "viewers"; count: number }
  | { type: "comment"; id: number; author: string; text: string }
  | { type: "comment_deleted"; id: number }
  | { type: "settings"; comments_enabled: boolean; styles_enabled: boolean };

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min ${String(s % 60).padStart(2, "0")} s`;
}

export function formatMoney(amount: number, currency: string): string {
  return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(amount / 100);
}
