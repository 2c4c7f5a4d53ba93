#!/usr/bin/env bash
# The first step of every job that needs secrets: fails at once, naming each variable
# (a GitHub environment secret or variable) that is missing or empty. Never prints a value.
#
#   scripts/ci/require-env.sh NAME...
set -euo pipefail
missing=()
for name in "$@"; do
  [[ -n ${!name:-} ]] || missing+=("$name")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "::error::missing secret or variable: ${missing[*]} (set it in the GitHub environment; see docs/cicd.md)" >&2
  exit 1
fi
echo "present: $*"
