// What the browser test's steps share: pixels, waits with bounds, API reads
// through the page's own session, layout checks. No state of its own.

// Real time is needed (a live pipeline, HLS segments of 1 s, the watch page
// settings event): waits are bounds with a wide margin for a
// loaded 2-core machine, not expected durations.
export const kWait = 45_000;

/** A 64x48 RGBA thumbnail of a <video> or <canvas>, for comparing pixels. */
export function thumbnail(page, selector) {
  return page.$eval(selector, (element) => {
    const small = document.createElement("canvas");
    small.width = 64;
    small.height = 48;
    const context = small.getContext("2d", { willReadFrequently: true });
    context.drawImage(element, 0, 0, 64, 48);
    return Array.from(context.getImageData(0, 0, 64, 48).data);
  });
}
/** Mean absolute difference of the RGB channels, 0–255. */
export function difference(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i += 4) sum += Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]);
  return sum / ((a.length / 4) * 3);
}
export function spread(a) {
  let min = 255;
  let max = 0;
  for (let i = 0; i < a.length; i += 4) {
    const luma = (a[i] + a[i + 1] + a[i + 2]) / 3;
    min = Math.min(min, luma);
    max = Math.max(max, luma);
  }
  return max - min;
}
/** The <video>'s clock moves by |seconds| and it has a picture (videoWidth > 0). */
export async function videoPlays(page, testId, seconds = 1, timeout = kWait) {
  const selector = `[data-testid="${testId}"]`;
  await page.waitForFunction((sel) => document.querySelector(sel)?.videoWidth > 0, selector, { timeout });
  const t0 = await page.$eval(selector, (v) => v.currentTime);
  await page.waitForFunction(([sel, t]) => document.querySelector(sel)?.currentTime > t, [selector, t0 + seconds], { timeout });
  return page.$eval(selector, (v) => ({ width: v.videoWidth, height: v.videoHeight, time: v.currentTime }));
}
/** A step that cannot run against this daemon (no WHIP/WHEP offered): counted as skipped, not failed. */
export class Skip extends Error {}
export const framesDrawn = (page, testId) =>
  page.waitForFunction((id) => Number(document.querySelector(`[data-testid="${id}"]`)?.dataset.frames ?? 0) >= 3, testId);
export async function until(what, check, timeout = kWait) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last.ok) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}
/** GET /api/... as the page's user, through the front (same origin, the session cookie). */
export function apiGet(page, path) {
  return page.evaluate(async (p) => {
    const response = await fetch(p, { credentials: "include", cache: "no-store" });
    return response.json();
  }, path);
}
export const dataNumber = (page, testId, attribute) =>
  page.$eval(`[data-testid="${testId}"]`, (e, a) => Number(e.getAttribute(a) ?? 0), attribute).catch(() => 0);
/** A request to the API as the page's user (same origin, the session cookie): `{status, body}`. */
export function apiSend(page, method, path, body) {
  return page.evaluate(
    async ([m, p, b]) => {
      const response = await fetch(p, {
        method: m,
        credentials: "include",
        cache: "no-store",
        headers: b === undefined ? undefined : { "Content-Type": "application/json" },
        body: b === undefined ? undefined : JSON.stringify(b),
      });
      const text = await response.text();
      let parsed = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = text;
      }
      return { status: response.status, body: parsed };
    },
    [method, path, body],
  );
}
/** The mean R, G, B (0–255) of a thumbnail. */
export function meanColour(a) {
  const sum = [0, 0, 0];
  for (let i = 0; i < a.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += a[i + c];
  return sum.map((v) => v / (a.length / 4));
}
/** Per-channel median of RGBA pixels: the picture's still background, whatever moves on it. */
export function medianColour(a) {
  return [0, 1, 2].map((c) => {
    const v = [];
    for (let i = c; i < a.length; i += 4) v.push(a[i]);
    v.sort((x, y) => x - y);
    return v[v.length >> 1];
  });
}
/** Fails when the page is wider than its viewport, naming the elements that stick out. */
export async function noHorizontalOverflow(page, what) {
  const r = await page.evaluate(() => {
    const inner = window.innerWidth;
    const wide = [];
    for (const e of document.querySelectorAll("body *")) {
      const box = e.getBoundingClientRect();
      if (box.width > 0 && box.right > inner + 1) {
        const id = e.getAttribute("data-testid");
        wide.push(`${e.tagName.toLowerCase()}${id ? `[${id}]` : ""}${e.className && typeof e.className === "string" ? "." + e.className.split(" ").join(".") : ""} right=${Math.round(box.right)}`);
      }
    }
    return { scroll: document.documentElement.scrollWidth, inner, wide: wide.slice(0, 6) };
  });
  if (r.scroll > r.inner) throw new Error(`${what}: ${r.scroll} px wide in a ${r.inner} px viewport; sticking out: ${r.wide.join(", ")}`);
  return r;
}
