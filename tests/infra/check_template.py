"""Checks that template.yaml, the state machine and the library agree.

  python tests/infra/check_template.py <stages, comma-separated, in order>

- every stage has a function whose Binary is rps-<stage>, plus rps-api for the API;
- the state machine's Task states invoke those functions, in the stage order, and every
  ${...}FunctionArn it uses is substituted by the template;
- the bucket's lifecycle rules are the ones in infra/s3-lifecycle.json;
- the API's CloudWatch alarms watch metrics the API writes as EMF (namespace and metric
  names from shared/src/serve/metrics.rs), on route /predict, with the latency and drift
  thresholds and waits of the Prometheus rules, and notify a topic.
Exits non-zero with one line per disagreement.
"""
import json
import sys
from pathlib import Path

from cfnlint.decode import cfn_yaml

root = Path(__file__).resolve().parents[2]
stages = sys.argv[1].split(",")
template = cfn_yaml.load(str(root / "template.yaml"))
asl = json.loads((root / "infra/statemachine/pipeline.asl.json").read_text())
problems = []

resources = template["Resources"]
binaries = {
    name: r.get("Metadata", {}).get("Binary")
    for name, r in resources.items()
    if r["Type"] == "AWS::Serverless::Function"
}
for r in resources.values():
    if r["Type"] == "AWS::Serverless::Function" and r.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
        problems.append("a function is not built with rust-cargolambda")
    props = r.get("Properties", {})
    if r["Type"] == "AWS::Serverless::Function" and (not props.get("MemorySize") or not props.get("Timeout")):
        problems.append(f"a function has no MemorySize or Timeout: {props.get('FunctionName')}")
expected = {f"rps-{s}" for s in stages} | {"rps-api"}
if set(binaries.values()) != expected:
    problems.append(f"the template's functions {sorted(binaries.values())} are not the stages' {sorted(expected)}")
for b in expected:
    if not (root / "functions" / b.removeprefix("rps-") / "src/main.rs").exists():
        problems.append(f"no functions/{b.removeprefix('rps-')}/src/main.rs for {b}")

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
namespace = re.search(r'"Namespace": "(\w+)"', metrics_rs).group(1)
alarms = {r["Properties"]["MetricName"]: r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"}
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

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
