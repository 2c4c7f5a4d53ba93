"""Turns the measurements of bench/run.sh into bench/results/latest.{json,md}."""

import json
import os
import platform
import subprocess
import sys

work, zip_path, rate, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
load = lambda name: json.load(open(os.path.join(work, name + ".json")))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
mem_gib = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) / 1024 / 1024
machine = f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.system()} {platform.release()}"
r = {k: load(k) for k in ["rps-cold", "rps-throughput", "rps-rate", "rps-rss", "peer-cold", "peer-throughput", "peer-rate", "peer-rss", "peer-train"]}
zip_mb = os.path.getsize(zip_path) / 1e6
algorithm = load("run")["algorithm"]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
summary = {
    "machine": machine,
    "commit": commit,
    "rps": {
        "cold_start_ms": r["rps-cold"]["median_ms"],
        "throughput_rps": r["rps-throughput"]["throughput_rps"],
        "at_rate": r["rps-rate"],
        "peak_rss_mb": r["rps-rss"]["peak_rss_mb_total"],
    },
    "peer": {
        "cold_start_ms": r["peer-cold"]["median_ms"],
        "throughput_rps": r["peer-throughput"]["throughput_rps"],
        "at_rate": r["peer-rate"],
        "peak_rss_mb_total": r["peer-rss"]["peak_rss_mb_total"],
        "peak_rss_mb_per_process": r["peer-rss"]["peak_rss_mb_max_process"],
        "processes": r["peer-rss"]["processes"],
    },
    "rps_model": algorithm,
    "throughput_ratio": r["rps-throughput"]["throughput_rps"] / r["peer-throughput"]["throughput_rps"],
    "lambda_zip_mb": zip_mb,
    "raw": r,
}
json.dump(summary, open(out + ".json", "w"), indent=2)
rr, pr = r["rps-rate"], r["peer-rate"]
md = f"""Measured on {machine}, commit {commit}, by `bash bench/run.sh`.
Both servers run on loopback on the same machine as the load generator.

| | rps-api (Rust) | Python peer (scikit-learn, `mlflow models serve`, 2 workers) |
|---|---:|---:|
| cold start: process start → first successful prediction (median) | {summary['rps']['cold_start_ms']:.1f} ms | {summary['peer']['cold_start_ms']:.0f} ms |
| throughput, 8 connections back to back | {summary['rps']['throughput_rps']:,.0f} req/s | {summary['peer']['throughput_rps']:,.0f} req/s |
| latency at a fixed rate (p50 / p99 / max) | {rr['p50_ms']:.2f} / {rr['p99_ms']:.2f} / {rr['max_ms']:.1f} ms at {rr['target_rps']:.0f} req/s | {pr['p50_ms']:.1f} / {pr['p99_ms']:.1f} / {pr['max_ms']:.0f} ms at {pr['target_rps']:.0f} req/s (half its maximum) |
| errors during the fixed-rate run | {rr['errors']} of {rr['requests'] + rr['errors']} | {pr['errors']} of {pr['requests'] + pr['errors']} |
| peak resident memory | {summary['rps']['peak_rss_mb']:.1f} MB | {summary['peer']['peak_rss_mb_total']:.0f} MB in {summary['peer']['processes']} processes ({summary['peer']['peak_rss_mb_per_process']:.0f} MB the largest) |

Throughput ratio: **{summary['throughput_ratio']:.0f}×**. The `rps-api` Lambda zip (its `sam build` bootstrap, zipped) is **{zip_mb:.2f} MB**.

rps's `/predict` takes the 25 trailing hourly observations and computes the 42 features
itself; the peer is handed the 42 features ready-made. rps serves the model the pipeline
chose on the sample, `{algorithm}`; the peer a 24-tree random forest of depth 10 (the
forest alone), for six horizons each.
"""
open(out + ".md", "w").write(md)
