#!/usr/bin/env bash
# The deployed stack's outputs as the environment the next steps need, so that what
# only exists after a deploy (the bucket's name, the API's URL, the state machine) is
# read from the stack, not copied by hand into GitHub variables:
#
#   scripts/ci/stack-env.sh ENV      # ENV: staging | prod (the stack rps-ENV)
#
# Prints RPS_STORE, RPS_API_URL, RPS_STATE_MACHINE_ARN and RPS_VERIFY_FUNCTION as
# NAME=value lines, and appends them to $GITHUB_ENV when it is set (later steps of the
# job see them). A variable already set is kept (an explicit value wins). Needs AWS
# credentials and AWS_REGION; the stack must exist (the first deploy: docs/deploy.md).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

env=${1:?usage: scripts/ci/stack-env.sh staging|prod}
stack=$(sed -n "/^\[$env\.deploy\.parameters\]/,/^\[/s/^stack_name = \"\(.*\)\"/\1/p" samconfig.toml)
[[ -n $stack ]] || { echo "samconfig.toml has no stack for '$env'" >&2; exit 2; }
bash scripts/ci/require-env.sh AWS_REGION >&2
bash scripts/setup-python.sh iac >&2
lines=$(AWS_DEFAULT_REGION="$AWS_REGION" .venv-iac/bin/python scripts/ci/stack_outputs.py "$stack")
while IFS='=' read -r name value; do
  [[ -n ${!name:-} ]] && value=${!name}
  echo "$name=$value"
  [[ -n ${GITHUB_ENV:-} ]] && echo "$name=$value" >>"$GITHUB_ENV"
done <<<"$lines"
