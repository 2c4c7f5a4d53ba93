#!/usr/bin/env bash
# The champion/challenger report a pull request into staging gets (make cml-report): a
# candidate trained by the pipeline the deployment runs, gated against production with
# every promotion gate; writes OUT/comment.md (the gate report's Markdown with its
# error-by-horizon chart, ready for `cml comment create`) and OUT/verdict (the exit
# code, for cml-comment.sh).
#
#   scripts/ci/challenger.sh OUT        # exit 0: the candidate may be promoted
#                                       # exit 1: it may not (worse, or not trainable)
#
# Where the candidate comes from (RPS_ORCHESTRATOR, else the first that is configured):
#   airflow        the rps_pipeline DAG through Airflow's REST API, conf promote=false
#                  (AIRFLOW_API_URL, AIRFLOW_USERNAME, AIRFLOW_PASSWORD)
#   stepfunctions  the stack's state machine, input promote=false (RPS_STATE_MACHINE_ARN)
#   local          the stages in this process (`rps pipeline run`; a developer's machine)
# RPS_CANDIDATE names a registered version instead. RPS_CHALLENGER_CONF: JSON merged
# into the run's input (the orchestrators); RPS_CANDIDATE_RANGE: `rps pipeline run`'s
# range arguments (local). The rest (store, registry, gates) is the usual environment.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

out=${1:?usage: scripts/ci/challenger.sh OUT}
mkdir -p "$out"
comment="$out/comment.md"
verdict() { echo "$1" >"$out/verdict"; exit "$1"; }
sha=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
no_candidate() {  # rc what
  {
    echo "## rps: no candidate from $sha"
    echo
    case $1 in
      "$RPS_EXIT_DATA_QUALITY_GATE_FAILED") echo "The data quality gate refused the data, so no candidate was trained." ;;
      *) echo "Training a candidate failed ($2, exit $1)." ;;
    esac
    echo
    echo '```'
    grep -v '^\s*$' "$out/pipeline.log" | tail -n 20
    echo '```'
  } >"$comment"
  echo "no candidate (exit $1): see $comment" >&2
  verdict 1
}

candidate=${RPS_CANDIDATE:-}
orchestrator=${RPS_ORCHESTRATOR:-}
if [[ -z $orchestrator ]]; then
  if [[ -n ${AIRFLOW_API_URL:-} ]]; then orchestrator=airflow
  elif [[ -n ${RPS_STATE_MACHINE_ARN:-} ]]; then orchestrator=stepfunctions
  fi
fi
if [[ -z $candidate ]]; then
  case $orchestrator in
    airflow | stepfunctions)
      bash scripts/setup-python.sh iac >&2
      RPS_ACTOR="${RPS_ACTOR:-ci: challenger $sha}" .venv-iac/bin/python scripts/ci/orchestrate.py \
        "$orchestrator" "$out" >"$out/pipeline.json" 2>"$out/pipeline.log"
      rc=$?
      tail -n 1 "$out/pipeline.json" >>"$out/pipeline.log"
      [[ $rc -eq 0 ]] || no_candidate "$rc" "the $orchestrator run"
      candidate=$(cat "$out/candidate")
      echo "the $orchestrator run made candidate $candidate: $(tail -n 1 "$out/pipeline.json")" >&2
      ;;
    local)
      # shellcheck disable=SC2086  # the range is several arguments
      "$RPS" pipeline run ${RPS_CANDIDATE_RANGE:-} --version-file "$out/candidate" --json \
        >"$out/pipeline.json" 2>"$out/pipeline.log"
      rc=$?
      [[ $rc -eq 0 ]] || no_candidate "$rc" "rps pipeline run"
      candidate=$(cat "$out/candidate")
      ;;
    *)
      echo "no orchestrator to train the challenger: set AIRFLOW_API_URL (with AIRFLOW_USERNAME and" \
        "AIRFLOW_PASSWORD) or RPS_STATE_MACHINE_ARN; RPS_ORCHESTRATOR=local trains in this process" >&2
      verdict 1
      ;;
  esac
fi

"$RPS" evaluate --candidate "$candidate" --output "$out" >"$out/evaluate.log" 2>&1
rc=$?
case $rc in
  0) verdict="passes every gate: it may be promoted" ;;
  "$RPS_EXIT_PROMOTION_GATE_FAILED") verdict="fails the promotion gates: it may not be promoted" ;;
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
