// Where the API is. NEXT_PUBLIC_* values are inlined into the browser
// bundle at build time (`next build`), read afresh by `next dev`. The media
// URLs (ingest, watch, events, HLS) are not configured here: each stream
// runs on one media worker and the API names that worker's URLs.
export const API_URL = process.env.NEXT_PUBLIC_API_URL ?? "http://127.0.0.1:8080";
