import type { NextConfig } from "next";

const config: NextConfig = {
  reactStrictMode: true,
  // A second build (the end-to-end test's, with its own ports) can live
  // beside the one `./dev run` uses.
  distDir: process.env.NEXT_DIST_DIR ?? ".next",
};

export default config;
