#!/usr/bin/env bash
# `rps doctor` on the configured store, DVC remote and MLflow (make doctor): every job
# that will change something runs it first, and a new user runs it before a first
# deploy (docs/deploy.md). Exit 1 on a blocker. Never prints a credential.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
[[ -x $RPS ]] || cargo build --release --locked -p rps-cli
"$RPS" doctor
