# gg-health-agent — every target sets up what it needs first (idempotent).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip -q --disable-pip-version-check
DEV_LOCK     := requirements/dev.lock
RUNTIME_LOCK := requirements/runtime.lock
BUILD_LOCK   := requirements/build.lock
# The lean venv of `make package` and `make deploy-local`: runtime + build tools, no test stack.
BUILD_VENV   := .venv-build
BUILD_STAMP  := $(BUILD_VENV)/.installed
APT_PACKAGES := openssl mosquitto mosquitto-clients softhsm2 jq faketime

# $(call apt_install,PACKAGES): apt-get install those not installed yet, when root with apt.
define apt_install
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi; \
	fi
endef

.PHONY: install lock demo test lint bench package deploy-local device-test fuzz clean

install: $(STAMP)

# The venv is exactly requirements/dev.lock: pinned, hash-checked, rebuilt from scratch whenever
# the lock (or pyproject.toml) changes, so nothing a registry serves today slips in.
$(STAMP): pyproject.toml $(DEV_LOCK)
	$(call apt_install,$(APT_PACKAGES))
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
	$(BIN)/uv pip compile $(LOCK_FLAGS) pyproject.toml requirements/tools.in requirements/build.in \
	  --extra test --extra pkcs11 -c requirements/constraints.txt -o $(DEV_LOCK)
	$(BIN)/uv pip compile $(LOCK_FLAGS) pyproject.toml -c $(DEV_LOCK) -o $(RUNTIME_LOCK)
	$(BIN)/uv pip compile $(LOCK_FLAGS) pyproject.toml requirements/build.in -c $(DEV_LOCK) -o $(BUILD_LOCK)
	$(BIN)/uv pip compile $(LOCK_FLAGS) requirements/gdk.in -c $(DEV_LOCK) -o requirements/gdk.lock

demo: install
	$(BIN)/gg-health-agent demo $(if $(DIR),--dir $(DIR),)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check agent tests scripts
	$(BIN)/ruff format --check agent
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(BUILD_VENV) $(GDK_VENV) build dist greengrass-build *.egg-info .pytest_cache .mypy_cache .ruff_cache

$(BUILD_STAMP): pyproject.toml $(BUILD_LOCK)
	rm -rf $(BUILD_VENV)
	$(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/python -m pip -q --disable-pip-version-check install --require-hashes --no-deps -r $(BUILD_LOCK)
	touch $(BUILD_STAMP)

# make package [BUCKET=my-bucket] [ARCH=amd64|aarch64] [PYTHON_VERSIONS="3.11 3.13"] [VERSION=x.y.z]
#              [RUNTIME=lite]
# Default: every architecture and every supported CPython (scripts/package.py --help).
package: $(BUILD_STAMP)
	$(BUILD_VENV)/bin/python scripts/package.py --bucket $(or $(BUCKET),BUCKET_NAME) \
	  $(foreach a,$(ARCH),--arch $(a)) $(foreach p,$(PYTHON_VERSIONS),--python $(p)) \
	  $(if $(VERSION),--version $(VERSION),) $(if $(RUNTIME),--runtime $(RUNTIME),)

# On a core device, from a clone of this repository: needs python3 with venv and pip, the
# network to PyPI, and the Greengrass CLI (aws.greengrass.Cli) deployed - not the test stack.
# Builds the component for this device's architecture and Python, then deploys it locally.
GG_ROOT ?= /greengrass/v2
SUDO    := $(if $(filter 0,$(shell id -u)),,sudo)
deploy-local: $(BUILD_STAMP)
	$(BUILD_VENV)/bin/python scripts/package.py --bucket BUCKET_NAME \
	  --arch $$(uname -m | sed 's/x86_64/amd64/') --python $$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	$(SUDO) $(GG_ROOT)/bin/greengrass-cli deployment create \
	  --recipeDir greengrass-build/recipes --artifactDir greengrass-build/artifacts \
	  --merge "gghealth.HealthAgent=$$(sed -n 's/^__version__ = "\(.*\)"/\1/p' agent/__init__.py)"

# make device-test [KEEP=1]: the packaged aarch64 component installed and run by a played
# nucleus in Debian trixie arm64 (Python 3.13) under qemu, no network (scripts/device_test.py).
# Needs root and Linux >= 6.7; apt-installs its host tools. About 3 minutes with the userland
# cached in /var/cache/gghealth-device-test (GGHEALTH_DEVICE_CACHE), 4.5 the first time.
device-test: install
	$(call apt_install,$$($(BIN)/python scripts/device_test.py --host-packages))
	$(MAKE) package ARCH=aarch64
	$(BIN)/python scripts/device_test.py $(if $(KEEP),--keep,)

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

# GDK
# The Greengrass Development Kit CLI in a venv of its own, .venv-gdk (`make gdk`; `make test`
# needs it for tests/test_gdk.py): requirements/gdk.lock hash-checked, then GDK itself from
# shared/tools/gdk-cli without dependencies. GDK_SRC is found the way tests/conftest.py finds
# shared/fixtures: beside $GGHEALTH_SHARED_FIXTURES when set, else shared/ beside the checkout.
GDK_VENV  := .venv-gdk
GDK_STAMP := $(GDK_VENV)/.installed
GDK_SRC   ?= $(abspath $(if $(GGHEALTH_SHARED_FIXTURES),$(GGHEALTH_SHARED_FIXTURES)/..,$(CURDIR)/../shared)/tools/gdk-cli)

.PHONY: gdk gdk-build
gdk: $(GDK_STAMP)
test: $(GDK_STAMP)

# pip builds GDK inside its source tree (build/, *.egg-info): from a copy, shared/ stays as laid.
$(GDK_STAMP): requirements/gdk.lock $(wildcard $(GDK_SRC)/gdk/_version.py)
	@test -f $(GDK_SRC)/setup.py || { echo "no GDK source at $(GDK_SRC): lay shared/ beside the checkout, set GGHEALTH_SHARED_FIXTURES, or GDK_SRC" >&2; exit 1; }
	rm -rf $(GDK_VENV)
	$(PYTHON) -m venv $(GDK_VENV)
	printf '*\n' > $(GDK_VENV)/.gitignore
	$(GDK_VENV)/bin/python -m pip -q --disable-pip-version-check install --require-hashes --no-deps -r requirements/gdk.lock
	src=$$(mktemp -d) && cp -R $(GDK_SRC)/. $$src && chmod -R u+w $$src && rm -rf $$src/build $$src/*.egg-info && \
	  $(GDK_VENV)/bin/python -m pip -q --disable-pip-version-check install --no-deps --no-build-isolation $$src; \
	  status=$$?; rm -rf $$src; exit $$status
	touch $(GDK_STAMP)

# What `gdk component build` runs (gdk-config.json's custom_build_command): `make package` for the
# component name, version and author of gdk-config.json, its recipe written as
# greengrass-build/recipes/recipe.yaml, the file `gdk component publish` reads. Every
# architecture and CPython unless ARCH / PYTHON_VERSIONS say otherwise (as for `make package`).
gdk-build: $(BUILD_STAMP)
	$(BUILD_VENV)/bin/python scripts/package.py --gdk-config gdk-config.json \
	  $(foreach a,$(ARCH),--arch $(a)) $(foreach p,$(PYTHON_VERSIONS),--python $(p))
