"""Applies the repository rulesets given as files with the GitHub REST API: creates each
one that does not exist (by name), updates each one that does (scripts/ci/apply-rulesets.sh).

    python3 scripts/ci/apply_rulesets.py .github/rulesets/*.json
"""
import json, os, sys, urllib.error, urllib.request

api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
repo = os.environ["GITHUB_REPOSITORY"]
headers = {"Authorization": f"Bearer {os.environ['GITHUB_TOKEN']}",
           "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
           "Content-Type": "application/json"}

def call(method, path, body=None):
    req = urllib.request.Request(f"{api}/repos/{repo}/{path}", method=method, headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')[:500]}")

existing = {r["name"]: r["id"] for r in call("GET", "rulesets?includes_parents=false&per_page=100")}
for path in sys.argv[1:]:
    ruleset = json.load(open(path))
    if ruleset["name"] in existing:
        call("PUT", f"rulesets/{existing[ruleset['name']]}", ruleset)
        print(f"updated {ruleset['name']} ({path})")
    else:
        created = call("POST", "rulesets", ruleset)
        print(f"created {ruleset['name']} ({path}) as {created['id']}")
