# Everything installs into .venv from this project's own files; only Python and make are assumed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CKSUM  := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
STAMP  := $(VENV)/.installed-$(CKSUM)
# The demo needs only the command line and what it shows, not the test toolchain.
DEMO_STAMP := $(VENV)/.demo-$(CKSUM)
# The optional compiled fast path: Cython source, the generated C (tracked), the built module.
CORE   := src/soupbintcp/_speedups/_core
BUILT  := $(VENV)/.speedups-$(shell cat $(CORE).c hatch_build.py | cksum | cut -d' ' -f1)
# The second, pure-Python run of `make test`: the layers the compiled code replaces parts of.
PURE_TESTS := tests/test_framing.py tests/test_packets.py tests/test_mold_wire.py \
	tests/test_client_session.py tests/test_mold_listener.py tests/test_stateful_client.py \
	tests/test_back_to_back.py tests/test_client_async.py tests/test_blocking_client.py \
	tests/test_speedups.py tests/test_receive_frames.py

.PHONY: help test test-long lint format demo docs bench clean cython speedups

help:
	@echo "make demo       server + client over loopback with live progress"
	@echo "make test       lint, type-check and run the whole test suite"
	@echo "make test-long  also the long reliability/load variants"
	@echo "make bench      benchmarks; writes bench/results/latest.md"
	@echo "make docs       the API reference from the docstrings (build/site; warnings fail)"
	@echo "make lint       ruff + mypy --strict"
	@echo "make cython     regenerate the extension's C from _core.pyx (commit both)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,cli,fast]'
	rm -f $(VENV)/.installed-* && touch $@

$(DEMO_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	rm -f $(VENV)/.demo-* && touch $@

# The editable install compiles the extension in place too; this rebuilds it when its C changes.
$(BUILT): $(STAMP) $(CORE).c hatch_build.py
	$(BIN)/python hatch_build.py
	rm -f $(VENV)/.speedups-* && touch $@

speedups: $(BUILT)

# Run in its folder: the C names its sources relative to it (tests/test_speedups.py checks it).
$(CORE).c: $(CORE).pyx | $(STAMP)
	cd $(dir $(CORE)) && $(abspath $(BIN))/python -m cython -3 _core.pyx -o _core.c

cython: $(CORE).c

lint: $(STAMP)
	$(BIN)/ruff check src tests bench fuzz hatch_build.py
	$(BIN)/ruff format --check src tests bench fuzz hatch_build.py
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench fuzz
	$(BIN)/ruff check --fix src tests bench fuzz

# Both ways: the whole suite on the compiled fast path, then the layers it accelerates again
# with the pure-Python code forced (the fallback every user without a compiler gets).
test: lint $(BUILT)
	$(BIN)/python -m pytest -m "not long" -q
	SOUPBINTCP_PURE_PYTHON=1 $(BIN)/python -m pytest -m "not long" -q $(PURE_TESTS)

test-long: $(BUILT)
	$(BIN)/python -m pytest -q

demo: $(DEMO_STAMP)
	$(BIN)/python -m soupbintcp demo

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

bench: $(BUILT)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build/site
	rm -f src/soupbintcp/_speedups/*.so src/soupbintcp/_speedups/*.pyd
