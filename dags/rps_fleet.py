"""rps_fleet: the pipeline for every location of the locations file (RPS_LOCATIONS).

    locations → location[0..n]: ingest → validate → transform → train → evaluate → promote

One run of rps_pipeline's chain per location, as Airflow's dynamic task mapping: a task
group mapped over the location ids, each instance invoking the same stage functions
with events that name their location ({"location": "<id>", "input": …}, as the state
machine's per-location executions send them). A location refused by a gate fails its
own tasks and no other's; the run fails when any location did not promote.

The locations: the run's conf {"locations": ["sand-point", …]}, else the file the
Airflow Variable rps_locations_url names (s3://bucket/key, the stack's LocationsKey in
its data bucket, read with rps_aws_conn_id). Conf as rps_pipeline's otherwise ("ingest",
"actor", "promote"). Locations at a time: RPS_AIRFLOW_LOCATION_CONCURRENCY (default 4).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, Param, Variable, get_current_context, task, task_group

from rps_lambda import LOCATIONS_TASK, stage_tasks


@task(task_id=LOCATIONS_TASK)
def locations() -> list[str]:
    """The ids of the locations to run, in the file's order."""
    context = get_current_context()
    conf = {**context["params"], **(context["dag_run"].conf or {})}
    ids = conf.get("locations")
    if not ids:
        url = Variable.get("rps_locations_url", default="")
        if not url.startswith("s3://"):
            raise ValueError("no locations: give the run's conf {\"locations\": [...]} or set rps_locations_url")
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        bucket, key = url.removeprefix("s3://").split("/", 1)
        hook = S3Hook(aws_conn_id=Variable.get("rps_aws_conn_id", default="aws_default"))
        ids = [entry["id"] for entry in json.loads(hook.read_key(key, bucket_name=bucket))]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError(f"locations must be a list of location ids, not {ids!r}")
    print(f"{len(ids)} location(s): {', '.join(ids)}")
    return ids


with DAG(
    dag_id="rps_fleet",
    description="Retrain every location on its newest data; promote each only through the gates",
    schedule=os.environ.get("RPS_AIRFLOW_SCHEDULE", "@daily"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=os.environ.get("RPS_AIRFLOW_CATCHUP", "false").lower() == "true",
    max_active_runs=1,
    max_active_tasks=int(os.environ.get("RPS_AIRFLOW_LOCATION_CONCURRENCY", "4")),
    tags=["rps"],
    params={
        "ingest": Param({"mode": "recent"}, type="object", description="each location's ingest event"),
        "actor": Param("airflow", type="string", description="recorded as who promoted"),
        "promote": Param(True, type="boolean", description="false: train and evaluate challengers only"),
        "locations": Param([], type="array", description="the location ids (empty: the file of rps_locations_url)"),
    },
    doc_md=__doc__,
):

    @task_group(group_id="location")
    def one_location(location: Any) -> None:
        # Each stage reads its location by its map index from the `locations` answer.
        stage_tasks(group="location")

    one_location.expand(location=locations())
