"""The celebrity demo's result: copy a finished run into docs/results/celebrities, and render it.

Two steps, so that a number is never pasted:

    make celebrity-results   # = kshot run --out runs/readme
                             #   python -m experiments.publish.readme runs/readme   (copies the run's files)
                             #   python -m experiments.publish                      (renders every block)

`publish_run` copies the run's summary, paired differences and accuracy figure into
docs/results/celebrities (the committed results files); the blocks `celebrity-demo`
and `celebrity-finetuned` are rendered from those files by `make docs`, like every
other block (experiments/publish/registry.py).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from experiments.core.run_files import FIGURES_DIR, PAIRED_FILE, SUMMARY_CSV, SUMMARY_MD
from experiments.publish.tables import markdown_table, pct_ci, points_ci, read_csv, read_text, require

RESULTS = "docs/results/celebrities"
FIGURES = ("accuracy_vs_shots.png", "accuracy_vs_shots.svg")
SOURCES = tuple(f"{RESULTS}/{name}" for name in (SUMMARY_CSV, PAIRED_FILE, SUMMARY_MD, FIGURES[0]))
DEMO_SHOTS = (1, 2, 5, 10)
FINETUNED = {
    "memory_finetune_phase_off": "phase OFF, keys from the learn pass",
    "memory_finetune_phase_on": "phase ON, keys from the learn pass (the blog's rule)",
    "memory_finetune_phase_on_consistent": "phase ON, consistent keys",
}
FINETUNED_SHOTS = (1, 2, 3, 10)


def publish_run(run_dir: Path, docs_dir: Path) -> None:
    """Copy a finished `kshot run` directory's summary files and accuracy figure into docs_dir."""
    run_dir, docs_dir = Path(run_dir), Path(docs_dir)
    for name in (SUMMARY_MD, SUMMARY_CSV, PAIRED_FILE, *(f"{FIGURES_DIR}/{f}" for f in FIGURES)):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name} is missing; run `kshot run --out {run_dir}` (or `kshot report {run_dir}`) first")
    docs_dir.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:
        shutil.copyfile(run_dir / FIGURES_DIR / name, docs_dir / name)
    for name in (SUMMARY_MD, SUMMARY_CSV, PAIRED_FILE):
        shutil.copyfile(run_dir / name, docs_dir / name)


def _summary(root: Path) -> dict[tuple[str, int], dict]:
    return {(r["model"], int(r["shots"])): r for r in read_csv(root, f"{RESULTS}/{SUMMARY_CSV}")}


def _paired(root: Path) -> dict[tuple[str, int], dict]:
    return {(r["model"], int(r["shots"])): r for r in read_csv(root, f"{RESULTS}/{PAIRED_FILE}")}


def _data_line(root: Path) -> str:
    """'117 images, 5 classes' from the run summary's data line."""
    text = read_text(root, f"{RESULTS}/{SUMMARY_MD}")
    found = re.search(r"(\d+) images, (\d+) classes", text)
    if found is None:
        raise ValueError(f"{RESULTS}/{SUMMARY_MD} does not say how many images and classes the run used")
    return f"{found[2]} people, {found[1]} photos with a detected face"


def _finetune_line(root: Path) -> str:
    """'FaceNet fine-tuned from Block8 up, 1 optimizer step per shot' from the run summary."""
    text = read_text(root, f"{RESULTS}/{SUMMARY_MD}")
    found = re.search(r"train FaceNet from (\S+) up \((\d+) optimizer step", text)
    if found is None:
        raise ValueError(f"{RESULTS}/{SUMMARY_MD} does not say what the fine-tuned models train")
    return f"FaceNet fine-tuned from {found[1]} up, {found[2]} optimizer step(s) per shot"


def celebrity_demo(root: Path) -> str:
    """README: the figure and memory against store-all 1-NN at a few shot counts."""
    summary, paired = _summary(root), _paired(root)
    rows = []
    for shots in DEMO_SHOTS:
        base, mem, diff = summary[("baseline", shots)], summary[("memory", shots)], paired[("memory", shots)]
        rows.append((shots, pct_ci(base["mean"], base["ci_low"], base["ci_high"]),
                     pct_ci(mem["mean"], mem["ci_low"], mem["ci_high"]),
                     points_ci(diff["mean_difference"], diff["ci_low"], diff["ci_high"]), diff["verdict"]))
    repeats = summary[("memory", DEMO_SHOTS[0])]["repeats"]
    table = markdown_table(
        ("shots", "store-all 1-NN (`baseline`), %", "memory, %", "memory minus store-all, points", "verdict"),
        rows, "rllll")
    return "\n".join([
        f"![k-shot accuracy on the celebrity set, mean and 95% CI]({require(root, f'{RESULTS}/{FIGURES[0]}')})",
        "",
        f"Regime: {_data_line(root)}, frozen FaceNet, {repeats} shuffles (the same for both models); "
        "accuracy on the photos not yet fed after k photos of each person, mean [95% interval over "
        "repeats]; the difference is paired repeat by repeat (a verdict needs its interval to exclude 0 "
        "and p < 0.05).",
        "",
        table,
    ])


def celebrity_finetuned(root: Path) -> str:
    """The fine-tuned variants of the demo against store-all 1-NN, paired, at a few shot counts."""
    summary, paired = _summary(root), _paired(root)
    rows = []
    for model, label in FINETUNED.items():
        cells = [points_ci(p["mean_difference"], p["ci_low"], p["ci_high"]) + ("" if p["verdict"] == "within noise" else f" ({p['verdict']})")
                 for p in (paired[(model, shots)] for shots in FINETUNED_SHOTS)]
        rows.append((f"`{model}`: {label}", summary[(model, FINETUNED_SHOTS[0])]["repeats"], *cells))
    base = [summary[("baseline", shots)] for shots in FINETUNED_SHOTS]
    rows.append(("store-all 1-NN itself, accuracy %", base[0]["repeats"],
                 *(pct_ci(b["mean"], b["ci_low"], b["ci_high"]) for b in base)))
    header = ("model minus store-all 1-NN, points [95% CI]", "repeats", *(f"{k} shot{'s' * (k > 1)}" for k in FINETUNED_SHOTS))
    return "\n".join([
        f"Regime: {_data_line(root)} (sharp faces), {_finetune_line(root)} (the demo "
        "configuration); paired over the same shuffles; `(wins)` / `(loses)` mark a resolved difference.",
        "",
        markdown_table(header, rows, "lrllll"),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.publish.readme", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a finished `kshot run` directory of the celebrity demo")
    parser.add_argument("--docs", type=Path, default=Path(RESULTS), help=f"where the files go (default {RESULTS})")
    args = parser.parse_args(argv)
    publish_run(args.run_dir, args.docs)
    print(f"copied {args.run_dir}'s summary and figure into {args.docs}; now run `make docs`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
