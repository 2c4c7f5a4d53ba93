#!/usr/bin/env bash
# The soak: `rps serve` under a fixed request rate for a long time (10 minutes by
# default) while the production alias swaps between two versions every minute and
# the registry (MLflow) is down for two minutes in the middle. Reports errors, latency
# and resident memory over time to bench/results/soak.{json,md}. A benchmark, not a
# test: run it on a quiet machine.
#
#   bash bench/soak.sh        (SOAK_SECONDS=600 SOAK_RATE=500 to change)
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_RATE=${SOAK_RATE:-500}
bash scripts/setup-python.sh
cargo build --release --locked -p rps-cli -p rps-bench
LOADGEN="$BIN_DIR/loadgen"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

mlflow_port=$(free_port 0)
start_mlflow() {
  setsid "$ROOT/.venv/bin/mlflow" server --host 127.0.0.1 --port "$mlflow_port" \
    --backend-store-uri "sqlite:///$work/mlflow.db" --artifacts-destination "$work/artifacts" \
    --workers 1 >>"$work/mlflow.log" 2>&1 &
  mlflow_pid=$!
  pids+=($mlflow_pid)
  wait_http "http://127.0.0.1:$mlflow_port/health" 120
}
start_mlflow
export MLFLOW_TRACKING_URI="http://127.0.0.1:$mlflow_port"
export RPS_STORE="$work/store" RPS_MODEL_CACHE="$work/cache" RPS_MODEL_NAME=soak
"$RPS" sample serve --port 0 --port-file "$work/replay.port" >/dev/null 2>&1 &
pids+=($!)
wait_for_file "$work/replay.port" 10
export OPEN_METEO_ARCHIVE_URL="http://127.0.0.1:$(cat "$work/replay.port")/v1/archive"

echo "== two versions"
"$RPS" pipeline run --start 2023-01-01 --end 2023-09-30 >/dev/null 2>&1
"$RPS" pipeline run --start 2023-01-01 --end 2023-12-31 >/dev/null 2>&1
set_production() {
  curl -sf -X POST -H 'Content-Type: application/json' \
    -d "{\"name\": \"soak\", \"alias\": \"production\", \"version\": \"$1\"}" \
    "$MLFLOW_TRACKING_URI/api/2.0/mlflow/registered-models/alias" >/dev/null
}
set_production 1
python3 - "$work/predict.json" <<'PY'
import json, sys
h = json.load(open("data/sample/open-meteo-archive-sandpoint-ak-2023.json"))["hourly"]
obs = [{k: h[k][i] for k in h if k != "precipitation"} for i in range(8000, 8025)]
json.dump({"observations": obs}, open(sys.argv[1], "w"))
PY

echo "== serving for ${SOAK_SECONDS}s at ${SOAK_RATE} req/s"
port=$(free_port 0)
RPS_MODEL_REFRESH_SECS=5 MLFLOW_HTTP_REQUEST_TIMEOUT=2 setsid "$RPS" serve --port "$port" >"$work/serve.log" 2>&1 &
serve_pid=$!; pids+=($serve_pid)
wait_http "http://127.0.0.1:$port/ready" 60
"$LOADGEN" rate --addr "127.0.0.1:$port" --body "$work/predict.json" --rate "$SOAK_RATE" \
  --seconds "$SOAK_SECONDS" --connections 4 >"$work/rate.json" &
load=$!
outage_start=$((SOAK_SECONDS * 2 / 5)); outage_end=$((outage_start + SOAK_SECONDS / 5))
echo "t_seconds,rss_kb,event" >"$work/timeline.csv"
version=1; down=0
for ((t = 0; t < SOAK_SECONDS; t += 10)); do
  event=""
  if ((t > 0 && t % 60 == 0 && down != 1)); then
    version=$((3 - version)); set_production "$version"; event="production -> $version"
  fi
  if ((t >= outage_start && down == 0 && t < outage_end)); then
    kill -TERM -- "-$mlflow_pid" 2>/dev/null || true; down=1; event="MLflow stopped"
  elif ((t >= outage_end && down == 1)); then
    start_mlflow; down=2; event="MLflow back"
  fi
  echo "$t,$(ps -o rss= -p "$serve_pid" | tr -d ' '),$event" >>"$work/timeline.csv"
  sleep 10
done
wait "$load"
curl -s "http://127.0.0.1:$port/metrics" >"$work/metrics.txt"

mkdir -p bench/results
python3 - "$work" "$SOAK_SECONDS" "$SOAK_RATE" <<'PY'
import csv, json, re, sys, platform, os
work, seconds, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
r = json.load(open(f"{work}/rate.json"))
rows = list(csv.DictReader(open(f"{work}/timeline.csv")))
rss = [int(x["rss_kb"]) for x in rows if x["rss_kb"]]
metrics = open(f"{work}/metrics.txt").read()
def metric(pattern):
    m = re.search(pattern, metrics)
    return float(m.group(1)) if m else 0.0
swaps = metric(r'rps_model_refreshes_total\{result="swapped"\} ([0-9.]+)')
refresh_errors = metric(r'rps_model_refreshes_total\{result="error"\} ([0-9.]+)')
half = len(rss) // 2
out = {
    "seconds": seconds, "target_rps": rate, "requests": r.get("requests"), "errors": r.get("errors"),
    "p50_ms": r.get("p50_ms"), "p99_ms": r.get("p99_ms"), "max_ms": r.get("max_ms"),
    "rss_mb_first": rss[0] / 1024, "rss_mb_max": max(rss) / 1024, "rss_mb_last": rss[-1] / 1024,
    "rss_mb_first_half_max": max(rss[:half]) / 1024, "rss_mb_second_half_max": max(rss[half:]) / 1024,
    "model_swaps": swaps, "refresh_errors_during_outage": refresh_errors,
    "events": [x for x in rows if x["event"]],
    "machine": f"{os.cpu_count()} cores, {platform.machine()}",
}
json.dump(out, open("bench/results/soak.json", "w"), indent=2)
md = f"""# Soak: rps serve for {seconds} s at {rate:.0f} requests/s

Alias swaps every minute; MLflow down for {seconds // 5} s in the middle. Machine: {out['machine']}.

| | |
|---|---:|
| requests | {out['requests']} |
| errors | {out['errors']} |
| latency p50 / p99 / max | {out['p50_ms']:.2f} / {out['p99_ms']:.2f} / {out['max_ms']:.1f} ms |
| resident memory: first / max / last | {out['rss_mb_first']:.1f} / {out['rss_mb_max']:.1f} / {out['rss_mb_last']:.1f} MB |
| resident memory: max of the first half / of the second half | {out['rss_mb_first_half_max']:.1f} / {out['rss_mb_second_half_max']:.1f} MB |
| model swaps seen by the service | {swaps:.0f} |
| failed registry checks (the outage) | {refresh_errors:.0f} |
"""
open("bench/results/soak.md", "w").write(md)
print(md)
PY
