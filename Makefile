# Two entry points a fresh machine needs: `make demo` and `make test`.
# Both create .venv and install the project into it when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test bench notebooks readme-results gallery-results clean-venv

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

# Execute both notebooks (on the quick config unless RUN_DIR=... is given) into runs/notebooks/.
notebooks: $(INSTALLED)
	$(BIN)/python -m experiments.cli.notebooks runs/notebooks $(RUN_DIR)

# Regenerate the README's celebrity result from a fresh default run.
readme-results: $(INSTALLED)
	$(BIN)/kshot run --out runs/readme
	$(BIN)/python -m experiments.publish.readme runs/readme

# Enroll three celebrities, identify all five, calibrate: docs/results/gallery/.
gallery-results: $(INSTALLED)
	$(BIN)/python -m experiments.gallery.demo docs/results/gallery

clean-venv:
	rm -rf $(VENV)
