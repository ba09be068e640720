#!/usr/bin/env bash
# The end-to-end suite: `tests/e2e/run.sh BUILD_DIR` (what `./dev test e2e`
# runs). Starts, on free ports and in a temporary folder: a PostgreSQL
# cluster, the API (`miraged serve`), two media workers (`miraged worker`,
# e2e-a and e2e-b, the sample styles model, one stream each, with WebSocket,
# WHIP, SRT and RTSP ingest so the dashboard shows every URL), the fake
# Stripe, a production build of examples/nextjs, and nginx in front of them
# as the one origin the browser talks to (deploy/nginx/render: /api/ to the
# API, /w/NAME/ to worker NAME's media port, / to the app); then drives them
# with chromium (streaming.test.mjs), which also kills the worker holding
# the stream (E2E_WORKER_PIDS) and watches it come back on the other one.
# Screenshots and results.json go to BUILD_DIR/e2e/. Exits non-zero on
# failure; everything it started is stopped and removed on exit.
#
# Environment: CHROMIUM (default /usr/bin/chromium), NGINX (default nginx on
# PATH, else /usr/sbin/nginx), E2E_KEEP=1 keeps the temporary folder (logs)
# for a look afterwards, E2E_NO_FAILOVER=1 skips the kill -9 step.
set -euo pipefail
BUILD_DIR=$(realpath "${1:?usage: tests/e2e/run.sh BUILD_DIR}")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
APP_DIR=$ROOT/examples/nextjs
E2E_DIR=$ROOT/tests/e2e
OUT=$BUILD_DIR/e2e
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export NEXT_TELEMETRY_DISABLED=1
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
RENDER=$ROOT/deploy/nginx/render

for tool in node npm python3 "$CHROMIUM" "$NGINX" "$RENDER" "$BUILD_DIR/daemon/miraged" "$BUILD_DIR/tools/model/mirage-model"; do
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
  for log in miraged worker-e2e-a worker-e2e-b fake-stripe next nginx nginx/error; do
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
PG_PORT=$(free_port) API_PORT=$(free_port) STRIPE_PORT=$(free_port) APP_PORT=$(free_port) FRONT_PORT=$(free_port)
WORKERS=(e2e-a e2e-b)
declare -A MEDIA_PORT WORKER_PID
declare -A SRT_PORT RTSP_PORT
for w in "${WORKERS[@]}"; do MEDIA_PORT[$w]=$(free_port) SRT_PORT[$w]=$(free_port) RTSP_PORT[$w]=$(free_port); done
# The browser's one origin: nginx. The app, the API and the workers' media
# ports are behind it, on ports of their own that chromium never sees.
FRONT_URL=http://127.0.0.1:$FRONT_PORT
API_URL=http://127.0.0.1:$API_PORT # the fake Stripe's webhook goes straight there

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

# nginx, rendered from the template a deployment copies (deploy/nginx/mirage.conf).
RENDER_ARGS=(--out "$TMP/nginx" --listen "127.0.0.1:$FRONT_PORT" --app "127.0.0.1:$APP_PORT" --api "127.0.0.1:$API_PORT")
for w in "${WORKERS[@]}"; do RENDER_ARGS+=(--worker "$w=127.0.0.1:${MEDIA_PORT[$w]}"); done
"$RENDER" "${RENDER_ARGS[@]}" >"$TMP/render.log" 2>&1 || { cat "$TMP/render.log"; exit 1; }
echo "e2e: nginx on $FRONT_PORT in front of the app ($APP_PORT), the API ($API_PORT) and the workers ($(for w in "${WORKERS[@]}"; do printf '%s ' "$w=${MEDIA_PORT[$w]}"; done | sed 's/ $//'))"
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' >"$TMP/nginx.log" 2>&1 &
PIDS+=($!)

MODEL=$BUILD_DIR/models/styles.pt
[ -f "$MODEL" ] || { mkdir -p "$BUILD_DIR/models" && "$BUILD_DIR/tools/model/mirage-model" styles "$MODEL"; }
# The API and two media workers, as separate processes that share only the
# database: the app reaches a worker through the URLs the API gives, which
# point through nginx (--public-media-url FRONT/w/NAME). Each worker takes
# one stream, so a stream whose worker is killed has one place to go.
DB_URL="postgresql://mirage@127.0.0.1:$PG_PORT/mirage"
"$BUILD_DIR/daemon/miraged" migrate --database-url "$DB_URL" >"$TMP/migrate.log" 2>&1 ||
  { cat "$TMP/migrate.log"; exit 1; }
# Every request reaches them from nginx on 127.0.0.1: they believe its
# X-Forwarded-For (--trusted-proxies), so per-address limits see the client.
echo "e2e: miraged serve on $API_PORT, miraged worker ${WORKERS[*]}"
env MIRAGE_DATABASE_URL="$DB_URL" MIRAGE_HTTP_ADDR=127.0.0.1:$API_PORT \
  MIRAGE_PUBLIC_URL="$FRONT_URL" MIRAGE_CORS_ORIGIN="$FRONT_URL" MIRAGE_TRUSTED_PROXIES=127.0.0.1 \
  MIRAGE_ARGON2_MEMORY_KIB=1024 MIRAGE_ARGON2_ITERATIONS=1 \
  MIRAGE_STRIPE_SECRET_KEY="$SECRET_KEY" MIRAGE_STRIPE_WEBHOOK_SECRET="$WEBHOOK_SECRET" \
  MIRAGE_STRIPE_API_BASE=http://127.0.0.1:$STRIPE_PORT \
  MIRAGE_CHECKOUT_SUCCESS_URL="$FRONT_URL/dashboard/credits?session_id={CHECKOUT_SESSION_ID}" \
  MIRAGE_CHECKOUT_CANCEL_URL="$FRONT_URL/dashboard/credits?canceled=1" \
  "$BUILD_DIR/daemon/miraged" serve >"$TMP/miraged.log" 2>&1 &
PIDS+=($!)
# env execs miraged: $! is miraged itself, the process the test kills with -9.
for w in "${WORKERS[@]}"; do
  env GST_PLUGIN_PATH="$BUILD_DIR/plugins" GST_REGISTRY="$TMP/registry-$w.bin" \
    MIRAGE_DATABASE_URL="$DB_URL" MIRAGE_WORKER_NAME="$w" MIRAGE_CAPACITY=1 \
    MIRAGE_MEDIA_ADDR=127.0.0.1:${MEDIA_PORT[$w]} MIRAGE_PUBLIC_MEDIA_URL="$FRONT_URL/w/$w" \
    MIRAGE_TRUSTED_PROXIES=127.0.0.1 \
    MIRAGE_SRT_ADDR=127.0.0.1:${SRT_PORT[$w]} MIRAGE_RTSP_ADDR=127.0.0.1:${RTSP_PORT[$w]} MIRAGE_HLS_DIR="$TMP/hls-$w" \
    "$BUILD_DIR/daemon/miraged" worker --model "$MODEL" >"$TMP/worker-$w.log" 2>&1 &
  WORKER_PID[$w]=$!
  PIDS+=($!)
done

# The app's URLs are inlined at build time; this build has its own folder,
# so the one `./dev run` uses is left alone. Its API is the front's /api/.
echo "e2e: building examples/nextjs for $FRONT_URL"
(cd "$APP_DIR" && NEXT_DIST_DIR=.next-e2e NEXT_PUBLIC_API_URL=$FRONT_URL \
  node_modules/.bin/next build >"$TMP/next-build.log" 2>&1) || { cat "$TMP/next-build.log"; exit 1; }
(cd "$APP_DIR" && NEXT_DIST_DIR=.next-e2e \
  exec node_modules/.bin/next start -H 127.0.0.1 -p "$APP_PORT") >"$TMP/next.log" 2>&1 &
PIDS+=($!)

wait_port "$API_PORT" miraged
for w in "${WORKERS[@]}"; do
  wait_port "${MEDIA_PORT[$w]}" "the media worker $w"
  # Registered in the database (it says so once its row is written).
  for _ in $(seq 300); do grep -q "media worker '$w'" "$TMP/worker-$w.log" && break; sleep 0.1; done
  grep -q "media worker '$w'" "$TMP/worker-$w.log" || { echo "e2e: the worker $w did not register" >&2; exit 1; }
done
wait_port "$STRIPE_PORT" "the fake Stripe"
wait_port "$APP_PORT" "the Next.js app"
wait_port "$FRONT_PORT" nginx

rm -rf "$OUT" && mkdir -p "$OUT"
echo "e2e: chromium ($("$CHROMIUM" --version 2>/dev/null | head -n 1)) against $FRONT_URL"
PID_LIST=$(for w in "${WORKERS[@]}"; do printf '%s=%s,' "$w" "${WORKER_PID[$w]}"; done)
rc=0
# E2E_PSQL and E2E_DATABASE_URL: the one shortcut the test takes (a ledger
# entry, so that the credit warnings need not wait 45 minutes of streaming).
APP_URL=$FRONT_URL STRIPE_URL=http://127.0.0.1:$STRIPE_PORT E2E_WORKER_PIDS=${PID_LIST%,} OUT_DIR=$OUT \
  E2E_PSQL=$PG_BIN/psql E2E_DATABASE_URL=$DB_URL \
  node "$E2E_DIR/streaming.test.mjs" || rc=$?
[ "$rc" -eq 0 ] || show_logs
SUMMARY=$(python3 -c 'import json, sys; print("%(passed)d passed, %(failed)d failed, %(skipped)d skipped" % json.load(open(sys.argv[1])))' "$OUT/results.json") ||
  SUMMARY="0 passed, 1 failed, 0 skipped"
exit "$rc"
