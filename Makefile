# wcsgw — run the gateway, run the tests.  Works on a fresh Debian 12 as root (CI) and on a
# developer's machine (apt steps use sudo when not root, and are skipped when nothing is missing).
#
#   make run     venv + `pip install .`, then `twistd -n wcsgw` (--config wcsgw.toml if present)
#   make test    Debian packages the tests need + venv + `pip install '.[test]'`, the gates, then trial
#   make gates   the static gates alone (import contracts, lint, types; a few seconds)
#   make install what `make run` needs, without starting (Debian packages, venv, pip install .)
#   make clean   remove the venv and build leftovers
#   make bench   benchmark packages (Janus) + venv, then every benchmark in bench/ (tables)
#
# Variables: PYTHON (interpreter for the venv), TESTS (what trial runs), TRIAL_ARGS.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TESTS ?= tests
TRIAL_ARGS ?=
# The gates' module size limit: a module longer than this holds more than one thing.
MAX_MODULE_LINES := 400

# Debian packages.  RUN_PACKAGES: codec libraries the gateway loads at run time (Opus via
# opuslib; through ctypes: G.729 via bcg729, Speex via libspeex, the resampler via
# libspeexdsp, G.722 and G.711 concealment via spandsp).
# PACKAGES: everything the test suite needs — real peers (Kamailio registrar/proxy, baresip
# phones with H.264 from baresip-ffmpeg, mediastreamer's `mediastream` for G.729 and Speex,
# sox for tone files, Chromium).  Add new test dependencies here.
RUN_PACKAGES := libopus0 libbcg729-0 libspeex1 libspeexdsp1 libspandsp2
PACKAGES := $(RUN_PACKAGES) coturn kamailio kamailio-tls-modules baresip-core baresip-ffmpeg libmediastreamer-tools sox iproute2 iptables chromium firefox-esr rtpengine-daemon sip-tester postgresql prometheus redis-server haproxy
# redis-server, haproxy: the cluster tests (tests/peers/redis.py, haproxy.py) start their own on free
# loopback ports; installing them may start Debian's services (redis on 6379), never used.
# coturn (the TURN server of tests/peers/coturn.py): each test starts and stops its own, on
# free loopback ports. Installing it starts no system turnserver where no systemd runs (CI):
# the init script waits for TURNSERVER_ENABLED=1 in /etc/default/coturn. Under systemd,
# Debian enables and starts coturn.service (port 3478); the tests never use it — `systemctl
# disable --now coturn` if it is not wanted.
# rtpengine-daemon (the media relay of tests/peers/rtpengine.py, the GSM gateway hop of
# test_e2e_two_hop): each test starts its own, userspace only, on free loopback ports.
# Installing it may start Debian's rtpengine-daemon service (localhost:2223-2225, its
# /etc/rtpengine/rtpengine.conf); the tests never use it (they run in their own network
# namespace) — `service rtpengine-daemon stop` / `systemctl disable --now rtpengine-daemon`.
# prometheus (tests/test_grafana.py runs the dashboard's queries in one that scrapes a test
# gateway; its own port and folder, stopped by the test). Installing it may start Debian's
# prometheus service (port 9090) under systemd; the tests never use it.
# BENCH_PACKAGES: only `make bench` installs them (Janus and rtpengine as the side-by-side peers,
# gcc for Janus's loopback shim, redis-server for bench/workers.py --cluster).
BENCH_PACKAGES := $(RUN_PACKAGES) janus rtpengine-daemon gcc libc6-dev redis-server
# BENCH_ARGS: passed to bench/relay_capacity.py (e.g. --quick, --skip transcode).
BENCH_ARGS ?=

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

# Everything that ends up in the installed package: a change re-runs `pip install`.
SOURCES := setup.cfg pyproject.toml README.md \
	$(shell find wcsgw plugins -type f \( -name '*.py' -o -name '*.html' -o -name '*.js' -o -name '*.css' \) 2>/dev/null)

# Stamps: `pip install` re-runs only when a source is newer (it is cheap, but not free).
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: help install run test gates clean debs run-debs venv bench bench-debs soak fuzz cluster-demo

help:
	@echo "make run      start the gateway (twistd -n wcsgw; --config wcsgw.toml if it exists)"
	@echo "make test     install test peers (Debian packages), run the gates and the whole trial suite"
	@echo "make gates    import contracts, lint and type checks (a few seconds; part of make test)"
	@echo "make cluster-demo  Redis, Kamailio, HAProxy and two workers on loopback (Ctrl-C stops)"
	@echo "make install  what make run needs, without starting it"
	@echo "make clean    remove .venv and build leftovers"
	@echo "make bench    benchmarks side by side with Janus and rtpengine (installs them; ~20 min)"
	@echo "make soak     calls with continuous churn for 30 minutes; leaks and slopes (SOAK_ARGS)"
	@echo "make fuzz     coverage-guided fuzzing of the parsers and API handlers (FUZZ_ARGS)"

# Install the given Debian packages when any is missing (one `apt-get update` first).
# dpkg-query, not `dpkg -s`: a removed package that left its config files still "exists".
define apt_ensure
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(APT) update -q && $(APT) install -y -q --no-install-recommends $$missing; \
	else echo "Debian packages present: $(strip $(1))"; fi
endef

run-debs:
	$(call apt_ensure,$(RUN_PACKAGES))

debs:
	$(call apt_ensure,$(PACKAGES))

# The venv.  Debian's own python3 needs python3-venv for `-m venv` (ensurepip).
$(PY):
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "python3 -m venv needs python3-venv"; \
	  $(APT) update -q && $(APT) install -y -q --no-install-recommends python3-venv; }
	$(PYTHON) -m venv $(VENV)

venv: $(PY)

# `rm -rf build`: setuptools builds in-tree and keeps old files in build/, which would put
# deleted modules back into the wheel.
$(STAMP_RUN): $(SOURCES) | venv
	rm -rf build
	$(PY) -m pip install -q --disable-pip-version-check .
	touch $@

$(STAMP_TEST): $(SOURCES) | venv
	rm -rf build
	$(PY) -m pip install -q --disable-pip-version-check '.[test]'
	touch $@

install: run-debs $(STAMP_RUN)

run: install
	@if [ -f wcsgw.toml ]; then echo "config: wcsgw.toml"; else echo "config: built-in defaults (no wcsgw.toml)"; fi
	@echo "Ctrl-C stops. The gateway logs its Phone UI, admin, SIP and media addresses once it listens."
	$(VENV)/bin/twistd -n --pidfile= wcsgw $(if $(wildcard wcsgw.toml),--config wcsgw.toml)

# --reactor=asyncio: the whole suite shares one asyncio loop, as the gateway does.
# PYTHONPATH: the tests import `tests` and always run the working tree's `wcsgw`; the
# installed copy provides the dependencies and the twistd plugin.
# tests/isolated: in a network namespace with only loopback when possible (root).
# The gates: static checks that fail `make test` before trial starts, in seconds and without
# the network (their settings are in pyproject.toml; docs/architecture.md, Gates, says why):
# lint-imports holds the layering of docs/architecture.md (PYTHONPATH makes it read the
# working tree's `wcsgw`, not the installed copy); ruff lints the whole tree (`ruff check
# --fix .` repairs the import order); mypy --strict checks the packages pyproject.toml lists.
gates: $(STAMP_TEST)
	PYTHONPATH=$(CURDIR) $(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	@big=$$(find wcsgw -name '*.py' -exec awk 'END { if (NR > $(MAX_MODULE_LINES)) print "  " FILENAME ": " NR " lines" }' {} \;); \
	if [ -n "$$big" ]; then echo "modules over $(MAX_MODULE_LINES) lines (split by responsibility, docs/architecture.md#gates):"; \
	echo "$$big"; exit 1; else echo "module size: every module in wcsgw/ within $(MAX_MODULE_LINES) lines"; fi

test: debs $(STAMP_TEST) gates
	PYTHONPATH=$(CURDIR) tests/isolated $(VENV)/bin/trial --reactor=asyncio $(TRIAL_ARGS) $(TESTS)

bench-debs:
	$(call apt_ensure,$(BENCH_PACKAGES))

# Not part of `make test`: numbers, not pass/fail.  The load runs need the machine to
# themselves (every point is a few seconds; everything started is stopped at the end).
bench: bench-debs $(STAMP_TEST)
	PYTHONPATH=$(CURDIR) $(PY) bench/sip_parse.py
	PYTHONPATH=$(CURDIR) $(PY) bench/media_relay.py --quick
	PYTHONPATH=$(CURDIR) $(PY) bench/codec_cost.py
	PYTHONPATH=$(CURDIR) $(PY) bench/codec_quality.py --seconds 5
	PYTHONPATH=$(CURDIR) $(PY) bench/relay_capacity.py --janus --rtpengine $(BENCH_ARGS)
	PYTHONPATH=$(CURDIR) $(PY) bench/overload.py $(if $(findstring --quick,$(BENCH_ARGS)),--quick)
	PYTHONPATH=$(CURDIR) $(PY) bench/workers.py --cluster $(if $(findstring --quick,$(BENCH_ARGS)),--quick --reps 1)

# Not part of `make test` either: long runs that report, docs/performance.md and
# docs/resilience.md hold their results.  Their failing inputs are kept in tests/data and
# replayed by the suite.
# soak needs no Janus: the run packages are enough.
soak: run-debs $(STAMP_TEST)
	PYTHONPATH=$(CURDIR) $(PY) bench/soak.py $(SOAK_ARGS)

# A whole cluster on loopback for a person to try (docs/scaling.md): Redis, Kamailio
# (registrar + dispatcher), HAProxy and two workers; prints the URLs, Ctrl-C stops everything.
cluster-demo: debs $(STAMP_TEST)
	PYTHONPATH=$(CURDIR) $(PY) bench/cluster_demo.py $(CLUSTER_DEMO_ARGS)

fuzz: $(STAMP_TEST)
	$(PY) -m pip install -q --disable-pip-version-check '.[fuzz]'
	PYTHONPATH=$(CURDIR) $(PY) bench/fuzz/run.py $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info _trial_temp _trial_temp.lock .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
