"""What the notebooks call: open a run directory as one object, and execute a notebook.

Notebooks hold no logic of their own: every table and figure in them comes from a
function of this package (`experiments.faces.plots`, `experiments.faces.analysis`,
`experiments.faces.report`), so a change in the library shows up in the notebooks and a
broken notebook fails the test suite, which executes every one.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.cli import main as kshot
from experiments.core import metrics
from experiments.core.paths import REPO_ROOT
from experiments.core.run_files import NOTES_FILE
from experiments.core.settings import CONFIG_DIR
from experiments.faces import report
from experiments.faces import results as store

QUICK_CONFIG = CONFIG_DIR / "quick.toml"
RUN_DIR_ENV_VAR = "KSHOT_RUN_DIR"
NOTEBOOKS = ("kshot_curves.ipynb", "confusion_evolution.ipynb", "omniglot_results.ipynb")


@dataclass(frozen=True)
class RunView:
    """Everything a notebook shows about one run, loaded from its directory alone."""

    run_dir: Path
    results: pd.DataFrame  # one row per model x repeat x shots
    summary: pd.DataFrame  # mean and 95% CI per model and shots
    paired: pd.DataFrame  # every model minus the reference, per shot, on the same shuffles, with a verdict
    class_names: list[str]
    confusion: dict[str, np.ndarray]  # model -> int [repeats, iterations, C, C]
    dataset: dict | None  # embeddings, labels, class_names, paths (None if not saved)
    notes: list[str]

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(self.summary["model"]))


def open_run(run_dir: str | os.PathLike | None = None, quick_out: str | os.PathLike | None = None) -> RunView:
    """Load a finished `kshot run` directory; with None, run (or resume) the quick config first.

    The quick config (experiments/configs/quick.toml) writes to `quick_out`, by default
    runs/quick under the repository; a second call finds its repeats done and only
    reloads them.
    """
    if run_dir is None:
        run_dir = Path(quick_out) if quick_out is not None else REPO_ROOT / "runs" / "quick"
        status = kshot(["run", "--config", str(QUICK_CONFIG), "--out", str(run_dir), "--no-figures", "--no-progress"])
        if status != 0:
            raise RuntimeError(f"the quick run into {run_dir} failed with status {status}; see the messages above")
    run_dir = Path(run_dir)
    frame = store.load_results(run_dir)
    order = report.model_order(run_dir, frame)
    summary = metrics.summarize(frame, order)
    paired = metrics.paired_differences(frame, reference=report.REFERENCE, model_order=order)
    class_names, confusion = store.load_confusion(run_dir)
    notes_path = run_dir / NOTES_FILE
    notes = notes_path.read_text(encoding="utf-8").splitlines() if notes_path.is_file() else []
    return RunView(run_dir, frame, summary, paired, class_names, confusion, store.load_dataset(run_dir), notes)


def execute_notebook(notebook: str | os.PathLike, output: str | os.PathLike | None = None,
                     run_dir: str | os.PathLike | None = None, timeout_s: int = 600):
    """Run a notebook top to bottom in a fresh kernel; raises on the first failing cell.

    `run_dir` reaches the notebook through the KSHOT_RUN_DIR environment variable.
    The executed copy is written to `output` when given (never over the source, whose
    outputs stay stripped in git).
    """
    # Jupyter's packages: only the notebook runner needs them, and they take a second to load.
    import nbformat
    from nbclient import NotebookClient

    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    previous = os.environ.get(RUN_DIR_ENV_VAR)
    if run_dir is not None:
        os.environ[RUN_DIR_ENV_VAR] = str(Path(run_dir).resolve())
    try:
        NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO_ROOT)}}).execute()
    finally:
        if previous is None:
            os.environ.pop(RUN_DIR_ENV_VAR, None)
        else:
            os.environ[RUN_DIR_ENV_VAR] = previous
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, output)
    return nb


def main(argv: list[str] | None = None) -> int:
    """`python -m experiments.cli.notebooks OUT_DIR [RUN_DIR]`: execute every notebook into OUT_DIR."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m experiments.cli.notebooks OUT_DIR [RUN_DIR]", file=sys.stderr)
        return 2
    out_dir = Path(args[0])
    run_dir = args[1] if len(args) > 1 else None
    for name in NOTEBOOKS:
        execute_notebook(REPO_ROOT / "notebooks" / name, out_dir / name, run_dir)
        print(f"executed notebooks/{name} -> {out_dir / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
