#!/usr/bin/env bash
# Creates .venv and installs scripts/requirements.txt into it: every package pinned
# with its hashes (generated from requirements.in by `make requirements`), so a changed
# or substituted download is refused. Idempotent: does nothing when the requirements
# have not changed since the last successful install.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

req=scripts/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -x .venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
echo "Installing Python tools into .venv (first run: a minute or two)…"
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r "$req"
echo "$want" >"$stamp"
