#!/usr/bin/env bash
# `sam build` of template.yaml, as a user and the deploy job run it: SAM's Rust builder
# runs `cargo lambda build --release [--arm64] --bin <Metadata.BuildProperties.Binary>`
# once per function and copies each binary to .aws-sam/build/<Function>/bootstrap.
#
#   scripts/sam-build.sh [arm64|x86_64]     # default: RPS_ARCHITECTURE, else arm64
#
# The architecture is the template's `Architecture` parameter. cargo-lambda links with
# zig (pip cargo-lambda ships it) against an old glibc, so a binary built on a new
# Linux still starts on Lambda's provided.al2023 (glibc 2.34).
#
# RPS_SAM_HOST_TOOLCHAIN=1 (the offline tests): when the architecture is the host's,
# compile with plain cargo instead (CARGO_LAMBDA_COMPILER=cargo) with scripts/
# cargo-env.sh's settings (lib.sh), so the build reuses the workspace's compile: only
# the function binaries are linked. Such binaries need the build machine's glibc, so
# they are for running here, never for a deploy.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

arch=${1:-${RPS_ARCHITECTURE:-arm64}}
case $arch in arm64 | x86_64) ;; *) echo "the architecture must be arm64 or x86_64, not '$arch'" >&2; exit 2 ;; esac
bash scripts/setup-python.sh iac
export PATH="$ROOT/.venv-iac/bin:$PATH" SAM_CLI_TELEMETRY=0
host=$(uname -m)
if [[ ${RPS_SAM_HOST_TOOLCHAIN:-} == 1 && ($arch == "$host" || ($arch == arm64 && $host == aarch64)) ]]; then
  export CARGO_LAMBDA_COMPILER=cargo
else
  # cargo-lambda's own settings (its target CPU, zig as C compiler and linker) in a
  # target tree of their own: mixed with the host's, every C dependency would flip
  # between the two compilers and rebuild each time.
  unset CARGO_BUILD_TARGET RUSTFLAGS CARGO_LAMBDA_COMPILER
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/lambda-zig"
fi
sam build --parameter-overrides "Architecture=$arch"
