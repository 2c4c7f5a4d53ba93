#!/usr/bin/env bash
# Smoke-tests a running rps API (a deployment, a container, a local server): `rps smoke`
# asks /health, /ready and one /predict on a day of the sample, and with EXPECT_VERSION
# set, waits until the version served is that one (up to SMOKE_WAIT seconds, default
# 120, for the service to re-check its alias). Prints one JSON line.
#
#   scripts/ci/smoke.sh URL
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

base=${1:?usage: scripts/ci/smoke.sh URL}
[[ -x $RPS ]] || cargo build --release --locked -p rps-cli >&2
args=(--wait "${SMOKE_WAIT:-120}")
[[ -z ${EXPECT_VERSION:-} ]] || args+=(--expect-version "$EXPECT_VERSION")
exec "$RPS" smoke "$base" "${args[@]}" --json
