import type { NextConfig } from "next";

const media = process.env.NEXT_PUBLIC_MEDIA_URL ?? "http://127.0.0.1:8081";

const config: NextConfig = {
  reactStrictMode: true,
  // A second build (the end-to-end test's, with its own ports) can live
  // beside the one `./dev run` uses.
  distDir: process.env.NEXT_DIST_DIR ?? ".next",
  // hls.js fetches the playlist and segments with XHR, and the media server
  // sends no CORS headers: serve HLS through this app's own origin. `live` is
  // a reserved username, so this never hides a watch page.
  async rewrites() {
    return [{ source: "/live/:path*", destination: `${media}/live/:path*` }];
  },
};

export default config;
