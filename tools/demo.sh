#!/usr/bin/env bash
# The demo behind `./dev run`: live video through diffusionfilter with the
# sample stylization model (a hand-written, non-learned model: see
# docs/model-contract.md).
#
# With a display it opens a window; without one (a server, CI) it writes one
# JPEG per second under build/demo/ for 12 seconds and says where.
#
# Environment: MIRAGE_DEMO_SOURCE (a gst-launch source; default: the first
# webcam if there is one, else a test pattern), MIRAGE_DEMO_STYLE (default
# toon), MIRAGE_DEMO_MODEL (a TorchScript file; default the styles model).
set -euo pipefail
BUILD_DIR=$1
export GST_PLUGIN_PATH=$BUILD_DIR/plugins
export GST_REGISTRY=$BUILD_DIR/registry-demo.bin

MODEL=${MIRAGE_DEMO_MODEL:-$BUILD_DIR/models/styles.pt}
if [ -z "${MIRAGE_DEMO_MODEL:-}" ] && [ ! -f "$MODEL" ]; then
  mkdir -p "$BUILD_DIR/models"
  "$BUILD_DIR/tools/model/mirage-model" styles "$MODEL"
fi
if [ -n "${MIRAGE_DEMO_SOURCE:-}" ]; then
  SOURCE=$MIRAGE_DEMO_SOURCE
elif [ -e /dev/video0 ]; then
  SOURCE="v4l2src device=/dev/video0"
else
  SOURCE="videotestsrc is-live=true pattern=ball"
fi
STYLE=${MIRAGE_DEMO_STYLE:-toon}
FILTER="diffusionfilter model=$MODEL style=$STYLE strength=0.9"

echo "mirage demo: $SOURCE ! $FILTER"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec gst-launch-1.0 $SOURCE ! videoconvert ! video/x-raw,width=640,height=480 ! $FILTER ! \
    videoconvert ! autovideosink
fi

OUT=$BUILD_DIR/demo
rm -rf "$OUT" && mkdir -p "$OUT"
gst-launch-1.0 -q $SOURCE num-buffers=360 ! videoconvert ! video/x-raw,width=640,height=480,framerate=30/1 ! \
  $FILTER ! videoconvert ! videorate ! video/x-raw,framerate=1/1 ! jpegenc ! \
  multifilesink location="$OUT/frame-%02d.jpg"
echo "mirage demo: no display, so the processed frames are in $OUT/ ($(ls "$OUT" | wc -l) JPEG files)"
