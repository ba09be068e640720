// Where the daemon is. NEXT_PUBLIC_* values are inlined into the browser
// bundle at build time (`next build`), read afresh by `next dev`.
export const API_URL = process.env.NEXT_PUBLIC_API_URL ?? "http://127.0.0.1:8080";
export const MEDIA_URL = process.env.NEXT_PUBLIC_MEDIA_URL ?? "http://127.0.0.1:8081";
export const MEDIA_WS_URL = MEDIA_URL.replace(/^http/, "ws");
