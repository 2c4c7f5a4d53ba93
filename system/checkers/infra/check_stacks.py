"""template.yaml as CloudFormation and IAM will meet it: a staging and a prod stack,
expanded by SAM's own translator for one account and region side by side.

    python system/checkers/infra/check_stacks.py ACCESS_JSON

ACCESS_JSON is the store access each function's code needs (`rps` writes it from
rps_core::layout::access: {"rps-<fn>": [{"prefix", "read", "write", "delete"}, …]}).

Checks, each problem one line naming the resource and the rule:
- no physical name the two stacks would both claim (CloudFormation refuses the second);
- no EventBridge rule of one stack matches an event the other stack emits (its
  RetrainRequested entries, its alarms' state changes), and each stack's rules match
  its own;
- every function whose role reads the bucket may also list it (else S3 answers a
  missing key with 403, and "not there yet" cannot be told from "not allowed");
- the MLflow secret is granted in a form its real ARN (name, "-", six characters)
  matches, and no other secret; the internet-facing API gets the read-only secret;
  ingest, validate and transform get no secret at all;
- each role may do in the store exactly what its function's code needs: every read,
  write and delete of ACCESS_JSON is allowed, and nothing else (a probe key in every
  folder of the layout);
- the state machine invokes only its own stack's functions, publishes only to its own
  topics and puts events only on its own bus; the alarms read the stack's own metric
  namespace, the one its functions write.
Exits 1 if there is any problem.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cloud"))
import sam  # noqa: E402

REGION = "eu-west-1"
AREAS = ["raw/", "quality/", "datasets/", "dvc/", "models/", "reports/", "locks/", "registry/", "forecasts/", "served/", "monitoring/"]
NO_MLFLOW = {"rps-ingest", "rps-validate", "rps-transform"}


def params(env: str) -> dict[str, str]:
    return {
        "Environment": env,
        "MlflowTrackingUri": "https://dagshub.com/owner/repo.mlflow",
        "MlflowSecretName": f"rps/{env}/mlflow",
        "MlflowReadSecretName": f"rps/{env}/mlflow-read",
        # prod has many locations, staging the one: both shapes are checked.
        **({"LocationsKey": "config/locations.json"} if env == "prod" else {}),
    }


def secret_arn(name: str, suffix: str = "AbC1eF") -> str:
    return f"arn:aws:secretsmanager:{REGION}:{sam.ACCOUNT}:secret:{name}-{suffix}"


def emitted(stack: sam.Stack) -> list[tuple[str, dict]]:
    """(bus, event) for every event the stack itself puts or causes."""
    definition, _ = stack.state_machine()
    out = []
    for state in definition["States"].values():
        if state.get("Resource") == "arn:aws:states:::events:putEvents":
            for e in state["Parameters"]["Entries"]:
                out.append((e.get("EventBusName", "default"), {
                    "source": e["Source"], "detail-type": e["DetailType"], "detail": {},
                    "resources": [stack.arn(stack.of_type("AWS::StepFunctions::StateMachine")[0])],
                }))
    for alarm in stack.of_type("AWS::CloudWatch::Alarm"):
        out.append(("default", {
            "source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
            "resources": [stack.arn(alarm)], "detail": {"state": {"value": "ALARM"}},
        }))
    return out


def rules(stack: sam.Stack) -> list[tuple[str, str, dict]]:
    out = []
    for logical in stack.of_type("AWS::Events::Rule"):
        p = stack.properties(logical)
        out.append((logical, p.get("EventBusName", "default"), p["EventPattern"]))
    return out


def check_names(a: sam.Stack, b: sam.Stack, problems: list[str]) -> None:
    claimed: dict[tuple[str, str], str] = {}
    for logical in a.resources:
        name = a.explicit_name(logical)
        if name:
            claimed[(a.resources[logical]["Type"], name)] = logical
    for logical in b.resources:
        name = b.explicit_name(logical)
        kind = b.resources[logical]["Type"]
        if name and (kind, name) in claimed:
            problems.append(f"{logical}: {kind} name {name!r} is the same in {a.name} and {b.name}: the second stack cannot be created")


def check_events(a: sam.Stack, b: sam.Stack, problems: list[str]) -> None:
    for logical, bus, pattern in rules(a):
        own = [e for ebus, e in emitted(a) if ebus == bus and sam.pattern_matches(pattern, e)]
        if not own:
            problems.append(f"{a.name} {logical}: its pattern {pattern} on bus {bus!r} matches no event its own stack emits")
        for ebus, e in emitted(b):
            if ebus == bus and sam.pattern_matches(pattern, e):
                problems.append(f"{a.name} {logical}: matches {b.name}'s {e['detail-type']} event (source {e['source']}, bus {bus!r})")


def check_function(stack: sam.Stack, binary: str, fn: dict, access: dict, problems: list[str]) -> None:
    where = f"{stack.name} {fn['logical']} ({binary})"
    if binary == fn["logical"]:
        problems.append(f"{where}: no Metadata.BuildProperties.Binary, the only place `sam build` reads the binary's name from")
        return
    policies = fn["policies"]
    bucket = stack.physical_name(stack.of_type("AWS::S3::Bucket")[0])
    env = fn["env"]
    store = env.get("RPS_STORE", "")
    if store != f"s3://{bucket}/store":
        problems.append(f"{where}: RPS_STORE is {store!r}, not the stack's bucket s3://{bucket}/store")

    def obj(prefix: str) -> str:
        return f"arn:aws:s3:::{bucket}/store/{prefix}probe/key.json"

    # A location's folder (RPS_LOCATIONS) holds the same layout, with the same grants.
    def in_location(prefix: str) -> str:
        return f"arn:aws:s3:::{bucket}/store/locations/kodiak/{prefix}probe/key.json"

    grants = {g["prefix"]: g for g in access.get(binary, [])}
    if binary not in access:
        problems.append(f"{where}: no store access is declared for it in rps_core::layout::access")
    for area in AREAS:
        g = grants.get(area, {"read": False, "write": False, "delete": False})
        for action, need in (("s3:GetObject", g["read"]), ("s3:PutObject", g["write"]), ("s3:DeleteObject", g["delete"])):
            for shown, arn in ((f"store/{area}*", obj(area)), (f"store/locations/<id>/{area}*", in_location(area))):
                got = sam.allows(policies, action, arn)
                if need and not got:
                    problems.append(f"{where}: the role may not {action} {shown}, which its code needs (layout::access)")
                if got and not need:
                    problems.append(f"{where}: the role may {action} {shown}, which its code never needs (least privilege)")
    locations = stack.params.get("LocationsKey", "")
    if locations and not sam.allows(policies, "s3:GetObject", f"arn:aws:s3:::{bucket}/{locations}"):
        problems.append(f"{where}: the role may not read the locations file {locations}, which every function reads at start")
    reads = any(g["read"] for g in grants.values())
    # What S3 checks to answer a missing key with 404: ListBucket on the bucket, in the
    # GetObject request's context (which carries no s3:prefix).
    if reads and not sam.allows(policies, "s3:ListBucket", f"arn:aws:s3:::{bucket}"):
        problems.append(
            f"{where}: the role reads the bucket but may not s3:ListBucket it (unconditionally): "
            "S3 would answer a missing key with 403 AccessDenied instead of 404"
        )
    for other in ("s3:PutBucketPolicy", "s3:DeleteBucket", "s3:PutLifecycleConfiguration"):
        if sam.allows(policies, other, f"arn:aws:s3:::{bucket}"):
            problems.append(f"{where}: the role may {other} on the bucket")

    secret = env.get("RPS_MLFLOW_SECRET_ID")
    may_read = lambda name: sam.allows(policies, "secretsmanager:GetSecretValue", secret_arn(name))  # noqa: E731
    names = {"write": f"rps/{stack.params['Environment']}/mlflow", "read": f"rps/{stack.params['Environment']}/mlflow-read"}
    if binary in NO_MLFLOW:
        if secret or "MLFLOW_TRACKING_URI" in env:
            problems.append(f"{where}: never uses MLflow, yet its environment names MLflow or a secret")
        if any(may_read(n) for n in names.values()) or sam.allows(policies, "secretsmanager:GetSecretValue", "*"):
            problems.append(f"{where}: never uses MLflow, yet its role may read an MLflow secret")
        return
    want = names["read"] if binary == "rps-api" else names["write"]
    if secret != want:
        problems.append(f"{where}: RPS_MLFLOW_SECRET_ID is {secret!r}, not the {'read-only' if binary == 'rps-api' else 'write'} secret {want!r}")
    if not may_read(want):
        problems.append(
            f"{where}: the role may not read the secret {want!r} by its real ARN ({secret_arn(want)}): "
            "grant <arn>-?????? (AWS appends '-' and six characters)"
        )
    for other in [n for n in names.values() if n != want] + [f"{want}-other", "rps/other/mlflow"]:
        if may_read(other):
            problems.append(f"{where}: the role may read another secret too ({secret_arn(other)})")


def all_states(states: dict) -> list[tuple[str, dict]]:
    """Every state, those of Map states' processors too."""
    out = []
    for name, state in states.items():
        out.append((name, state))
        inner = state.get("ItemProcessor") or state.get("Iterator")
        if inner:
            out.extend(all_states(inner["States"]))
    return out


def check_wiring(stack: sam.Stack, problems: list[str]) -> None:
    definition, props = stack.state_machine()
    fns = {f["arn"] for f in stack.functions().values()}
    topics = {stack.arn(t) for t in stack.of_type("AWS::SNS::Topic")}
    buses = {stack.physical_name(b) for b in stack.of_type("AWS::Events::EventBus")}
    sm = stack.of_type("AWS::StepFunctions::StateMachine")[0]
    role = next(k for k in stack.of_type("AWS::IAM::Role") if stack.arn(k) == props["RoleArn"])
    sm_policies = stack.role_policies(role)
    bucket = stack.physical_name(stack.of_type("AWS::S3::Bucket")[0])
    for name, state in all_states(definition["States"]):
        r = state.get("Resource", "")
        if r.startswith("arn:aws:states:::states:startExecution"):
            target = state.get("Parameters", {}).get("StateMachineArn")
            if target != stack.arn(sm):
                problems.append(f"{stack.name} state {name}: starts {target}, not the stack's own state machine {stack.arn(sm)}")
            elif not sam.allows(sm_policies, "states:StartExecution", target):
                problems.append(f"{stack.name} state {name}: the state machine's role may not states:StartExecution on {target}")
            child = f"{stack.arn(sm).replace(':stateMachine:', ':execution:')}:child"
            if not sam.allows(sm_policies, "states:DescribeExecution", child):
                problems.append(f"{stack.name} state {name}: the role may not states:DescribeExecution its child executions (.sync)")
        reader = state.get("ItemReader")
        if reader:
            p = reader.get("Parameters", {})
            if p.get("Bucket") != bucket:
                problems.append(f"{stack.name} state {name}: reads its items from {p.get('Bucket')!r}, not the stack's bucket")
            key = stack.params.get("LocationsKey", "")
            if key and not sam.allows(sm_policies, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}"):
                problems.append(f"{stack.name} state {name}: the role may not read the locations file {key}")
        r = state.get("Resource", "")
        if r.startswith("arn:aws:lambda:") and r not in fns:
            problems.append(f"{stack.name} state {name}: invokes {r}, not one of the stack's functions")
        params_ = state.get("Parameters", {})
        if r == "arn:aws:states:::sns:publish" and params_.get("TopicArn") not in topics:
            problems.append(f"{stack.name} state {name}: publishes to {params_.get('TopicArn')}, not one of the stack's topics")
        if r == "arn:aws:states:::events:putEvents":
            for e in params_.get("Entries", []):
                if e.get("EventBusName") not in buses:
                    problems.append(f"{stack.name} state {name}: puts events on {e.get('EventBusName')!r}, not the stack's own bus {sorted(buses)}")
    namespaces = {f["env"].get("RPS_METRICS_NAMESPACE") for f in stack.functions().values()}
    for alarm in stack.of_type("AWS::CloudWatch::Alarm"):
        ns = stack.properties(alarm).get("Namespace")
        if ns not in namespaces or len(namespaces) != 1:
            problems.append(f"{stack.name} {alarm}: reads namespace {ns!r}, the functions write {sorted(map(str, namespaces))}")


def main() -> int:
    access = json.loads(Path(sys.argv[1]).read_text())
    staging = sam.Stack.of("rps-staging", params("staging"), REGION)
    prod = sam.Stack.of("rps-prod", params("prod"), REGION)
    problems: list[str] = []
    check_names(staging, prod, problems)
    for a, b in ((staging, prod), (prod, staging)):
        check_events(a, b, problems)
        check_wiring(a, problems)
        for binary, fn in a.functions().items():
            check_function(a, binary, fn, access, problems)
        missing = set(access) - set(a.functions())
        if missing:
            problems.append(f"{a.name}: no function for {sorted(missing)}")
    # A self-hosted MLflow with an s3:// artifact root and no proxy: the functions that
    # track and register write its bucket, the API only reads it, the rest never touch it.
    art = sam.Stack.of("rps-staging", {**params("staging"), "MlflowArtifactBucket": "mlflow-art"}, REGION)
    for binary, fn in art.functions().items():
        obj, bucket = "arn:aws:s3:::mlflow-art/1/run/artifacts/model/model.rpsb", "arn:aws:s3:::mlflow-art"
        reads, writes = sam.allows(fn["policies"], "s3:GetObject", obj), sam.allows(fn["policies"], "s3:PutObject", obj)
        want = (False, False) if binary in NO_MLFLOW else (True, binary != "rps-api")
        if (reads, writes) != want:
            problems.append(f"MlflowArtifactBucket set: {binary} may read/write the artifact bucket {reads}/{writes}, should {want}")
        if reads and not sam.allows(fn["policies"], "s3:ListBucket", bucket):
            problems.append(f"MlflowArtifactBucket set: {binary} reads the artifact bucket but may not list it (403 for a missing key)")
    for binary, fn in staging.functions().items():
        if sam.allows(fn["policies"], "s3:GetObject", "arn:aws:s3:::mlflow-art/x"):
            problems.append(f"MlflowArtifactBucket empty: {binary} may still read an artifact bucket")
    for p in problems:
        print(p)
    print(f"2 stacks, {len(staging.resources)} resources each, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
