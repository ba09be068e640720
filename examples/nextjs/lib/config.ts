// Where the API is. NEXT_PUBLIC_* values are inlined into the browser
// bundle at build time (`next build`), read afresh by `next dev`. The media
// URLs (ingest, watch, events, HLS) are not configured here: each stream
// runs on one media worker and the API names that worker's URLs.
export const API_URL = process.env.NEXT_PUBLIC_API_URL ?? "http://127.0.0.1:8080";

// Where the app's own server (server components: the channel page's 404)
// reaches the API, read when the server runs (`next start`), not inlined: a
// deployment whose browser-facing API URL is not reachable from the app's
// host (another name, TLS at a proxy) sets it to an internal address.
// Defaults to the browser's one (through nginx that is the same origin).
export function serverApiUrl(): string {
  return process.env.MIRAGE_SERVER_API_URL || API_URL;
}
