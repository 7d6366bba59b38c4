# gg-health-agent — every target sets up what it needs first (idempotent).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
APT_PACKAGES := openssl mosquitto mosquitto-clients softhsm2 jq faketime

.PHONY: install demo test lint bench package deploy-local fuzz clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi; \
	fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

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
