# Shared by the scripts: paths, and background services that can be stopped later.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# One compile for every cargo command: `sam build` runs `cargo lambda build --release`,
# which always passes `--target <triple>` and, unless RUSTFLAGS already names a CPU,
# sets RUSTFLAGS="-C target-cpu=…". Building everything for the host's triple with the
# baseline CPU named makes make build, make test and sam build share one target tree.
# (scripts/cargo-env.sh; the Makefile exports the same.)
eval "$(bash "$ROOT/scripts/cargo-env.sh")"
BIN_DIR="$CARGO_TARGET_DIR/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}release"
RPS="${RPS_BIN:-$BIN_DIR/rps}"
STATE="$ROOT/.rps"
# RPS_EXIT_PROMOTION_GATE_FAILED and the other exit codes, generated from the stage table.
# shellcheck source=scripts/exit-codes.sh
source "$ROOT/scripts/exit-codes.sh"
mkdir -p "$STATE/run"

# start_bg NAME CMD...: runs CMD in the background in its own process group, so that
# stop_bg takes its children (e.g. MLflow's workers) with it. The pid goes to .rps/run.
start_bg() {
  local name=$1; shift
  setsid "$@" >"$STATE/run/$name.log" 2>&1 < /dev/null &
  echo $! >"$STATE/run/$name.pid"
}

# running NAME: is the service started by start_bg still alive?
running() {
  local pidfile="$STATE/run/$1.pid"
  [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

stop_bg() {
  local pidfile="$STATE/run/$1.pid"
  if [[ -f $pidfile ]]; then
    local pid; pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}

# wait_for_file PATH SECONDS
wait_for_file() {
  for _ in $(seq 1 $(($2 * 10))); do
    [[ -s $1 ]] && return 0
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2
  return 1
}

# wait_http URL SECONDS: until URL answers 2xx.
wait_http() {
  python3 - "$1" "$2" <<'PY' || { echo "timed out waiting for $1" >&2; return 1; }
import sys, time, urllib.request
url, deadline = sys.argv[1], time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if 200 <= r.status < 300:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.2)
sys.exit(1)
PY
}

# free_port [PREFERRED]: PREFERRED if it is free, else any free port.
free_port() {
  python3 - "${1:-0}" <<'PY'
import socket, sys
for p in (int(sys.argv[1]), 0):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(s.getsockname()[1]); break
    except OSError:
        pass
    finally:
        s.close()
PY
}

# ensure_mlflow: exports MLFLOW_TRACKING_URI, starting a local server (sqlite and a local
# artifact folder under .rps/mlflow) unless one is configured or already running.
ensure_mlflow() {
  if [[ -n "${MLFLOW_TRACKING_URI:-}" ]]; then
    echo "MLflow: $MLFLOW_TRACKING_URI (from the environment)"
    return 0
  fi
  if running mlflow && [[ -f $STATE/run/mlflow.uri ]]; then
    export MLFLOW_TRACKING_URI; MLFLOW_TRACKING_URI=$(cat "$STATE/run/mlflow.uri")
    echo "MLflow: $MLFLOW_TRACKING_URI (already running)"
    return 0
  fi
  bash "$ROOT/scripts/setup-python.sh"
  mkdir -p "$STATE/mlflow/artifacts"
  local port; port=$(free_port 5000)
  start_bg mlflow "$ROOT/.venv/bin/mlflow" server --host 127.0.0.1 --port "$port" \
    --backend-store-uri "sqlite:///$STATE/mlflow/mlflow.db" \
    --artifacts-destination "$STATE/mlflow/artifacts" --workers 1
  export MLFLOW_TRACKING_URI="http://127.0.0.1:$port"
  echo -n "MLflow: starting on $MLFLOW_TRACKING_URI … "
  if ! wait_http "$MLFLOW_TRACKING_URI/health" 120; then
    tail -20 "$STATE/run/mlflow.log" >&2
    stop_bg mlflow
    return 1
  fi
  echo "$MLFLOW_TRACKING_URI" >"$STATE/run/mlflow.uri"
  echo "ready"
}
