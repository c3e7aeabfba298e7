"""The hindsight tables' markdown, drawn from their results json alone.

Two tables. Per regime (the kind of keys x slots per class): the range of each
reference's and memory_ward_keep's paired difference to store-all and to class means over
the regime's cells, and in how many cells each meets the aim by the candidates study's rule
(experiments.studies.regime_map_candidates.holds). Then per cell, with 95% intervals. A
regime where no reference meets the aim is where no table of that size is expected to.
"""

from __future__ import annotations

import json
from pathlib import Path

from experiments.studies import regime_map as rm
from experiments.studies import regime_map_candidates as cand
from kshot_io import write_text_atomic

RESULTS_JSON = "hindsight.json"  # experiments.studies.hindsight_tables writes it
TABLE_MD = "hindsight.md"
STORE_ALL, CLASS_MEANS = rm.STORE_ALL, "class_means"
KINDS = ("shipped", "faces", "early", "untrained")


def shown(results: dict) -> tuple[str, ...]:
    """The references, then the write policy beside them, as the json names them."""
    return (*results["references"], results["paired"])


def keys_kind(key_set: str) -> str:
    """The embedder a key set comes from: faces (FaceNet on a face set) or an Omniglot checkpoint's kind."""
    if key_set.startswith("face_"):
        return "faces"
    kind = key_set.rsplit("_", 1)[-1]
    if kind not in KINDS:
        raise ValueError(f"key set {key_set!r}: cannot tell its keys (want face_*, *_shipped, *_early, *_untrained)")
    return kind


def _range(values: list[float]) -> str:
    low, high = min(values), max(values)
    if round(100 * low, 1) == round(100 * high, 1):
        return cand.points(low)
    return f"{cand.points(low)} to {cand.points(high)}"


def regime_lines(cells: list[dict], methods_shown: tuple[str, ...]) -> list[str]:
    paired = methods_shown[-1]
    lines = ["| keys | slots/class | cells | x store-all bytes | "
             + " | ".join(f"{m}: vs store-all | vs class means" for m in methods_shown) + " | meets the aim ("
             + " / ".join(methods_shown) + ") |",
             "|---|---:|---:|---:|" + "---:|---:|" * len(methods_shown) + "---:|"]
    regimes = sorted({(keys_kind(c["key_set"]), c["slots_per_class"]) for c in cells},
                     key=lambda r: (KINDS.index(r[0]), r[1]))
    for kind, slots in regimes:
        mine = [c for c in cells if (keys_kind(c["key_set"]), c["slots_per_class"]) == (kind, slots)]
        ratios = [c["methods"][paired]["bytes_ratio"] for c in mine]
        parts = [f"{_range([c['methods'][m][v] for c in mine])}" for m in methods_shown
                 for v in ("vs_store_all", "vs_class_means")]
        held = " / ".join(str(sum(cand.holds(c, m) for c in mine)) for m in methods_shown)
        share = f"{min(ratios):.2f}" if f"{min(ratios):.2f}" == f"{max(ratios):.2f}" else \
            f"{min(ratios):.2f} to {max(ratios):.2f}"
        lines.append(f"| {kind} | {slots:g} | {len(mine)} | {share} | "
                     + " | ".join(parts) + f" | {held} |")
    return lines


def hindsight_markdown(results: dict) -> str:
    cells = results["cells"]
    if not cells:
        return "No cells yet.\n"
    methods_shown = shown(results)
    differing = {(c["key_set"], c["classes"]): c["recomputed_differing"] for c in cells}
    mismatched = {k: v for k, v in differing.items() if any(part["repeats"] for part in v.values())}
    lines = [
        "Hindsight tables (references, not candidates): per class, b = slots per class keys built from every item "
        "the repeat fed up to the top shot (kmeans: spherical k-means, k-means++ seeds; farthest_first: b items "
        "spread out), queried by cosine 1-NN; memory_ward_keep (a write policy) beside them. Differences in points "
        "at the top shot, paired repeat by repeat with store-all and class means of the same runs. Meets the aim: "
        "within 1 point of class means and, where a memory of that size (memory_ward_keep's bytes) holds at most a "
        "third of store-all's bytes, of store-all.",
        "",
        "Store-all and class means recomputed here (NumPy, float64) against the run's (TensorFlow, float32): "
        + ("the same count of correct answers in every repeat." if not mismatched else
           "the same count of correct answers in every repeat but in "
           + "; ".join(f"{k[0]} {k[1]} classes (" + ", ".join(
               f"{name}: {part['repeats']} repeat(s), at most {part['most_answers']} answer(s)"
               for name, part in v.items() if part["repeats"]) + ")" for k, v in sorted(mismatched.items()))
           + " (taken for near-ties the two precisions break differently; not checked answer by answer). Every "
             "difference is paired with the run's own store-all and class means."),
        "",
        "Per regime (range over the regime's cells):",
        "",
        *regime_lines(cells, methods_shown),
        "",
        "Per cell (95% paired intervals):",
        "",
        "| key set | classes | slots/class | repeats | x | store-all % | class means % | "
        + " | ".join(f"{m} vs store-all | vs class means" for m in methods_shown) + " | meets the aim |",
        "|---|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(methods_shown) + "---|",
    ]
    for cell in cells:
        m = cell["methods"]
        lines.append(
            f"| {cell['key_set']} | {cell['classes']} | {cell['slots_per_class']:g} | {cell['repeats']} | "
            f"{m[methods_shown[-1]]['bytes_ratio']:.2f} | {100 * m[STORE_ALL]['accuracy']:.1f} | "
            f"{100 * m[CLASS_MEANS]['accuracy']:.1f} | "
            + " | ".join(f"{cand.interval(m[s], 'vs_store_all')} | {cand.interval(m[s], 'vs_class_means')}"
                         for s in methods_shown)
            + " | " + " / ".join("yes" if cand.holds(cell, s) else "no" for s in methods_shown) + " |")
    return "\n".join(lines) + "\n"


def write_report(out: str | Path) -> Path:
    """hindsight.md next to hindsight.json in `out`."""
    out = Path(out)
    path = out / RESULTS_JSON
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run python -m experiments.studies.hindsight_tables first")
    results = json.loads(path.read_text(encoding="utf-8"))
    write_text_atomic(out / TABLE_MD, hindsight_markdown(results))
    return out / TABLE_MD
