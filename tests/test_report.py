"""`kshot report DIR` rebuilds the summary and the figures from the run directory alone."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

sys.path.insert(0, str(Path(__file__).parent))
from kshot_synthetic import write_embeddings_npz  # noqa: E402

from experiments import cli_report, config as cfg, stats  # noqa: E402
from experiments.run_data import load_embeddings_file  # noqa: E402
from experiments.runner import run_experiment  # noqa: E402

FIGURES = ["accuracy_vs_shots", "accuracy_vs_footprint", "confusion_baseline", "confusion_memory", "dataset_similarity"]


def test_mean_ci_is_the_student_t_interval():
    values = np.array([0.8, 0.9, 0.85, 0.95, 1.0])
    mean, low, high = stats.mean_ci(values)
    expected = scipy_stats.t.interval(0.95, df=4, loc=values.mean(), scale=scipy_stats.sem(values))
    assert mean == values.mean() and np.allclose([low, high], expected)
    assert stats.mean_ci([1.0, 1.0]) == (1.0, 1.0, 1.0)
    assert np.isnan(stats.mean_ci([0.5])[1])


def test_report_from_the_run_directory_alone(tmp_path):
    path = write_embeddings_npz(tmp_path / "emb.npz", n_classes=4, per_class=6, dim=8, spread=1.0)
    data = load_embeddings_file(path, cfg.DataSection(embeddings=str(path)))
    config = cfg.from_dict({"run": {"repeats": 5, "max_shots": 3, "models": ["baseline", "memory"]}})
    run_dir = tmp_path / "run"
    run_experiment(config, run_dir, data, progress=False, make_figures=False)
    path.unlink()  # the report must not need the inputs
    for derived in ("summary.csv", "summary.md"):
        (run_dir / derived).unlink()

    assert cli_report.handle_report(argparse.Namespace(run_dir=run_dir, no_figures=False)) == 0
    summary = pd.read_csv(run_dir / "summary.csv")
    results = pd.read_csv(run_dir / "results.csv")
    row = summary[(summary.model == "memory") & (summary.shots == 1)].iloc[0]
    values = results[(results.model == "memory") & (results.shots == 1)].accuracy
    mean, low, high = stats.mean_ci(values)
    assert row.repeats == 5 and np.isclose(row["mean"], mean) and np.isclose(row.ci_low, low, atol=1e-6)
    markdown = (run_dir / "summary.md").read_text()
    assert "| memory | 1 | 5 |" in markdown and "seconds per repeat" in markdown
    for name in FIGURES:
        for ext in ("png", "svg"):
            figure = run_dir / "figures" / f"{name}.{ext}"
            assert figure.is_file() and figure.stat().st_size > 1000, figure
    assert (run_dir / "figures" / "accuracy_vs_shots.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
