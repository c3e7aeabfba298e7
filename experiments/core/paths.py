"""Where the repository's own folders are, for code that reads or writes them (notebooks, docs)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS_DIR = REPO_ROOT / "docs"
RESULTS_DIR = DOCS_DIR / "results"  # the committed results files every published number is rendered from
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
