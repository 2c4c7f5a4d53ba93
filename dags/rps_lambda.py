"""The rps stage functions as Airflow tasks: one LambdaInvokeFunctionOperator per stage.

Shared by the DAGs in this folder (no DAG is defined here). What each stage's event is
built from mirrors the state machine (infra/statemachine/pipeline.asl.json): stages
hand each other references (store keys, the data version, the model version) through
XCom, never data.

Settings, all optional (Airflow Variables, read when a task runs):

    rps_function_prefix   the functions' names are <prefix><stage>   default "rps-prod-"
                          (the SAM stack names them rps-<Environment>-<stage>)
    rps_aws_conn_id       the AWS connection                         default "aws_default"
    rps_aws_region        the functions' region                      default: the connection's

A failed stage is a function error whose errorType says what happened (docs/events.md).
Only the transient ones (DependencyFailed, an init failure or a timeout, the Lambda
service's own errors) are retried,
with exponential backoff; a refusal (a gate, a conflict, a wrong event, a bug) fails the
task at once and nothing after it runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

# The errors a retry can cure, as the state machine's Retry lists them: an outside
# system's fault, and Lambda's own for a function that died in init (Runtime.ExitError,
# e.g. Secrets Manager throttled) or ran out of time (Sandbox.Timedout).
RETRIABLE = frozenset({"DependencyFailed", "Runtime.ExitError", "Sandbox.Timedout"})
# The answers that are not faults: the pipeline's own verdicts.
REFUSALS = frozenset({"DataQualityGateFailed", "PromotionGateFailed", "PromotionConflict"})
# Of those, the ones where another run got there first (the same trigger started twice,
# a concurrent promotion): nothing changed and nothing was refused; the rest is skipped.
SUPERSEDED = frozenset({"PromotionConflict"})

# What a transient fault gets: the state machine's Retry, in Airflow's terms.
RETRY = {
    "retries": 3,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
}

Answers = dict[str, dict[str, Any]]
Event = Callable[[Answers, dict[str, Any]], dict[str, Any]]


def default_ingest(conf: dict[str, Any]) -> dict[str, Any]:
    """The daily run's ingest: the archive's last year (as the daily schedule does)."""
    return conf.get("ingest") or {"mode": "recent"}


# The stages in order, each with the answers it reads and how its event is made from
# them and the run's conf. The same wiring as the state machine's Parameters.
# A run started by a verification (rps_drift) carries its trigger: train tags the run
# with it, evaluate names it in the report, promote records the outcome.
PIPELINE: list[tuple[str, tuple[str, ...], Event]] = [
    ("ingest", (), lambda a, conf: default_ingest(conf)),
    ("validate", ("ingest",), lambda a, conf: {"snapshot": a["ingest"]["snapshot"]}),
    ("transform", ("validate",), lambda a, conf: {"snapshots": [a["validate"]["snapshot"]]}),
    (
        "train",
        ("transform",),
        # run: the DAG run, so that a retried task may take its own claim on the trigger.
        lambda a, conf: {
            "data_version": a["transform"]["data_version"],
            "trigger": conf.get("trigger"),
            "run": conf.get("run_id"),
        },
    ),
    ("evaluate", ("train",), lambda a, conf: {"candidate": a["train"]["model_version"], "trigger": conf.get("trigger")}),
    (
        "promote",
        ("train", "evaluate"),
        lambda a, conf: {
            "candidate": a["train"]["model_version"],
            "report": a["evaluate"]["report"],
            "actor": conf.get("actor") or "airflow",
            "trigger": conf.get("trigger"),
        },
    ),
]

# The stage that closes the loop (rps_drift): issue the scheduled forecast, score the
# logged ones, and decide on a retrain, with the API's own drift verdict when read.
VERIFY: tuple[str, tuple[str, ...], Event] = (
    "verify",
    ("check_drift",),
    lambda a, conf: {"issue": True, "request_drift": a["check_drift"]},
)


class StageFailed(AirflowException):
    """A transient stage failure: retried."""


class StageRefused(AirflowFailException):
    """A refusal or a permanent fault: not retried; fails the run."""


def function_error(raised: Exception) -> tuple[str, str] | None:
    """The (errorType, errorMessage) of a function error, or None for any other failure.

    Invoke answers a function error with 200, an X-Amz-Function-Error header and the
    error object as the payload; the operator raises ValueError carrying that payload.
    """
    for arg in getattr(raised, "args", ()):
        payload = arg.get("Payload") if isinstance(arg, dict) else None
        try:
            error = json.loads(payload) if isinstance(payload, (str, bytes)) else None
        except ValueError:
            continue
        if isinstance(error, dict) and "errorType" in error:
            return str(error["errorType"]), str(error.get("errorMessage", ""))
    return None


class StageInvoke(LambdaInvokeFunctionOperator):
    """Invokes the rps function of one stage with the event made from earlier answers.

    Pushes the function's answer (JSON) as its XCom return value.
    """

    ui_color = "#f4a261"

    def __init__(
        self, *, stage: str, needs: tuple[str, ...], event: Event, group: str | None = None, **kwargs: Any
    ) -> None:
        # Airflow retries, not boto: a refusal must reach the function once. A stage may
        # run up to Lambda's 15 minutes.
        botocore = {"retries": {"total_max_attempts": 1}, "read_timeout": 900, "connect_timeout": 10}
        kwargs = {**RETRY, "botocore_config": botocore, **kwargs}
        super().__init__(task_id=stage, function_name=f"rps-{stage}", **kwargs)
        self.stage = stage
        self.needs = needs
        self.event = event
        # In a task group mapped over the locations (rps_fleet): the group's id.
        self.group = group

    def execute(self, context: Any) -> str:
        self.function_name = Variable.get("rps_function_prefix", default="rps-prod-") + self.stage
        self.aws_conn_id = Variable.get("rps_aws_conn_id", default="aws_default")
        self.region_name = Variable.get("rps_aws_region", default=None) or None
        ti = context["ti"]
        if self.group:
            # One location's chain: its own answers (this map index), and its id from
            # the list the group was mapped over.
            location = ti.xcom_pull(task_ids=LOCATIONS_TASK, map_indexes=None)[ti.map_index]
            answers = {
                need: json.loads(ti.xcom_pull(task_ids=f"{self.group}.{need}", map_indexes=ti.map_index))
                for need in self.needs
            }
        else:
            location = None
            answers = {need: json.loads(ti.xcom_pull(task_ids=need)) for need in self.needs}
        conf = {**context["params"], **(context["dag_run"].conf or {}), "run_id": context["dag_run"].run_id}
        if self.stage == "promote" and conf.get("promote") is False:
            # A challenger run (the pull-request gate): trained and evaluated, the
            # caller judges the candidate; nothing is promoted.
            raise AirflowSkipException("promote: false (a challenger run): the candidate is not promoted")
        if self.stage == "promote" and answers.get("evaluate", {}).get("passed") is False:
            # The verdict is final: promote is not asked to measure a refused candidate again.
            e = answers["evaluate"]
            failed = ", ".join(e.get("failed_gates") or [])
            raise StageRefused(
                f"promote: PromotionGateFailed: version {e.get('candidate_version')} failed the {failed} gate(s) "
                f"(report: {e.get('report')}); a refusal is final, promote is not asked to measure again"
            )
        try:
            event = self.event(answers, conf)
            # A location's stage event names it (docs/events.md): {"location", "input"}.
            self.payload = json.dumps(event if location is None else {"location": location, "input": event})
        except (KeyError, TypeError) as e:
            raise StageRefused(f"{self.stage}: an earlier stage's answer lacks {e}") from e
        try:
            return super().execute(context)
        except Exception as e:  # classified below: a refusal is final, a fault is retried
            error = function_error(e)
            if error is None:
                raise StageFailed(f"{self.stage}: invoking {self.function_name} failed: {e}") from e
            kind, message = error
            self.log.error("%s: %s: %s", self.function_name, kind, message)
            if kind in RETRIABLE:
                raise StageFailed(f"{self.stage}: {kind}: {message}") from None
            if kind in SUPERSEDED:
                raise AirflowSkipException(f"{self.stage}: {kind}: {message}") from None
            raise StageRefused(f"{self.stage}: {kind}: {message}") from None


def verify_task() -> StageInvoke:
    """The verify stage as a task (inside a DAG context)."""
    stage, needs, event = VERIFY
    return StageInvoke(stage=stage, needs=needs, event=event)


# The task whose answer is the list of location ids a fleet's task group is mapped over.
LOCATIONS_TASK = "locations"


def stage_tasks(group: str | None = None) -> list[StageInvoke]:
    """One task per stage, chained in the pipeline's order (inside a DAG context; inside
    the task group `group` mapped over the locations, for rps_fleet)."""
    tasks = [StageInvoke(stage=s, needs=needs, event=event, group=group) for s, needs, event in PIPELINE]
    for before, after in zip(tasks, tasks[1:]):
        before >> after
    return tasks
