# The two commands of the quick start: `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target
# One target tree for every build, sam build's included (scripts/cargo-env.sh).
CARGO_ENV_TARGET := $(shell bash scripts/cargo-env.sh target)
ifneq ($(CARGO_ENV_TARGET),)
export CARGO_BUILD_TARGET ?= $(CARGO_ENV_TARGET)
export RUSTFLAGS ?= $(shell bash scripts/cargo-env.sh rustflags)
endif
BIN_DIR := $(CARGO_TARGET_DIR)/$(if $(CARGO_BUILD_TARGET),$(CARGO_BUILD_TARGET)/)release

.PHONY: demo test build lint fmt docs requirements down clean bench statemachine airflow bench-lambda monitoring dashboard-picture \
	image image-check image-push cml-report cml-comment deploy-package deploy stage promote-staging smoke rulesets \
	doctor sam-build

## Run the whole pipeline offline on the shipped sample year and show where every output is.
demo: build
	@bash scripts/demo.sh

## Every test: formatting, clippy, unit, integration and end-to-end tests.
test:
	@bash scripts/test.sh

## The serving benchmark: rps-api against a Python peer; writes bench/results/latest.md.
bench:
	@bash bench/run.sh

## The serverless shape on this machine, as template.yaml deploys it: every function `sam
## build` made, under the Lambda Runtime API with the template's environment and its IAM
## role's policies enforced by moto (S3, Secrets Manager), MLflow, and the translated
## state machine run by aws-local-stepfunctions (system/checkers/cloud/stack.py).
statemachine: build
	bash scripts/setup-python.sh && bash scripts/setup-python.sh iac && bash scripts/setup-node.sh
	$(CARGO) test --release --locked --workspace --test system statemachine:: -- --nocapture

## The Airflow DAGs (dags/) under the real Airflow: imported, checked against the state
## machine, and run with `airflow dags test` against the stage functions.
airflow: build
	bash scripts/setup-python.sh && bash scripts/setup-python.sh iac && bash scripts/setup-python.sh airflow
	$(CARGO) test --release --locked --workspace --test system airflow:: -- --nocapture

## Monitoring (docs/monitoring.md): promtool, amtool, the dashboards against Grafana's
## schema, compose.yaml; then live: rps serve, Prometheus, Alertmanager and the alert log.
monitoring: build
	bash scripts/setup-system.sh && bash scripts/setup-python.sh && bash scripts/setup-node.sh
	$(CARGO) test --release --locked --workspace --test system monitoring:: -- --nocapture

## Redraw docs/img/dashboards.png (the README's picture) from the live monitoring test.
dashboard-picture: build
	bash scripts/setup-system.sh && bash scripts/setup-python.sh && bash scripts/setup-node.sh
	RPS_DASHBOARD_PNG=$(CURDIR)/docs/img/dashboards.png $(CARGO) test --release --locked --workspace \
		--test system monitoring::live_ -- --nocapture

## Each stage function's zip size, init duration and peak memory on the sample year.
bench-lambda:
	@bash bench/lambda.sh

## The system tests' targets above build it too: they drive it (testkit::rps::rps).
## RPS_BIN names a prebuilt rps instead (a CI job given the binary another built).
build:
	@if [ -n "$$RPS_BIN" ]; then echo "rps: $$RPS_BIN (RPS_BIN)"; else \
		$(CARGO) build --release --locked -p rps-cli && echo "rps: $(BIN_DIR)/rps"; fi

## `sam build` of template.yaml (ARCH=arm64 by default; x86_64 here): .aws-sam/build/.
ARCH ?= $(or $(RPS_ARCHITECTURE),arm64)
sam-build:
	@bash scripts/sam-build.sh $(ARCH)

## Probe the configured store, DVC remote and MLflow before relying on them.
doctor: build
	@bash scripts/ci/doctor.sh

## Format, cargo deny, clippy, and the workflows (actionlint, run steps, branch model).
lint:
	@bash scripts/ci/lint.sh

## CI/CD (docs/cicd.md): every workflow step is one of these targets.
TAG ?= rps-api:dev
OUT ?= cml
## The API's container image: baked with @production (IMAGE_MODEL=registry: loaded at start).
image:
	@bash scripts/ci/image.sh build $(TAG)
## Run the image: /health, /ready, a /predict, its HEALTHCHECK, non-root; prints its size.
image-check:
	@bash scripts/ci/image.sh check $(TAG)
## Push the image as $(REPO):vX.Y.Z and $(REPO):<commit>.
image-push:
	@bash scripts/ci/image.sh push $(TAG) $(REPO)
## Train a candidate (or gate RPS_CANDIDATE) against production: $(OUT)/comment.md, exit 1 if it may not be promoted.
cml-report: build
	@bash scripts/ci/challenger.sh $(OUT)
## Post $(OUT)/comment.md on the pull request with CML; exit with the report's verdict.
cml-comment:
	@bash scripts/ci/cml-comment.sh $(OUT)
## sam build + package once, kept under the git tree in the artifact bucket.
deploy-package:
	@bash scripts/ci/deploy.sh package
## Deploy the packaged artifacts of this tree to ENV (staging, prod).
deploy:
	@bash scripts/ci/deploy.sh $(ENV)
## @staging → @candidate, then smoke-test $(URL) until it serves it.
stage: build
	@bash scripts/ci/release.sh stage $(URL)
## @production → @staging if every gate passes.
promote-staging: build
	@bash scripts/ci/release.sh promote
## Smoke-test a running API at $(URL).
smoke: build
	@bash scripts/ci/smoke.sh $(URL)
## Apply .github/rulesets/ to the GitHub repository (GITHUB_TOKEN, GITHUB_REPOSITORY).
rulesets:
	@bash scripts/ci/apply-rulesets.sh

fmt:
	$(CARGO) fmt --all

## Regenerate the parts of docs/ that are generated from the code (the configuration table).
docs:
	UPDATE_DOCS=1 $(CARGO) test --release --locked --workspace --test integration docs::

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
