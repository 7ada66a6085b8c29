# `make run` and `make test` work on a fresh clone with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test synth clean

$(STAMP): requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/sagestep local examples/iris.csv --label species

test: $(STAMP)
	$(BIN)/python -m pytest -q

synth: $(STAMP)
	$(BIN)/sagestep synth --summary --stack $(or $(STACK),dev)

clean:
	rm -rf $(VENV) .sagestep .pytest_cache
