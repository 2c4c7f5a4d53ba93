#!/usr/bin/env bash
# Creates a virtualenv and installs its requirements, every package pinned with its
# hashes (generated from the .in files by `make requirements`), so a changed or
# substituted download is refused (and, with every dependency listed, installed
# without resolving: --no-deps). Idempotent: does nothing when the requirements have
# not changed since the last successful install.
#
#   setup-python.sh          .venv      ← scripts/requirements.txt (MLflow, moto, DVC, …)
#   setup-python.sh iac      .venv-iac  ← scripts/requirements-iac.txt (sam, cargo-lambda
#                                          with zig, cfn-lint, zizmor: the deploy tools)
#   setup-python.sh airflow  .venv-airflow ← scripts/requirements-airflow.txt (Airflow 3)
#   setup-python.sh mlflow2  .venv-mlflow2 ← scripts/requirements-mlflow2.txt (MLflow 2.9,
#                                          the oldest rps supports: the hosted-MLflow tests)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

name=${1:-}
venv=.venv${name:+-$name}
req=scripts/requirements${name:+-$name}.txt
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
echo "Installing Python tools into $venv (first run: a minute or two)…"
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$req"
echo "$want" >"$stamp"
