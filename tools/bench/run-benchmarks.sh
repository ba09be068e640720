#!/usr/bin/env bash
# Runs every benchmark against the build in $1 and prints their tables.
# Extra arguments go to mirage-bench (e.g. --lag-seconds 20 for a quick run).
set -euo pipefail
BUILD_DIR=$1
shift
export GST_PLUGIN_PATH=$BUILD_DIR/plugins
export GST_REGISTRY=$BUILD_DIR/registry-bench.bin
"$BUILD_DIR/tools/bench/mirage-bench" "$@"
"$BUILD_DIR/tools/bench/api-bench"
"$BUILD_DIR/tools/bench/media-bench"
"$BUILD_DIR/tools/bench/cluster-bench"
"$BUILD_DIR/tools/bench/failover-bench"
"$BUILD_DIR/tools/bench/webrtc-bench"
python3 "$(dirname "$0")/abuse_bench.py" "$BUILD_DIR"
