import { useEffect, useState } from "react";

/**
 * Where to go after logging in or signing up: ?next=/path on this site, else the dashboard.
 *
 * Only a path that stays on this origin once the browser resolves it:
 * "/\evil.example" and "//evil.example" look like paths but browsers read
 * them as another host, so the check is made on the resolved URL.
 */
export function nextPath(): string {
  const fallback = "/dashboard";
  const next = new URLSearchParams(window.location.search).get("next");
  if (!next || !next.startsWith("/")) return fallback;
  try {
    const url = new URL(next, window.location.origin);
    if (url.origin !== window.location.origin) return fallback;
    return url.pathname + url.search + url.hash;
  } catch {
    return fallback;
  }
}

/** "?next=..." to carry on to the other form (log in ↔ sign up), or "" when there is none; read after hydration. */
export function useNextQuery(): string {
  const [query, setQuery] = useState("");
  useEffect(() => {
    const next = new URLSearchParams(window.location.search).get("next");
    setQuery(next ? `?next=${encodeURIComponent(next)}` : "");
  }, []);
  return query;
}
