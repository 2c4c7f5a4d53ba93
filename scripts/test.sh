#!/usr/bin/env bash
# make test: every check CI runs. Installs what it needs, idempotently.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

echo "== tools"
bash scripts/setup-system.sh
bash scripts/setup-python.sh
bash scripts/setup-python.sh iac
bash scripts/setup-python.sh airflow
bash scripts/setup-python.sh mlflow2
bash scripts/setup-node.sh
bash scripts/setup-rust-tools.sh
bash scripts/ci/lint.sh
echo "== tests"
rm -f test-output/skipped.log
# The cloud tests `sam build` every function themselves (testkit::cloud::sam_build,
# once per test binary, with the host toolchain so it shares this compile).
cargo test --release --locked --workspace
if [[ -s test-output/skipped.log ]]; then
  echo "== $(wc -l <test-output/skipped.log) test(s) SKIPPED on purpose (RPS_ALLOW_SKIP=1):"
  cat test-output/skipped.log
fi
