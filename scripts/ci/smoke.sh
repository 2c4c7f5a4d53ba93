#!/usr/bin/env bash
# Smoke-tests a running rps API (a deployment, a container, a local server):
# /health, /ready, one /predict on a day of the sample, and with EXPECT_VERSION set,
# that the version served is that one (waiting up to SMOKE_WAIT seconds, default 120,
# for the service to re-check its alias). Prints one JSON line.
#
#   scripts/ci/smoke.sh URL
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

base=${1:?usage: scripts/ci/smoke.sh URL}
base=${base%/}
wait_http "$base/health" "${SMOKE_WAIT:-120}" || { echo "$base/health does not answer 200" >&2; exit 1; }
wait_http "$base/ready" "${SMOKE_WAIT:-120}" || { echo "$base/ready: $(curl -s "$base/ready")" >&2; exit 1; }
python3 - "$base" "${EXPECT_VERSION:-}" "${SMOKE_WAIT:-120}" <<'PY'
import json, sys, time, urllib.request
base, expect, wait = sys.argv[1], sys.argv[2], float(sys.argv[3])
h = json.load(open("data/sample/open-meteo-archive-sandpoint-ak-2023.json"))["hourly"]
body = json.dumps({"observations": [{k: h[k][i] for k in h if k != "precipitation"} for i in range(100, 125)]}).encode()
deadline = time.time() + wait
while True:
    req = urllib.request.Request(f"{base}/predict", data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            p = json.load(r)
    except Exception as e:
        sys.exit(f"{base}/predict failed: {e}")
    version = p["model"]["version"]
    if not expect or version == expect.lstrip("v"):
        break
    if time.time() > deadline:
        sys.exit(f"{base} serves version {version}, not {expect}")
    time.sleep(2)
if len(p["forecasts"]) == 0:
    sys.exit(f"{base}/predict returned no forecasts")
print(json.dumps({"url": base, "model_version": version, "forecasts": len(p["forecasts"])}))
PY
