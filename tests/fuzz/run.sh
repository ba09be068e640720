#!/usr/bin/env bash
# tests/fuzz/run.sh FUZZ_BUILD_DIR SECONDS [TARGET]
#
# Builds the libFuzzer targets of tests/fuzz with clang into FUZZ_BUILD_DIR
# (meson -Dfuzz=true) and runs each one (or TARGET) for SECONDS, starting
# from its checked-in seed corpus tests/fuzz/corpus/TARGET (copied: what
# the run finds stays under FUZZ_BUILD_DIR/corpus). A crash is a failure:
# its input is kept under FUZZ_BUILD_DIR/crashes/ and becomes a regression
# test. Writes FUZZ_BUILD_DIR/results.json ({"passed","failed","skipped"})
# and ends with a line "N passed, N failed".
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:?usage: run.sh FUZZ_BUILD_DIR SECONDS [TARGET]}
SECONDS_EACH=${2:?usage: run.sh FUZZ_BUILD_DIR SECONDS [TARGET]}
ONLY=${3:-}
CXX_CLANG=$(command -v clang++-14 || command -v clang++)
CC_CLANG=$(command -v clang-14 || command -v clang)

if [ ! -f "$BUILD/build.ninja" ]; then
  CXX=$CXX_CLANG CC=$CC_CLANG meson setup "$BUILD" "$ROOT" -Dfuzz=true --buildtype=debugoptimized >/dev/null
fi
meson compile -C "$BUILD" >/dev/null

passed=0 failed=0
mkdir -p "$BUILD/crashes"
for seeds in "$ROOT"/tests/fuzz/corpus/*/; do
  name=$(basename "$seeds")
  [ -n "$ONLY" ] && [ "$name" != "$ONLY" ] && continue
  work="$BUILD/corpus/$name"
  mkdir -p "$work"
  cp -n "$seeds"* "$work/" 2>/dev/null || true
  log="$BUILD/$name.log"
  if "$BUILD/tests/fuzz/fuzz_$name" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$BUILD/crashes/$name-" "$work" >"$log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 || true)
    echo "ok   - fuzz $name (${runs:-?} in ${SECONDS_EACH} s)"
    passed=$((passed + 1))
  else
    echo "FAIL - fuzz $name: $(grep -m1 -E 'ERROR|runtime error|deadly signal' "$log" || tail -1 "$log")"
    echo "       input kept in $BUILD/crashes/, log $log"
    failed=$((failed + 1))
  fi
done
if [ -n "$ONLY" ] && [ $((passed + failed)) -eq 0 ]; then
  echo "run.sh: no fuzz target '$ONLY' (see tests/fuzz/corpus/)" >&2
  exit 2
fi
printf '{"passed": %d, "failed": %d, "skipped": 0}\n' "$passed" "$failed" > "$BUILD/results.json"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
