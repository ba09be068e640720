#!/usr/bin/env bash
# The `openapi` meson test: tests/openapi/check.mjs with its npm packages
# (pinned in package-lock.json, installed with npm ci when missing or older
# than the lock file). Arguments: what check.mjs takes.
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ ! -f "$DIR/node_modules/.package-lock.json" ] || [ "$DIR/package-lock.json" -nt "$DIR/node_modules/.package-lock.json" ]; then
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
exec node "$DIR/check.mjs" "$@"
