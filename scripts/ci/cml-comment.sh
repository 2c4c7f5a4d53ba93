#!/usr/bin/env bash
# Posts OUT/comment.md (written by challenger.sh) on the pull request with CML, then
# exits with the report's verdict, so the check fails when the candidate may not be
# promoted even though the comment was posted.
#
#   scripts/ci/cml-comment.sh OUT
set -euo pipefail
out=${1:?usage: scripts/ci/cml-comment.sh OUT}
[[ -s $out/comment.md && -s $out/verdict ]] || { echo "$out has no comment.md and verdict: run make cml-report first" >&2; exit 1; }
bash "$(dirname "$0")/require-env.sh" REPO_TOKEN
cml comment create --publish "$out/comment.md"
exit "$(cat "$out/verdict")"
