# The two commands of the quick start: `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target

.PHONY: demo test build lint fmt docs requirements down clean bench statemachine airflow bench-lambda

## Run the whole pipeline offline on the shipped sample year and show where every output is.
demo: build
	@bash scripts/demo.sh

## Every test: formatting, clippy, unit, integration and end-to-end tests.
test:
	@bash scripts/test.sh

## The serving benchmark: rps-api against a Python peer; writes bench/results/latest.md.
bench:
	@bash bench/run.sh

## The serverless shape on this machine: every stage function under `cargo lambda watch`,
## moto (S3, Secrets Manager), MLflow, and the real state machine run by
## aws-local-stepfunctions: a promotion, a data-gate refusal, a promotion-gate refusal.
statemachine:
	bash scripts/setup-python.sh && bash scripts/setup-node.sh
	$(CARGO) test --release --locked -p rps-cli --test statemachine -- --nocapture

## The Airflow DAGs (dags/) under the real Airflow: imported, checked against the state
## machine, and run with `airflow dags test` against the stage functions.
airflow:
	bash scripts/setup-python.sh && bash scripts/setup-python.sh airflow
	$(CARGO) test --release --locked -p rps-cli --test airflow -- --nocapture

## Each stage function's zip size, init duration and peak memory on the sample year.
bench-lambda:
	@bash bench/lambda.sh

build:
	$(CARGO) build --release --locked -p rps-cli

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate the parts of docs/ that are generated from the code (the configuration table).
docs:
	UPDATE_DOCS=1 $(CARGO) test --release --locked -p shared --test docs

## Re-pin the Python tools (scripts/requirements.in → requirements.txt, with hashes).
requirements:
	python3 -m venv .rps/pip-tools && .rps/pip-tools/bin/pip install --quiet pip-tools
	for in in scripts/requirements*.in; do \
		.rps/pip-tools/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
			--output-file "$${in%.in}.txt" "$$in" && sed -i '/^--find-links /d' "$${in%.in}.txt"; \
	done

## Stop anything `make demo` left running.
down:
	@bash scripts/down.sh

clean: down
	rm -rf .rps
