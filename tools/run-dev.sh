#!/usr/bin/env bash
# `./dev run`: an embedded PostgreSQL under var/, miraged on it, a demo
# account with credits, the element demo with the sample model, and the
# Next.js example app (examples/nextjs, built when its sources changed).
# Without MIRAGE_STRIPE_SECRET_KEY, checkout goes to a local fake Stripe
# (tests/e2e/fake-stripe.mjs). Ctrl-C stops everything (the database too).
#
# Every port is checked before anything starts (tools/check-ports): one in
# use is named with the variable that moves it. A service that fails to start
# has the end of its log printed; the URL is printed once the app answers.
#
# Environment: MIRAGE_PG_PORT (default 55432), MIRAGE_HTTP_ADDR (default
# 127.0.0.1:8080), MIRAGE_MEDIA_ADDR (127.0.0.1:8081), MIRAGE_SRT_ADDR
# (127.0.0.1:9000, UDP), MIRAGE_RTSP_ADDR (127.0.0.1:8554), MIRAGE_APP_PORT
# (3000), MIRAGE_FAKE_STRIPE_PORT (12111), and those of tools/demo.sh.
set -euo pipefail
BUILD_DIR=$1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAR=$ROOT/var
PGDIR=$VAR/postgres
PORT=${MIRAGE_PG_PORT:-55432}
export MIRAGE_HTTP_ADDR=${MIRAGE_HTTP_ADDR:-127.0.0.1:8080}
export MIRAGE_MEDIA_ADDR=${MIRAGE_MEDIA_ADDR:-127.0.0.1:8081}
export MIRAGE_SRT_ADDR=${MIRAGE_SRT_ADDR-127.0.0.1:9000}
export MIRAGE_RTSP_ADDR=${MIRAGE_RTSP_ADDR-127.0.0.1:8554}
APP_PORT=${MIRAGE_APP_PORT:-3000}
STRIPE_PORT=${MIRAGE_FAKE_STRIPE_PORT:-12111}
APP_URL=http://127.0.0.1:$APP_PORT
API="http://$MIRAGE_HTTP_ADDR"
# The web app is another origin: the API allows it with credentials, watch
# links and Checkout's return point at it.
export MIRAGE_CORS_ORIGIN=${MIRAGE_CORS_ORIGIN:-$APP_URL}
export MIRAGE_PUBLIC_URL=${MIRAGE_PUBLIC_URL:-$APP_URL}
RETURN_URL="$APP_URL/dashboard/credits?session_id={CHECKOUT_SESSION_ID}" # Stripe fills in the id
export MIRAGE_CHECKOUT_SUCCESS_URL=${MIRAGE_CHECKOUT_SUCCESS_URL:-$RETURN_URL}
export MIRAGE_CHECKOUT_CANCEL_URL=${MIRAGE_CHECKOUT_CANCEL_URL:-$APP_URL/dashboard/credits?canceled=1}
export NEXT_TELEMETRY_DISABLED=1

# tail_log FILE WHAT: the end of a service's log, after it failed.
tail_log() {
  echo "run: $2 failed to start; the last lines of ${1#"$ROOT"/}:" >&2
  tail -n 25 "$1" 2>/dev/null | sed 's/^/    /' >&2 || echo "    (no log)" >&2
}
PORTS=("PostgreSQL=tcp:127.0.0.1:$PORT:MIRAGE_PG_PORT"
  "the API=tcp:$MIRAGE_HTTP_ADDR:MIRAGE_HTTP_ADDR"
  "the media worker=tcp:$MIRAGE_MEDIA_ADDR:MIRAGE_MEDIA_ADDR"
  "the web app=tcp:127.0.0.1:$APP_PORT:MIRAGE_APP_PORT")
[ -n "$MIRAGE_SRT_ADDR" ] && PORTS+=("SRT ingest=udp:$MIRAGE_SRT_ADDR:MIRAGE_SRT_ADDR")
[ -n "$MIRAGE_RTSP_ADDR" ] && PORTS+=("RTSP ingest=tcp:$MIRAGE_RTSP_ADDR:MIRAGE_RTSP_ADDR")
[ -z "${MIRAGE_STRIPE_SECRET_KEY:-}" ] && PORTS+=("the fake Stripe=tcp:127.0.0.1:$STRIPE_PORT:MIRAGE_FAKE_STRIPE_PORT")
"$ROOT/tools/check-ports" "${PORTS[@]}" || exit 1

BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
AS=()
mkdir -p "$PGDIR"
if [ "$(id -u)" -eq 0 ]; then
  # PostgreSQL refuses to run as root.
  chown -R postgres:postgres "$PGDIR"
  AS=(runuser -u postgres --)
fi

if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
  echo "run: creating a PostgreSQL cluster in $PGDIR"
  "${AS[@]}" "$BIN/initdb" -D "$PGDIR/data" -U mirage --auth=trust -E UTF8 --no-locale >"$PGDIR/initdb.log" 2>&1 ||
    { tail_log "$PGDIR/initdb.log" "initdb (creating the PostgreSQL cluster)"; exit 1; }
fi
"${AS[@]}" "$BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -t 30 \
  -o "-k $PGDIR -p $PORT -c listen_addresses=127.0.0.1" start >/dev/null ||
  { tail_log "$PGDIR/postgres.log" "PostgreSQL (port $PORT, MIRAGE_PG_PORT)"; exit 1; }
DAEMON_PID=
OTHER_PIDS=()
cleanup() {
  for pid in "${OTHER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
  "${AS[@]}" "$BIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
  echo "run: stopped the web app, miraged and PostgreSQL"
}
trap cleanup EXIT
"${AS[@]}" "$BIN/psql" -h "$PGDIR" -p "$PORT" -U mirage -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'mirage'" | grep -q 1 ||
  "${AS[@]}" "$BIN/createdb" -h "$PGDIR" -p "$PORT" -U mirage mirage
export MIRAGE_DATABASE_URL="postgresql://mirage@127.0.0.1:$PORT/mirage"

# The media plane runs diffusionfilter with the sample styles model.
MODEL=$BUILD_DIR/models/styles.pt
if [ ! -f "$MODEL" ]; then
  mkdir -p "$BUILD_DIR/models"
  "$BUILD_DIR/tools/model/mirage-model" styles "$MODEL"
fi
export GST_PLUGIN_PATH=$BUILD_DIR/plugins
export GST_REGISTRY=$BUILD_DIR/registry-daemon.bin

# Payments: Stripe test mode when its keys are in the environment
# (docs/payments.md), else a local fake Checkout page where "Pay" sends the
# signed webhook to miraged. No money moves in either.
if [ -z "${MIRAGE_STRIPE_SECRET_KEY:-}" ]; then
  export MIRAGE_STRIPE_SECRET_KEY=sk_test_mirage_dev MIRAGE_STRIPE_WEBHOOK_SECRET=whsec_mirage_dev
  export MIRAGE_STRIPE_API_BASE=http://127.0.0.1:$STRIPE_PORT
  node "$ROOT/tests/e2e/fake-stripe.mjs" --port "$STRIPE_PORT" --secret-key "$MIRAGE_STRIPE_SECRET_KEY" \
    --webhook-secret "$MIRAGE_STRIPE_WEBHOOK_SECRET" --webhook-url "$API/api/stripe/webhook" >"$VAR/fake-stripe.log" 2>&1 &
  STRIPE_PID=$!
  STRIPE_LOG=$VAR/fake-stripe.log
  OTHER_PIDS+=($STRIPE_PID)
  PAYMENTS="a local fake Stripe Checkout ($MIRAGE_STRIPE_API_BASE; set MIRAGE_STRIPE_SECRET_KEY for Stripe test mode)"
else
  PAYMENTS="Stripe (${MIRAGE_STRIPE_API_BASE:-https://api.stripe.com})"
fi

# One process: the API with a media worker inside (--model). The worker
# talks to the API only through PostgreSQL, as a separate `miraged worker`
# would (tests/e2e and tests/cluster run them apart); one process is simply
# one less thing to start, stop and read the log of on a laptop.
"$BUILD_DIR/daemon/miraged" serve --model "$MODEL" --hls-dir "$VAR/hls" --worker-name dev &
DAEMON_PID=$!
python3 - "$API" "$DAEMON_PID" <<'PY'
import json, os, sys, time, urllib.request, urllib.error
api, pid = sys.argv[1], int(sys.argv[2])
for _ in range(300):
    try:
        urllib.request.urlopen(api + "/api/streams/demo", timeout=1)
        break
    except urllib.error.HTTPError:
        break  # answering (404 before the demo account exists)
    except Exception:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit("run: miraged exited before answering on " + api + "; its log is above")
        time.sleep(0.1)
else:
    sys.exit("run: miraged did not answer on " + api + " within 30 s; its log is above")
req = urllib.request.Request(api + "/api/auth/register", method="POST",
    data=json.dumps({"username": "demo", "email": "demo@example.org", "password": "demo-password"}).encode(),
    headers={"Content-Type": "application/json"})
try:
    urllib.request.urlopen(req)
    print("run: created the demo account")
except urllib.error.HTTPError as e:
    if e.code != 409:
        raise
PY
if ! "${AS[@]}" "$BIN/psql" -h "$PGDIR" -p "$PORT" -U mirage -d mirage -tAc \
     "SELECT 1 FROM credit_ledger l JOIN users u ON u.id = l.user_id WHERE u.username = 'demo'" | grep -q 1; then
  "$BUILD_DIR/daemon/miraged" credits grant demo 30 --reason "demo account"
fi

# The element demo. With a display it is a window: it runs beside the rest.
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  "$ROOT/tools/demo.sh" "$BUILD_DIR" &
  OTHER_PIDS+=($!)
else
  "$ROOT/tools/demo.sh" "$BUILD_DIR" || true
fi

# The web app: a production build (URLs are inlined at build time), rebuilt
# when a source file, the lock file or the daemon's addresses changed.
APP_DIR=$ROOT/examples/nextjs
export NEXT_PUBLIC_API_URL=$API
if [ ! -f "$APP_DIR/node_modules/.package-lock.json" ] ||
   [ "$APP_DIR/package-lock.json" -nt "$APP_DIR/node_modules/.package-lock.json" ]; then
  echo "run: npm ci in examples/nextjs"
  (cd "$APP_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
STAMP="$NEXT_PUBLIC_API_URL"
if [ ! -f "$APP_DIR/.next/BUILD_ID" ] || [ "$(cat "$APP_DIR/.next/mirage-urls" 2>/dev/null)" != "$STAMP" ] ||
   [ -n "$(cd "$APP_DIR" && find app lib components next.config.ts package-lock.json -newer .next/BUILD_ID -print -quit)" ]; then
  echo "run: building the web app (examples/nextjs, about 30 s)"
  (cd "$APP_DIR" && node_modules/.bin/next build >"$VAR/next-build.log" 2>&1) ||
    { tail -n 30 "$VAR/next-build.log"; exit 1; }
  echo "$STAMP" >"$APP_DIR/.next/mirage-urls"
fi
(cd "$APP_DIR" && exec node_modules/.bin/next start -H 127.0.0.1 -p "$APP_PORT") >"$VAR/next.log" 2>&1 &
APP_PID=$!
OTHER_PIDS+=($APP_PID)
# The URL is printed once the app answers an HTTP request on it (any status).
answered=
for _ in $(seq 300); do
  if python3 -c 'import sys, urllib.request, urllib.error
try: urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError: pass' "$APP_URL/" 2>/dev/null; then answered=1; break; fi
  kill -0 "$APP_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$answered" ] || { tail_log "$VAR/next.log" "the web app (port $APP_PORT, MIRAGE_APP_PORT)"; exit 1; }
if [ -n "${STRIPE_LOG:-}" ] && ! kill -0 "$STRIPE_PID" 2>/dev/null; then
  tail_log "$STRIPE_LOG" "the fake Stripe (port $STRIPE_PORT, MIRAGE_FAKE_STRIPE_PORT)"
  exit 1
fi

cat <<TXT

  miraged        $API  (API reference: docs/api.md)
  media worker   http://$MIRAGE_MEDIA_ADDR  ('dev', inside miraged: WebSocket ingest and watch, HLS under /live/<username>/)
  payments       $PAYMENTS
  database       $MIRAGE_DATABASE_URL (data in var/postgres; logs in var/)

  Open $APP_URL and log in as demo / demo-password (30 credits).

TXT
echo "run: running; Ctrl-C stops everything"
wait "$DAEMON_PID"
