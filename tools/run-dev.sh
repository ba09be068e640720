#!/usr/bin/env bash
# `./dev run`: an embedded PostgreSQL under var/, miraged on it, a demo
# account with credits, and the element demo with the sample model. Ctrl-C
# stops everything (the database too).
#
# Environment: MIRAGE_PG_PORT (default 55432), MIRAGE_HTTP_ADDR (default
# 127.0.0.1:8080), and those of tools/demo.sh.
set -euo pipefail
BUILD_DIR=$1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAR=$ROOT/var
PGDIR=$VAR/postgres
PORT=${MIRAGE_PG_PORT:-55432}
export MIRAGE_HTTP_ADDR=${MIRAGE_HTTP_ADDR:-127.0.0.1:8080}
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
  "${AS[@]}" "$BIN/initdb" -D "$PGDIR/data" -U mirage --auth=trust -E UTF8 --no-locale >"$PGDIR/initdb.log"
fi
"${AS[@]}" "$BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -t 30 \
  -o "-k $PGDIR -p $PORT -c listen_addresses=127.0.0.1" start >/dev/null
DAEMON_PID=
cleanup() {
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
  "${AS[@]}" "$BIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
  echo "run: stopped miraged and PostgreSQL"
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
export MIRAGE_MEDIA_ADDR=${MIRAGE_MEDIA_ADDR:-127.0.0.1:8081}
"$BUILD_DIR/daemon/miraged" serve --model "$MODEL" --hls-dir "$VAR/hls" &
DAEMON_PID=$!
API="http://$MIRAGE_HTTP_ADDR"
python3 - "$API" <<'PY'
import json, sys, time, urllib.request, urllib.error
api = sys.argv[1]
for _ in range(100):
    try:
        urllib.request.urlopen(api + "/api/streams/demo", timeout=1)
        break
    except urllib.error.HTTPError:
        break  # answering (404 before the demo account exists)
    except Exception:
        time.sleep(0.1)
else:
    sys.exit("run: miraged did not start")
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

cat <<TXT

  miraged        $API  (API reference: docs/api.md)
  media server   http://$MIRAGE_MEDIA_ADDR  (WebSocket ingest and watch, HLS under /live/<username>/)
  demo account   demo / demo-password (30 credits)
  database       $MIRAGE_DATABASE_URL (data in var/postgres)

TXT
"$ROOT/tools/demo.sh" "$BUILD_DIR" || true
echo "run: miraged keeps running on $API; Ctrl-C stops it"
wait "$DAEMON_PID"
