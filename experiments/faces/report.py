"""Summary tables and figures, rebuilt from a run directory alone.

`write_report(run_dir)` reads results.csv, timings.csv, confusion.npz, dataset.npz,
config.toml and notes.txt (all written by `kshot run`) and writes summary.csv,
summary.md and figures/*.png|svg. It needs no model and no images, so `kshot report
DIR` works on a copied run directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import tomllib

from experiments.core import metrics
from experiments.core import run_dir as rundir
from experiments.core.run_files import (
    CONFIG_FILE,
    FIGURES_DIR,
    FOOTPRINT_MD,
    NOTES_FILE,
    OPEN_SET_FILE,
    OPEN_SET_SUMMARY_FILE,
    PAIRED_FILE,
    REPEATS_DIR,
    SUMMARY_CSV,
    SUMMARY_MD,
    TIMINGS_FILE,
)
from experiments.faces import footprint, methods, plots
from experiments.faces import results as store
from experiments.faces import settings as cfg
from experiments.faces.repeats import finished_repeats
from kshot_io import write_text_atomic

REFERENCE = "baseline"  # the model every other is compared with (store-all 1-NN, "FaceNet alone")


def model_order(run_dir: Path, frame: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(frame["model"]))
    config_path = Path(run_dir) / CONFIG_FILE
    if config_path.is_file():
        with open(config_path, "rb") as handle:
            listed = tomllib.load(handle).get("run", {}).get("models", [])
        return [m for m in listed if m in present] + [m for m in present if m not in listed]
    return present


def timing_from_disk(run_dir: Path) -> dict:
    path = Path(run_dir) / TIMINGS_FILE
    if not path.is_file():
        return {}
    frame = pd.read_csv(path)
    per_repeat = frame.groupby(["model", "repeat"], sort=False)["seconds"].sum()
    return {
        model: {"repeats": int(group.size), "seconds_per_repeat": float(group.mean())}
        for model, group in per_repeat.groupby(level=0, sort=False)
    }


def summary_markdown(summary: pd.DataFrame) -> str:
    """A Markdown table: one row per model and shots, accuracy as mean [95% CI]."""
    lines = [
        f"95% interval: {metrics.ACCURACY_METHOD}.",
        "",
        "| model | shots | repeats | accuracy mean | 95% CI | memory bytes |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for row in summary.itertuples(index=False):
        lines.append(
            f"| {row.model} | {row.shots} | {row.repeats} | {row.mean:.4f} | [{row.ci_low:.4f}, {row.ci_high:.4f}] "
            f"| {row.mean_memory_bytes:.0f} |"
        )
    return "\n".join(lines) + "\n"


def paired_markdown(paired: pd.DataFrame) -> str:
    """A Markdown table of every model minus the reference, per shot, with the verdict."""
    lines = [
        f"Method: {metrics.PAIRED_METHOD}; a verdict needs the 95% interval to exclude 0 and p < 0.05.",
        "",
        "| model | reference | shots | repeats | difference (points) | 95% CI (points) | p | verdict |",
        "|---|---|---:|---:|---:|---|---:|---|",
    ]
    for row in paired.itertuples(index=False):
        lines.append(
            f"| {row.model} | {row.reference} | {row.shots} | {row.repeats} | {row.mean_difference * 100:+.2f} "
            f"| [{row.ci_low * 100:+.2f}, {row.ci_high * 100:+.2f}] | {row.p_value:.3g} | {row.verdict} |"
        )
    return "\n".join(lines) + "\n"


OPEN_SET_SUMMARY_COLUMNS = ["model", "shots", "repeats", "known_accuracy", "known_ci_low", "known_ci_high",
                            "stranger_rejection", "rejection_ci_low", "rejection_ci_high", "median_threshold",
                            "fnir", "fnir_ci_low", "fnir_ci_high", "fpir", "fpir_ci_low", "fpir_ci_high"]


def open_set_summary(run_dir: Path, order: list[str]) -> pd.DataFrame | None:
    """Mean and 95% interval over repeats of open_set.csv, per model and shots; None for a closed-set run."""
    path = Path(run_dir) / OPEN_SET_FILE
    if not path.is_file():
        return None
    frame = pd.read_csv(path)
    missing = sorted(set(store.OPEN_SET_COLUMNS) - set(frame.columns))
    if missing:
        raise ValueError(f"{path} lacks the columns {missing} (written by an older kshot); run the same "
                         "`kshot run` command again to rewrite it from the repeat files")
    rows = []
    for model in [m for m in order if m in set(frame["model"])]:
        for shots, group in frame[frame["model"] == model].groupby("shots", sort=True):
            known = metrics.accuracy_interval(group["n_known_accepted"].to_numpy(), group["n_known"].to_numpy())
            rejected = metrics.accuracy_interval(group["n_stranger_rejected"].to_numpy(),
                                                   group["n_stranger"].to_numpy())
            rows.append({"model": model, "shots": int(shots), "repeats": int(len(group)),
                         "known_accuracy": known[0], "known_ci_low": known[1], "known_ci_high": known[2],
                         "stranger_rejection": rejected[0], "rejection_ci_low": rejected[1],
                         "rejection_ci_high": rejected[2], "median_threshold": float(group["threshold"].median()),
                         # NIST FRVT 1:N: FNIR = known not named right at the threshold, FPIR = strangers accepted
                         "fnir": 1 - known[0], "fnir_ci_low": 1 - known[2], "fnir_ci_high": 1 - known[1],
                         "fpir": 1 - rejected[0], "fpir_ci_low": 1 - rejected[2], "fpir_ci_high": 1 - rejected[1]})
    return pd.DataFrame(rows, columns=OPEN_SET_SUMMARY_COLUMNS)


def open_set_markdown(summary: pd.DataFrame) -> str:
    lines = [
        "| model | shots | repeats | FNIR (known not named right) | 95% CI | FPIR (strangers accepted) | 95% CI "
        "| median threshold |",
        "|---|---:|---:|---:|---|---:|---|---:|",
    ]

    def ci(low, high):
        return "n/a" if np.isnan(low) else f"[{low:.4f}, {high:.4f}]"

    for r in summary.itertuples(index=False):
        lines.append(f"| {r.model} | {r.shots} | {r.repeats} | {r.fnir:.4f} | {ci(r.fnir_ci_low, r.fnir_ci_high)} "
                     f"| {r.fpir:.4f} | {ci(r.fpir_ci_low, r.fpir_ci_high)} "
                     f"| {r.median_threshold:.4f} |")
    return "\n".join(lines) + "\n"


def timing_markdown(timing: dict) -> str:
    lines = ["| model | repeats | seconds per repeat |", "|---|---:|---:|"]
    for model, t in timing.items():
        lines.append(f"| {model} | {t['repeats']} | {t['seconds_per_repeat']:.3f} |")
    return "\n".join(lines) + "\n"


def assemble_tables(run_dir: str | Path) -> str | None:
    """Rebuild results.csv, timings.csv and confusion.npz from the repeat files on disk.

    This is what lets `kshot report` describe an interrupted run: the repeat files are
    the unit of resume, so whatever finished is there. Returns a sentence saying how
    complete the run is, or None when the directory has no repeat files.
    """
    run_dir = Path(run_dir)
    if not (run_dir / REPEATS_DIR).is_dir():
        return None
    config = rundir.read_run_config(run_dir, cfg.RunConfig, "a `kshot run`", "give a directory written by `kshot run`")
    dataset = store.load_dataset(run_dir)
    if dataset is None:
        raise FileNotFoundError(f"{run_dir / 'dataset.npz'} is missing; the run did not get as far as its first repeat")
    found, parts = [], []
    # Every model the run computes: a memory-size sweep's `method@size` models too.
    computed = methods.run_models(config)
    for model in computed:
        wanted = config.budget(model).repeats
        mine = finished_repeats(run_dir, model, wanted, None)
        found.extend(mine)
        parts.append(f"{model} {len(mine)} of {wanted}")
    if not found:
        raise FileNotFoundError(f"{run_dir} has no finished repeat yet; nothing to report")
    models = [m for m in computed if any(r.model == m for r in found)]
    store.write_tables(run_dir, found, models, [str(n) for n in dataset["class_names"]])
    return "repeats finished: " + ", ".join(parts)


def write_report(run_dir: str | Path, make_figures: bool = True, timing: dict | None = None, notes: list[str] | None = None) -> dict:
    """Write summary.csv, summary.md and the figures; returns {'summary': DataFrame, 'figures': [paths]}."""
    run_dir = Path(run_dir)
    frame = store.load_results(run_dir)
    order = model_order(run_dir, frame)
    summary = metrics.summarize(frame, order)
    write_text_atomic(run_dir / SUMMARY_CSV, summary.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    paired = metrics.paired_differences(frame, reference=REFERENCE, model_order=order)
    write_text_atomic(run_dir / PAIRED_FILE, paired.to_csv(index=False, float_format="%.6f", lineterminator="\n"))

    notes_path = run_dir / NOTES_FILE
    if notes is not None:
        write_text_atomic(notes_path, "\n".join(notes) + "\n")
    elif notes_path.is_file():
        notes = notes_path.read_text(encoding="utf-8").splitlines()
    timing = timing if timing is not None else timing_from_disk(run_dir)

    markdown = ["# k-shot run summary", ""]
    markdown += [f"- {n}" for n in (notes or [])]
    markdown += ["", "## Accuracy (mean and 95% interval over repeats)", "", summary_markdown(summary)]
    if not paired.empty:
        markdown += [f"## Paired differences against {REFERENCE} (same shuffles)", "", paired_markdown(paired)]
    opened = open_set_summary(run_dir, order)
    if opened is not None:
        write_text_atomic(run_dir / OPEN_SET_SUMMARY_FILE,
                          opened.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
        markdown += [
            "## Open set (held-out identities never fed)", "",
            "Accuracy above counts known identities only. Here an answer counts only when the memory's "
            "similarity reaches the threshold calibrated on the items fed so far (each fed item searched "
            "against the memory's entries of other identities, target FPIR in config.toml [open_set]). "
            "FNIR: share of known items not named right at or above the threshold; FPIR: share of strangers "
            "whose best answer reaches it (NIST FRVT 1:N). "
            "With nothing fed, or one identity, the threshold is infinite and everything is rejected. "
            "95% intervals: bootstrap over repeats, widened to the Wilson interval of the pooled items "
            "(experiments.core.metrics).", "",
            open_set_markdown(opened),
        ]
    if timing:
        markdown += ["## Time", "", timing_markdown(timing)]
    write_text_atomic(run_dir / SUMMARY_MD, "\n".join(markdown))

    if any(methods.split_name(m)[1] is not None for m in order) and footprint.STORE_ALL in order:
        footprint.write_footprint(run_dir, frame, make_figure=make_figures)
        markdown += ["## Accuracy against footprint", "", (run_dir / FOOTPRINT_MD).read_text(encoding="utf-8")]
        write_text_atomic(run_dir / SUMMARY_MD, "\n".join(markdown))

    figures: list[Path] = []
    if make_figures:
        figures = write_figures(run_dir, summary)
    return {"summary": summary, "paired": paired, "open_set": opened, "figures": figures, "timing": timing,
            "markdown": "\n".join(markdown)}


def write_figures(run_dir: Path, summary: pd.DataFrame) -> list[Path]:
    figure_dir = run_dir / FIGURES_DIR
    class_names, confusion = store.load_confusion(run_dir)
    paths = plots.plot_accuracy(summary, len(class_names), figure_dir / "accuracy_vs_shots")
    paths += plots.plot_accuracy_vs_footprint(summary, figure_dir / "accuracy_vs_footprint")
    for model in summary["model"].unique():
        if model in confusion and methods.split_name(model)[1] is None:  # not one per size of a sweep
            paths += plots.plot_confusion_evolution(confusion[model], class_names, model, figure_dir / f"confusion_{model}")
    dataset = store.load_dataset(run_dir)
    if dataset is not None:
        paths += plots.plot_similarity(
            dataset["embeddings"], dataset["labels"], [str(n) for n in dataset["class_names"]], figure_dir / "dataset_similarity"
        )
    return paths


def open_set_table(opened: pd.DataFrame) -> pd.DataFrame:
    """Wide view for printing: per shots, 'FNIR / FPIR' per model."""
    cells = opened.assign(cell=[f"{k:.3f} / {r:.3f}" for k, r in zip(opened["fnir"], opened["fpir"])])
    return cells.pivot(index="shots", columns="model", values="cell").reindex(columns=list(dict.fromkeys(opened["model"])))


def accuracy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Wide view: one row per shots, one 'mean [low, high]' column per model (for printing).

    A model that did not run a shot count shows "-" there, never NaN.
    """
    cells = summary.assign(
        cell=[f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in zip(summary["mean"], summary["ci_low"], summary["ci_high"])]
    )
    wide = cells.pivot(index="shots", columns="model", values="cell")
    return wide.reindex(columns=list(dict.fromkeys(summary["model"]))).fillna("-")
