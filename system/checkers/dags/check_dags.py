"""Checks the DAGs in dags/ against the state machine and the library.

  python system/checkers/dags/check_dags.py <stages, comma-separated, in order>

Run with the Airflow virtualenv's python and AIRFLOW_HOME pointing at a scratch folder.
- every file in dags/ imports with no errors;
- rps_pipeline is daily with no catch-up, rps_drift hourly;
- rps_pipeline's tasks are one LambdaInvokeFunctionOperator per stage, chained in the
  library's stage order, which is the state machine's Task order;
- what the DAG retries is what the state machine retries (less the Lambda service's own
  errors, which the operator sees as exceptions), and what it treats as a refusal is
  what the state machine catches as one;
- rps_fleet maps rps_pipeline's chain (a task group, in the same order) over the
  locations its first task lists;
- rps_drift invokes the verify stage function and ends in a trigger of rps_pipeline.
  rps_pipeline hands a trigger in its conf to train, evaluate and promote.
Exits non-zero with one line per disagreement.
"""

import json
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(root / "dags"))

from airflow.dag_processing.dagbag import DagBag  # noqa: E402
from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator  # noqa: E402
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator  # noqa: E402

import rps_lambda  # noqa: E402

stages = sys.argv[1].split(",")
problems = []

bag = DagBag(dag_folder=str(root / "dags"))
for file, error in bag.import_errors.items():
    problems.append(f"{file} does not import: {error}")
if set(bag.dag_ids) != {"rps_pipeline", "rps_drift", "rps_fleet"}:
    problems.append(f"the DAGs are {sorted(bag.dag_ids)}, not rps_pipeline, rps_drift and rps_fleet")

pipeline = bag.dags.get("rps_pipeline")
drift = bag.dags.get("rps_drift")


def schedule(dag):
    return getattr(dag, "schedule", None)


if pipeline:
    if schedule(pipeline) != "@daily":
        problems.append(f"rps_pipeline's schedule is {schedule(pipeline)}, not @daily")
    if pipeline.catchup:
        problems.append("rps_pipeline catches up")
    # Walk the chain from the task with no upstream.
    order, task = [], next((t for t in pipeline.tasks if not t.upstream_task_ids), None)
    while task is not None:
        order.append(task.task_id)
        if not isinstance(task, LambdaInvokeFunctionOperator):
            problems.append(f"task {task.task_id} is not a LambdaInvokeFunctionOperator")
        downstream = list(task.downstream_list)
        if len(downstream) > 1:
            problems.append(f"task {task.task_id} fans out: {[t.task_id for t in downstream]}")
        task = downstream[0] if downstream else None
    if order != stages or len(pipeline.tasks) != len(stages):
        problems.append(f"rps_pipeline runs {order}, the library's stages are {stages}")

fleet = bag.dags.get("rps_fleet")
if fleet:
    first = [t for t in fleet.tasks if not t.upstream_task_ids]
    if [t.task_id for t in first] != [rps_lambda.LOCATIONS_TASK]:
        problems.append(f"rps_fleet starts with {[t.task_id for t in first]}, not the locations task")
    grouped = [t for t in fleet.tasks if isinstance(t, rps_lambda.StageInvoke)]
    order, task = [], next((t for t in grouped if rps_lambda.LOCATIONS_TASK in t.upstream_task_ids), None)
    while task is not None:
        order.append(task.task_id)
        downstream = list(task.downstream_list)
        task = downstream[0] if len(downstream) == 1 else None
    if order != [f"location.{s}" for s in stages] or len(grouped) != len(stages):
        problems.append(f"rps_fleet's location group runs {order}, the library's stages are {stages}")
    groups = {t.task_group.group_id for t in grouped if t.task_group}
    mapped = [g for g in fleet.task_group.children.values() if getattr(g, "group_id", None) == "location"]
    if groups != {"location"} or not mapped or type(mapped[0]).__name__ != "MappedTaskGroup":
        problems.append(f"rps_fleet's stages are not one task group mapped over the locations: {groups}")

asl = json.loads((root / "infra/statemachine/pipeline.asl.json").read_text())
states = asl["States"]
tasks, name = [], asl["StartAt"]
while name:
    state = states[name]
    resource = json.dumps(state.get("Arguments", state.get("Parameters", {}))) + state.get("Resource", "")
    if state["Type"] == "Task" and "FunctionArn" in resource:
        tasks.append(name.lower())
    if state["Type"] == "Choice":
        # The training run's path: the default when it is a Task (TrainOrStop), else
        # the rule whose Next is a Task (GatesPassed).
        nexts = [state.get("Default")] + [c["Next"] for c in state["Choices"]]
        name = next((n for n in nexts if n and states[n]["Type"] == "Task"), None)
    else:
        name = state.get("Next")
if tasks != stages:
    problems.append(f"the state machine's Task order {tasks} is not the stages' {stages}")

retried, caught = set(), set()
for state in states.values():
    for r in state.get("Retry", []):
        retried |= {e for e in r["ErrorEquals"] if not e.startswith("Lambda.") and e != "States.TaskFailed"}
    for c in state.get("Catch", []) if "FunctionArn" in state.get("Resource", "") else []:
        if c["Next"] in ("DataRefused", "ModelRefused", "Refused", "Superseded"):
            caught |= set(c["ErrorEquals"])
if retried != set(rps_lambda.RETRIABLE):
    problems.append(f"the DAG retries {sorted(rps_lambda.RETRIABLE)}, the state machine {sorted(retried)}")
if caught != set(rps_lambda.REFUSALS):
    problems.append(f"the DAG's refusals {sorted(rps_lambda.REFUSALS)} are not the state machine's {sorted(caught)}")

if drift:
    if schedule(drift) != "@hourly":
        problems.append(f"rps_drift's schedule is {schedule(drift)}, not @hourly")
    triggers = [t for t in drift.tasks if isinstance(t, TriggerDagRunOperator)]
    if [t.trigger_dag_id for t in triggers] != ["rps_pipeline"]:
        problems.append("rps_drift does not trigger rps_pipeline")
    verifies = [t for t in drift.tasks if isinstance(t, rps_lambda.StageInvoke) and t.stage == "verify"]
    if len(verifies) != 1:
        problems.append("rps_drift does not invoke the verify stage function")
    elif triggers and verifies[0].task_id not in triggers[0].get_flat_relative_ids(upstream=True):
        problems.append("rps_drift's retrain does not follow verify")

# A trigger in rps_pipeline's conf reaches the stages that record it.
answers = {"ingest": {"snapshot": "s"}, "validate": {"snapshot": "s"}, "transform": {"data_version": "d"},
           "train": {"model_version": "2"}, "evaluate": {"report": "r"}}
conf = {"trigger": {"id": "t"}}
for stage, _, event in rps_lambda.PIPELINE:
    got = event(answers, conf)
    if stage in ("train", "evaluate", "promote") and got.get("trigger") != conf["trigger"]:
        problems.append(f"rps_pipeline's {stage} event does not carry the trigger: {got}")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
