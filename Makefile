# The two commands of the quick start: `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target

.PHONY: demo test build lint fmt docs requirements down clean bench

## Run the whole pipeline offline on the shipped sample year and show where every output is.
demo: build
	@bash scripts/demo.sh

## Every test: formatting, clippy, unit, integration and end-to-end tests.
test:
	@bash scripts/test.sh

## The serving benchmark: rps-api against a Python peer; writes bench/results/latest.md.
bench:
	@bash bench/run.sh

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
	.rps/pip-tools/bin/pip-compile --quiet --generate-hashes --allow-unsafe --no-strip-extras \
		--output-file scripts/requirements.txt scripts/requirements.in

## Stop anything `make demo` left running.
down:
	@bash scripts/down.sh

clean: down
	rm -rf .rps
