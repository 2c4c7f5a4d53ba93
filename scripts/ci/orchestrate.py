"""Runs the pipeline on the orchestrator the deployment runs, as a challenger (train and
evaluate, never promote), waits for it, and prints what it made: the pull-request gate
of the branch model (scripts/ci/challenger.sh) gets its candidate from the deployed
pipeline, not from a training in the CI runner.

    python scripts/ci/orchestrate.py airflow OUT        # AIRFLOW_API_URL, AIRFLOW_USERNAME,
                                                        # AIRFLOW_PASSWORD (Airflow 3's REST API)
    python scripts/ci/orchestrate.py stepfunctions OUT  # RPS_STATE_MACHINE_ARN (AWS credentials)

Both take RPS_CHALLENGER_CONF (JSON merged into the run's input; default: the archive's
last year) and RPS_ACTOR. The last line of stdout is one JSON object:
{"orchestrator", "run", "state", "url", "candidate", "data_version", "failed", "reason"},
also written to OUT/run.json, and the candidate's version alone to OUT/candidate.
Exit 0: a candidate was trained; 3: the data quality gate refused the data; 1: the run
failed (the reason says where); 2: the orchestrator is not configured.
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT_S = float(os.environ.get("RPS_CHALLENGER_TIMEOUT_SECS", "3600"))
REFUSED_BY_DATA = "DataQualityGateFailed"


def exit_code(name: str) -> int:
    """An error type's exit code, from scripts/exit-codes.sh (generated from the stage table)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "exit-codes.sh")
    with open(path) as f:
        for line in f:
            key, _, rest = line.partition("=")
            if key == name:
                return int(rest.split()[0])
    raise KeyError(f"{name} is not in {path}")


def conf() -> dict:
    base = {"ingest": {"mode": "recent"}, "train": True, "promote": False,
            "actor": os.environ.get("RPS_ACTOR") or "ci: pull-request gate"}
    base.update(json.loads(os.environ.get("RPS_CHALLENGER_CONF") or "{}"))
    base["promote"] = False  # a challenger is never promoted by the run itself
    return base


def need(*names: str) -> list[str]:
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        print(f"missing variable(s): {' '.join(missing)} (see docs/deploy.md)", file=sys.stderr)
        sys.exit(2)
    return [os.environ[n] for n in names]


def finish(result: dict, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump(result, f)
    with open(os.path.join(out, "candidate"), "w") as f:
        f.write(result.get("candidate") or "")
    print(json.dumps(result))
    if result.get("candidate"):
        sys.exit(0)
    refused = REFUSED_BY_DATA in (result.get("reason") or "")
    sys.exit(exit_code("RPS_EXIT_DATA_QUALITY_GATE_FAILED") if refused else 1)


# --- Airflow 3: the REST API (API v2), a user and password for a JWT -----------------


class Airflow:
    def __init__(self) -> None:
        base, user, password = need("AIRFLOW_API_URL", "AIRFLOW_USERNAME", "AIRFLOW_PASSWORD")
        self.base = base.rstrip("/")
        status, body = self.call("POST", "/auth/token", {"username": user, "password": password})
        if status not in (200, 201):
            sys.exit(f"Airflow at {self.base} refused the credentials of {user} (HTTP {status}): {body}")
        self.token = body["access_token"]

    def call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if getattr(self, "token", None):
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")[:500]

    def ok(self, method: str, path: str, body: dict | None = None) -> dict:
        status, answer = self.call(method, path, body)
        if status >= 300:
            sys.exit(f"Airflow {method} {path}: HTTP {status}: {answer}")
        return answer

    def run(self, dag: str = "rps_pipeline") -> dict:
        d = f"/api/v2/dags/{urllib.parse.quote(dag, safe='')}"
        self.ok("PATCH", d, {"is_paused": False})
        run = self.ok("POST", f"{d}/dagRuns", {"logical_date": None, "conf": conf()})
        run_id = run["dag_run_id"]
        r = f"{d}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        deadline = time.monotonic() + TIMEOUT_S
        while run["state"] not in ("success", "failed"):
            if time.monotonic() > deadline:
                return {"orchestrator": "airflow", "run": run_id, "state": run["state"], "reason": f"still {run['state']} after {TIMEOUT_S:.0f} s"}
            time.sleep(2)
            run = self.ok("GET", r)
        tasks = self.ok("GET", f"{r}/taskInstances")["task_instances"]
        result = {"orchestrator": "airflow", "run": run_id, "state": run["state"], "url": f"{self.base}/dags/{dag}/runs/{run_id}"}
        train = next((t for t in tasks if t["task_id"] == "train"), None)
        if train and train["state"] == "success":
            status, x = self.call("GET", f"{r}/taskInstances/train/xcomEntries/return_value")
            answer = x.get("value") if status == 200 and isinstance(x, dict) else None
            answer = json.loads(answer) if isinstance(answer, str) else answer
            if isinstance(answer, dict):
                result["candidate"] = answer.get("model_version")
                result["data_version"] = answer.get("data_version")
        failed = [t for t in tasks if t["state"] in ("failed", "upstream_failed")]
        if failed:
            first = next((t for t in failed if t["state"] == "failed"), failed[0])
            result["failed"] = first["task_id"]
            result["reason"] = self.error(r, first)
        return result

    def error(self, r: str, task: dict) -> str:
        p = f"{r}/taskInstances/{urllib.parse.quote(task['task_id'], safe='')}/logs/{task['try_number']}"
        status, log = self.call("GET", p)
        if status != 200 or not isinstance(log, dict):
            return f"{task['task_id']} {task['state']}"
        lines = [e for e in log.get("content", []) if isinstance(e, dict) and e.get("level") == "error"]
        details = [f"{x.get('exc_type')}: {x.get('exc_value')}" for e in lines for x in e.get("error_detail") or []]
        return "; ".join(details or [str(e.get("event")) for e in lines]) or f"{task['task_id']} {task['state']}"


# --- Step Functions: StartExecution and DescribeExecution ----------------------------


def stepfunctions() -> dict:
    import boto3

    (arn,) = need("RPS_STATE_MACHINE_ARN")
    sfn = boto3.client("stepfunctions")
    name = f"challenger-{int(time.time())}"
    started = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(conf()))
    execution = started["executionArn"]
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        d = sfn.describe_execution(executionArn=execution)
        if d["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(5)
    out = json.loads(d.get("output") or "{}")
    result = {"orchestrator": "stepfunctions", "run": execution, "state": d["status"].lower(),
              "url": f"https://console.aws.amazon.com/states/home#/v2/executions/details/{execution}"}
    trained = out.get("trained") or {}
    if d["status"] == "SUCCEEDED" and trained.get("model_version"):
        result["candidate"] = trained["model_version"]
        result["data_version"] = trained.get("data_version")
    else:
        error = out.get("error") or {}
        result["reason"] = " ".join(x for x in (out.get("outcome"), error.get("Error"), d.get("error"), d.get("cause")) if x) or d["status"]
    return result


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("airflow", "stepfunctions"):
        sys.exit(__doc__)
    which, out = sys.argv[1:]
    finish(Airflow().run() if which == "airflow" else stepfunctions(), out)


if __name__ == "__main__":
    main()
