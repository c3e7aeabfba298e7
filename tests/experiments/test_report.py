"""`kshot report DIR` rebuilds the summary and the figures from the run directory alone."""

import argparse

import numpy as np
import pandas as pd
from support import write_embeddings_npz

from experiments.cli.run import handle_report
from experiments.core import metrics
from experiments.faces import settings as cfg
from experiments.faces.run_data import load_embeddings_file
from experiments.faces.runner import run_experiment

FIGURES = ["accuracy_vs_shots", "accuracy_vs_footprint", "confusion_baseline", "confusion_memory", "dataset_similarity"]


def test_report_from_the_run_directory_alone(tmp_path):
    path = write_embeddings_npz(tmp_path / "emb.npz", n_classes=4, per_class=6, dim=8, spread=1.0)
    data = load_embeddings_file(path, cfg.DataSection(embeddings=str(path)))
    config = cfg.from_dict({"run": {"repeats": 5, "max_shots": 3, "models": ["baseline", "memory"]}})
    run_dir = tmp_path / "run"
    run_experiment(config, run_dir, data, progress=False, make_figures=False)
    path.unlink()  # the report must not need the inputs
    for derived in ("summary.csv", "summary.md", "paired.csv"):
        (run_dir / derived).unlink()

    assert handle_report(argparse.Namespace(run_dir=run_dir, no_figures=False, map=False, map_model=None)) == 0
    summary = pd.read_csv(run_dir / "summary.csv")
    results = pd.read_csv(run_dir / "results.csv")
    row = summary[(summary.model == "memory") & (summary.shots == 1)].iloc[0]
    rows = results[(results.model == "memory") & (results.shots == 1)]
    mean, low, high = metrics.accuracy_interval(rows.n_correct, rows.n_eval)
    assert row.repeats == 5 and np.isclose(row["mean"], mean) and np.isclose(row.ci_low, low, atol=1e-6)
    assert 0 <= row.ci_low <= row["mean"] <= row.ci_high <= 1
    paired = pd.read_csv(run_dir / "paired.csv")
    assert paired.model.unique().tolist() == ["memory"] and paired.shots.tolist() == [0, 1, 2, 3]
    markdown = (run_dir / "summary.md").read_text()
    assert "| memory | 1 | 5 |" in markdown and "seconds per repeat" in markdown
    assert metrics.ACCURACY_METHOD in markdown and "## Paired differences against baseline" in markdown
    for name in FIGURES:
        for ext in ("png", "svg"):
            figure = run_dir / "figures" / f"{name}.{ext}"
            assert figure.is_file() and figure.stat().st_size > 1000, figure
    assert (run_dir / "figures" / "accuracy_vs_shots.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
