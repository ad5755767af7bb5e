# torch is pinned to the CPU wheel (an unpinned torch pulls a multi-GB CUDA build).
VENV ?= .venv
PY = $(VENV)/bin/python

.PHONY: install olah demo test lint

install:
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[test]"

olah:  # the Hub-protocol server the integration tests start (its own venv; without it those tests are skipped)
	python3 -m venv .cache/olah-venv
	.cache/olah-venv/bin/python -m pip install olah==0.5.4

demo:  # the main job: rank the bundled Fashion-MNIST sample against the bundled Hub-zoo selector, offline
	HF_HUB_OFFLINE=1 $(VENV)/bin/hf-spider rank bundled:fashion-mnist

test:
	$(PY) -m pytest -q

lint:
	$(VENV)/bin/ruff check hf_spider tests benchmarks
