#!/usr/bin/env bash
# tools/gpu/device-run.sh [--dry-run] [--out DIR]
#
# The GPU half of the GPU issue in one run, on the GPU machine (PyTorch with
# CUDA under /opt/torch/.venv, meson, ninja, nvcc; no GStreamer, no network):
#
#   1. builds the GStreamer-free core (-Dcore_only=true) against that
#      PyTorch's libtorch: the CUDA frame path and, with PyTorch >= 2.6, the
#      AOTI loader (each dropped, and said so, if it does not compile);
#   2. exports the SD-Turbo-size model with random weights (1 step, TAESD),
#      fp16 and fp32 TorchScript, and an fp16 AOTI package (in the
#      background, time-boxed: AOTInductor compiles for minutes);
#   3. runs the GPU test suite (the same as ./dev test --gpu: the core half;
#      the element half needs GStreamer);
#   4. measures the plain PyTorch CUDA-graph replay of the module (the
#      ceiling, tools/bench/gpu_bench.py) and the core path, streams and lag
#      (build/tools/bench/gpu-core-bench), all in this one run;
#   5. writes DIR/gpu-report.md with every table and the logs beside it.
#
# DIR is $OUT when set (the device tool's folder that comes back), else
# build/gpu-report. --dry-run runs the same steps on this machine's CPU with
# the tiny config, Debian's libtorch and python3-torch, and short runs: it
# tests the script before GPU time is spent (the meson test "gpu device-run
# dry run" does this in ./dev test). Everything is time-boxed so that the
# whole run fits in 8 minutes.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DRY=0
OUT_DIR=${OUT:-$ROOT/build/gpu-report}
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT_DIR=$2; shift ;;
    *) echo "usage: device-run.sh [--dry-run] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=${WORK:-$(mktemp -d /tmp/mirage-gpu-XXXXXX)}
STARTED=$(date +%s)
REPORT=$OUT_DIR/gpu-report.md
: > "$OUT_DIR/build.log"; : > "$OUT_DIR/export.log"; : > "$OUT_DIR/tests.log"; : > "$OUT_DIR/bench.log"

if [ $DRY -eq 1 ]; then
  PYTHON=/usr/bin/python3 DEVICE=cpu CONFIG=tiny FRAMES=20 STREAM_S=2 LAG_S=3 ITERS=3
  TORCH_DIR= BUILD=${BUILD:-$ROOT/build/gpu-dry-run}
else
  PYTHON=/opt/torch/.venv/bin/python DEVICE=cuda CONFIG=sd-turbo FRAMES=300 STREAM_S=6 LAG_S=10 ITERS=50
  [ -x "$PYTHON" ] || PYTHON=$(command -v python3)
  TORCH_DIR=$("$PYTHON" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
  BUILD=${BUILD:-$ROOT/build/gpu}
fi
log() { printf '[%4ds] %s\n' $(($(date +%s) - STARTED)) "$*" | tee -a "$OUT_DIR/run.log" >&2; }
section() { printf '\n%s\n' "$*" >> "$REPORT"; }

log "device-run: $([ $DRY -eq 1 ] && echo 'dry run on the CPU' || echo 'GPU run'), work in $WORK, report in $OUT_DIR"
{
  echo "# GPU report ($(date -u +%Y-%m-%dT%H:%MZ)$([ $DRY -eq 1 ] && echo ', DRY RUN on the CPU: tiny model, no GPU numbers'))"
  echo
  echo '```'
  git -C "$ROOT" log -1 --format='commit %h %s' 2>/dev/null || echo "commit: unknown"
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' 2>&1
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "cores $(nproc)"
  echo '```'
} > "$REPORT"

# --- 2 (background): the models, while the core builds ---------------------
EXPORT=$ROOT/tools/export/export.py
export_model() {  # name, args...
  local name=$1; shift
  log "export $name"
  if timeout "${EXPORT_TIMEOUT:-300}" "$PYTHON" "$EXPORT" --random-weights --config $CONFIG --steps 1 \
       --decoder taesd --device $DEVICE --no-check --out "$WORK/$name" "$@" >> "$OUT_DIR/export.log" 2>&1; then
    log "exported $name"
  else
    log "export of $name failed or timed out (export.log)"
  fi
}
if [ $DRY -eq 1 ]; then
  # fp16 convolutions need a GPU: the dry run exports fp32 twice.
  export_model m16.pt --precision fp32
  cp "$WORK/m16.pt" "$WORK/m32.pt" 2>/dev/null || true
else
  export_model m16.pt --precision fp16
  export_model m32.pt --precision fp32
fi
( EXPORT_TIMEOUT=${AOTI_TIMEOUT:-240} export_model m16.pt2 --precision fp16 --format aoti ) &
AOTI_PID=$!

# --- 1: the core, against this libtorch ---------------------------------------
GTEST_ARGS=()
if [ -d "$ROOT/build/gpu-carry/googletest" ] && ! [ -e /usr/include/gtest/gtest.h ]; then
  GTEST_ARGS=(-Dgtest_src="$ROOT/build/gpu-carry/googletest")  # carried from Debian (docs/gpu.md)
fi
build_core() {  # extra meson args...
  rm -rf "$BUILD"
  local args=(-Dcore_only=true --buildtype=release "${GTEST_ARGS[@]}" "$@")
  if [ -n "$TORCH_DIR" ]; then
    local abi
    abi=$("$PYTHON" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
    args+=(-Dtorch_dir="$TORCH_DIR" -Dtorch_cxx11_abi="$abi")
  fi
  log "meson setup ${args[*]}"
  meson setup "$BUILD" "$ROOT" "${args[@]}" >> "$OUT_DIR/build.log" 2>&1 &&
    timeout 420 ninja -C "$BUILD" >> "$OUT_DIR/build.log" 2>&1
}
BUILD_NOTE="the CUDA frame path and the AOTI loader as found"
if ! build_core; then
  log "build failed: again without the AOTI loader"
  BUILD_NOTE="the AOTI loader did not compile (build.log): built without it"
  if ! build_core -Daoti=disabled; then
    log "build failed: again without the CUDA frame path"
    BUILD_NOTE="neither the AOTI loader nor the CUDA frame path compiled (build.log): the generic path only"
    build_core -Daoti=disabled -Dgpu_frame_path=disabled || { log "build failed"; BUILD_NOTE="the core did not build"; }
  fi
fi
section "## Build"
echo "Built with $BUILD_NOTE; what the core has is the \"core:\" line of the core bench below." >> "$REPORT"

# --- 3: the GPU test suite -----------------------------------------------------
log "tests: meson test --suite gpu"
if [ -x "$BUILD/tests/gpu-core-tests" ]; then
  (cd "$BUILD" && timeout 300 meson test --suite gpu --print-errorlogs -v >> "$OUT_DIR/tests.log" 2>&1)
  TESTS_RC=$?
  section "## GPU test suite (meson test --suite gpu: the core half)"
  { echo '```'; grep -E '^\[ *(OK|FAILED|SKIPPED) *\]|^\[  PASSED|no CUDA device' "$OUT_DIR/tests.log" | head -40; echo '```'; echo "exit status $TESTS_RC"; } >> "$REPORT"
else
  section "## GPU test suite"
  echo "not run: the test binaries were not built (build.log)" >> "$REPORT"
fi

# --- 4: measurements -------------------------------------------------------------
log "waiting for the AOTI export (at most ${AOTI_TIMEOUT:-240} s from its start)"
wait $AOTI_PID
CEILING_MS=0
if [ -f "$WORK/m16.pt" ]; then
  log "plain PyTorch: eager, CUDA-graph replay (the ceiling), batch of 4, fp16 vs fp32"
  timeout 240 "$PYTHON" "$ROOT/tools/bench/gpu_bench.py" --device $DEVICE --model "$WORK/m16.pt" \
    --compare "$WORK/m32.pt" --iters $ITERS --json "$OUT_DIR/plain.json" > "$WORK/plain.md" 2>> "$OUT_DIR/bench.log"
  cat "$WORK/plain.md" >> "$OUT_DIR/bench.log"
  section "$(cat "$WORK/plain.md")"
  CEILING_MS=$("$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("graph_ms") or d.get("eager_ms") or 0)' "$OUT_DIR/plain.json" 2>/dev/null || echo 0)
fi
if [ -x "$BUILD/tools/bench/gpu-core-bench" ] && [ -f "$WORK/m16.pt" ]; then
  log "core path, streams, lag (gpu-core-bench)"
  PACKAGE=()
  [ -f "$WORK/m16.pt2" ] && PACKAGE=(--package "$WORK/m16.pt2")
  timeout 300 "$BUILD/tools/bench/gpu-core-bench" --model "$WORK/m16.pt" --model-fp32 "$WORK/m32.pt" "${PACKAGE[@]}" \
    --device $DEVICE --frames $FRAMES --stream-seconds $STREAM_S --lag-seconds $LAG_S --ceiling-ms "$CEILING_MS" \
    --json "$OUT_DIR/core.json" > "$WORK/core.md" 2>> "$OUT_DIR/bench.log"
  cat "$WORK/core.md" >> "$OUT_DIR/bench.log"
  section "$(cat "$WORK/core.md")"
  [ -f "$WORK/m16.pt2" ] || section "AOTI package: not measured (the export did not finish or failed: export.log)."
else
  section "Core bench: not run (no bench binary or no model: build.log, export.log)."
fi

section "## Files"
echo "gpu-report.md (this), run.log, build.log, export.log, tests.log, bench.log, plain.json, core.json" >> "$REPORT"
log "done in $(($(date +%s) - STARTED)) s: $REPORT"
[ $DRY -eq 1 ] && rm -rf "$WORK"
exit 0
