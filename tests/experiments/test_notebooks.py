"""The notebooks run top to bottom on a real run directory, and are committed without outputs."""

from pathlib import Path

import nbformat
import pytest
from support import write_embeddings_npz

from experiments.cli import main as kshot
from experiments.cli.notebooks import NOTEBOOKS, REPO_ROOT, execute_notebook, open_run

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("nb")
    npz = write_embeddings_npz(base / "emb.npz", n_classes=4, per_class=6)
    run_dir = base / "run"
    assert kshot(["run", "--embeddings", str(npz), "--out", str(run_dir), "--repeats", "5", "--no-figures", "--no-progress"]) == 0
    return run_dir


def outputs_of(nb) -> tuple[list[str], str]:
    mime_types, text = [], []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            mime_types += list(output.get("data", {}))
            text.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return mime_types, "\n".join(text)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebooks_have_no_outputs(name):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name} was committed with outputs"


def test_curves_notebook_shows_table_figures_and_reading(synthetic_run, tmp_path):
    nb = execute_notebook(NOTEBOOK_DIR / "kshot_curves.ipynb", tmp_path / "curves.ipynb", synthetic_run)
    mime_types, text = outputs_of(nb)
    assert mime_types.count("image/png") == 2  # accuracy vs shots, accuracy vs footprint
    assert "text/html" in mime_types  # the summary table
    assert "memory against baseline:" in text and "At 1 shots" in text
    assert (tmp_path / "curves.ipynb").is_file()


def test_confusion_notebook_shows_every_model(synthetic_run, tmp_path):
    nb = execute_notebook(NOTEBOOK_DIR / "confusion_evolution.ipynb", None, synthetic_run)
    mime_types, text = outputs_of(nb)
    # similarity matrix + one confusion evolution per model; one pairs table per model
    assert mime_types.count("image/png") == 3
    assert mime_types.count("text/html") == 2
    assert "models: baseline, memory" in text


def test_open_run_names_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.csv"):
        open_run(tmp_path)


@pytest.mark.weights
def test_open_run_without_a_directory_runs_the_quick_config(tmp_path):
    run = open_run(None, quick_out=tmp_path / "quick")
    assert run.models == ["baseline", "memory"]
    assert sorted(run.results["shots"].unique()) == [0, 1, 2, 3, 4, 5]
    assert run.results["repeat"].nunique() == 50
    one_shot = run.summary[(run.summary["shots"] == 1)]
    assert (one_shot["mean"] > 0.9).all()  # real FaceNet embeddings of real faces


def test_omniglot_notebook_shows_the_committed_results(tmp_path):
    nb = execute_notebook(NOTEBOOK_DIR / "omniglot_results.ipynb", tmp_path / "omniglot.ipynb")
    mime_types, text = outputs_of(nb)
    # per-shot curves, accuracy by alphabet, learning curve
    assert mime_types.count("image/png") == 3
    # the N-way table, the rivals table, four paired comparisons and two within-alphabet N-way tables
    assert mime_types.count("text/html") == 8
    headings = [output["data"]["text/markdown"] for cell in nb.cells for output in cell.get("outputs", [])
                if "text/markdown" in output.get("data", {})]
    assert "**validation alphabets, the classes of each task from one alphabet**" in "\n".join(headings)
    assert "**test alphabets**, 1000 tasks per cell" in headings
    assert "reweighted to 1/20" in text
    assert "evaluated on the test alphabets: Armenian" in text
