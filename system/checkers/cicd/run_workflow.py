"""Runs one job of a GitHub workflow here, the way a hosted runner would, up to the first
call that only the real AWS or GitHub can answer.

    python system/checkers/cicd/run_workflow.py WORKFLOW JOB STANDIN_JSON OUT_JSON

- The job's environment is the workflow's `env`, the job's and each step's, with
  `${{ vars.* }}`, `${{ secrets.* }}` and `${{ github.* }}` taken from STANDIN_JSON's
  "vars", "secrets" and "github" (what a user creates in the GitHub environment; a name
  not there is empty, as on GitHub), plus the runner's own variables (CI, GITHUB_ENV,
  GITHUB_SHA, …) and STANDIN_JSON's "machine" (the caches, the toolchain's paths).
- `if:` is evaluated (contexts, ==, !=, !, &&, ||, always(), success(), failure()); a
  failed step ends the job unless it has continue-on-error; later `if: always()` steps
  still run. A line NAME=value appended to $GITHUB_ENV reaches the later steps.
- `run:` steps run with bash -eo pipefail in the clone STANDIN_JSON's "workdir" names.
  A step in "skip_runs" (the test suite itself: `make lint`, `make test`) is recorded
  as skipped. A step in "real_calls" ({command: {"why", "reached": regex}}) that fails
  with output matching "reached" got as far as a call only the real service answers
  (`sam deploy`'s CloudFormation change set): it is recorded as reached-real-call, and
  the job goes on, since a local stand-in already provides what that call makes (the
  stack). Failing without that output is a failure like any other.
- The hosted actions are stand-ins: actions/checkout and actions/cache do nothing (the
  clone is fresh); aws-actions/configure-aws-credentials needs its role-to-assume and
  sets STANDIN_JSON's "aws" credentials, region and endpoint (moto); iterative/setup-cml
  puts a `cml` on PATH that records what it would post to "cml_log"; docker/login-action
  records the login and points image pushes at the local registry "registry_dir";
  `docker` runs podman. Any other action fails the step.

Writes OUT_JSON: {"workflow", "job", "result": success|failure|skipped, "steps":
[{"step", "status": success|failure|skipped|reached-real-call, "code", "log"}]}.
"""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml


class Expr:
    """GitHub's expression language, the part workflows here use."""

    TOKEN = re.compile(r"\s*(==|!=|&&|\|\||!|\(|\)|,|'(?:[^']|'')*'|[A-Za-z_][\w.\-*]*|\d+)")

    def __init__(self, contexts: dict, status: str):
        self.contexts = contexts
        self.status = status  # success | failure: the job so far

    def eval(self, text: str):
        self.tokens = [t for t in self.TOKEN.findall(text)]
        self.pos = 0
        value = self.or_()
        if self.pos != len(self.tokens):
            raise ValueError(f"cannot read the expression {text!r}")
        return value

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self):
        t = self.peek()
        self.pos += 1
        return t

    def or_(self):
        v = self.and_()
        while self.peek() == "||":
            self.take()
            r = self.and_()
            v = v or r
        return v

    def and_(self):
        v = self.cmp()
        while self.peek() == "&&":
            self.take()
            r = self.cmp()
            v = v and r
        return v

    def cmp(self):
        v = self.unary()
        while self.peek() in ("==", "!="):
            op = self.take()
            r = self.unary()
            same = str(v).lower() == str(r).lower() if isinstance(v, str) or isinstance(r, str) else v == r
            v = same if op == "==" else not same
        return v

    def unary(self):
        if self.peek() == "!":
            self.take()
            return not self.unary()
        if self.peek() == "(":
            self.take()
            v = self.or_()
            self.take()
            return v
        t = self.take()
        if t.startswith("'"):
            return t[1:-1].replace("''", "'")
        if t.isdigit():
            return int(t)
        if t in ("true", "false"):
            return t == "true"
        if self.peek() == "(":
            self.take()
            args = []
            while self.peek() != ")":
                args.append(self.or_())
                if self.peek() == ",":
                    self.take()
            self.take()
            return self.call(t, args)
        value = self.contexts
        for part in t.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return value

    def call(self, name: str, args: list):
        if name == "always":
            return True
        if name == "success":
            return self.status == "success"
        if name == "failure":
            return self.status == "failure"
        if name == "cancelled":
            return False
        if name == "hashFiles":
            return "hash"
        if name == "contains":
            return str(args[1]).lower() in str(args[0]).lower()
        if name == "format":
            return re.sub(r"\{(\d+)\}", lambda m: str(args[int(m.group(1)) + 1]), args[0])
        raise ValueError(f"the function {name}() has no stand-in")


def substitute(value, contexts: dict, status: str = "success") -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(Expr(contexts, status).eval(m.group(1))), str(value))


def tool(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def main() -> None:
    workflow_file, job_id, standin_file, out_file = sys.argv[1:5]
    standin = json.loads(Path(standin_file).read_text())
    doc = yaml.safe_load(Path(workflow_file).read_text())
    job = doc["jobs"][job_id]
    workdir = Path(standin["workdir"])
    runner_temp = Path(tempfile.mkdtemp(prefix="runner-"))
    bin_dir = runner_temp / "bin"
    bin_dir.mkdir()
    github_env = runner_temp / "github_env"
    github_env.write_text("")
    github = {
        "repository": "owner/repo", "sha": "0" * 40, "actor": "someone", "workspace": str(workdir),
        "event": {}, **standin.get("github", {}),
    }
    contexts = {"vars": standin.get("vars", {}), "secrets": standin.get("secrets", {}), "github": github, "env": {}}
    env = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/root"),
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_ENV": str(github_env),
        "GITHUB_SHA": github["sha"],
        "GITHUB_REPOSITORY": github["repository"],
        "GITHUB_ACTOR": github["actor"],
        "GITHUB_WORKSPACE": str(workdir),
        "RUNNER_TEMP": str(runner_temp),
        **standin.get("machine", {}),
    }
    result = {"workflow": Path(workflow_file).name, "job": job_id, "steps": []}

    def layer(mapping: dict | None):
        for k, v in (mapping or {}).items():
            env[k] = substitute(v, {**contexts, "env": env})

    layer(doc.get("env"))
    if "if" in job and not Expr({**contexts, "env": env}, "success").eval(str(job["if"]).replace("${{", "").replace("}}", "")):
        result["result"] = "skipped"
        Path(out_file).write_text(json.dumps(result, indent=1))
        return
    layer(job.get("env"))
    status = "success"
    for step in job.get("steps", []):
        name = step.get("name") or step.get("run") or step.get("uses")
        record = {"step": name, "status": "skipped", "code": None, "log": ""}
        result["steps"].append(record)
        cond = str(step.get("if", "success()")).replace("${{", "").replace("}}", "")
        step_env = dict(env)
        for k, v in (step.get("env") or {}).items():
            step_env[k] = substitute(v, {**contexts, "env": env}, status)
        if not Expr({**contexts, "env": env}, status).eval(cond):
            continue
        if "uses" in step:
            ok, log = use(step, standin, env, contexts, bin_dir)
            record.update(status="success" if ok else "failure", code=0 if ok else 1, log=log)
        else:
            command = substitute(step["run"], {**contexts, "env": env}, status).strip()
            if command in standin.get("skip_runs", []):
                record.update(status="skipped", log="the test suite itself: not run from inside it")
                continue
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", command],
                                  cwd=workdir, env=step_env, capture_output=True, text=True)
            log = (proc.stdout + proc.stderr)[-6000:]
            record.update(status="success" if proc.returncode == 0 else "failure", code=proc.returncode, log=log)
            real = standin.get("real_calls", {}).get(command)
            if proc.returncode != 0 and real:
                if re.search(real["reached"], proc.stdout + proc.stderr):
                    # It ran up to a call only the real service answers; what that call
                    # does (the stack) a local stand-in already provides: the job goes on.
                    record.update(status="reached-real-call", log=log + "\n[stand-in] " + real["why"])
                else:
                    record.update(log=log + f"\n[stand-in] it failed before the real call (no {real['reached']!r} in its output)")
            for line in github_env.read_text().splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    env[k] = v
            github_env.write_text("")
        if record["status"] == "failure" and not step.get("continue-on-error"):
            status = "failure"
    result["result"] = status
    Path(out_file).write_text(json.dumps(result, indent=1))


def use(step: dict, standin: dict, env: dict, contexts: dict, bin_dir: Path) -> tuple[bool, str]:
    action = step["uses"].split("@")[0]
    inputs = {k: substitute(v, {**contexts, "env": env}) for k, v in (step.get("with") or {}).items()}
    if action in ("actions/checkout", "actions/cache"):
        return True, f"{action}: the clone is fresh (stand-in)"
    if action == "aws-actions/configure-aws-credentials":
        if not inputs.get("role-to-assume"):
            return False, "Could not assume role: role-to-assume is empty (set the AWS_ROLE_ARN variable)"
        if not inputs.get("aws-region"):
            return False, "Input required and not supplied: aws-region"
        aws = standin["aws"]
        env.update({
            "AWS_ACCESS_KEY_ID": aws["access_key"], "AWS_SECRET_ACCESS_KEY": aws["secret_key"],
            "AWS_REGION": inputs["aws-region"], "AWS_DEFAULT_REGION": inputs["aws-region"],
            "AWS_ENDPOINT_URL": aws["endpoint"], "AWS_EC2_METADATA_DISABLED": "true",
        })
        return True, f"assumed {inputs['role-to-assume']} (moto at {aws['endpoint']})"
    if action == "iterative/setup-cml":
        log = standin["cml_log"]
        tool(bin_dir, "cml", f'''[[ -n ${{REPO_TOKEN:-}} ]] || {{ echo "cml: REPO_TOKEN is not set" >&2; exit 1; }}
[[ $1 == comment && $2 == create ]] || {{ echo "cml: only 'comment create' has a stand-in" >&2; exit 1; }}
file=${{@: -1}}
python3 -c 'import json,sys; print(json.dumps({{"args": sys.argv[2:], "body": open(sys.argv[1]).read()}}))' "$file" "$@" >>{json.dumps(log)}
echo "cml: recorded a comment ({log})"
''')
        return True, "cml (stand-in): comments are recorded"
    if action == "docker/login-action":
        if not inputs.get("password"):
            return False, "docker/login-action: password is empty"
        Path(standin["registry_dir"]).mkdir(parents=True, exist_ok=True)
        env["IMAGE_PUSH_TRANSPORT"] = f"dir:{standin['registry_dir']}"
        tool(bin_dir, "docker", '''case $1 in
  build) shift; exec podman build --runtime runc --format docker "$@" ;;
  run) shift; exec podman run --runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 "$@" ;;
  *) exec podman "$@" ;;
esac
''')
        return True, f"logged in to {inputs.get('registry')} (stand-in: pushes go to {standin['registry_dir']})"
    return False, f"{action}: no stand-in for this action"


if __name__ == "__main__":
    main()
