#!/usr/bin/env bash
# The verification benchmark: `rps verify` over a forecast log of RECORDS client records
# (default one million: nine issue days, every client slot of every day full, as many
# API instances under a flood would leave it), on the shipped sample and a local store.
# Measures wall time and peak memory (/usr/bin/time) of three runs, and of a run over
# an empty log, for comparison. Writes bench/results/verify.{json,md}. About two minutes.
#
#   bash bench/verify.sh          (RECORDS=100000 for a smaller log)
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

RECORDS=${RECORDS:-1000000}
cargo build --release --locked -p rps-cli
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$RPS" sample serve --port 0 --port-file "$work/replay.port" >/dev/null 2>&1 &
pids+=($!)
wait_for_file "$work/replay.port" 10
export RPS_STORE="$work/store" RPS_MODEL_CACHE="$work/cache" RPS_MODEL_ALIAS=candidate
export OPEN_METEO_ARCHIVE_URL="http://127.0.0.1:$(cat "$work/replay.port")/v1/archive"
"$RPS" pipeline run --start 2023-01-01 --end 2023-03-31 >/dev/null 2>&1
"$RPS" ingest --start 2023-04-11 --end 2023-04-20 >/dev/null 2>&1
"$RPS" validate >/dev/null 2>&1

measure() {  # label: one `rps verify --no-issue` run, wall seconds and peak RSS in kB
  /usr/bin/time -f '{"label": "'"$1"'", "seconds": %e, "peak_rss_kb": %M}' -o "$work/time.json" \
    "$RPS" verify --no-issue --json >"$work/verify.json" 2>"$work/verify.log"
  python3 - "$work/time.json" "$work/verify.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
v = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
t["records_read"] = v["log"]["records"]
t["client_versions"] = len(v["client"]["versions"])
print(json.dumps(t))
PY
}

{
  measure "empty log"
  python3 bench/forecast_log.py "$RPS_STORE" rps-temperature "$RECORDS" 2023-04-20 9 48 >"$work/log.json"
  du -sb "$RPS_STORE/served" | awk '{print "{\"log_bytes\": " $1 "}"}'
  for i in 1 2 3; do measure "log of $RECORDS records, run $i"; done
} >"$work/results.jsonl"

mkdir -p bench/results
python3 - "$work/results.jsonl" "$work/log.json" bench/results/verify <<'PY'
import json, platform, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
log = json.load(open(sys.argv[2]))
size = next(r["log_bytes"] for r in rows if "log_bytes" in r)
runs = [r for r in rows if "label" in r]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
out = {"machine": f"{os.cpu_count()} cores, {cpu}", "log": {**log, "bytes": size}, "runs": runs}
json.dump(out, open(sys.argv[3] + ".json", "w"), indent=2)
md = [f"# rps verify over a flooded forecast log", "",
      f"Machine: {out['machine']}. Log: {log['records']} client records in {log['segments']} segments "
      f"({size / 1e6:.0f} MB of JSON lines), nine issue days, every client slot full.", "",
      "| run | records read | wall (s) | peak RSS (MB) |", "|---|---:|---:|---:|"]
for r in runs:
    md.append(f"| {r['label']} | {r['records_read']} | {r['seconds']:.2f} | {r['peak_rss_kb'] / 1024:.1f} |")
open(sys.argv[3] + ".md", "w").write("\n".join(md) + "\n")
PY
cat bench/results/verify.md
