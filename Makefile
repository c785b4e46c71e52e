# The two commands: `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MYPY_CACHE := var/mypy_cache

.PHONY: run test browser install lint typecheck format clean-var

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

test: install $(MYPY_CACHE)/.settings
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	@chromium="$$($(BIN)/python tests/e2e/chromium.py)" && echo "Browser tests use $$chromium" && \
	  CHROMIUM="$$chromium" $(BIN)/python -m pytest -n 2 --durations=15

# Type check: the paths and options are in pyproject.toml ([tool.mypy]); no database or Valkey needed.
typecheck: install $(MYPY_CACHE)/.settings
	$(BIN)/mypy

# The django-stubs plugin types `settings.X` from the settings module, but mypy's incremental cache does not
# re-check the modules reading them when only the settings change: start the cache afresh then.
$(MYPY_CACHE)/.settings: tourops/settings.py tourops/typecheck_settings.py
	rm -rf $(MYPY_CACHE)
	mkdir -p $(MYPY_CACHE)
	@touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate the lock after changing dependencies in pyproject.toml (needs `uv` on PATH).
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
