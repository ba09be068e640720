#!/usr/bin/env bash
# The end-to-end suite: `tests/e2e/run.sh BUILD_DIR` (what `./dev test e2e`
# runs). Starts, on free ports and in a temporary folder: a PostgreSQL
# cluster, miraged with the media plane and the sample styles model, the fake
# Stripe, and a production build of examples/nextjs; then drives them with
# chromium (streaming.test.mjs). Screenshots and results.json go to
# BUILD_DIR/e2e/. Exits non-zero on failure; everything it started is
# stopped and removed on exit.
#
# Environment: CHROMIUM (default /usr/bin/chromium), E2E_KEEP=1 keeps the
# temporary folder (logs) for a look afterwards.
set -euo pipefail
BUILD_DIR=$(realpath "${1:?usage: tests/e2e/run.sh BUILD_DIR}")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
APP_DIR=$ROOT/examples/nextjs
E2E_DIR=$ROOT/tests/e2e
OUT=$BUILD_DIR/e2e
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export NEXT_TELEMETRY_DISABLED=1

for tool in node npm python3 "$CHROMIUM" "$BUILD_DIR/daemon/miraged" "$BUILD_DIR/tools/model/mirage-model"; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is missing (./dev setup, ./dev build)" >&2; exit 1; }
done

# npm ci when node_modules is missing or older than the lock file.
npm_ci() {
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    echo "e2e: npm ci in ${1#"$ROOT"/}"
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci "$APP_DIR"
npm_ci "$E2E_DIR"

TMP=$(mktemp -d /tmp/mirage-e2e.XXXXXX)
PIDS=()
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
AS=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$TMP" # PostgreSQL refuses to run as root
  AS=(runuser -u postgres --)
fi
SUMMARY=
show_logs() {
  for log in miraged worker fake-stripe next; do
    [ -f "$TMP/$log.log" ] && { echo "--- last lines of $log.log"; tail -n 25 "$TMP/$log.log"; }
  done
}
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -f "$TMP/pg/PG_VERSION" ] && "${AS[@]}" "$PG_BIN/pg_ctl" -D "$TMP/pg" -m fast -w stop >/dev/null 2>&1 || true
  if [ -n "${E2E_KEEP:-}" ]; then echo "e2e: logs kept in $TMP"; else rm -rf "$TMP"; fi
  # CI reads the closing line; a set-up that failed counts as one failure.
  if [ -n "$SUMMARY" ]; then echo "$SUMMARY"; elif [ "$rc" -ne 0 ]; then show_logs; echo "0 passed, 1 failed, 0 skipped"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # PORT WHAT: listening within 60 s
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "e2e: $2 is not listening on port $1" >&2
  return 1
}
PG_PORT=$(free_port) API_PORT=$(free_port) MEDIA_PORT=$(free_port) STRIPE_PORT=$(free_port) APP_PORT=$(free_port)
APP_URL=http://127.0.0.1:$APP_PORT
API_URL=http://127.0.0.1:$API_PORT

echo "e2e: PostgreSQL on $PG_PORT"
"${AS[@]}" "$PG_BIN/initdb" -D "$TMP/pg" -U mirage --auth=trust -E UTF8 --no-locale --no-sync >/dev/null
"${AS[@]}" "$PG_BIN/pg_ctl" -D "$TMP/pg" -l "$TMP/pg.log" -w -t 30 \
  -o "-k $TMP -p $PG_PORT -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
"${AS[@]}" "$PG_BIN/createdb" -h "$TMP" -p "$PG_PORT" -U mirage mirage

WEBHOOK_SECRET=whsec_e2e_$RANDOM$RANDOM
SECRET_KEY=sk_test_e2e_$RANDOM$RANDOM
node "$E2E_DIR/fake-stripe.mjs" --port "$STRIPE_PORT" --secret-key "$SECRET_KEY" \
  --webhook-secret "$WEBHOOK_SECRET" --webhook-url "$API_URL/api/stripe/webhook" >"$TMP/fake-stripe.log" 2>&1 &
PIDS+=($!)

MODEL=$BUILD_DIR/models/styles.pt
[ -f "$MODEL" ] || { mkdir -p "$BUILD_DIR/models" && "$BUILD_DIR/tools/model/mirage-model" styles "$MODEL"; }
# The API and one media worker, as separate processes that share only the
# database: the app reaches the worker through the URLs the API gives.
DB_URL="postgresql://mirage@127.0.0.1:$PG_PORT/mirage"
"$BUILD_DIR/daemon/miraged" migrate --database-url "$DB_URL" >"$TMP/migrate.log" 2>&1 ||
  { cat "$TMP/migrate.log"; exit 1; }
echo "e2e: miraged serve on $API_PORT, miraged worker on $MEDIA_PORT"
env MIRAGE_DATABASE_URL="$DB_URL" MIRAGE_HTTP_ADDR=127.0.0.1:$API_PORT \
  MIRAGE_PUBLIC_URL="$APP_URL" MIRAGE_CORS_ORIGIN="$APP_URL" \
  MIRAGE_ARGON2_MEMORY_KIB=1024 MIRAGE_ARGON2_ITERATIONS=1 \
  MIRAGE_STRIPE_SECRET_KEY="$SECRET_KEY" MIRAGE_STRIPE_WEBHOOK_SECRET="$WEBHOOK_SECRET" \
  MIRAGE_STRIPE_API_BASE=http://127.0.0.1:$STRIPE_PORT \
  MIRAGE_CHECKOUT_SUCCESS_URL="$APP_URL/dashboard/credits?session_id={CHECKOUT_SESSION_ID}" \
  MIRAGE_CHECKOUT_CANCEL_URL="$APP_URL/dashboard/credits?canceled=1" \
  "$BUILD_DIR/daemon/miraged" serve >"$TMP/miraged.log" 2>&1 &
PIDS+=($!)
env GST_PLUGIN_PATH="$BUILD_DIR/plugins" GST_REGISTRY="$TMP/registry.bin" \
  MIRAGE_DATABASE_URL="$DB_URL" MIRAGE_WORKER_NAME=e2e-worker \
  MIRAGE_MEDIA_ADDR=127.0.0.1:$MEDIA_PORT MIRAGE_SRT_ADDR= MIRAGE_RTSP_ADDR= MIRAGE_HLS_DIR="$TMP/hls" \
  "$BUILD_DIR/daemon/miraged" worker --model "$MODEL" >"$TMP/worker.log" 2>&1 &
PIDS+=($!)

# The app's URLs are inlined at build time; this build has its own folder,
# so the one `./dev run` uses is left alone.
echo "e2e: building examples/nextjs for $API_URL"
(cd "$APP_DIR" && NEXT_DIST_DIR=.next-e2e NEXT_PUBLIC_API_URL=$API_URL \
  node_modules/.bin/next build >"$TMP/next-build.log" 2>&1) || { cat "$TMP/next-build.log"; exit 1; }
(cd "$APP_DIR" && NEXT_DIST_DIR=.next-e2e \
  exec node_modules/.bin/next start -H 127.0.0.1 -p "$APP_PORT") >"$TMP/next.log" 2>&1 &
PIDS+=($!)

wait_port "$API_PORT" miraged
wait_port "$MEDIA_PORT" "the media worker"
# Registered in the database (it says so once its row is written).
for _ in $(seq 300); do grep -q "media worker 'e2e-worker'" "$TMP/worker.log" && break; sleep 0.1; done
grep -q "media worker 'e2e-worker'" "$TMP/worker.log" || { echo "e2e: the worker did not register" >&2; exit 1; }
wait_port "$STRIPE_PORT" "the fake Stripe"
wait_port "$APP_PORT" "the Next.js app"

rm -rf "$OUT" && mkdir -p "$OUT"
echo "e2e: chromium ($("$CHROMIUM" --version 2>/dev/null | head -n 1)) against $APP_URL"
rc=0
APP_URL=$APP_URL API_URL=$API_URL OUT_DIR=$OUT node "$E2E_DIR/streaming.test.mjs" || rc=$?
[ "$rc" -eq 0 ] || show_logs
SUMMARY=$(python3 -c 'import json, sys; print("%(passed)d passed, %(failed)d failed, %(skipped)d skipped" % json.load(open(sys.argv[1])))' "$OUT/results.json") ||
  SUMMARY="0 passed, 1 failed, 0 skipped"
exit "$rc"
