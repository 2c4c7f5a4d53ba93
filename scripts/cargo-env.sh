#!/usr/bin/env bash
# The cargo settings every build of this repository shares:
#
#   CARGO_BUILD_TARGET  the host's triple on Linux, as `cargo lambda build` passes it
#   RUSTFLAGS           "-C target-cpu=<the triple's baseline>": cargo-lambda keeps
#                       RUSTFLAGS that name a CPU, and sets its own otherwise
#
# With both equal to what cargo-lambda uses, `sam build` reuses the compile of
# `make build` and `make test` instead of compiling the workspace again. Values already
# in the environment win. Elsewhere (macOS) nothing is set: sam build cross-compiles.
#
#   scripts/cargo-env.sh            # export lines (scripts/lib.sh evals them)
#   scripts/cargo-env.sh target     # one value (the Makefile reads them)
#   scripts/cargo-env.sh rustflags
set -euo pipefail
host=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
case $host in
  x86_64-unknown-linux-gnu) cpu=x86-64 ;;
  aarch64-unknown-linux-gnu) cpu=generic ;;
  *) exit 0 ;;
esac
target=${CARGO_BUILD_TARGET:-$host}
rustflags=${RUSTFLAGS:--C target-cpu=$cpu}
case ${1:-} in
  target) echo "$target" ;;
  rustflags) echo "$rustflags" ;;
  *) printf 'export CARGO_BUILD_TARGET=%q\nexport RUSTFLAGS=%q\n' "$target" "$rustflags" ;;
esac
