#!/usr/bin/env bash
# Applies the repository rulesets in .github/rulesets/ with the GitHub REST API:
# creates each one that does not exist (by name), updates each one that does. Run it
# once per repository and after changing a ruleset (make rulesets).
#
# GITHUB_TOKEN: a token with administration:write on the repository;
# GITHUB_REPOSITORY: owner/name; GITHUB_API_URL: default https://api.github.com.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/ci/require-env.sh GITHUB_TOKEN GITHUB_REPOSITORY
python3 scripts/ci/apply_rulesets.py .github/rulesets/*.json
