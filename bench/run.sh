#!/usr/bin/env bash
# The prediction-service benchmark: rps-api and a Python peer (scikit-learn served by
# `mlflow models serve`), measured in the same run on this machine. Writes
# bench/results/latest.{json,md}. Takes about three minutes.
#
#   bash bench/run.sh            (RATE=1000 SECONDS_AT_RATE=20 to change the fixed-rate test)
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

RATE=${RATE:-1000}
SECONDS_AT_RATE=${SECONDS_AT_RATE:-20}
bash scripts/setup-python.sh
cargo build --release --locked -p rps-cli -p rps-api -p rps-bench
LOADGEN="$BIN_DIR/loadgen"
API="$BIN_DIR/rps-api"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# A model and its data, from the shipped sample (local store and registry).
"$RPS" sample serve --port 0 --port-file "$work/replay.port" >/dev/null 2>&1 &
pids+=($!)
wait_for_file "$work/replay.port" 10
export RPS_STORE="$work/store" RPS_MODEL_CACHE="$work/cache"
export OPEN_METEO_ARCHIVE_URL="http://127.0.0.1:$(cat "$work/replay.port")/v1/archive"
"$RPS" pipeline run --start 2023-01-01 --end 2023-12-31 --json 2>/dev/null | tail -1 >"$work/run.json"
version=$(python3 -c "import json;print(json.load(open('$work/run.json'))['data_version'])")
"$RPS" data pull "$version" --output "$work/data.parquet" >/dev/null
python3 - "$work/predict.json" <<'PY'
import json, sys
h = json.load(open("data/sample/open-meteo-archive-sandpoint-ak-2023.json"))["hourly"]
obs = [{k: h[k][i] for k in h if k != "precipitation"} for i in range(8000, 8025)]
json.dump({"observations": obs}, open(sys.argv[1], "w"))
PY

echo "== rps-api"
port=$(free_port 0)
api_cmd=(env RPS_MODEL_ALIAS=candidate RPS_MODEL_REFRESH_SECS=0 PORT="$port" "$API")
"${api_cmd[@]}" >/dev/null 2>&1 &   # once, to fill the model cache
pids+=($!); wait_http "http://127.0.0.1:$port/ready" 30; kill "${pids[-1]}"; sleep 0.5
"$LOADGEN" cold-start --addr "127.0.0.1:$port" --body "$work/predict.json" --runs 7 -- "${api_cmd[@]}" >"$work/rps-cold.json"
setsid "${api_cmd[@]}" >/dev/null 2>&1 &
api_pid=$!; pids+=($api_pid)
wait_http "http://127.0.0.1:$port/ready" 30
"$LOADGEN" throughput --addr "127.0.0.1:$port" --body "$work/predict.json" --concurrency 8 --seconds 10 >"$work/rps-throughput.json"
"$LOADGEN" rate --addr "127.0.0.1:$port" --body "$work/predict.json" --rate "$RATE" --seconds "$SECONDS_AT_RATE" >"$work/rps-rate.json"
"$LOADGEN" rss --pid "$api_pid" >"$work/rps-rss.json"
kill -TERM -- "-$api_pid" 2>/dev/null || true

echo "== Python peer (scikit-learn + mlflow models serve)"
.venv/bin/python bench/peer.py "$work/data.parquet" "$work/peer-model" "$work/peer.json" >"$work/peer-train.json"
pport=$(free_port 0)
peer_cmd=(env PATH="$ROOT/.venv/bin:$PATH" MLFLOW_DISABLE_ENV_CREATION=true "$ROOT/.venv/bin/mlflow" models serve -m "$work/peer-model" --env-manager local --host 127.0.0.1 -p "$pport" --workers 2)
"$LOADGEN" cold-start --addr "127.0.0.1:$pport" --path /invocations --body "$work/peer.json" --runs 3 -- "${peer_cmd[@]}" >"$work/peer-cold.json"
setsid "${peer_cmd[@]}" >"$work/peer.log" 2>&1 &
peer_pid=$!; pids+=($peer_pid)
wait_http "http://127.0.0.1:$pport/ping" 120
"$LOADGEN" throughput --addr "127.0.0.1:$pport" --path /invocations --body "$work/peer.json" --concurrency 8 --seconds 10 >"$work/peer-throughput.json"
peer_rate=$(python3 -c "import json;print(max(1, int(json.load(open('$work/peer-throughput.json'))['throughput_rps'] / 2)))")
"$LOADGEN" rate --addr "127.0.0.1:$pport" --path /invocations --body "$work/peer.json" --rate "$peer_rate" --seconds "$SECONDS_AT_RATE" --connections 8 >"$work/peer-rate.json"
"$LOADGEN" rss --pid "$peer_pid" >"$work/peer-rss.json"
kill -TERM -- "-$peer_pid" 2>/dev/null || true

echo "== Lambda zip (what sam build ships: scripts/sam-build.sh)"
RPS_SAM_HOST_TOOLCHAIN=1 bash scripts/sam-build.sh x86_64 >"$work/zip.log" 2>&1 || { tail -20 "$work/zip.log"; exit 1; }
zip="$work/rps-api.zip"
(cd .aws-sam/build/ApiFunction && python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED); z.write("bootstrap"); z.close()' "$zip")

mkdir -p bench/results
python3 bench/report.py "$work" "$zip" "$RATE" bench/results/latest
cat bench/results/latest.md
