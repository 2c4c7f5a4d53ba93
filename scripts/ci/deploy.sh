#!/usr/bin/env bash
# Deploys the SAM stack (template.yaml, samconfig.toml) with artifacts built once:
#
#   scripts/ci/deploy.sh package    # sam build + sam package, then the packaged template
#                                   # and its sha256 go to s3://$RPS_ARTIFACT_BUCKET/
#                                   # releases/<git tree>/ (push to staging)
#   scripts/ci/deploy.sh ENV        # fetches releases/<git tree>/, checks the digest and
#                                   # deploys that template to ENV (staging, prod)
#
# The release key is the git tree, not the commit: the merge into main has another
# commit but the same tree as what staging ran, so production deploys staging's
# artifacts by digest instead of rebuilding them. Needs AWS credentials (OIDC in the
# workflows), AWS_REGION and RPS_ARTIFACT_BUCKET.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

what=${1:-}
[[ -n $what ]] || { echo "usage: scripts/ci/deploy.sh package | ENV" >&2; exit 2; }
if [[ $what != package ]]; then
  grep -q "^\[$what\.deploy" samconfig.toml || { echo "samconfig.toml has no environment '$what'" >&2; exit 2; }
fi
bash scripts/ci/require-env.sh AWS_REGION RPS_ARTIFACT_BUCKET
export PATH="$ROOT/.venv-iac/bin:$ROOT/.venv/bin:$PATH"
release="s3://$RPS_ARTIFACT_BUCKET/releases/$(git rev-parse 'HEAD^{tree}')"
dist="$ROOT/.aws-sam/release"
mkdir -p "$dist"

if [[ $what == package ]]; then
  sam build
  sam package --s3-bucket "$RPS_ARTIFACT_BUCKET" --s3-prefix artifacts --output-template-file "$dist/packaged.yaml"
  sha256sum "$dist/packaged.yaml" | cut -d' ' -f1 >"$dist/digest"
  aws s3 cp "$dist/packaged.yaml" "$release/packaged.yaml"
  aws s3 cp "$dist/digest" "$release/digest"
  echo "packaged $(cat "$dist/digest") → $release"
else
  aws s3 cp "$release/packaged.yaml" "$dist/packaged.yaml"
  aws s3 cp "$release/digest" "$dist/digest"
  echo "$(cat "$dist/digest")  $dist/packaged.yaml" | sha256sum -c --quiet \
    || { echo "$release/packaged.yaml does not match its digest" >&2; exit 1; }
  sam deploy --config-env "$what" --template-file "$dist/packaged.yaml" --s3-bucket "$RPS_ARTIFACT_BUCKET" \
    --no-fail-on-empty-changeset
  echo "deployed $(cat "$dist/digest") to $what"
fi
