"""rps_drift: close the loop. Retrain when the served model stops earning its keep.

Hourly:

    check_drift → verify → decide → retrain (rps_pipeline)

- check_drift reads the API's drift window (GET <rps_api_url>/drift): the requests it
  has answered against the served model's training data. An API that cannot be read
  costs a warning, not the verification.
- verify invokes the verify stage function (rps-<stage>, as the pipeline's): it issues
  the scheduled forecast from the newest validated observations, scores the logged
  forecasts against what has been observed since (live skill per model version), and
  applies the one retrain rule (docs/pipeline.md#closing-the-loop): live 6 h skill
  below RPS_RETRAIN_MIN_SKILL over 24 hours, or the observations' drift, outside the
  cooldown (the API's verdict, made from client requests, only corroborates). It
  records the request in the store.
- decide goes on only when verify asked for a retrain, and retrain starts rps_pipeline
  on the data the trigger names, carrying the trigger: the training run is tagged with
  it, the gate report says what started it, and its outcome (promoted or refused) is
  recorded. The promotion gates still decide.

Settings: the Airflow Variable rps_api_url (default http://127.0.0.1:8080, what `rps
serve` listens on), and the functions' settings in rps_lambda.py; schedule
RPS_AIRFLOW_DRIFT_SCHEDULE (default "@hourly").
"""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import datetime, timezone
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Variable, task

from rps_lambda import verify_task


@task(task_id="check_drift")
def check_drift() -> str:
    """The API's drift verdict as JSON (null when the API cannot be read)."""
    url = Variable.get("rps_api_url", default="http://127.0.0.1:8080").rstrip("/") + "/drift"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            drift = json.load(r)
    except (OSError, ValueError) as e:
        print(f"could not read {url} ({e}); verifying without the API's verdict")
        return json.dumps(None)
    print(
        f"{drift['requests']} requests in the window; drifting: {drift['drifting']}; "
        f"thresholds: {drift['thresholds']}"
    )
    for reason in drift["reasons"]:
        print(f"  - {reason}")
    return json.dumps({"drifting": drift["drifting"], "reasons": drift["reasons"], "requests": drift["requests"]})


@task.short_circuit(task_id="decide")
def decide(verified: str) -> dict[str, Any] | None:
    """rps_pipeline's conf when verify asked for a retrain; nothing (skip) otherwise."""
    retrain = json.loads(verified)["retrain"]
    for cause in retrain["causes"]:
        print(f"  - {cause['kind']}: {cause['reason']}")
    trigger = retrain.get("trigger")
    if not retrain["needed"] or trigger is None:
        print(f"no retrain: {retrain.get('held') or 'the served model is doing its job'}")
        return None
    kinds = "+".join(dict.fromkeys(c["kind"] for c in trigger["causes"]))
    print(f"retrain asked for: trigger {trigger['id']} ({kinds})")
    return {"ingest": trigger["ingest"], "actor": f"airflow: {kinds}", "trigger": trigger}


with DAG(
    dag_id="rps_drift",
    description="Verify the served forecasts hourly; retrain when live skill or the inputs say so",
    schedule=os.environ.get("RPS_AIRFLOW_DRIFT_SCHEDULE", "@hourly"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["rps"],
    doc_md=__doc__,
):
    verified = verify_task()
    check_drift() >> verified
    TriggerDagRunOperator(task_id="retrain", trigger_dag_id="rps_pipeline", conf=decide(verified.output))
