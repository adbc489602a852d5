# Two commands matter: `make demo` runs the example stack; `make test` runs the tests but the slow
# ones (`make test-all` runs every test, as CI does). Each creates the virtualenv it needs (.venv)
# and installs the project into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CKSUM := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(CKSUM)
LINT_STAMP := $(VENV)/.installed-lint-$(CKSUM)
BENCH_VENV ?= .venv-supervisord
# The benchmarked supervisor is installed as production installs it (not editable).
OURS_VENV ?= .venv-bench

# DATABASE_URL and REDIS_URL are read from the environment when set. Defaults: the demo uses
# its own database (webstack_demo, created if missing); the tests create and drop their own.

.PHONY: image image-test venv lint-venv test test-all test-fast lint docs docs-ref demo dev bench soak clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e '.[test,example]'
	@# Bytecode on both cores (pip compiles on one: 5 s of the install). A file that does not
	@# compile is left to fail at import, as pip leaves it.
	@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# The linters and the documentation's tools (the `lint` extra), only for the targets that use them.
$(LINT_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[lint]'
	@rm -f $(VENV)/.installed-lint-* && touch $@

lint-venv: $(LINT_STAMP)

# The tests run in TEST_WORKERS processes (pytest-xdist; TEST_WORKERS=0 runs them in this one).
# Most of a test's time is spent waiting on child processes (a Celery boot, a health check's
# interval), so there are more workers than cores; but the suite is now bound by the two cores,
# and 5 workers (153 s in pytest) beat 6 (159 s), which spend more on collecting and switching
# (docs/testing.md).
# Each worker is handed two tests at a time (--maxschedchunk 2), in the order tests/conftest.py
# sets (the long ones first), so that no long test holds up a queue of short ones behind it.
# The 15 slowest are printed at the end.
TEST_WORKERS ?= 5
PYTEST_RUN := $(BIN)/python -m pytest tests -n $(TEST_WORKERS) --dist load --maxschedchunk 2 --durations=15

test: venv
	$(PYTEST_RUN) -m "not slow"

test-all: venv
	$(PYTEST_RUN)

test-fast: venv
	$(BIN)/python -m pytest tests/unit

lint: lint-venv
	$(BIN)/ruff check supervisor tests bench examples scripts
	$(BIN)/ruff format --check supervisor tests bench examples scripts
	$(BIN)/mypy
	$(BIN)/python scripts/docs_reference.py --check
	$(BIN)/python scripts/lint_deploy.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(abspath build/site-check)

# The documentation site (mkdocs.yml), into site/. docs-ref regenerates its reference pages
# (docs/reference/) from the configuration models and the argument parser.
docs: lint-venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-ref: venv
	$(BIN)/python scripts/docs_reference.py

# The example stack under load and random faults for SOAK_SECONDS (`make test-all` runs a 40 s one);
# the figures go to bench/results/soak.json, the run's logs stay in SOAK_TMP. SOAK_RATE (posts/s)
# and SOAK_SEED can be set too.
SOAK_SECONDS ?= 300
SOAK_TMP ?= /tmp/stack-supervisor-soak
soak: venv
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_REPORT=$(abspath bench/results/soak.json) \
		$(BIN)/python -m pytest tests/integration/test_soak.py -s -p no:cacheprovider --basetemp=$(SOAK_TMP)

# exec: the supervisor takes the shell's place as make's child, so a SIGTERM that make passes on
# (kill -TERM of make's pid) stops the stack instead of orphaning it.
demo: venv
	exec env PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python examples/demo.py

# The demo in development mode: an edit of the example app restarts the programs that watch it.
dev: venv
	exec env PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python examples/demo.py --dev

$(BENCH_VENV)/bin/supervisord:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'supervisor==4.3.0'

$(OURS_VENV)/bin/supervisor: pyproject.toml $(wildcard supervisor/*.py supervisor/*/*.py supervisor/*/*/*.py)
	@test -x $(OURS_VENV)/bin/python || $(PYTHON) -m venv $(OURS_VENV)
	$(OURS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps .
	$(OURS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check '.[example]'

bench: venv $(BENCH_VENV)/bin/supervisord $(OURS_VENV)/bin/supervisor
	PATH="$(abspath $(OURS_VENV)/bin):$$PATH" $(OURS_VENV)/bin/python bench/run.py --supervisord $(BENCH_VENV)/bin
	PATH="$(abspath $(OURS_VENV)/bin):$$PATH" $(OURS_VENV)/bin/python bench/handover.py --supervisord $(BENCH_VENV)/bin
	PATH="$(abspath $(OURS_VENV)/bin):$$PATH" $(OURS_VENV)/bin/python bench/logflood.py --supervisord $(BENCH_VENV)/bin
	PATH="$(abspath $(OURS_VENV)/bin):$$PATH" $(OURS_VENV)/bin/python bench/pump.py
	PATH="$(abspath $(OURS_VENV)/bin):$$PATH" $(OURS_VENV)/bin/python bench/instances.py
	PATH="$(abspath $(OURS_VENV)/bin):$$PATH" $(OURS_VENV)/bin/python bench/scale.py
	PATH="$(abspath $(OURS_VENV)/bin):$$PATH" $(OURS_VENV)/bin/python bench/drain.py

# The image, built with podman from a Debian base that mmdebstrap makes here (cached in build/image),
# and run for real against this machine's Postgres and Redis (docs/image.md). Root, podman and
# mmdebstrap (apt-get install podman mmdebstrap); image-test skips, saying so, without podman.
image:
	scripts/image.sh build

image-test: venv
	@if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null; then \
		echo "image-test: SKIPPED: podman and mmdebstrap are not installed (apt-get install podman mmdebstrap)"; \
	else scripts/image.sh build && $(BIN)/python scripts/image_test.py; fi

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(OURS_VENV) .pytest_cache .mypy_cache .ruff_cache site
