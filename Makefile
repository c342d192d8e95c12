# Two commands on a fresh machine (only Python and pip needed; Chromium is installed with apt when
# run as root, as CI does): `make report` and `make test`. Everything runs from the project's .venv,
# so nobody has to activate it and papermill's "python3" kernel is the venv's own interpreter.

PY       ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
SCENARIO ?= demo
PYTEST_ARGS ?=

.PHONY: setup browser report generate test bench bench-gb serve lab clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

# Debian's Chromium prints the PDFs and runs the browser tests; pip cannot provide it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils; \
	  else echo "chromium is missing: install Debian's 'chromium' (PDF reports and browser tests need it)"; fi; }

generate: setup
	$(BIN)/tom generate --scenario $(SCENARIO)

report: setup browser
	$(BIN)/tom generate --scenario $(SCENARIO)
	$(BIN)/tom report --scenario $(SCENARIO)

test: setup browser
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

bench: setup
	$(BIN)/tom bench --scale

# The GB day (30 million MPANs, generated and settled in one pass by the chunked engine): ~20 min on 2 cores
bench-gb: setup
	nice -n 5 $(BIN)/tom bench --no-stages --gb

serve: setup
	$(BIN)/tom serve --scenario $(SCENARIO)

lab: setup
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) reports/*/ data/ .pytest_cache .hypothesis
