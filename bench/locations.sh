#!/usr/bin/env bash
# The fleet benchmark: `rps pipeline run` over N locations in one store (default N = 1,
# 10 and 50; COUNTS="1 10 50 200" for more), RPS_LOCATION_CONCURRENCY at a time
# (default: the cores), on the offline replay of the two shipped stations. Locations
# alternate between the stations, each at coordinates of its own (the replay answers
# from the nearer station), so every one ingests, validates, transforms and trains a
# full year of its own store. Measures wall time and peak memory (/usr/bin/time) per
# count, and the cost per location. Writes bench/results/locations.{json,md}.
#
#   bash bench/locations.sh                 # about 5 minutes on 2 cores
#   COUNTS="200" bash bench/locations.sh    # about 15 minutes more
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

COUNTS=${COUNTS:-"1 10 50"}
cargo build --release --locked -p rps-cli
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$RPS" sample serve --port 0 --port-file "$work/replay.port" >/dev/null 2>&1 &
pids+=($!)
wait_for_file "$work/replay.port" 10
export OPEN_METEO_ARCHIVE_URL="http://127.0.0.1:$(cat "$work/replay.port")/v1/archive"
export RPS_MODEL_CACHE="$work/cache"

for n in $COUNTS; do
  python3 - "$n" "$work/locations-$n.json" <<'PY'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
stations = [(55.317, -160.517), (36.1, -79.95)]
out = []
for i in range(n):
    lat, lon = stations[i % 2]
    # Spread around the station, a few kilometres apart: distinct places, the same data.
    out.append({"id": f"site-{i:04d}", "latitude": round(lat + 0.01 * (i // 2), 4),
                "longitude": round(lon + 0.01 * (i // 2), 4)})
json.dump(out, open(path, "w"))
PY
  rm -rf "$work/store"
  RPS_STORE="$work/store" RPS_LOCATIONS="$work/locations-$n.json" \
    /usr/bin/time -f '{"locations": '"$n"', "seconds": %e, "peak_rss_kb": %M, "user_seconds": %U}' -o "$work/time-$n.json" \
    "$RPS" pipeline run --start 2023-01-01 --end 2023-12-31 --json >"$work/run-$n.json" 2>"$work/run-$n.log" || {
      tail -20 "$work/run-$n.log"; exit 1; }
  python3 - "$work/time-$n.json" "$work/run-$n.json" <<'PY' >>"$work/results.jsonl"
import json, sys
t = json.load(open(sys.argv[1]))
r = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
# One location runs as the one-location command: its own output, not the table's.
done = r["done"] if "done" in r else int(bool(r.get("model_version")))
assert done == t["locations"], r
t["done"] = done
print(json.dumps(t))
PY
  tail -1 "$work/results.jsonl"
done

mkdir -p bench/results
python3 - "$work/results.jsonl" bench/results/locations "${RPS_LOCATION_CONCURRENCY:-$(nproc)}" <<'PY'
import json, os, platform, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
out = {"machine": f"{os.cpu_count()} cores, {cpu}", "concurrency": int(sys.argv[3]), "runs": rows}
json.dump(out, open(sys.argv[2] + ".json", "w"), indent=2)
md = ["# rps pipeline run over many locations", "",
      f"Machine: {out['machine']}; {out['concurrency']} locations at a time; a year of hourly data "
      "per location (the offline replay), ingest → validate → transform → train, local store and registry.", "",
      "| locations | wall (s) | per location (s) | CPU per location (s) | peak RSS (MB) |", "|---:|---:|---:|---:|---:|"]
for r in rows:
    n = r["locations"]
    md.append(f"| {n} | {r['seconds']:.1f} | {r['seconds'] / n:.2f} | {r['user_seconds'] / n:.2f} | {r['peak_rss_kb'] / 1024:.0f} |")
open(sys.argv[2] + ".md", "w").write("\n".join(md) + "\n")
PY
cat bench/results/locations.md
