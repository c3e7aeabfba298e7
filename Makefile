# Two entry points a fresh machine needs: `make demo` and `make test`.
# Both create .venv and install the project into it when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test bench clean-venv

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test,bench]"
	touch $@

demo: $(INSTALLED)
	$(BIN)/kshot run

test: $(INSTALLED)
	$(BIN)/python -m pytest

bench: $(INSTALLED)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
