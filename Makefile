# Two entry points a fresh machine needs: `make demo` and `make test`.
# Both create .venv and install the project into it when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test bench notebooks docs celebrity-results gallery-results clean-venv

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

# Execute the three notebooks (on the quick config unless RUN_DIR=... is given) into runs/notebooks/.
notebooks: $(INSTALLED)
	$(BIN)/python -m experiments.cli.notebooks runs/notebooks $(RUN_DIR)

# Render every number of README.md and docs/ from the committed results files in docs/results/
# (experiments/publish/registry.py says which file feeds which block); tests/test_docs.py
# fails when a committed block differs from what this writes.
docs: $(INSTALLED)
	$(BIN)/python -m experiments.publish

# The celebrity demo's result: a fresh default run, copied into docs/results/celebrities, rendered.
celebrity-results: $(INSTALLED)
	$(BIN)/kshot run --out runs/readme
	$(BIN)/python -m experiments.publish.readme runs/readme
	$(BIN)/python -m experiments.publish


# Every split of the celebrities into enrolled and strangers, at FPIR 0.001: docs/results/gallery/, then render.
gallery-results: $(INSTALLED)
	$(BIN)/python -m experiments.gallery.demo docs/results/gallery
	$(BIN)/python -m experiments.gallery.pictures docs/results/gallery
	$(BIN)/python -m experiments.publish

clean-venv:
	rm -rf $(VENV)
