# The two commands a newcomer needs:  make run   (set up + smoke experiment)   make test   (set up + tests)
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := train,generate,score,k8s,dev

.PHONY: setup run test test-fast test-slow test-vllm vllm-venv lint goldens bench clean images-lock images-check images-build

# The smoke's model (builtin:tiny-ml, seed 1234) is built once into the cache with its digest
# (about 4 minutes on 2 cores), so that `make run` itself stays within 3 minutes; once cached,
# this only checks the digest.
setup: $(STAMP)
	$(BIN)/python scripts/build_builtin.py builtin:tiny-ml --seed 1234

# torch is installed first and pinned: an open range would pull a multi-GB CUDA build (see FACTS).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip check
	touch $(STAMP)

run: setup
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(BIN)/xdetox run jobs/smoke.yaml

test: setup
	bash scripts/run_tests.sh

test-fast: setup
	bash scripts/run_tests.sh fast

test-slow: setup
	bash scripts/run_tests.sh slow

vllm-venv:
	bash scripts/setup_vllm_cpu.sh

test-vllm: vllm-venv
	bash scripts/run_tests.sh vllm

lint: setup
	$(BIN)/ruff check xdetox tests bench scripts
	$(BIN)/lint-imports

# Image locks from pyproject.toml's extras per role (images/lock.py); images-check builds each image's
# Python env from its lock (venvs with CPU torch; vLLM's resolved only) and imports what every
# rendered template needs. About 6 min on 2 cores (docs/cluster.md); .ci/run runs it.
images-lock: setup
	$(BIN)/python images/lock.py

images-check: setup
	HF_HUB_OFFLINE=1 $(BIN)/python images/check.py

# buildah (Debian package) builds the three images over local stand-in bases (registry bases cannot
# be pulled here; STANDIN=0 uses the real ones), labelled with git commit and lock digest.
images-build: setup
	PYTHON=$(BIN)/python bash images/build.sh

goldens: setup
	$(BIN)/xdetox argo render-goldens

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.run_all

clean:
	rm -rf runs .pytest_cache .ruff_cache
