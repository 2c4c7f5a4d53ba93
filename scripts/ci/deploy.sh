#!/usr/bin/env bash
# Deploys the SAM stack (template.yaml, samconfig.toml) with artifacts built once:
#
#   scripts/ci/deploy.sh package    # sam build + sam package, then the packaged template,
#                                   # its sha256 and the architecture it was built for go
#                                   # to s3://$RPS_ARTIFACT_BUCKET/releases/<git tree>/
#                                   # (push to staging)
#   scripts/ci/deploy.sh ENV        # fetches releases/<git tree>/, checks the digest and
#                                   # deploys that template to ENV (staging, prod)
#
# The release key is the git tree, not the commit: the merge into main has another
# commit but the same tree as what staging ran, so production deploys staging's
# artifacts by digest instead of rebuilding them.
#
# Everything comes from the environment (the GitHub environment's variables; the names
# are docs/deploy.md's): AWS credentials (OIDC in the workflows), AWS_REGION,
# RPS_ARTIFACT_BUCKET; for a deploy the stack's parameters: MLFLOW_TRACKING_URI,
# RPS_MLFLOW_SECRET_ID (the write secret's name), RPS_MLFLOW_READ_SECRET_ID (the API's
# read-only secret's name), and optionally RPS_MODEL_NAME, RPS_LATITUDE, RPS_LONGITUDE,
# RPS_ALARM_EMAIL, RPS_GATE_MAX_REGRESSION, RPS_GATE_MIN_SKILL, RPS_RETRAIN_MIN_SKILL,
# RPS_MLFLOW_ARTIFACT_BUCKET (a self-hosted MLflow's S3 artifact bucket, not proxied).
# RPS_ARCHITECTURE (package only): arm64 (default) or x86_64.
# SAM_CLI_TELEMETRY is off; nothing here prompts (CI has no terminal).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

what=${1:-}
[[ -n $what ]] || { echo "usage: scripts/ci/deploy.sh package | ENV" >&2; exit 2; }
if [[ $what != package ]]; then
  grep -q "^\[$what\.deploy" samconfig.toml || { echo "samconfig.toml has no environment '$what'" >&2; exit 2; }
fi
bash scripts/ci/require-env.sh AWS_REGION RPS_ARTIFACT_BUCKET
bash scripts/setup-python.sh iac
export PATH="$ROOT/.venv-iac/bin:$PATH" SAM_CLI_TELEMETRY=0
# botocore reads AWS_DEFAULT_REGION, not AWS_REGION; sam reads neither from samconfig
# under --config-env: both are given explicitly.
export AWS_DEFAULT_REGION="$AWS_REGION"
tree=$(git rev-parse 'HEAD^{tree}')
release="s3://$RPS_ARTIFACT_BUCKET/releases/$tree"
dist="$ROOT/.aws-sam/release"
mkdir -p "$dist"

if [[ $what == package ]]; then
  arch=${RPS_ARCHITECTURE:-arm64}
  case $arch in
    arm64)
      # cargo-lambda cross-compiles with zig (shipped with pip cargo-lambda); the Rust
      # standard library for the target comes from rustup.
      rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
        || rustup target add aarch64-unknown-linux-gnu ;;
    x86_64) ;;
    *) echo "RPS_ARCHITECTURE must be arm64 or x86_64, not '$arch'" >&2; exit 2 ;;
  esac
  bash scripts/sam-build.sh "$arch"
  sam package --region "$AWS_REGION" --s3-bucket "$RPS_ARTIFACT_BUCKET" --s3-prefix "artifacts/$tree" \
    --output-template-file "$dist/packaged.yaml"
  sha256sum "$dist/packaged.yaml" | cut -d' ' -f1 >"$dist/digest"
  echo "$arch" >"$dist/architecture"
  for f in packaged.yaml digest architecture; do
    python scripts/ci/s3cp.py "$dist/$f" "$release/$f"
  done
  echo "packaged $(cat "$dist/digest") ($arch) → $release"
else
  bash scripts/ci/require-env.sh MLFLOW_TRACKING_URI RPS_MLFLOW_SECRET_ID RPS_MLFLOW_READ_SECRET_ID
  for f in packaged.yaml digest architecture; do
    python scripts/ci/s3cp.py "$release/$f" "$dist/$f"
  done
  echo "$(cat "$dist/digest")  $dist/packaged.yaml" | sha256sum -c --quiet \
    || { echo "$release/packaged.yaml does not match its digest" >&2; exit 1; }
  for name in RPS_MLFLOW_SECRET_ID RPS_MLFLOW_READ_SECRET_ID; do
    if [[ ${!name} == arn:* ]]; then
      echo "$name must be the secret's name (e.g. rps/$what/mlflow), not its ARN: the template grants" \
        "the name's ARN with the six characters AWS appends" >&2
      exit 2
    fi
  done
  # The stack's parameters, each from its variable (only those that are set).
  params=(
    "Environment=$what"
    "Architecture=$(cat "$dist/architecture")"
    "MlflowTrackingUri=$MLFLOW_TRACKING_URI"
    "MlflowSecretName=$RPS_MLFLOW_SECRET_ID"
    "MlflowReadSecretName=$RPS_MLFLOW_READ_SECRET_ID"
  )
  for pair in ModelName=RPS_MODEL_NAME Latitude=RPS_LATITUDE Longitude=RPS_LONGITUDE AlarmEmail=RPS_ALARM_EMAIL \
    GateMaxRegression=RPS_GATE_MAX_REGRESSION GateMinSkill=RPS_GATE_MIN_SKILL RetrainMinSkill=RPS_RETRAIN_MIN_SKILL \
    MlflowArtifactBucket=RPS_MLFLOW_ARTIFACT_BUCKET; do
    var=${pair#*=}
    [[ -n ${!var:-} ]] && params+=("${pair%%=*}=${!var}")
  done
  # --config-file is absolute: given a --template-file, sam looks for samconfig.toml in
  # the template's folder (samcli/commands/_utils/options.py), not the working one.
  sam deploy --config-env "$what" --config-file "$ROOT/samconfig.toml" --region "$AWS_REGION" \
    --template-file "$dist/packaged.yaml" \
    --s3-bucket "$RPS_ARTIFACT_BUCKET" --s3-prefix "releases/$tree" \
    --no-confirm-changeset --no-fail-on-empty-changeset --parameter-overrides "${params[@]}"
  echo "deployed $(cat "$dist/digest") to $what"
fi
