#!/usr/bin/env bash
# One API for many locations: rps-api with RPS_LOCATIONS listing N locations (default
# 1000), each with its own registered model. One location is trained on the shipped
# sample year; the others are its copies under their own ids and model names (the same
# bundle: serving cost does not depend on the weather it learnt). Measures, with the
# default RPS_MODEL_CACHE_MB unless told otherwise:
#   - cold: one request to each location in turn, none in memory (their bundles in the
#     disk cache, as after a first pass): every request loads its model;
#   - hot: 1,000 requests/s spread over HOT locations (default 50), all in memory;
#   - spread: 1,000 requests/s spread over all N (most are loads);
#   - peak and current RSS after all of it.
# Writes bench/results/fleet-serve.{json,md}.
#
#   bash bench/fleet-serve.sh             # about 5 minutes on 2 cores
#   N=200 HOT=20 bash bench/fleet-serve.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

N=${N:-1000}
HOT=${HOT:-50}
cargo build --release --locked -p rps-cli -p rps-api -p rps-bench
LOADGEN="$BIN_DIR/loadgen"
API="$BIN_DIR/rps-api"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$RPS" sample serve --port 0 --port-file "$work/replay.port" >/dev/null 2>&1 &
pids+=($!)
wait_for_file "$work/replay.port" 10
export OPEN_METEO_ARCHIVE_URL="http://127.0.0.1:$(cat "$work/replay.port")/v1/archive"
export RPS_STORE="$work/store" RPS_MODEL_CACHE="$work/cache"
unset MLFLOW_TRACKING_URI

# One location trained (local registry, its version at `candidate`), then N copies.
echo '[{"id": "site-0000", "latitude": 55.317, "longitude": -160.517}]' >"$work/one.json"
RPS_LOCATIONS="$work/one.json" "$RPS" pipeline run --start 2023-01-01 --end 2023-12-31 --json 2>"$work/run.log" | tail -1 >"$work/run.json" || {
  tail -20 "$work/run.log"; exit 1; }
python3 - "$N" "$work" <<'PY'
import json, os, shutil, sys
n, work = int(sys.argv[1]), sys.argv[2]
root = os.path.join(work, "store", "locations")
src = os.path.join(root, "site-0000")
first = "rps-temperature-site-0000"
for i in range(1, n):
    sid = f"site-{i:04d}"
    name = f"rps-temperature-{sid}"
    for top in ("registry", "models"):
        a, b = os.path.join(src, top, first), os.path.join(root, sid, top, name)
        shutil.copytree(a, b)
    for d, _, files in os.walk(os.path.join(root, sid, "registry")):
        for f in files:
            p = os.path.join(d, f)
            text = open(p).read()
            open(p, "w").write(text.replace(first, name).replace("locations/site-0000/", f"locations/{sid}/"))
ids = [f"site-{i:04d}" for i in range(n)]
json.dump([{"id": s, "latitude": 55.317 + 0.001 * i, "longitude": -160.517} for i, s in enumerate(ids)],
          open(os.path.join(work, "locations.json"), "w"))
open(os.path.join(work, "all.ids"), "w").write("\n".join(ids) + "\n")
PY
head -n "$HOT" "$work/all.ids" >"$work/hot.ids"
python3 - "$work/predict.json" <<'PY'
import json, sys
h = json.load(open("data/sample/open-meteo-archive-sandpoint-ak-2023.json"))["hourly"]
obs = [{k: h[k][i] for k in h if k != "precipitation"} for i in range(8000, 8025)]
json.dump({"observations": obs}, open(sys.argv[1], "w"))
PY

port=$(free_port 0)
export RPS_LOCATIONS="$work/locations.json" RPS_MODEL_ALIAS=candidate RPS_MODEL_REFRESH_SECS=0 PORT="$port"
"$API" >"$work/api.log" 2>&1 &
api_pid=$!; pids+=($api_pid)
wait_http "http://127.0.0.1:$port/ready" 30
target=(--addr "127.0.0.1:$port" --body "$work/predict.json")
# A first pass fills the disk cache (what a long-running API has), unmeasured.
"$LOADGEN" rate "${target[@]}" --locations "$work/all.ids" --rate 200 --seconds "$((N / 200 + 1))" --warmup-seconds 0 --connections 4 >"$work/fill.json"
# Cold: every request a location not in memory (the cache holds far fewer than N).
"$LOADGEN" rate "${target[@]}" --locations "$work/all.ids" --rate 100 --seconds "$((N / 100))" --warmup-seconds 0 --connections 4 >"$work/cold.json"
"$LOADGEN" rate "${target[@]}" --locations "$work/hot.ids" --rate 1000 --seconds 20 >"$work/hot.json"
"$LOADGEN" rate "${target[@]}" --locations "$work/all.ids" --rate 1000 --seconds 10 --warmup-seconds 0 >"$work/spread.json"
"$LOADGEN" rss --pid "$api_pid" >"$work/rss.json"
curl -s "http://127.0.0.1:$port/metrics" >"$work/metrics.txt"

mkdir -p bench/results
python3 - "$work" "$N" "$HOT" bench/results/fleet-serve <<'PY'
import json, os, platform, sys
work, n, hot, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
r = {k: json.load(open(os.path.join(work, k + ".json"))) for k in ("cold", "hot", "spread", "rss")}
m = {}
for line in open(os.path.join(work, "metrics.txt")):
    if line.startswith(("rps_model_evictions_total ", "rps_models_resident ", "rps_model_cache_limit_bytes ", "rps_model_cache_bytes ")):
        k, v = line.split()
        m[k] = float(v)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
doc = {"machine": f"{os.cpu_count()} cores, {cpu}", "locations": n, "hot_locations": hot, **r, "metrics": m}
json.dump(doc, open(out + ".json", "w"), indent=2)
rss = r["rss"]
md = ["# One API, many locations", "",
      f"Machine: {doc['machine']}. rps-api with {n} locations configured, each its own registered model "
      f"(the shipped sample's, about 1.6 MB in memory), RPS_MODEL_CACHE_MB {m.get('rps_model_cache_limit_bytes', 0) / 2**20:.0f}.", "",
      "| run | requests | errors | p50 (ms) | p99 (ms) | max (ms) |", "|---|---:|---:|---:|---:|---:|"]
for k, what in (("cold", f"cold: {n} locations in turn, each loaded from the disk cache"),
                ("hot", f"hot: 1,000/s over {hot} loaded locations"),
                ("spread", f"spread: 1,000/s over all {n}")):
    x = r[k]
    md.append(f"| {what} | {x['requests']} | {x['errors']} | {x['p50_ms']:.2f} | {x['p99_ms']:.2f} | {x['max_ms']:.2f} |")
md += ["", f"Peak RSS {rss['peak_rss_mb_total']:.0f} MB, current {rss['rss_mb_total']:.0f} MB; "
       f"{m.get('rps_models_resident', 0):.0f} locations in memory at the end, "
       f"{m.get('rps_model_evictions_total', 0):.0f} unloaded in all."]
open(out + ".md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
