#!/usr/bin/env bash
# npm packages the tests use (package.json, locked by package-lock.json), installed into
# node_modules. Idempotent: skipped when the lock file has not changed since the last
# install.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -d node_modules && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
echo "Installing npm packages into node_modules…"
npm ci --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
