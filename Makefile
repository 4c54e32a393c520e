# Everything installs into .venv from this project's own files; only Python and make are assumed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CKSUM  := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
STAMP  := $(VENV)/.installed-$(CKSUM)
# The demo needs only the command line and what it shows, not the test toolchain.
DEMO_STAMP := $(VENV)/.demo-$(CKSUM)
# The optional compiled fast path: the Cython source and the built module. Its C is generated
# at build time (hatch_build.py) and never tracked.
CORE   := src/soupbintcp/_speedups/_core
CORE_SOURCES := $(CORE).pyx $(wildcard src/soupbintcp/_speedups/*.pxi)
BUILT  := $(VENV)/.speedups-$(shell cat $(CORE_SOURCES) hatch_build.py | cksum | cut -d' ' -f1)
# The package with every extra, then the development tools (PEP 735 groups in pyproject.toml).
EXTRAS := '.[cli,itch,metrics,nats,fast]'
DOCS_STAMP := $(VENV)/.docs-$(CKSUM)

.PHONY: help test test-long lint format demo docs bench clean cython speedups package-check tcpdump nftables netem-queue node-peers

help:
	@echo "make demo       server + client over loopback with live progress"
	@echo "make test       lint, type-check and run the whole test suite"
	@echo "make test-long  also the long reliability/load variants"
	@echo "make package-check  sdist + wheel into fresh venvs, with and without a compiler"
	@echo "make bench      benchmarks; writes bench/results/latest.md"
	@echo "make docs       the API reference from the docstrings (build/site; warnings fail)"
	@echo "make lint       ruff + mypy --strict"
	@echo "make cython     regenerate the extension's C from _core.pyx and its .pxi (never committed)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install --quiet -e $(EXTRAS) --group dev
	rm -f $(VENV)/.installed-* && touch $@

$(DEMO_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	rm -f $(VENV)/.demo-* && touch $@

# The docs need the package and the docs group, not the test toolchain.
$(DOCS_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install --quiet -e . --group docs
	rm -f $(VENV)/.docs-* && touch $@

# The editable install compiles the extension in place too; this rebuilds it (regenerating the
# C first) when its source changes.
$(BUILT): $(STAMP) $(CORE_SOURCES) hatch_build.py
	$(BIN)/python hatch_build.py
	rm -f $(VENV)/.speedups-* && touch $@

speedups: $(BUILT)

cython: $(STAMP)
	rm -f $(CORE).c
	$(BIN)/python -c 'import hatch_build; hatch_build.generate_c()'

lint: $(STAMP)
	$(BIN)/ruff check src tests bench fuzz tools hatch_build.py
	$(BIN)/ruff format --check src tests bench fuzz tools hatch_build.py
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench fuzz tools
	$(BIN)/ruff check --fix src tests bench fuzz tools

# The capture tests record the project's own peers with tcpdump on loopback: installed from
# Debian's packages when missing (as root, as on the project's machines and CI).
tcpdump:
	@command -v tcpdump >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq tcpdump >/dev/null; }

# The long nemesis run drops packets inside its namespaces with nftables (this kernel has no
# sch_netem): installed from Debian's packages when missing, for `make test-long` only.
nftables:
	@command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || { apt-get update -qq && apt-get install -y -qq nftables >/dev/null; }

# The nemesis run's delay and reordering hold packets in an nfnetlink queue (tests/netem_queue.py):
# an iptables NFQUEUE rule (the kernel has the xtables target, not nftables' queue) and
# NetfilterQueue, a C binding built against Debian's libnetfilter-queue-dev. All installed when
# missing, for `make test-long` only.
netem-queue: $(STAMP)
	@[ -x /usr/sbin/iptables-legacy ] || { apt-get update -qq && apt-get install -y -qq iptables >/dev/null; }
	@$(BIN)/python -c "import netfilterqueue" 2>/dev/null || { \
		[ -e /usr/include/libnetfilter_queue/libnetfilter_queue.h ] || \
		{ apt-get update -qq && apt-get install -y -qq libnetfilter-queue-dev >/dev/null; }; \
		$(BIN)/python -m pip install --quiet --group netem; }

# The npm peer the conformance tests run `soupbintcp check` against (tests/peers/node), from
# its lock file. Where npm is absent the tests that need it say so and skip.
NODE_PEERS := tests/peers/node
NODE_STAMP := $(NODE_PEERS)/node_modules/.installed-$(shell cat $(NODE_PEERS)/package-lock.json | cksum | cut -d' ' -f1)

$(NODE_STAMP): $(NODE_PEERS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(NODE_PEERS) --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "npm not found: the node-soupbintcp conformance tests will be skipped"; \
	fi

node-peers: $(NODE_STAMP)

# Both ways: the whole suite on the compiled fast path, then the tests marked fast_path (the
# code it replaces) again with the pure-Python code forced, the fallback of every user without
# a compiler; then the packaging step. pyproject's addopts leave out the `long` variants.
test: lint $(BUILT) tcpdump node-peers
	$(BIN)/python -m pytest -q
	SOUPBINTCP_PURE_PYTHON=1 $(BIN)/python -m pytest -q -m "fast_path and not long"
	$(BIN)/python tests/package_check.py

package-check: $(STAMP)
	$(BIN)/python tests/package_check.py

test-long: $(BUILT) tcpdump nftables netem-queue node-peers
	$(BIN)/python -m pytest -q -m "long or not long"

demo: $(DEMO_STAMP)
	$(BIN)/python -m soupbintcp demo

docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict

bench: $(BUILT)
	$(BIN)/python -m pip install --quiet --group bench
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(NODE_PEERS)/node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis build/site
	rm -f src/soupbintcp/_speedups/*.so src/soupbintcp/_speedups/*.pyd $(CORE).c
