# Shared by the scripts: paths, and background services that stop with the script.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
RPS="$CARGO_TARGET_DIR/release/rps"
STATE="$ROOT/.rps"
mkdir -p "$STATE/run"

# start_bg NAME CMD...: runs CMD in the background, remembering its pid in .rps/run.
start_bg() {
  local name=$1; shift
  "$@" >"$STATE/run/$name.log" 2>&1 &
  echo $! >"$STATE/run/$name.pid"
}

stop_bg() {
  local pidfile="$STATE/run/$1.pid"
  if [[ -f $pidfile ]]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
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
