#!/usr/bin/env bash
# The champion/challenger report a pull request into staging gets (make cml-report):
# trains a candidate through the pipeline (unless RPS_CANDIDATE names one), runs every
# promotion gate against production, and writes OUT/comment.md (the gate report's
# Markdown with its error-by-horizon chart, ready for `cml comment create`) and
# OUT/verdict (the exit code, for cml-comment.sh).
#
#   scripts/ci/challenger.sh OUT        # exit 0: the candidate may be promoted
#                                       # exit 1: it may not (worse, or not trainable)
#
# RPS_CANDIDATE_RANGE: `rps pipeline run`'s range arguments (default: the last year).
# The rest of the configuration (store, registry, gates) is the usual environment.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

out=${1:?usage: scripts/ci/challenger.sh OUT}
mkdir -p "$out"
comment="$out/comment.md"
verdict() { echo "$1" >"$out/verdict"; exit "$1"; }
sha=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

candidate=${RPS_CANDIDATE:-}
if [[ -z $candidate ]]; then
  # shellcheck disable=SC2086  # the range is several arguments
  "$RPS" pipeline run ${RPS_CANDIDATE_RANGE:-} --json >"$out/pipeline.json" 2>"$out/pipeline.log"
  rc=$?
  if [[ $rc -ne 0 ]]; then
    {
      echo "## rps: no candidate from $sha"
      echo
      case $rc in
        3) echo "The data quality gate refused the data, so no candidate was trained." ;;
        *) echo "Training a candidate failed (exit $rc)." ;;
      esac
      echo
      echo '```'
      grep -v '^\s*$' "$out/pipeline.log" | tail -n 20
      echo '```'
    } >"$comment"
    echo "no candidate (exit $rc): see $comment" >&2
    verdict 1
  fi
  candidate=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["model_version"])' "$out/pipeline.json")
fi

"$RPS" evaluate --candidate "$candidate" --output "$out" >"$out/evaluate.log" 2>&1
rc=$?
case $rc in
  0) verdict="passes every gate: it may be promoted" ;;
  4) verdict="fails the promotion gates: it may not be promoted" ;;
  *)
    { echo "## rps: candidate $candidate could not be evaluated (exit $rc)"; echo; echo '```';
      tail -n 20 "$out/evaluate.log"; echo '```'; } >"$comment"
    echo "evaluation failed (exit $rc): see $comment" >&2
    verdict 1 ;;
esac
{
  echo "## rps: candidate version $candidate from $sha $verdict"
  echo
  cat "$out/report.md"
} >"$comment"
echo "candidate $candidate $verdict ($comment)"
verdict $(( rc == 0 ? 0 : 1 ))
