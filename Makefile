# The two commands: `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test browser install lint format clean-var

$(STAMP): requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python >= 3.11 is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m tourops.launcher

# The browser tests' Chromium: $CHROMIUM, else /usr/bin/chromium, else installed now; prints its path, or one
# sentence saying what to install and fails (tests/e2e/chromium.py). `test` runs it before pytest.
browser: install
	@$(BIN)/python tests/e2e/chromium.py

test: install
	$(BIN)/ruff check .
	@chromium="$$($(BIN)/python tests/e2e/chromium.py)" && echo "Browser tests use $$chromium" && \
	  CHROMIUM="$$chromium" $(BIN)/python -m pytest -n 2 --durations=15

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate the lock after changing dependencies in pyproject.toml (needs `uv` on PATH).
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
