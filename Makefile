# `make run` and `make test` work on a fresh clone with only Python 3.11+ (and pip, which fetches uv).
# One installer, uv (pinned), and one lock, uv.lock: the same pins here, in CI and under `pulumi install`.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV_DIR := .sagestep/uv
UV := $(UV_DIR)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: run test synth lock clean

# Python caches each module it imports as bytecode, so that the next run and every test's subprocess start from
# it; where PYTHONDONTWRITEBYTECODE is set (as on this project's machines) each run compiled moto, boto3 and the
# rest from source again, 1.2 s of every `make run`.
unexport PYTHONDONTWRITEBYTECODE

$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(UV_DIR) uv==$(UV_VERSION)

# The stack's dependencies and every extra (local: the tool and engine; test: the suite's tools; bench: what the
# benches compare with).
$(STAMP): $(UV) uv.lock pyproject.toml
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --quiet --frozen --all-extras --python $(PYTHON)
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/sagestep local examples/iris.csv --label species

# One worker per core, a test module's tests on one worker (they share its engine, stack and served endpoint).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile

synth: $(STAMP)
	$(BIN)/sagestep synth --summary $(if $(STACK),--stack $(STACK))

# After editing pyproject.toml's dependencies: re-resolve, and write requirements.txt (the stack's pins).
lock: $(UV)
	$(UV) lock --quiet
	$(UV) export --quiet --frozen --no-emit-project --no-hashes --output-file requirements.txt

clean:
	rm -rf $(VENV) .venv-stack .sagestep .pytest_cache
