"""Checks that template.yaml, the state machine and the library agree.

  python system/checkers/infra/check_template.py <stages, comma-separated, in order> [<other stage functions>]

- every stage has a function whose Binary is rps-<stage> (the other stage functions,
  verify, too), plus rps-api for the API;
- the state machine's Task states invoke those functions, in the stage order, and every
  ${...}FunctionArn it uses is substituted by the template;
- the bucket's lifecycle rules are the ones in infra/s3-lifecycle.json;
- the API's CloudWatch alarms watch metrics the API writes as EMF (namespace and metric
  names from shared/src/serve/metrics.rs), on route /predict, with the latency and drift
  thresholds and waits of the Prometheus rules, and notify a topic; the live-skill alarm
  watches the verify function's EMF line (shared/src/verify/mod.rs) against
  RPS_RETRAIN_MIN_SKILL's parameter;
- the hourly path runs verify after validate; the RetrainRequested rule matches the
  event the state machine puts and its input template makes a training run carrying the
  trigger; the drift-alarm rule makes a verify run carrying the API's verdict.
Exits non-zero with one line per disagreement.
"""
import json
import sys
from pathlib import Path

from cfnlint.decode import cfn_yaml

root = Path(__file__).resolve().parents[3]
stages = sys.argv[1].split(",")
others = [s for s in (sys.argv[2].split(",") if len(sys.argv) > 2 else []) if s]
template = cfn_yaml.load(str(root / "template.yaml"))
asl = json.loads((root / "infra/statemachine/pipeline.asl.json").read_text())
problems = []

resources = template["Resources"]
# `sam build` reads the binary's name from Metadata.BuildProperties.Binary only
# (aws-sam-cli samcli/lib/build/app_builder.py; aws-lambda-builders workflows/rust_cargo).
binaries = {
    name: r.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
    for name, r in resources.items()
    if r["Type"] == "AWS::Serverless::Function"
}
for name, r in resources.items():
    if r["Type"] == "AWS::Serverless::Function" and "Binary" in r.get("Metadata", {}):
        problems.append(f"{name}: Metadata.Binary is ignored by sam build; put it under Metadata.BuildProperties")
for r in resources.values():
    if r["Type"] == "AWS::Serverless::Function" and r.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
        problems.append("a function is not built with rust-cargolambda")
    props = r.get("Properties", {})
    if r["Type"] == "AWS::Serverless::Function" and (not props.get("MemorySize") or not props.get("Timeout")):
        problems.append(f"a function has no MemorySize or Timeout: {props.get('FunctionName')}")
expected = {f"rps-{s}" for s in stages + others} | {"rps-api"}
if set(binaries.values()) != expected:
    problems.append(f"the template's functions {sorted(binaries.values())} are not the stages' {sorted(expected)}")
for b in expected:
    if not (root / "functions" / b.removeprefix("rps-") / "src/main.rs").exists():
        problems.append(f"no functions/{b.removeprefix('rps-')}/src/main.rs for {b}")

# MLflow waits below every function's timeout: three attempts of MLFLOW_HTTP_REQUEST_TIMEOUT
# (the client's retry policy, shared/src/mlflow/client.rs) within half the function's
# Timeout, so a slow MLflow fails the request, not the function mid-way.
genv = template["Globals"]["Function"]["Environment"]["Variables"]
for r in resources.values():
    if r["Type"] != "AWS::Serverless::Function":
        continue
    props = r.get("Properties", {})
    env = {**genv, **props.get("Environment", {}).get("Variables", {})}
    wait = float(env.get("MLFLOW_HTTP_REQUEST_TIMEOUT", 120))
    if 3 * wait > props["Timeout"] / 2:
        problems.append(f"{props.get('FunctionName')}: three MLflow attempts of {wait:g} s exceed half its {props['Timeout']} s timeout")

# The state machine's longest path from StartAt, through every Choice branch and every
# Next (not the Catch paths): the Task states that invoke a function, in order.
substitutions = next(
    r["Properties"]["DefinitionSubstitutions"]
    for r in resources.values()
    if r["Type"] == "AWS::Serverless::StateMachine"
)


def stage_of(state):
    resource = asl["States"][state].get("Resource", "")
    if not (resource.startswith("${") and resource.endswith("FunctionArn}")):
        return None
    key = resource[2:-1]
    if key not in substitutions:
        problems.append(f"{resource} is not in the template's DefinitionSubstitutions")
        return None
    arn = substitutions[key]
    logical = arn["Fn::GetAtt"][0] if isinstance(arn, dict) else str(arn)
    return binaries.get(logical, "?").removeprefix("rps-")


def longest(state, seen):
    if state is None or state in seen:
        return []
    s = asl["States"][state]
    nexts = [c["Next"] for c in s.get("Choices", [])] + [s.get("Default"), s.get("Next")]
    best = max((longest(n, seen | {state}) for n in nexts if n), key=len, default=[])
    here = stage_of(state)
    return ([here] if here else []) + best


order = longest(asl["StartAt"], frozenset())
if order != stages:
    problems.append(f"the state machine runs {order}, the library's stage order is {stages}")
for key in substitutions:
    if "${" + key + "}" not in json.dumps(asl):
        problems.append(f"the substitution {key} is not used by the state machine")

# The lifecycle rules.
lifecycle = json.loads((root / "infra/s3-lifecycle.json").read_text())
want = []
for r in lifecycle["Rules"]:
    rule = {"Id": r["ID"], "Prefix": r["Filter"]["Prefix"], "Status": r["Status"]}
    if "Transitions" in r:
        rule["Transitions"] = [{"TransitionInDays": t["Days"], "StorageClass": t["StorageClass"]} for t in r["Transitions"]]
    if "NoncurrentVersionExpiration" in r:
        rule["NoncurrentVersionExpiration"] = r["NoncurrentVersionExpiration"]
    if "Expiration" in r:
        rule["ExpirationInDays"] = r["Expiration"]["Days"]
    if "AbortIncompleteMultipartUpload" in r:
        rule["AbortIncompleteMultipartUpload"] = r["AbortIncompleteMultipartUpload"]
    want.append(rule)
got = resources["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
if json.loads(json.dumps(got)) != want:
    problems.append("the bucket's lifecycle rules differ from infra/s3-lifecycle.json")

# The API's alarms against the EMF lines it writes and the Prometheus rules.
import re  # noqa: E402

metrics_rs = (root / "shared/src/serve/metrics.rs").read_text()
emf_names = set(re.findall(r'"Name": "(\w+)"', metrics_rs))
# The EMF namespace is the functions' RPS_METRICS_NAMESPACE (one per stack).
namespace = template["Globals"]["Function"]["Environment"]["Variables"].get("RPS_METRICS_NAMESPACE")
verify_rs = (root / "shared/src/verify/mod.rs").read_text()
verify_names = set(re.findall(r'put\(\s*"(\w+)"', verify_rs)) | set(re.findall(r'"Name": "(\w+)"', verify_rs))
alarms = {r["Properties"]["MetricName"]: r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"}
skill = alarms.pop("live_skill_h6_24h", None)
if not skill:
    problems.append("no alarm on the verify function's live_skill_h6_24h (as RpsLiveSkillLow)")
else:
    if "live_skill_h6_24h" not in verify_names or skill.get("Namespace") != namespace:
        problems.append(f"the live-skill alarm watches a metric verify does not write ({sorted(verify_names)})")
    if skill.get("Dimensions") != [{"Name": "stage", "Value": "verify"}]:
        problems.append(f"the live-skill alarm is not on stage=verify: {skill.get('Dimensions')}")
    if skill.get("Threshold") != {"Ref": "RetrainMinSkill"} or skill.get("ComparisonOperator") != "LessThanThreshold":
        problems.append("the live-skill alarm does not fire below RPS_RETRAIN_MIN_SKILL's parameter")
    if not skill.get("AlarmActions") or "runbooks.md#rpsliveskilllow" not in skill.get("AlarmDescription", ""):
        problems.append("the live-skill alarm notifies nobody or has no runbook")
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    if env.get("RPS_RETRAIN_MIN_SKILL") != {"Ref": "RetrainMinSkill"}:
        problems.append("the functions do not get RPS_RETRAIN_MIN_SKILL from the parameter the alarm uses")
coverage = alarms.pop("live_interval_coverage_80_h6_24h", None)
if not coverage:
    problems.append("no alarm on the verify function's live_interval_coverage_80_h6_24h (as RpsIntervalCoverageLow)")
else:
    if "live_interval_coverage_80_h6_24h" not in verify_names or coverage.get("Namespace") != namespace:
        problems.append(f"the interval alarm watches a metric verify does not write ({sorted(verify_names)})")
    if coverage.get("Dimensions") != [{"Name": "stage", "Value": "verify"}]:
        problems.append(f"the interval alarm is not on stage=verify: {coverage.get('Dimensions')}")
    if coverage.get("Threshold") != {"Ref": "IntervalCoverageFloor"} \
            or coverage.get("ComparisonOperator") != "LessThanThreshold":
        problems.append("the interval alarm does not fire below RPS_VERIFY_MIN_INTERVAL_COVERAGE's parameter")
    if not coverage.get("AlarmActions") or "runbooks.md#rpsintervalcoveragelow" not in coverage.get("AlarmDescription", ""):
        problems.append("the interval alarm notifies nobody or has no runbook")
    if template["Globals"]["Function"]["Environment"]["Variables"].get("RPS_VERIFY_MIN_INTERVAL_COVERAGE") \
            != {"Ref": "IntervalCoverageFloor"}:
        problems.append("the functions do not get RPS_VERIFY_MIN_INTERVAL_COVERAGE from the parameter the alarm uses")
for name, a in alarms.items():
    if a["Namespace"] != namespace or name not in emf_names:
        problems.append(f"the alarm on {a['Namespace']}/{name} watches a metric the API does not write ({namespace}: {sorted(emf_names)})")
    if a.get("Dimensions") != [{"Name": "route", "Value": "/predict"}]:
        problems.append(f"the alarm on {name} is not on route /predict: {a.get('Dimensions')}")
    if not a.get("AlarmActions"):
        problems.append(f"the alarm on {name} notifies nobody")
    if "runbooks.md#" not in a.get("AlarmDescription", ""):
        problems.append(f"the alarm on {name} has no runbook link")
latency, drift = alarms.get("latency"), alarms.get("drift_detected")
if not latency or latency.get("ExtendedStatistic") != "p99" or latency.get("Threshold") != 500 \
        or latency.get("Period", 0) * latency.get("EvaluationPeriods", 0) != 300:
    problems.append("no alarm on p99 latency over 500 ms for 5 minutes (as RpsHighInferenceLatency)")
if not drift or drift.get("Period", 0) * drift.get("EvaluationPeriods", 0) != 600:
    problems.append("no alarm on drift_detected over 10 minutes (as RpsInputOutOfRange)")

# The loop: verify on the hourly path, the events and the rules that close it.
states = asl["States"]
choice = states.get("TrainOrStop", {})
hourly = next((c["Next"] for c in choice.get("Choices", []) if c.get("BooleanEquals") is False), None)
if "verify" in others and stage_of(hourly or "Defaults") != "verify":
    problems.append(f"the hourly path (train=false) goes to {hourly}, not the verify function")
puts = [s for s in states.values() if s.get("Resource") == "arn:aws:states:::events:putEvents"]
entries = [e for s in puts for e in s["Parameters"]["Entries"]]
machine = next(r for r in resources.values() if r["Type"] == "AWS::Serverless::StateMachine")
rules = {n: e["Properties"] for n, e in machine["Properties"].get("Events", {}).items() if e["Type"] == "EventBridgeRule"}


def render(transformer, event):
    values = {}
    for var, path in transformer["InputPathsMap"].items():
        v = event
        for part in path.removeprefix("$.").split("."):
            v = v[part]
        values[var] = v
    text = transformer["InputTemplate"]
    for var, v in values.items():
        text = text.replace(f"<{var}>", json.dumps(v))
    return json.loads(text)


trigger = {"id": "20260101T000000.000000Z", "causes": [{"kind": "drift", "reason": "r"}], "version": "3",
           "as_of": "2026-01-01T00:00:00", "requested_at": "2026-01-01T00:00:00Z",
           "ingest": {"mode": "backfill", "start": "2025-01-01", "end": "2025-12-27"}}
retrain = [r for r in rules.values() if r["Pattern"].get("source") == ["rps.verify"]]
if len(entries) != 1 or len(retrain) != 1:
    problems.append(f"expected one putEvents entry and one rule on it, got {len(entries)} and {len(retrain)}")
else:
    e, r = entries[0], retrain[0]
    if r["Pattern"] != {"source": [e["Source"]], "detail-type": [e["DetailType"]]}:
        problems.append(f"the retrain rule's pattern {r['Pattern']} does not match the event the state machine puts")
    if "trigger.$" not in e["Detail"]:
        problems.append("the RetrainRequested event does not carry the trigger")
    if "location.$" not in e["Detail"]:
        problems.append("the RetrainRequested event does not carry the location whose verification asked")
    got = render(r["InputTransformer"], {"source": e["Source"], "detail": {"trigger": trigger, "location": "kodiak"}})
    if got.get("train") is not True or got.get("trigger") != trigger or got.get("ingest") != trigger["ingest"]:
        problems.append(f"the retrain rule makes {got}, not a training run on the trigger's data carrying it")
    if got.get("location") != "kodiak":
        problems.append(f"the retrain rule makes {got}, not a run of the location that asked")
drift_rule = [r for r in rules.values() if r["Pattern"].get("source") == ["aws.cloudwatch"]]
if len(drift_rule) != 1 or drift_rule[0]["Pattern"].get("resources") != [{"Fn::GetAtt": ["ApiDriftAlarm", "Arn"]}]:
    problems.append("no rule turns the API's drift alarm into a verification")
else:
    got = render(drift_rule[0]["InputTransformer"], {"detail": {"state": {"reason": "Threshold Crossed", "value": "ALARM"}}})
    if got.get("train") is not False or got.get("request_drift", {}).get("drifting") is not True:
        problems.append(f"the drift-alarm rule makes {got}, not a verification with the API's verdict")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
