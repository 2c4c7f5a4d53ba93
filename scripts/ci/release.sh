#!/usr/bin/env bash
# The model side of the two deploys:
#
#   scripts/ci/release.sh stage URL     # @staging → the deployment's candidate (with
#                                       # RPS_MODEL_ALIAS=staging: @staging-candidate, what
#                                       # the staging pipeline trained), then smoke-test URL
#                                       # until it serves that version (push to staging)
#   scripts/ci/release.sh promote       # @production → @staging if every gate passes
#                                       # (push to main); exit 4 when the gates refuse
#
# The registry and store come from the environment (MLFLOW_TRACKING_URI, RPS_STORE, ...).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

case ${1:-} in
  stage)
    url=${2:?usage: scripts/ci/release.sh stage URL}
    "$RPS" models stage --smoke "$url"
    ;;
  promote)
    "$RPS" promote @staging --actor "${RPS_ACTOR:-ci: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
    ;;
  *) echo "usage: scripts/ci/release.sh stage URL | promote" >&2; exit 2 ;;
esac
