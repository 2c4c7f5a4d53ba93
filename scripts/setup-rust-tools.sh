#!/usr/bin/env bash
# Rust tools the tests use, built from crates.io into .tools/ (never at run time of
# rps): cargo-deny (licenses, bans, sources). Idempotent: skipped when the pinned
# version is there. With CARGO_TARGET_DIR kept between runs, a rebuild is quick.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

DENY_VERSION=0.20.2
if [[ $(.tools/bin/cargo-deny --version 2>/dev/null) == "cargo-deny $DENY_VERSION" ]]; then
  exit 0
fi
echo "Building cargo-deny $DENY_VERSION into .tools (first run: two or three minutes)…"
cargo install --quiet --locked --no-default-features --root .tools cargo-deny --version "$DENY_VERSION"
