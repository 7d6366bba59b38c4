# gg-health-agent — every target sets up what it needs first (idempotent).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip -q --disable-pip-version-check
DEV_LOCK     := requirements/dev.lock
RUNTIME_LOCK := requirements/runtime.lock
APT_PACKAGES := openssl mosquitto mosquitto-clients softhsm2 jq faketime

.PHONY: install lock demo test lint bench package deploy-local fuzz clean

install: $(STAMP)

# The venv is exactly requirements/dev.lock: pinned, hash-checked, rebuilt from scratch whenever
# the lock (or pyproject.toml) changes, so nothing a registry serves today slips in.
$(STAMP): pyproject.toml $(DEV_LOCK)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi; \
	fi
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r $(DEV_LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

# make lock                 the locks again after a change of pyproject.toml or requirements/*.in,
#                           keeping every pin that still fits
# make lock UPGRADE=all     every dependency to the newest release the ranges allow
# make lock UPGRADE=moto    one package (and what it needs)
# Then `make test` and commit the locks with the change (README: "Dependencies and the lock").
LOCK_FLAGS := --universal --python-version 3.10 --generate-hashes --custom-compile-command 'make lock' -q \
  $(if $(filter all,$(UPGRADE)),--upgrade,$(if $(UPGRADE),--upgrade-package $(UPGRADE),))
lock: install
	$(BIN)/uv pip compile $(LOCK_FLAGS) pyproject.toml requirements/tools.in \
	  --extra test --extra pkcs11 -c requirements/constraints.txt -o $(DEV_LOCK)
	$(BIN)/uv pip compile $(LOCK_FLAGS) pyproject.toml -c $(DEV_LOCK) -o $(RUNTIME_LOCK)

demo: install
	$(BIN)/gg-health-agent demo $(if $(DIR),--dir $(DIR),)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check agent tests scripts
	$(BIN)/ruff format --check agent
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist greengrass-build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# make package [BUCKET=my-bucket] [PLATFORM=manylinux2014_aarch64|native] [VERSION=x.y.z]
package: install
	$(BIN)/python scripts/package.py --bucket $(or $(BUCKET),BUCKET_NAME) \
	  $(if $(PLATFORM),--platform $(PLATFORM),) $(if $(VERSION),--version $(VERSION),)

# Local deployment on a core device with the Greengrass CLI (documented; not run in tests).
deploy-local: package
	sudo /greengrass/v2/bin/greengrass-cli deployment create \
	  --recipeDir greengrass-build/recipes --artifactDir greengrass-build/artifacts \
	  --merge "gghealth.HealthAgent=$$($(BIN)/python -c 'import agent; print(agent.__version__)')"

# make bench [BENCH_ARGS="--quick"]: the Markdown table of docs/benchmarks.md
bench: install
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

FUZZ_SECONDS ?= 60
FUZZ_TARGET  ?= all
# Time-boxed fuzzing of every parser, not part of `make test`: atheris/libFuzzer from the fuzz
# extra, or run.py's plain mutation loop where atheris cannot be installed.
fuzz: install
	-$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[fuzz]'
	$(BIN)/python tests/fuzz/run.py $(FUZZ_TARGET) --seconds $(FUZZ_SECONDS) $(if $(FUZZ_OUT),--out $(FUZZ_OUT),)
