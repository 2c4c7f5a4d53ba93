"""Checks the GitHub side of CI/CD against the repository, where it can be checked here:

- each workflow `<pr|push>-<stage>.yml` triggers on exactly the branch names that
  .github/branches.json gives its stage (the branch model in one place);
- every `run:` step is `make <target>` (a target of the Makefile) or a script in
  scripts/, and that script is exercised by the test suite (named in cli/tests/**/*.rs,
  system/tests/**/*.rs or scripts/test.sh), so what CI does runs here first;
- a job that reads secrets checks them first: its first run step is
  scripts/ci/require-env.sh;
- the rulesets (.github/rulesets/<stage>.json) target the stage's branch names, forbid
  force pushes and deletion, need approvals into staging and main, and require status
  checks that are jobs of the workflow run on pull requests into that stage.

    python system/checkers/cicd/check_workflows.py [--workflows DIR]

Prints each problem and exits 1 if there is any.
"""

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def makefile_targets() -> dict[str, list[str]]:
    """Each target with the scripts its recipe calls."""
    targets: dict[str, list[str]] = {}
    current = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+):(?!=)", line)
        if m:
            current = m.group(1)
            targets.setdefault(current, [])
        elif line.startswith("\t") and current:
            targets[current] += re.findall(r"(?:scripts|bench)/[\w./-]+\.sh", line)
    return targets


def suite_text() -> str:
    files = [f for d in ("cli/tests", "system/tests") for f in (ROOT / d).rglob("*.rs")]
    files.append(ROOT / "scripts/test.sh")
    return "\n".join(f.read_text() for f in files)


def triggers(doc: dict) -> dict:
    # PyYAML reads the key `on` as True.
    return doc.get("on", doc.get(True)) or {}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workflows", type=Path, default=ROOT / ".github/workflows")
    args = ap.parse_args()
    problems: list[str] = []
    branches = json.loads((ROOT / ".github/branches.json").read_text())
    targets = makefile_targets()
    suite = suite_text()
    pr_jobs: dict[str, set[str]] = {}

    def exercised(script: str, where: str) -> None:
        if not (ROOT / script).is_file():
            problems.append(f"{where}: {script} does not exist")
        elif script not in suite:
            problems.append(f"{where}: {script} is not exercised by the test suite (no test names it)")

    files = sorted(args.workflows.glob("*.yml"))
    if not files:
        problems.append(f"no workflows in {args.workflows}")
    for wf in files:
        doc = yaml.safe_load(wf.read_text())
        m = re.match(r"^(pr|push)-(\w+)\.yml$", wf.name)
        if not m or m.group(2) not in branches:
            problems.append(f"{wf.name}: not named <pr|push>-<stage>.yml for a stage of branches.json")
            continue
        event = "pull_request" if m.group(1) == "pr" else "push"
        on = triggers(doc)
        got = (on.get(event) or {}).get("branches") if isinstance(on, dict) else None
        if sorted(got or []) != sorted(branches[m.group(2)]):
            problems.append(f"{wf.name}: {event} branches {got}, branches.json says {branches[m.group(2)]}")
        if event == "pull_request":
            pr_jobs[m.group(2)] = set(doc.get("jobs", {}))
        for job_id, job in (doc.get("jobs") or {}).items():
            runs = [s for s in job.get("steps", []) if "run" in s]
            text = json.dumps(job)
            if ("secrets." in text or "vars." in text) and runs:
                first = runs[0]["run"].strip()
                if not first.startswith("scripts/ci/require-env.sh"):
                    problems.append(f"{wf.name} {job_id}: reads secrets but its first run step is not scripts/ci/require-env.sh")
            for step in runs:
                where = f"{wf.name} {job_id}: run: {step['run'].strip()}"
                if "\n" in step["run"].strip():
                    problems.append(f"{where}: one command per step")
                    continue
                words = shlex.split(step["run"])
                if words[:1] == ["make"]:
                    target = next((w for w in words[1:] if "=" not in w and not w.startswith("-")), None)
                    if target not in targets:
                        problems.append(f"{where}: the Makefile has no target {target!r}")
                    elif target != "test":  # `make test` is the suite itself
                        scripts = targets[target]
                        if not scripts:
                            problems.append(f"{where}: target {target!r} calls no script the suite can exercise")
                        for s in scripts:
                            exercised(s, where)
                elif words and words[0] in ("bash", "sh") and len(words) > 1 and words[1].startswith("scripts/"):
                    exercised(words[1], where)
                elif words and words[0].startswith("scripts/"):
                    exercised(words[0], where)
                else:
                    problems.append(f"{where}: not a make target or a script in scripts/")

    for stage, names in branches.items():
        if stage.startswith("/"):
            continue
        path = ROOT / ".github/rulesets" / f"{stage}.json"
        if not path.is_file():
            problems.append(f"no ruleset {path.name} for the {stage} branches")
            continue
        rs = json.loads(path.read_text())
        refs = rs["conditions"]["ref_name"]["include"]
        if sorted(refs) != sorted(f"refs/heads/{b}" for b in names):
            problems.append(f"{path.name}: targets {refs}, branches.json says {names}")
        rules = {r["type"]: r.get("parameters", {}) for r in rs["rules"]}
        for must in ("non_fast_forward", "deletion", "pull_request", "required_status_checks"):
            if must not in rules:
                problems.append(f"{path.name}: no {must} rule")
        if stage != "dev" and rules.get("pull_request", {}).get("required_approving_review_count", 0) < 1:
            problems.append(f"{path.name}: merging into {stage} needs at least one approval")
        checks = {c["context"] for c in rules.get("required_status_checks", {}).get("required_status_checks", [])}
        missing = checks - pr_jobs.get(stage, set())
        if not checks or missing:
            problems.append(f"{path.name}: required checks {sorted(missing) or 'none'} are not jobs of pr-{stage}.yml")
    for p in problems:
        print(p)
    print(f"{len(files)} workflows, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
