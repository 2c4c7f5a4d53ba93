#!/usr/bin/env bash
# The state machine's fan-out over many locations, on the local stack the system tests
# run (sam build's functions, moto with IAM, MLflow, aws-local-stepfunctions): N
# locations (default 50) of a year each, alternating between the two shipped stations
# at coordinates of their own, CONCURRENCY at a time (default 10). Measures the
# execution's wall time and each function's peak memory; writes
# bench/results/fanout.{json,md}. About 10 minutes on 2 cores for 50.
#
#   bash bench/fanout.sh
#   N=10 CONCURRENCY=4 bash bench/fanout.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

export RPS_BENCH_LOCATIONS=${N:-50} RPS_BENCH_CONCURRENCY=${CONCURRENCY:-10}
CI=true cargo test --release --locked --workspace --test system -- --ignored --exact statemachine::bench_the_fan_out --nocapture
python3 - bench/results/fanout <<'PY'
import json, sys
out = sys.argv[1]
r = json.load(open(out + ".json"))
peaks = r["function_peak_mb"]
md = ["# The state machine's fan-out", "",
      f"Machine: {r['machine']}. {r['locations']} locations of a year each (ingest → validate → transform → "
      f"train → evaluate → promote), the distributed Map at MaxConcurrency {r['concurrency']}, on the local stack "
      "(one instance per function: the emulator runs a function's invocations one at a time, where Lambda would scale out).", "",
      "| locations | promoted | wall (s) | per location (s) |", "|---:|---:|---:|---:|",
      f"| {r['locations']} | {r['promoted']} | {r['wall_seconds']:.0f} | {r['seconds_per_location']:.1f} |", "",
      "Peak memory per function (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(peaks.items())) + "."]
open(out + ".md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
