"""rps_drift: retrain when the weather the API sees moves away from what its model learned.

Hourly, it reads the served model's drift window (GET <rps_api_url>/drift). When the
service says the window is drifting (the one rule in docs/serving.md: the share of
requests outside the training range, or a weather feature's PSI, over its threshold,
with enough requests to tell), it starts rps_pipeline on the newest data. The promotion
gates still decide whether the new model replaces production; the run's actor says it
was drift that asked.

Settings: the Airflow Variable rps_api_url (default http://127.0.0.1:8080, what `rps
serve` listens on); schedule RPS_AIRFLOW_DRIFT_SCHEDULE (default "@hourly").
"""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import datetime, timezone

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Variable, task
from airflow.sdk.exceptions import AirflowException


@task.short_circuit(task_id="check_drift")
def check_drift() -> bool:
    """True when the service's drift window passes its thresholds."""
    url = Variable.get("rps_api_url", default="http://127.0.0.1:8080").rstrip("/") + "/drift"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            drift = json.load(r)
    except (OSError, ValueError) as e:
        raise AirflowException(f"could not read {url}: {e}") from e
    print(
        f"{drift['requests']} requests in the window; drifting: {drift['drifting']}; "
        f"thresholds: {drift['thresholds']}"
    )
    for reason in drift["reasons"]:
        print(f"  - {reason}")
    return bool(drift["drifting"])


with DAG(
    dag_id="rps_drift",
    description="Start rps_pipeline when the served model's inputs drift",
    schedule=os.environ.get("RPS_AIRFLOW_DRIFT_SCHEDULE", "@hourly"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["rps"],
    doc_md=__doc__,
):
    check_drift() >> TriggerDagRunOperator(
        task_id="retrain",
        trigger_dag_id="rps_pipeline",
        conf={"ingest": {"mode": "recent"}, "actor": "airflow: input drift"},
    )
