/**
 * Where to go after logging in: ?next=/path on this site, else the dashboard.
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
