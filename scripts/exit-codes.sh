# shellcheck shell=bash disable=SC2034
# Generated from ERROR_TYPES in shared/src/stage/table.rs: do not edit.
# make docs rewrites it.
# The exit code rps ends with for each error type; scripts/lib.sh sources this.
RPS_EXIT_DATA_QUALITY_GATE_FAILED=3  # the data quality gate refused the data
RPS_EXIT_PROMOTION_GATE_FAILED=4  # the promotion gates refused the model
RPS_EXIT_PROMOTION_CONFLICT=5  # another run got there first; nothing changed
RPS_EXIT_INVALID_INPUT=1  # the caller's input is wrong
RPS_EXIT_CONFIGURATION_ERROR=1  # the deployment's configuration or permissions are wrong
RPS_EXIT_DEPENDENCY_FAILED=1  # an outside system failed; trying again may help
RPS_EXIT_INTERNAL_ERROR=1  # a bug in rps
