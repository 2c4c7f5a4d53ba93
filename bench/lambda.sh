#!/usr/bin/env bash
# The stage Lambdas measured on this machine: each function's zip (the bootstrap `sam
# build` made, zipped as the deployment package holds it; scripts/sam-build.sh with the
# host toolchain), its Init Duration (process start to its first request
# for an event, as AWS reports it), its invocation on the sample year (each stage's
# event made from the previous stage's answer) and its peak memory, each function under
# a minimal Lambda Runtime API (bench/lambda_runtime.py). Writes
# bench/results/lambda.{json,md}.
#
#   bash bench/lambda.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

bash scripts/setup-python.sh
export PATH="$ROOT/.venv/bin:$PATH"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
functions=(rps-ingest rps-validate rps-transform rps-train rps-evaluate rps-promote rps-verify rps-api)

echo "== sam build, zips"
RPS_SAM_HOST_TOOLCHAIN=1 bash scripts/sam-build.sh x86_64 >"$work/sam.log" 2>&1 || { tail -20 "$work/sam.log"; exit 1; }
cargo build --release --locked -p rps-cli
python3 - "$BIN_DIR" "$work/zips" "${functions[@]}" <<'PY'
import os, sys, zipfile
release, out, functions = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(out, exist_ok=True)
for f in functions:
    info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(f"{out}/{f}.zip", "w") as z, open(f"{release}/{f}", "rb") as b:
        z.writestr(info, b.read(), compresslevel=9)
PY

echo "== MLflow, the replay"
mlflow_port=$(free_port 0)
setsid "$ROOT/.venv/bin/mlflow" server --host 127.0.0.1 --port "$mlflow_port" \
  --backend-store-uri "sqlite:///$work/mlflow.db" --artifacts-destination "$work/artifacts" --workers 1 \
  >"$work/mlflow.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$mlflow_port/health" 120
"$RPS" sample serve --port 0 --port-file "$work/replay.port" >/dev/null 2>&1 &
pids+=($!)
wait_for_file "$work/replay.port" 10
export RPS_STORE="$work/store" RPS_MODEL_CACHE="$work/cache" MLFLOW_TRACKING_URI="http://127.0.0.1:$mlflow_port"
export OPEN_METEO_ARCHIVE_URL="http://127.0.0.1:$(cat "$work/replay.port")/v1/archive" RPS_GATE_MAX_P99_MS=1000

# Each function under a minimal Lambda Runtime API: its Init Duration, its invocation
# on the sample year (the events chained from one stage to the next), its peak memory.
run() { .venv/bin/python bench/lambda_runtime.py "$BIN_DIR/$1" "${@:2}"; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["invocations"][0]["body"][sys.argv[2]])' "$1" "$2"; }
started=$(date +%s%N)
r=$(run rps-ingest '{"mode": "backfill", "start": "2023-01-01", "end": "2023-12-31"}'); echo "$r" >"$work/rps-ingest.json"
snap=$(field "$r" snapshot)
r=$(run rps-validate "{\"snapshot\": \"$snap\"}"); echo "$r" >"$work/rps-validate.json"
r=$(run rps-transform "{\"snapshots\": [\"$snap\"]}"); echo "$r" >"$work/rps-transform.json"
dv=$(field "$r" data_version)
r=$(run rps-train "{\"data_version\": \"$dv\"}"); echo "$r" >"$work/rps-train.json"
v=$(field "$r" model_version)
r=$(run rps-evaluate "{\"candidate\": \"$v\"}"); echo "$r" >"$work/rps-evaluate.json"
report=$(field "$r" report)
r=$(run rps-promote "{\"candidate\": \"$v\", \"report\": \"$report\"}"); echo "$r" >"$work/rps-promote.json"
stages_ms=$(( ($(date +%s%N) - started) / 1000000 ))
# The hourly loop's stage on the year just promoted: the scheduled forecast, the log
# scored, the drift of the last week against the model.
r=$(run rps-verify '{"issue": true}'); echo "$r" >"$work/rps-verify.json"
RPS_MODEL_ALIAS=production run rps-api "$(python3 - <<'PY'
import json
h = json.load(open("data/sample/open-meteo-archive-sandpoint-ak-2023.json"))["hourly"]
obs = [{k: h[k][i] for k in h if k != "precipitation"} for i in range(8000, 8025)]
print(json.dumps({"version": "2.0", "routeKey": "$default", "rawPath": "/predict", "rawQueryString": "",
  "headers": {"content-type": "application/json"}, "isBase64Encoded": False,
  "requestContext": {"accountId": "1", "apiId": "rps", "domainName": "localhost", "domainPrefix": "localhost",
    "http": {"method": "POST", "path": "/predict", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
    "requestId": "b", "routeKey": "$default", "stage": "$default", "time": "22/Nov/2026:00:00:00 +0000", "timeEpoch": 0},
  "body": json.dumps({"observations": obs})}))
PY
)" >"$work/rps-api.json"

mkdir -p bench/results
python3 - "$work" "$CARGO_TARGET_DIR" "$stages_ms" "${functions[@]}" <<'PY'
import json, os, sys, platform
work, target, stages_ms, functions = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
rows = []
for f in functions:
    r = json.load(open(f"{work}/{f}.json"))
    z = os.path.join(work, "zips", f + ".zip")
    inv = r["invocations"][0]
    if f == "rps-api":  # an API Gateway answer: ok only if the prediction was served
        inv["ok"] = inv["ok"] and inv["body"].get("statusCode") == 200
    rows.append({"function": f, "zip_mb": os.path.getsize(z) / 1e6 if os.path.exists(z) else None,
                 "init_ms": r["init_ms"], "invocation_ms": inv["ms"], "ok": inv["ok"], "peak_memory_mb": r["peak_mb"]})
out = {"functions": rows, "stages_ms": stages_ms, "machine": f"{os.cpu_count()} cores, {platform.machine()}"}
json.dump(out, open("bench/results/lambda.json", "w"), indent=2)
md = ["# The stage Lambdas under a Lambda Runtime API", "",
      f"{out['machine']}; x86_64 builds (no arm64 target here). The sample year through every stage: {stages_ms / 1000:.1f} s.", "",
      "| function | zip | init (cold start) | invocation on the sample year | peak memory |", "|---|---:|---:|---:|---:|"]
for r in rows:
    z = f"{r['zip_mb']:.2f} MB" if r["zip_mb"] else "–"
    ok = "" if r["ok"] else " (failed)"
    md.append(f"| {r['function']} | {z} | {r['init_ms']} ms | {r['invocation_ms']} ms{ok} | {r['peak_memory_mb']:.0f} MB |")
open("bench/results/lambda.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
