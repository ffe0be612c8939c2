# The two commands of the README, each doing its own set-up first (scripts/setup.sh: a project-local .venv
# with the exact versions of constraints.txt; quick when nothing changed).
#   make demo   fine-tune GateRA-HiRA on SmolLM2-135M-Instruct (offline) and test it on the eight tasks
#   make test   ruff, the import contracts and the test suite
VENV ?= .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test

setup:
	bash scripts/setup.sh $(VENV)

demo: setup
	gatera-lab fit --config configs/hira_gate.yaml --config configs/quick.yaml

test: setup
	.ci/check-links
	ruff check .
	ruff format --check .
	.ci/lint-imports
	python -m pytest -q
