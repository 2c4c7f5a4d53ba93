#!/usr/bin/env bash
# make down: stop whatever `make demo` started in the background.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
for pidfile in "$STATE"/run/*.pid; do
  [[ -e $pidfile ]] || continue
  stop_bg "$(basename "$pidfile" .pid)"
done
echo "stopped"
