#!/usr/bin/env bash
# make down: stop whatever `make demo` left running (MLflow, the API, the replay).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
stopped=()
for pidfile in "$STATE"/run/*.pid; do
  [[ -e $pidfile ]] || continue
  name=$(basename "$pidfile" .pid)
  stop_bg "$name"
  stopped+=("$name")
done
rm -f "$STATE"/run/*.uri "$STATE"/run/*.port
echo "stopped: ${stopped[*]:-nothing was running}"
