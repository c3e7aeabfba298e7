"""Renderers of the face results: the blog's published curves, the fine-tuning study, the
footprint sweeps (the gallery and the open-set run: experiments.publish.gallery). Each takes the repository root and
returns a block body; each reads only the files its registry entry names."""

from __future__ import annotations

import re
from pathlib import Path

from experiments.publish.tables import (
    markdown_table,
    pct,
    points_ci,
    read_csv,
    read_md_table,
    read_module,
    read_text,
)

BLOG_REFERENCE = "experiments/studies/blog_reference.py"
STUDY_DIR = "docs/results/finetune_lowres"
STUDY_TABLE = f"{STUDY_DIR}/study.md"
STUDY_PAIRED = f"{STUDY_DIR}/paired_differences.csv"
CELEBRITY_SUMMARY = "docs/results/celebrities/summary.csv"

# ---------------------------------------------------------------- the blog's published curves


def blog_published(root: Path) -> str:
    published = read_module(root, BLOG_REFERENCE)["PUBLISHED"]
    shots = len(next(iter(published.values()))[1])
    rows = [(f"{curve} (`{model}`)", *(f"{v:.1f}" for v in values)) for model, (curve, values) in published.items()]
    return "\n".join([
        "The blog's published accuracy in percent, read from its figures (12 characters x 8 images, "
        "one fixed feed order, iteration k = k shots; one run, so no interval):",
        "",
        markdown_table(("the blog's curve (our model name)", *(str(k) for k in range(1, shots + 1))), rows),
    ])


# ---------------------------------------------------------------- the fine-tuning study under a domain shift

STUDY_DEFAULT = "B8_off_adam1e-5_s1"      # the demo's fine-tuning settings, run under the shift
STUDY_BLOG_PHASE_ON = "B8_on_adam1e-4_s3"  # the blog's phase ON key rule
STUDY_CLAIMED_FROM = 3                      # the study's claim: a difference at every shot from 3 on
STUDY_SHOTS = (1, 3, 10)


def _study(root: Path) -> dict[str, dict[int, dict]]:
    settings: dict[str, dict[int, dict]] = {}
    for row in read_csv(root, STUDY_PAIRED):
        settings.setdefault(row["setting"], {})[int(row["shots"])] = row
    return settings


def _wins(rows: dict[int, dict]) -> bool:
    return all(rows[k]["resolved_bonferroni"] == "True" for k in rows if k >= STUDY_CLAIMED_FROM)


def _level(settings: dict) -> str:
    return f"{100 * (1 - 0.05 / len(settings)):.3g}%"


def _store_all_row(settings: dict) -> dict[int, float]:
    first = next(iter(settings.values()))
    return {k: float(row["reference_accuracy"]) for k, row in first.items()}


def finetune_shift(root: Path) -> str:
    """README and BLOG_SETTING: the study's answer in a few rows."""
    settings = _study(root)
    store_all = _store_all_row(settings)
    shown = [STUDY_DEFAULT, *(name for name, rows in settings.items() if _wins(rows)), STUDY_BLOG_PHASE_ON]
    rows = [("store-all 1-NN (`baseline`)", *(pct(store_all[k]) for k in STUDY_SHOTS), "", "")]
    for name in dict.fromkeys(shown):
        data = settings[name]
        at = data[STUDY_CLAIMED_FROM]
        rows.append((f"`{name}`", *(pct(data[k]["model_accuracy"]) for k in STUDY_SHOTS),
                     points_ci(at["mean_difference"], at["ci_low_bonferroni"], at["ci_high_bonferroni"], 1),
                     "yes" if _wins(data) else "no"))
    repeats = next(iter(next(iter(settings.values())).values()))["repeats"]
    return "\n".join([
        f"Regime: `celebrities_lowres` (the 5 people's faces reduced to 12 x 12 pixels), {repeats} paired "
        f"shuffles, {len(settings)} settings fixed before the runs, intervals at {_level(settings)} "
        "(Bonferroni over the settings). Accuracy in %:",
        "",
        markdown_table(("setting", *(f"{k} shot{'s' * (k > 1)}" for k in STUDY_SHOTS),
                        f"minus store-all at {STUDY_CLAIMED_FROM} shots, points",
                        f"beats store-all at every shot >= {STUDY_CLAIMED_FROM}"), rows, "lrrrll"),
    ])


def finetune_study(root: Path) -> str:
    """FINETUNING: the study's own table (written by experiments.studies.finetune_study) and its verdict."""
    settings = _study(root)
    store_all = _store_all_row(settings)
    lines = [read_text(root, STUDY_TABLE).strip(), "",
             f"Accuracy in % at {' / '.join(str(k) for k in STUDY_SHOTS)} shots (mean over the repeats): "
             f"store-all 1-NN {' / '.join(pct(store_all[k]) for k in STUDY_SHOTS)}"]
    for name, data in settings.items():
        lines[-1] += f"; `{name}` {' / '.join(pct(data[k]['model_accuracy']) for k in STUDY_SHOTS)}"
    lines[-1] += "."
    winners = [name for name, rows in settings.items() if _wins(rows)]
    lines.append("")
    for name in winners:
        data = settings[name]
        resolved = [k for k in sorted(data) if data[k]["resolved_bonferroni"] == "True"]
        last = max(data)
        lines.append(
            f"- `{name}` beats store-all at every shot from {resolved[0]} to {last}: "
            f"{points_ci(data[STUDY_CLAIMED_FROM]['mean_difference'], data[STUDY_CLAIMED_FROM]['ci_low_bonferroni'], data[STUDY_CLAIMED_FROM]['ci_high_bonferroni'], 1)} "
            f"points at {STUDY_CLAIMED_FROM} shots and "
            f"{points_ci(data[last]['mean_difference'], data[last]['ci_low_bonferroni'], data[last]['ci_high_bonferroni'], 1)} "
            f"at {last} ({_level(settings)} intervals).")
    if not winners:
        lines.append(f"- No setting beats store-all at every shot from {STUDY_CLAIMED_FROM} on.")
    return "\n".join(lines)


def lowres_drop(root: Path) -> str:
    """One sentence: what the shift does to store-all 1-NN."""
    store_all = _store_all_row(_study(root))
    clean = {int(r["shots"]): float(r["mean"]) for r in read_csv(root, CELEBRITY_SUMMARY) if r["model"] == "baseline"}
    return (f"Store-all 1-NN on `celebrities_lowres` scores {pct(store_all[1])}% at 1 shot and "
            f"{pct(store_all[10])}% at 10 shots, against {pct(clean[1])}% and {pct(clean[10])}% on the sharp "
            "photos (the study's and the demo's runs).")


# ---------------------------------------------------------------- accuracy against footprint

FOOTPRINT_SETS = (  # (label, results file, the budget compared: slots per bounded method)
    ("celebrities train folder, 5 people, sharp", "docs/results/footprint_clean.md", 16),
    ("the same photos at 14 x 14 px", "docs/results/footprint_lowres.md", 16),
    ("Omniglot, 172 held-out characters", "docs/results/footprint_omniglot_shipped.md", 344),
)
FOOTPRINT_FILES = tuple(path for _, path, _ in FOOTPRINT_SETS)
POLICY_LABELS = {
    "memory": "memory (the paper's rule)",
    "memory_running_mean": "memory_running_mean",
    "memory_balanced": "memory_balanced",
    "memory_threshold": "memory_threshold",
    "memory_fold": "**memory_fold**",
    "fifo": "fifo",
    "reservoir": "reservoir",
}


def _footprint(root: Path, path: str) -> tuple[dict[str, dict], str, str]:
    rows = {row["model"]: row for row in read_md_table(root, path)}
    found = re.search(r"At (\d+) shots, (\d+) repeats", read_text(root, path))
    if found is None:
        raise ValueError(f"{path} does not say at how many shots and repeats it was measured")
    return rows, found[1], found[2]


def footprint_summary(root: Path) -> str:
    """README: per set, accuracy of every kind of memory at one budget, with store-all and class means."""
    table = []
    for label, path, slots in FOOTPRINT_SETS:
        rows, shots, repeats = _footprint(root, path)
        at = {name: rows[f"{name}@{slots}"] for name in ("memory", "memory_fold", "fifo", "reservoir")}
        table.append((label, repeats, f"{slots} slots ({at['memory_fold']['x store-all']}x)",
                      rows["baseline"]["accuracy %"], at["memory"]["accuracy %"], at["memory_fold"]["accuracy %"],
                      at["fifo"]["accuracy %"], at["reservoir"]["accuracy %"],
                      f"{rows['class_means']['accuracy %']} ({rows['class_means']['x store-all']}x)",
                      at["memory_fold"]["vs store-all"]))
    return "\n".join([
        f"Accuracy in % at {shots} shots, frozen embedder, the same shuffles for every model; the budget is "
        "slots per bounded memory (bytes as a fraction of store-all's at that shot count):",
        "",
        markdown_table(("set", "repeats", "budget", "store-all 1-NN", "memory (paper)", "memory_fold", "FIFO",
                        "reservoir", "class means (bytes)", "memory_fold minus store-all, points"),
                       table, "lrlrrrrrrl"),
    ])


def footprint_faces(root: Path) -> str:
    """MEMORY_POLICIES: every policy at the face sets' budget, both sets side by side."""
    (label_a, path_a, slots), (label_b, path_b, slots_b) = FOOTPRINT_SETS[:2]
    assert slots == slots_b
    (clean, shots, repeats), (low, _, _) = _footprint(root, path_a), _footprint(root, path_b)
    names = ["baseline", *(f"{p}@{slots}" for p in POLICY_LABELS), "class_means"]

    def label(name: str) -> str:
        if name == "baseline":
            return f"store-all 1-NN (`baseline`, {shots} shots)"
        policy, _, size = name.partition("@")
        return f"{POLICY_LABELS.get(policy, policy)} @{size}" if size else policy

    rows = []
    for name in names:
        a, b = clean[name], low[name]
        rows.append((label(name), a["bytes"], a["x store-all"],
                     a["accuracy %"], a["vs store-all"], a["vs FIFO same size"], a["vs reservoir same size"],
                     b["accuracy %"], b["vs store-all"], b["vs FIFO same size"], b["vs reservoir same size"]))
    return "\n".join([
        f"{repeats} shuffles, {shots} shots; accuracy in %, differences in points [95% CI], paired repeat by repeat:",
        "",
        markdown_table(("model", "bytes", "x store-all", "sharp: acc", "vs store-all", "vs FIFO", "vs reservoir",
                        "14 px: acc", "vs store-all", "vs FIFO", "vs reservoir"), rows),
    ])


def footprint_omniglot(root: Path) -> str:
    """MEMORY_POLICIES: the Omniglot sweep at its middle budget, and the other budgets in one line."""
    label, path, slots = FOOTPRINT_SETS[2]
    rows, shots, repeats = _footprint(root, path)
    names = ["baseline", "class_means", *(f"{p}@{slots}" for p in POLICY_LABELS)]
    body = []
    for name in names:
        r = rows[name]
        policy, _, size = name.partition("@")
        shown = f"store-all 1-NN (`baseline`, {shots} shots)" if name == "baseline" else (
            f"{POLICY_LABELS.get(policy, policy)} @{size}" if size else policy)
        body.append((shown, r["bytes"], r["x store-all"], r["accuracy %"], r["vs store-all"],
                     r["vs FIFO same size"], r["vs reservoir same size"]))
    sizes = sorted({int(name.partition("@")[2]) for name in rows if "@" in name})
    others = "; ".join(
        f"@{size} ({rows[f'memory_fold@{size}']['x store-all']}x): memory_fold {rows[f'memory_fold@{size}']['accuracy %']}% "
        f"({rows[f'memory_fold@{size}']['vs store-all']} vs store-all), class means {rows['class_means']['accuracy %']}%"
        for size in sizes if size != slots)
    return "\n".join([
        f"{repeats} shuffles, {shots} shots; accuracy in %, differences in points [95% CI]:",
        "",
        markdown_table(("model", "bytes", "x store-all", "accuracy", "vs store-all", "vs FIFO", "vs reservoir"), body),
        "",
        f"Other budgets: {others}.",
    ])


def footprint_goal(root: Path) -> str:
    """MEMORY_POLICIES: the chosen policy on every set at its budget."""
    rows = []
    for label, path, slots in FOOTPRINT_SETS:
        table, shots, repeats = _footprint(root, path)
        r = table[f"memory_fold@{slots}"]
        rows.append((label, repeats, slots, r["x store-all"], r["accuracy %"], r["vs store-all"],
                     r["vs FIFO same size"], r["vs reservoir same size"]))
    return markdown_table(("set", "repeats", "slots", "x store-all", "memory_fold acc %", "vs store-all",
                           "vs FIFO same size", "vs reservoir same size"), rows)
