"""samconfig.toml and scripts/ci/deploy.sh against the rules the real `sam` enforces
(aws-sam-cli 1.170: samcli/commands/deploy/command.py, samcli/lib/config/samconfig.py,
samcli/commands/deploy/deploy_context.py), checked without AWS:

- `resolve_s3 = true` cannot be combined with `--s3-bucket` (DeployResolveS3AndS3SetError),
  and deploy.sh passes the artifact bucket;
- `confirm_changeset = true` prompts and aborts without a terminal: CI has none;
- under `--config-env X` only `[X.*]` sections are read: a `[default.*]` deploy or
  global setting is ignored there (the region, say), and every environment deploy.sh
  deploys has its own stack name and capabilities;
- nothing account-specific is committed (an account id, an ARN, a URL): parameters
  come from the environment (deploy.sh's --parameter-overrides);
- deploy.sh passes every template parameter without a default, and only the template's
  parameters;
- given `--template-file`, sam reads samconfig.toml from that template's folder
  (samcli/commands/_utils/options.py), so deploy.sh names the file with an absolute path.

    python system/checkers/infra/check_samconfig.py
Prints each problem and exits 1 if there is any.
"""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cloud"))
import sam  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def main() -> int:
    problems: list[str] = []
    text = (ROOT / "samconfig.toml").read_text()
    config = tomllib.loads(text)
    deploy_sh = (ROOT / "scripts/ci/deploy.sh").read_text()
    passes_bucket = "--s3-bucket" in deploy_sh
    envs = [e for e in config if e not in ("version", "default")]
    if not envs:
        problems.append("samconfig.toml: no environment sections ([staging.deploy.parameters], …)")
    for env in config:
        if env == "version":
            continue
        for command, section in config[env].items():
            params = section.get("parameters", {})
            where = f"samconfig.toml [{env}.{command}.parameters]"
            if params.get("resolve_s3") and passes_bucket:
                problems.append(f"{where}: resolve_s3 = true with deploy.sh's --s3-bucket: sam deploy refuses both (DeployResolveS3AndS3SetError)")
            if params.get("confirm_changeset"):
                problems.append(f"{where}: confirm_changeset = true waits for an answer CI never gives (use the GitHub environment's reviewers)")
            if env == "default" and command in ("deploy", "global") and params:
                problems.append(f"{where}: ignored under --config-env <env>, which is how deploy.sh deploys: move it to each environment")
    for env in envs:
        deploy = config[env].get("deploy", {}).get("parameters", {})
        where = f"samconfig.toml [{env}.deploy.parameters]"
        if not deploy.get("stack_name"):
            problems.append(f"{where}: no stack_name")
        if "CAPABILITY_IAM" not in str(deploy.get("capabilities", "")):
            problems.append(f"{where}: the template creates IAM roles: capabilities must include CAPABILITY_IAM")
        if deploy.get("parameter_overrides"):
            problems.append(f"{where}: parameter_overrides are replaced by deploy.sh's --parameter-overrides; set them from the environment in deploy.sh")
    for pattern, what in ((r"\b\d{12}\b", "an AWS account id"), (r"arn:aws", "an ARN"), (r"https?://", "a URL"), (r"OWNER|REPO\b", "a placeholder")):
        for line in text.splitlines():
            if not line.lstrip().startswith("#") and re.search(pattern, line):
                problems.append(f"samconfig.toml: {what} is committed ({line.strip()}): it belongs in the environment")
    # The parameters deploy.sh passes, against the template's.
    template = sam.load()["Parameters"]
    passed = set(re.findall(r'"([A-Z][A-Za-z]+)=\$', deploy_sh)) | set(re.findall(r"\b([A-Z][A-Za-z]+)=RPS_[A-Z_]+", deploy_sh))
    for name, p in template.items():
        if "Default" not in p and name not in passed:
            problems.append(f"scripts/ci/deploy.sh: does not pass the template parameter {name}, which has no default")
    for name in passed - set(template):
        problems.append(f"scripts/ci/deploy.sh: passes {name}, which the template does not have")
    for flag in ("--no-confirm-changeset", "--no-fail-on-empty-changeset", "--region"):
        if flag not in deploy_sh:
            problems.append(f"scripts/ci/deploy.sh: sam deploy without {flag}")
    if "--template-file" in deploy_sh and not re.search(r'--config-file "\$ROOT/samconfig\.toml"', deploy_sh):
        problems.append('scripts/ci/deploy.sh: sam deploy --template-file without --config-file "$ROOT/samconfig.toml": '
                        "sam reads samconfig.toml from the template's folder, and finds no stack name there")
    for p in problems:
        print(p)
    print(f"{len(envs)} environment(s), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
