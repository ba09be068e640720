// The whole product in a real browser: Debian's chromium, driven by
// playwright-core, against the Next.js example, miraged (API + media plane
// with the sample styles model) and the fake Stripe. run.sh starts all of
// them and passes their URLs:
//
//   APP_URL      the Next.js app          CHROMIUM  the browser (/usr/bin/chromium)
//   API_URL      miraged's REST API       OUT_DIR   where screenshots and results go
//
// One streamer and one viewer, each in its own browser context (own
// cookies). Steps run in order; the first failure skips the rest. Ends with
// the line "N passed, N failed, N skipped" and writes OUT_DIR/results.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const APP = process.env.APP_URL ?? "http://127.0.0.1:3000";
const OUT = process.env.OUT_DIR ?? "build/e2e";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
// Real time is needed (a live pipeline, HLS segments of 1 s, the watch page
// settings event): waits are bounds with a wide margin for a
// loaded 2-core machine, not expected durations.
const kWait = 45_000;

mkdirSync(OUT, { recursive: true });
const suffix = Date.now().toString(36).slice(-6);
const streamer = { username: `e2e_${suffix}`, password: "streamer password 1" };
const viewer = { username: `e2e_v_${suffix}`, password: "viewer password 1" };

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"],
});
const pages = {};
const consoleErrors = [];
async function openPage(name) {
  const context = await browser.newContext({ baseURL: APP, viewport: { width: 1200, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(kWait);
  // Failed requests with their URL (the console says only "Failed to load resource").
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && consoleErrors.push(`[${name}] ${m.text()}`));
  page.on("response", (r) => r.status() >= 400 && consoleErrors.push(`[${name}] ${r.status()} ${r.request().method()} ${r.url()}`));
  page.on("pageerror", (e) => consoleErrors.push(`[${name}] ${e.message}`));
  pages[name] = page;
  return page;
}
const streamerPage = await openPage("streamer");
const viewerPage = await openPage("viewer");

/** A 64x48 RGBA thumbnail of a <video> or <canvas>, for comparing pixels. */
function thumbnail(page, selector) {
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
function difference(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i += 4) sum += Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]);
  return sum / ((a.length / 4) * 3);
}
function spread(a) {
  let min = 255;
  let max = 0;
  for (let i = 0; i < a.length; i += 4) {
    const luma = (a[i] + a[i + 1] + a[i + 2]) / 3;
    min = Math.min(min, luma);
    max = Math.max(max, luma);
  }
  return max - min;
}
const framesDrawn = (page, testId) =>
  page.waitForFunction((id) => Number(document.querySelector(`[data-testid="${id}"]`)?.dataset.frames ?? 0) >= 3, testId);
async function until(what, check, timeout = kWait) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last.ok) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}
async function screenshots(tag) {
  for (const [name, page] of Object.entries(pages))
    await page.screenshot({ path: join(OUT, `${name}${tag}.png`), fullPage: true }).catch(() => {});
}

const steps = [
  [
    "the streamer signs up",
    async () => {
      await streamerPage.goto("/signup");
      await streamerPage.fill('input[name="username"]', streamer.username);
      await streamerPage.fill('input[name="email"]', `${streamer.username}@example.org`);
      await streamerPage.fill('input[name="password"]', streamer.password);
      await streamerPage.click('button[type="submit"]');
      await streamerPage.waitForURL("**/dashboard");
      await streamerPage.getByText(streamer.username).first().waitFor();
    },
  ],
  [
    "the streamer buys credits through Checkout and comes back",
    async () => {
      await streamerPage.goto("/dashboard/credits");
      await streamerPage.click('button[data-pack="small"]');
      await streamerPage.waitForURL(/\/pay\/cs_test_/); // the (fake) Stripe page
      await streamerPage.click("#pay");
      await streamerPage.waitForURL(/\/dashboard\/credits\?session_id=cs_test_/);
      await streamerPage.getByText("Your credits are in").waitFor();
      await streamerPage.locator('[data-testid="credits"]', { hasText: "5.0" }).waitFor();
    },
  ],
  [
    "the streamer sets a display name on the profile page",
    async () => {
      await streamerPage.goto("/settings");
      const name = streamerPage.locator("form", { hasText: "Display name" }).locator("input").first();
      await name.fill("E2E Streamer");
      await streamerPage.getByRole("button", { name: "Save" }).click();
      await streamerPage.getByText("Profile saved.").waitFor();
    },
  ],
  [
    "the streamer goes live with the fake camera and sees the processed stream",
    async () => {
      await streamerPage.goto("/dashboard");
      await streamerPage.fill('input[aria-label="Title"]', "End-to-end");
      await streamerPage.selectOption('select[aria-label="Frames per second"]', "10");
      await streamerPage.click('[data-testid="go-live"]');
      await streamerPage.locator('[data-testid="live-badge"]').waitFor();
      await streamerPage.waitForFunction(() => document.querySelector('[data-testid="camera"]')?.videoWidth > 0);
      await framesDrawn(streamerPage, "processed");
    },
  ],
  [
    "a viewer, not logged in, plays the stream over HLS",
    async () => {
      await viewerPage.goto(`/${streamer.username}`);
      await viewerPage.getByRole("heading", { name: "E2E Streamer" }).waitFor();
      await viewerPage.getByText("End-to-end").waitFor();
      // Playing: decoded frames and a moving clock (the playlist appears a
      // second or two after going live; the player retries until then).
      await viewerPage.waitForFunction(
        () => {
          const v = document.querySelector('[data-testid="hls-video"]');
          return v && v.readyState >= 2 && v.currentTime > 0.5;
        },
        null,
        { timeout: 60_000 },
      );
      await viewerPage.screenshot({ path: join(OUT, "viewer-hls.png"), fullPage: true });
    },
  ],
  [
    "the viewer switches to the low-latency WebSocket frames",
    async () => {
      await viewerPage.click('[data-testid="mode-websocket"]');
      await framesDrawn(viewerPage, "watch-frames");
      const frame = await thumbnail(viewerPage, '[data-testid="watch-frames"]');
      if (spread(frame) < 20) throw new Error(`the viewer's frame is flat (spread ${spread(frame)})`);
      // No style yet: the model passes the picture through (for reference).
      const camera = await thumbnail(streamerPage, '[data-testid="camera"]');
      console.log(`    camera vs viewer, no style: mean difference ${difference(camera, frame).toFixed(1)} of 255`);
    },
  ],
  [
    "the viewer logs in and comments; the streamer sees it live",
    async () => {
      await viewerPage.locator('[data-testid="style-form"]').getByRole("link", { name: "Log in" }).waitFor();
      await viewerPage.goto(`/signup?next=/${streamer.username}`);
      await viewerPage.fill('input[name="username"]', viewer.username);
      await viewerPage.fill('input[name="email"]', `${viewer.username}@example.org`);
      await viewerPage.fill('input[name="password"]', viewer.password);
      await viewerPage.click('button[type="submit"]');
      await viewerPage.waitForURL(`**/${streamer.username}`);
      await viewerPage.fill('input[aria-label="Comment"]', "Hello from the e2e viewer");
      await viewerPage.click('[data-testid="comment-form"] button[type="submit"]');
      // The streamer's dashboard is not reloaded: the comment comes over /events.
      await streamerPage.locator('[data-testid="comments"]', { hasText: "Hello from the e2e viewer" }).waitFor();
    },
  ],
  [
    "the viewer requests a style; the stream applies it and the frames differ from the camera's",
    async () => {
      await viewerPage.click('[data-testid="mode-websocket"]');
      await viewerPage.selectOption('select[aria-label="Style"]', "invert");
      await viewerPage.click('[data-testid="style-form"] button[type="submit"]');
      // The style event reaches the viewer's page, and the dashboard's queue shows it.
      await viewerPage.locator('[data-testid="current-style"]', { hasText: "invert" }).waitFor();
      await streamerPage.locator('[data-testid="active-style"]', { hasText: "invert" }).waitFor();
      await framesDrawn(viewerPage, "watch-frames");
      // The camera and what the viewer gets, taken together: an inverted
      // picture is far from the camera's (an unstyled one is within JPEG noise).
      const result = await until("inverted frames at the viewer", async () => {
        const [camera, watched] = await Promise.all([
          thumbnail(streamerPage, '[data-testid="camera"]'),
          thumbnail(viewerPage, '[data-testid="watch-frames"]'),
        ]);
        const d = difference(camera, watched);
        return { ok: d > 60 && spread(watched) > 20, difference: d, spread: spread(watched) };
      });
      console.log(`    camera vs viewer: mean difference ${result.difference.toFixed(1)} of 255`);
    },
  ],
  [
    "screenshots of the streamer and viewer pages",
    async () => {
      await screenshots("");
    },
  ],
  [
    "the streamer turns comments off and the viewer's comment box disappears",
    async () => {
      await streamerPage.click('[data-testid="toggle-comments"]');
      await streamerPage.waitForFunction(() => !document.querySelector('[data-testid="toggle-comments"]').checked);
      await viewerPage.locator('[data-testid="comments-off"]').waitFor();
      if (await viewerPage.locator('[data-testid="comment-form"]').count()) throw new Error("the comment box is still there");
    },
  ],
  [
    "the streamer stops and the viewer sees the stream end",
    async () => {
      await streamerPage.click('[data-testid="stop"]');
      await streamerPage.locator('[data-testid="go-live"]').waitFor();
      await viewerPage.locator('[data-testid="offline"]', { hasText: "Stream ended" }).waitFor();
      await screenshots("-ended");
    },
  ],
  [
    "the viewer logs out",
    async () => {
      await viewerPage.getByRole("button", { name: "Log out" }).click();
      await viewerPage.waitForURL(`${APP}/`);
      await viewerPage.locator("nav").getByRole("link", { name: "Log in" }).waitFor();
    },
  ],
  [
    // Main sent the browser to evil.example: "/\\evil.example" looks like a
    // path, and browsers read it as "//evil.example", another host.
    "a login link whose ?next= leads off-site lands on the dashboard instead",
    async () => {
      for (const next of ["/\\evil.example", "//evil.example"]) {
        await viewerPage.goto(`/login?next=${encodeURIComponent(next)}`);
        await viewerPage.fill('input[name="username"]', viewer.username);
        await viewerPage.fill('input[name="password"]', viewer.password);
        await viewerPage.click('button[type="submit"]');
        await viewerPage.waitForURL((url) => url.pathname !== "/login");
        const url = new URL(viewerPage.url());
        if (url.origin !== new URL(APP).origin) throw new Error(`?next=${next} went to ${url.href}`);
        if (url.pathname !== "/dashboard") throw new Error(`?next=${next} went to ${url.pathname}`);
        await viewerPage.getByRole("button", { name: "Log out" }).click();
        await viewerPage.waitForURL(`${APP}/`);
      }
    },
  ],
];

let passed = 0;
let failed = 0;
let skipped = 0;
for (const [name, run] of steps) {
  if (failed) {
    skipped++;
    console.log(`skip - ${name}`);
    continue;
  }
  const started = Date.now();
  try {
    await run();
    passed++;
    console.log(`ok   - ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (err) {
    failed++;
    console.log(`FAIL - ${name}\n    ${String(err.stack ?? err).split("\n").slice(0, 6).join("\n    ")}`);
    await screenshots("-failure");
    if (consoleErrors.length) console.log(`  browser errors and failed requests:\n    ${consoleErrors.slice(-20).join("\n    ")}`);
  }
}
await browser.close();
if (!failed && consoleErrors.length) console.log(`browser errors and failed requests (not test failures):\n  ${consoleErrors.join("\n  ")}`);
writeFileSync(join(OUT, "results.json"), JSON.stringify({ passed, failed, skipped }) + "\n");
console.log(`screenshots in ${OUT}/`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
