"""Checks that the monitoring files agree with each other and with the docs.

  python system/checkers/monitoring/check_monitoring.py

- every alert in infra/prometheus/rules/ has a severity, a summary, a description and
  a runbook link to a section of docs/runbooks.md that exists;
- every alert is unit-tested in infra/prometheus/tests/: at least one evaluation where
  it fires, and one where it stays quiet (an empty expectation, or an instance of the
  test's series that the expected alerts leave out);
- the Grafana-managed rules use the Prometheus rules' names, waits and runbooks, the
  provisioned data source and the provisioned contact point;
- compose.yaml mounts files that exist, scrapes the container's targets, and puts the
  alert log where alertmanager.yml and Grafana's contact point send alerts.
Exits non-zero with one line per disagreement.
"""
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml

root = Path(__file__).resolve().parents[3]
problems = []


def load(path):
    return yaml.safe_load((root / path).read_text())


runbooks = (root / "docs/runbooks.md").read_text()
sections = {m.group(1).lower() for m in re.finditer(r"^## (\S+)", runbooks, re.M)}

alerts = {}
for path in sorted((root / "infra/prometheus/rules").glob("*.yml")):
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts[rule["alert"]] = rule
if not alerts:
    problems.append("no alert rules in infra/prometheus/rules/")
for name, rule in alerts.items():
    labels, ann = rule.get("labels", {}), rule.get("annotations", {})
    if labels.get("severity") not in ("page", "ticket"):
        problems.append(f"{name}: severity must be page or ticket, not {labels.get('severity')!r}")
    for key in ("summary", "description", "runbook_url"):
        if not ann.get(key):
            problems.append(f"{name}: no {key} annotation")
    url = ann.get("runbook_url", "")
    anchor = url.partition("#")[2]
    if not url.startswith("https://") or "/docs/runbooks.md#" not in url or anchor != name.lower():
        problems.append(f"{name}: runbook_url {url!r} is not docs/runbooks.md#{name.lower()}")
    if name.lower() not in sections:
        problems.append(f"{name}: docs/runbooks.md has no section '## {name}'")

fires, quiet = set(), set()
for path in sorted((root / "infra/prometheus/tests").glob("*.yml")):
    for test in yaml.safe_load(path.read_text())["tests"]:
        instances = set()
        for s in test.get("input_series", []):
            instances |= set(re.findall(r'instance="([^"]+)"', s["series"]))
        for case in test.get("alert_rule_test", []):
            name, expected = case["alertname"], case.get("exp_alerts") or []
            if name not in alerts:
                problems.append(f"{path.name}: tests {name}, which no rule defines")
            if expected:
                fires.add(name)
                if instances - {e["exp_labels"].get("instance") for e in expected}:
                    quiet.add(name)
            else:
                quiet.add(name)
for name in alerts:
    if name not in fires:
        problems.append(f"{name}: no promtool test shows it firing")
    if name not in quiet:
        problems.append(f"{name}: no promtool test shows it staying quiet")

# Grafana provisioning.
datasources = {d["uid"] for d in load("grafana/provisioning/datasources/prometheus.yaml")["datasources"]}
contact = load("grafana/provisioning/alerting/contact-points.yaml")
points = {c["name"] for c in contact["contactPoints"]}
for p in contact.get("policies", []):
    if p["receiver"] not in points:
        problems.append(f"the Grafana notification policy sends to {p['receiver']}, which is not a contact point")
grafana_rules = [r for g in load("grafana/provisioning/alerting/rules.yaml")["groups"] for r in g["rules"]]
if not grafana_rules:
    problems.append("no Grafana-managed alert rules")
for r in grafana_rules:
    title = r["title"]
    refs = {d["refId"] for d in r["data"]}
    if r["condition"] not in refs:
        problems.append(f"Grafana rule {title}: condition {r['condition']} is none of its queries {sorted(refs)}")
    for d in r["data"]:
        if d["datasourceUid"] not in datasources | {"__expr__"}:
            problems.append(f"Grafana rule {title}: data source {d['datasourceUid']} is not provisioned")
    url = r.get("annotations", {}).get("runbook_url", "")
    if url.partition("#")[2] not in sections:
        problems.append(f"Grafana rule {title}: runbook {url} has no section in docs/runbooks.md")
    twin = alerts.get(title) or alerts.get(title.replace("InputDrift", "InputOutOfRange"))
    if twin is None:
        problems.append(f"Grafana rule {title} has no Prometheus rule of the same name")
    elif r.get("for") != twin.get("for"):
        problems.append(f"Grafana rule {title} waits {r.get('for')}, its Prometheus twin {twin.get('for')}")
    elif r.get("labels", {}).get("severity") != twin["labels"]["severity"]:
        problems.append(f"Grafana rule {title} has another severity than its Prometheus twin")

# compose.yaml: mounts, targets and the alert log's address.
compose = load("compose.yaml")["services"]
for name, svc in compose.items():
    for v in svc.get("volumes", []):
        host = v.split(":")[0]
        # The alert log's token is the user's to make (compose.yaml says how).
        if host.startswith(".") and not (root / host).exists() and not host.startswith("./infra/alertmanager/secrets/"):
            problems.append(f"compose.yaml: {name} mounts {host}, which does not exist")
prom_mounts = [v.split(":")[:2] for v in compose["prometheus"]["volumes"]]
if ["./infra/prometheus/targets/compose", "/etc/prometheus/targets"] not in prom_mounts:
    problems.append("compose.yaml: prometheus does not scrape the container targets (infra/prometheus/targets/compose)")
for t in load("infra/prometheus/targets/compose/api.yml"):
    for target in t["targets"]:
        if target.split(":")[0] not in compose:
            problems.append(f"targets/compose/api.yml: {target} is not a compose service")
am = load("infra/alertmanager/alertmanager.yml")
webhooks = [w["url"] for r in am["receivers"] for w in r.get("webhook_configs", [])]
log = compose["alert-log"]
if log.get("network_mode") != "service:alertmanager":
    problems.append("compose.yaml: alert-log must share alertmanager's network (its webhook goes to 127.0.0.1)")
for url in webhooks:
    if str(urlparse(url).port) != str(log["environment"]["PORT"]):
        problems.append(f"alertmanager.yml sends to {url}, but alert-log listens on {log['environment']['PORT']}")
# The alert log takes Alertmanager's token only: Alertmanager reads it from the file the
# alert log is given, and Grafana goes through Alertmanager (the log is on loopback).
am_mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["alertmanager"]["volumes"]}
log_mounts = {v.split(":")[1]: v.split(":")[0] for v in log.get("volumes", [])}
token_file = log["environment"].get("RPS_ALERT_LOG_TOKEN_FILE")
for r in am["receivers"]:
    for w in r.get("webhook_configs", []):
        auth = (w.get("http_config") or {}).get("authorization") or {}
        cred = auth.get("credentials_file", "")
        host = next((h + cred[len(c):] for c, h in am_mounts.items() if cred.startswith(c + "/")), None)
        if auth.get("type", "Bearer") != "Bearer" or not cred:
            problems.append(f"alertmanager.yml: the webhook {w['url']} sends no bearer token (http_config.authorization.credentials_file)")
        elif token_file is None or log_mounts.get(token_file) != host:
            problems.append(f"compose.yaml: alert-log's RPS_ALERT_LOG_TOKEN_FILE is not the file Alertmanager sends ({cred}, {host} on the host)")
for c in contact["contactPoints"]:
    for r in c["receivers"]:
        u = urlparse(r["settings"]["url"])
        if r["type"] != "prometheus-alertmanager" or u.hostname != "alertmanager" or u.port != 9093:
            problems.append(f"Grafana contact point {c['name']} sends to {r['type']} {u.netloc}, not to Alertmanager (alertmanager:9093), which reaches the alert log")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
