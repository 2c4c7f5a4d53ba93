"""template.yaml as CloudFormation will see it, offline: SAM's own translator expands it
(as `sam deploy` has CloudFormation do), then its intrinsic functions are resolved for
one stack (its parameters, account, region and the physical names CloudFormation would
give), and IAM policies are evaluated the way IAM matches them (`*` and `?` wildcards,
conditions on absent keys unsatisfied, explicit Deny first).

Used by system/checkers/infra/check_stacks.py (two stacks side by side) and system/checkers/cloud/stack.py
(a stack run on this machine). Needs the IaC virtualenv (.venv-iac: aws-sam-cli,
aws-sam-translator) and AWS_DEFAULT_REGION (the translator reads it).
"""
from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = "123456789012"
PARTITION = "aws"


def load() -> dict:
    from samcli.yamlhelper import yaml_parse  # understands !Ref, !Sub, !GetAtt

    return yaml_parse((ROOT / "template.yaml").read_text())


def packaged(sam: dict) -> dict:
    """What `sam package` hands CloudFormation: code in S3, the state machine's
    definition inline (with its DefinitionSubstitutions still to apply)."""
    sam = copy.deepcopy(sam)
    sam["Globals"]["Function"]["CodeUri"] = "s3://rps-artifacts/artifacts/0000000000000000"
    for r in sam["Resources"].values():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = "s3://rps-artifacts/artifacts/0000000000000000"
        if r["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["Definition"] = json.loads((ROOT / props.pop("DefinitionUri")).read_text())
    return sam


class _NoManagedPolicies:
    """Stands in for the translator's IAM lookup of bare managed-policy names (the
    template uses none)."""

    def load(self) -> dict:
        return {}


def translate(params: dict[str, str], region: str = "eu-west-1") -> dict:
    """The CloudFormation template SAM's translator makes for these parameters."""
    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    try:
        return transform(packaged(load()), params, _NoManagedPolicies())
    except InvalidDocumentException as e:
        raise SystemExit("SAM's translator refuses template.yaml:\n" + "\n".join(f"  {c.message}" for c in e.causes))


# --- one stack: parameters, physical names, intrinsic functions -----------------------

NAME_PROPERTY = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::IAM::Role": "RoleName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Logs::LogGroup": "LogGroupName",
}


@dataclass
class Stack:
    """One deployed stack of the template, as far as this machine can tell."""

    name: str
    params: dict[str, str]
    region: str = "eu-west-1"
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> given physical name
    cfn: dict = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, params: dict[str, str], region: str = "eu-west-1", physical=None) -> "Stack":
        stack = cls(name, dict(params), region, dict(physical or {}))
        stack.cfn = translate(params, region)
        for k, p in stack.cfn.get("Parameters", {}).items():
            if k not in stack.params and "Default" in p:
                stack.params[k] = p["Default"]
        return stack

    @property
    def resources(self) -> dict:
        return self.cfn["Resources"]

    def explicit_name(self, logical: str) -> str | None:
        """The physical name the template gives a resource, if it names it."""
        r = self.resources[logical]
        prop = NAME_PROPERTY.get(r["Type"])
        value = r.get("Properties", {}).get(prop) if prop else None
        return None if value is None else self.resolve(value)

    def physical_name(self, logical: str) -> str:
        if logical in self.physical:
            return self.physical[logical]
        given = self.explicit_name(logical)
        if given:
            return given
        # CloudFormation's generated names: <stack>-<logical id>-<suffix>, lower case for S3.
        generated = f"{self.name}-{logical}-x1y2z3"
        return generated.lower() if self.resources[logical]["Type"] == "AWS::S3::Bucket" else generated

    def arn(self, logical: str) -> str:
        r, name = self.resources[logical]["Type"], self.physical_name(logical)
        reg, acct = self.region, ACCOUNT
        return {
            "AWS::Lambda::Function": f"arn:aws:lambda:{reg}:{acct}:function:{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{reg}:{acct}:{name}",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{reg}:{acct}:stateMachine:{name}",
            "AWS::Events::EventBus": f"arn:aws:events:{reg}:{acct}:event-bus/{name}",
            "AWS::Events::Rule": f"arn:aws:events:{reg}:{acct}:rule/{name}",
            "AWS::CloudWatch::Alarm": f"arn:aws:cloudwatch:{reg}:{acct}:alarm:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{acct}:role/{name}",
            "AWS::Scheduler::Schedule": f"arn:aws:scheduler:{reg}:{acct}:schedule/default/{name}",
        }.get(r, f"arn:aws:unknown:{reg}:{acct}:{name}")

    def ref(self, logical: str) -> str:
        if logical in self.params:
            return self.params[logical]
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::StackName": self.name,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if logical in pseudo:
            return pseudo[logical]
        kind = self.resources[logical]["Type"]
        if kind in ("AWS::SNS::Topic", "AWS::StepFunctions::StateMachine"):
            return self.arn(logical)
        return self.physical_name(logical)

    def get_att(self, logical: str, attr: str) -> str:
        if attr == "Arn":
            return self.arn(logical)
        if attr in ("TopicName", "Name"):
            return self.physical_name(logical)
        return f"{self.physical_name(logical)}.{attr}"

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.cfn["Conditions"][name]))

    def resolve(self, v):
        """`v` with every intrinsic function evaluated (AWS::NoValue drops the item)."""
        if isinstance(v, list):
            out = [self.resolve(x) for x in v]
            return [x for x in out if x is not _NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, a), = v.items()
            if k == "Ref":
                return _NO_VALUE if a == "AWS::NoValue" else self.ref(a)
            if k == "Fn::GetAtt":
                logical, attr = a if isinstance(a, list) else a.split(".", 1)
                return self.get_att(logical, attr)
            if k == "Fn::Sub":
                text, extra = (a, {}) if isinstance(a, str) else (a[0], self.resolve(a[1]))

                def one(m: re.Match) -> str:
                    var = m.group(1)
                    if var.startswith("!"):
                        return "${" + var[1:] + "}"
                    if var in extra:
                        return str(extra[var])
                    if "." in var:
                        return self.get_att(*var.split(".", 1))
                    return str(self.ref(var))

                return re.sub(r"\$\{([^}]+)\}", one, text)
            if k == "Fn::Join":
                return a[0].join(str(x) for x in self.resolve(a[1]))
            if k == "Fn::If":
                return self.resolve(a[1] if self.condition(a[0]) else a[2])
            if k == "Fn::Equals":
                x, y = self.resolve(a)
                return x == y
            if k == "Fn::Not":
                return not self.resolve(a[0])
            if k == "Fn::And":
                return all(self.resolve(a))
            if k == "Fn::Or":
                return any(self.resolve(a))
            if k == "Condition":
                return self.condition(a)
            if k == "Fn::Select":
                return self.resolve(a[1])[int(self.resolve(a[0]))]
        out = {k: self.resolve(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x is not _NO_VALUE}

    # --- what the stack holds ---

    def of_type(self, kind: str) -> list[str]:
        return [k for k, r in self.resources.items() if r["Type"] == kind and self._exists(r)]

    def _exists(self, r: dict) -> bool:
        return "Condition" not in r or self.condition(r["Condition"])

    def properties(self, logical: str) -> dict:
        return self.resolve(self.resources[logical].get("Properties", {}))

    def functions(self) -> dict[str, dict]:
        """Each function by its binary (`rps-<stage>`, from the SAM template's Metadata):
        logical id, name, ARN, environment, role policies, memory and timeout."""
        sam = load()["Resources"]
        out = {}
        for logical in self.of_type("AWS::Lambda::Function"):
            # What `sam build` reads (samcli app_builder: Metadata.BuildProperties.Binary);
            # a function without it is keyed by its logical id, for the checks to name.
            binary = sam.get(logical, {}).get("Metadata", {}).get("BuildProperties", {}).get("Binary") or logical
            props = self.properties(logical)
            role = props["Role"]
            role_logical = next(k for k in self.of_type("AWS::IAM::Role") if self.arn(k) == role)
            out[binary] = {
                "logical": logical,
                "name": props["FunctionName"],
                "arn": self.arn(logical),
                "env": props.get("Environment", {}).get("Variables", {}),
                "memory": int(props.get("MemorySize", 128)),
                "timeout": int(props.get("Timeout", 3)),
                "architectures": props.get("Architectures", ["x86_64"]),
                "role": role_logical,
                "policies": self.role_policies(role_logical),
            }
        return out

    def role_policies(self, role: str) -> list[dict]:
        """The role's inline policy documents (managed policies: logs and X-Ray only)."""
        return [p["PolicyDocument"] for p in self.properties(role).get("Policies", [])]

    def state_machine(self) -> tuple[dict, dict]:
        """(definition with its substitutions applied, properties)."""
        logical = self.of_type("AWS::StepFunctions::StateMachine")[0]
        props = self.properties(logical)
        text = props["DefinitionString"] if "DefinitionString" in props else json.dumps(props["Definition"])
        for k, v in props.get("DefinitionSubstitutions", {}).items():
            text = text.replace("${" + k + "}", str(v))
        return json.loads(text), props


_NO_VALUE = object()


# --- IAM: does a set of policies allow an action on a resource? -----------------------


def _glob(pattern: str, value: str, case: bool) -> bool:
    regex = fnmatch.translate(pattern.replace("[", "[[]"))  # only * and ? are wildcards
    return re.match(regex, value, 0 if case else re.IGNORECASE) is not None


def _listed(v) -> list:
    return v if isinstance(v, list) else [v]


def _conditions_hold(cond: dict, context: dict[str, str]) -> bool:
    for op, tests in cond.items():
        for key, wanted in tests.items():
            have = context.get(key)
            if have is None:
                return False  # a condition on a key the request does not carry fails
            if op == "StringLike" and not any(_glob(w, have, True) for w in _listed(wanted)):
                return False
            if op == "StringEquals" and have not in _listed(wanted):
                return False
            if op == "Bool" and str(have).lower() != str(_listed(wanted)[0]).lower():
                return False
            if op not in ("StringLike", "StringEquals", "Bool"):
                return False
    return True


def allows(policies: list[dict], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    """IAM's verdict for an identity with these policies (no resource policy)."""
    context = context or {}
    verdict = False
    for doc in policies:
        for st in _listed(doc.get("Statement", [])):
            actions = _listed(st.get("Action", []))
            if not any(_glob(a, action, False) for a in actions):
                continue
            if not any(_glob(r, resource, True) for r in _listed(st.get("Resource", []))):
                continue
            if "Condition" in st and not _conditions_hold(st["Condition"], context):
                continue
            if st.get("Effect") == "Deny":
                return False
            verdict = True
    return verdict


# --- EventBridge: does a rule's pattern match an event? -------------------------------


def pattern_matches(pattern, event) -> bool:
    """EventBridge's matching for the pattern forms the template uses: a list of
    allowed values (an event array matches if any element is allowed), nested objects."""
    if isinstance(pattern, dict):
        if not isinstance(event, dict):
            return False
        return all(k in event and pattern_matches(v, event[k]) for k, v in pattern.items())
    values = event if isinstance(event, list) else [event]
    return any(v == p for v in values for p in pattern)
