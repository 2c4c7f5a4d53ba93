"""rps_pipeline: the pipeline's stages as a daily DAG, each one an AWS Lambda invocation.

    ingest → validate → transform → train → evaluate → promote

the same stages, in the same order, as the Step Functions state machine. A run's conf
may set the ingest event and who asks: {"ingest": {"mode": "backfill", "start":
"2023-01-01", "end": "2023-12-31"}, "actor": "…"}; by default the archive's last year.
With {"promote": false} (CI's pull-request gate, through Airflow's REST API) the run
trains and evaluates a challenger and skips promote; train's XCom names the candidate.
A refused data gate fails validate and nothing after it runs; a refused promotion fails
promote, with the gate report's key in the task log. See dags/rps_lambda.py for the
settings (Airflow Variables) and docs/airflow.md.

Schedule: RPS_AIRFLOW_SCHEDULE (default "@daily"); catch-up: RPS_AIRFLOW_CATCHUP
(default false).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from airflow.sdk import DAG, Param

from rps_lambda import stage_tasks

with DAG(
    dag_id="rps_pipeline",
    description="Retrain on the newest data; promote only through the gates",
    schedule=os.environ.get("RPS_AIRFLOW_SCHEDULE", "@daily"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=os.environ.get("RPS_AIRFLOW_CATCHUP", "false").lower() == "true",
    max_active_runs=1,
    tags=["rps"],
    params={
        "ingest": Param({"mode": "recent"}, type="object", description="the ingest stage's event"),
        "actor": Param("airflow", type="string", description="recorded as who promoted"),
        "promote": Param(
            True,
            type="boolean",
            description="false: a challenger run (the pull-request gate) that trains and evaluates, never promotes",
        ),
    },
    doc_md=__doc__,
):
    stage_tasks()
