"""The gallery on the celebrity set: every split of the 5 people into enrolled and strangers.

    python -m experiments.gallery.demo docs/results/gallery       (make gallery-results)

For every split of the five people into 2-4 enrolled and the rest strangers, and for the
Kaiser memory and store-all, a gallery is enrolled from the enrolled people's train photos
and calibrated at FPIR 0.001 (experiments.faces.identification). Then:

- choosing (train photos only): the strangers' train photos are searched at the threshold
  each rule of identification.RULES would set; with the leave-one-out FNIR, this is half of
  what the rule was chosen on (the other half: experiments.gallery.choose_rule on Omniglot
  validation keys; docs/lab/2026-12-gallery-thresholds.md, written before any measurement);
- reporting (val photos only, the chosen rule, which the gallery uses): every val photo of
  the five is identified; enrolled people's photos must be named right, strangers' rejected.
  The low-resolution shift (celebrities_lowres) is reported the same way.

Writes results.json (counts and Clopper-Pearson intervals), answers.csv (every reported
search), summary.md, and the `kshot calibrate` numbers of all five train photos with their
ROC figure. Embeddings come from the FaceNet cache (experiments.faces.embedder). Same data,
same numbers.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.faces import identification
from experiments.faces.datasets import load_image_dataset
from experiments.faces.embedder import FaceEmbedder
from experiments.gallery.gallery import CALIBRATION_PER_NAME, DEFAULT_MEMORY_SIZE, UNKNOWN, Gallery
from experiments.gallery.pictures import write_calibration_figure
from kshot_io import write_text_atomic

SETS = ("celebrities", "celebrities_lowres")   # the first one's train photos are one of the rule's two choosing sets
KINDS = {"kaiser": False, "store_all": True}
# Every threshold rule tried, in the order tried (docs/lab/2026-12-gallery-thresholds.md): (rule, photo-pair floor).
VARIANTS = {"sample": ("sample", False), "tail": ("tail", False), "max": ("max", False),
            "pairs": ("pairs", False), "max + pair floor": ("max", True), "pairs + pair floor": ("pairs", True),
            "pairs_t + pair floor": ("pairs_t", True), "extreme + pair floor": ("extreme", True),
            "pairs_t+extreme + pair floor": ("pairs_t+extreme", True)}


def embedded_splits(name: str, embedder) -> dict:
    """{"train"|"val": (embeddings, names, paths)} of a built-in set; photos without a face are left out."""
    data = load_image_dataset(name)
    out = {}
    for part in ("train", "val"):
        paths = [str(p) for p, s in zip(data.paths, data.split) if s == part]
        truth = dict(zip(map(str, data.paths), data.labels))
        result = embedder.embed(paths, aligned=bool(data.aligned))
        kept = list(result.kept_paths)
        out[part] = (np.asarray(result.embeddings, np.float32), np.array([truth[p] for p in kept]), kept)
    return out


def splits(people: list[str]) -> list[tuple[str, ...]]:
    """Every enrolled set of 2 .. len(people) - 1 people (calibration needs two; one stranger at least)."""
    return [combo for size in range(2, len(people)) for combo in itertools.combinations(people, size)]


def enrolled_gallery(embedder, store_all: bool, embeddings, names, enrolled) -> Gallery:
    gallery = Gallery(embedder, store_all=store_all)
    keep = np.isin(names, enrolled)
    gallery.enroll_embeddings(embeddings[keep], list(names[keep]))
    return gallery


def rate(count: int, total: int) -> dict:
    """A count, its share, and the two-sided 95% Clopper-Pearson interval (inside [0, 1])."""
    low, high = identification.clopper_pearson(count, total)
    return {"count": int(count), "total": int(total), "rate": count / total if total else float("nan"),
            "ci_low": low, "ci_high": high}


def choose(embedder, train: tuple, variants: dict = VARIANTS) -> dict:
    """Per memory and rule: strangers' train photos accepted, and the leave-one-out mated searches named right."""
    emb, names, _ = train
    out = {}
    for kind, store_all in KINDS.items():
        counts = {variant: [0, 0, 0, 0] for variant in variants}
        for enrolled in splits(sorted(set(names))):
            gallery = enrolled_gallery(embedder, store_all, emb, names, enrolled)
            strangers = ~np.isin(names, enrolled)
            for variant, (rule, floor) in variants.items():
                c = identification.calibrate(*gallery.calibration_sample(), *gallery.entries(), gallery.fpir,
                                             keys_are_photos=store_all, rule=rule, pair_floor=floor)
                rows = gallery.identify_embeddings(emb[strangers], threshold=c.threshold)
                counts[variant][0] += sum(r.answer != UNKNOWN for r in rows)
                counts[variant][1] += len(rows)
                counts[variant][2] += int(round((1 - c.fnir_at_fpir[str(gallery.fpir)]) * c.mated_searches))
                counts[variant][3] += c.mated_searches
        out[kind] = {variant: {"strangers_accepted": rate(a, n), "loo_named_right": rate(r, m)}
                     for variant, (a, n, r, m) in counts.items()}
    return out


def report(embedder, data: dict, set_name: str) -> tuple[dict, list[dict]]:
    """Per memory: val photos of enrolled people named right, strangers' val photos accepted, by gallery size."""
    train_emb, train_names, _ = data["train"]
    val_emb, val_names, val_paths = data["val"]
    out, answers = {}, []
    for kind, store_all in KINDS.items():
        tally: dict[int, list[int]] = {}
        unresolved, thresholds = 0, []
        for enrolled in splits(sorted(set(train_names))):
            gallery = enrolled_gallery(embedder, store_all, train_emb, train_names, enrolled)
            unresolved += not gallery.calibration.resolved
            thresholds.append(gallery.threshold)
            rows = gallery.identify_embeddings(val_emb, paths=val_paths)
            t = tally.setdefault(len(enrolled), [0] * 5)
            for row, truth in zip(rows, val_names):
                if truth in enrolled:
                    t[0] += row.answer == truth
                    t[1] += row.answer not in (truth, UNKNOWN)
                    t[2] += 1
                else:
                    t[3] += row.answer != UNKNOWN
                    t[4] += 1
                answers.append({"set": set_name, "memory": kind, "enrolled": "+".join(enrolled), "path": row.path,
                                "truth": truth, "stranger": truth not in enrolled, "answer": row.answer,
                                "similarity": row.similarity, "threshold": gallery.threshold})
        total = np.sum(list(tally.values()), axis=0)
        out[kind] = {
            "named_right": rate(total[0], total[2]), "misnamed": int(total[1]),
            "strangers_accepted": rate(total[3], total[4]),
            "by_gallery_size": {str(size): {"named_right": rate(t[0], t[2]), "strangers_accepted": rate(t[3], t[4])}
                                for size, t in sorted(tally.items())},
            "galleries": len(thresholds), "unresolved_calibrations": int(unresolved),
            "median_threshold": float(np.median(thresholds)),
        }
    return out, answers


def run(out_dir: Path) -> dict:
    embedder = FaceEmbedder()
    data = {name: embedded_splits(name, embedder) for name in SETS}
    results = {"fpir": identification.DEFAULT_FPIR, "rule": f"{identification.DEFAULT_RULE} + pair floor",
               "rules_tried": list(VARIANTS),
               "memory_size": DEFAULT_MEMORY_SIZE, "calibration_per_name": CALIBRATION_PER_NAME,
               "people": sorted(set(data[SETS[0]]["train"][1])), "splits": len(splits(sorted(set(data[SETS[0]]["train"][1])))),
               "choosing": choose(embedder, data[SETS[0]]["train"]), "report": {}}
    answers = []
    for name in SETS:
        results["report"][name], rows = report(embedder, data[name], name)
        answers += rows
    emb, names, _ = data[SETS[0]]["train"]
    everyone = enrolled_gallery(embedder, True, emb, names, sorted(set(names)))
    results["calibration_all5_train"] = everyone.calibration.to_dict()
    write_calibration_figure(everyone, out_dir / "scores_train_all5")
    write_text_atomic(out_dir / "answers.csv", pd.DataFrame(answers).to_csv(index=False, float_format="%.6f"))
    write_text_atomic(out_dir / "results.json", json.dumps(results, indent=2) + "\n")
    write_text_atomic(out_dir / "summary.md", summary_text(results, everyone.calibration))
    return results


def _pct(r: dict) -> str:
    return f"{r['count']}/{r['total']} = {100 * r['rate']:.1f}% [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]"


def summary_text(results: dict, calibration) -> str:
    lines = ["# Gallery thresholds at FPIR 0.001 on the celebrity set", "",
             f"{results['splits']} splits of {len(results['people'])} people into enrolled (2-4) and strangers; "
             "docs/lab/2026-12-gallery-thresholds.md says which photos chose the rule (train) and which only report (val).", "",
             "## Choosing (train photos): strangers accepted / leave-one-out known named right", "",
             "| memory | rule | strangers accepted | known named right (leave one out) |", "|---|---|---|---|"]
    for kind, rules in results["choosing"].items():
        for rule, r in rules.items():
            lines.append(f"| {kind} | {rule} | {_pct(r['strangers_accepted'])} | {_pct(r['loo_named_right'])} |")
    lines += ["", f"## Reporting (val photos), rule `{results['rule']}`", "",
              "| set | memory | known named right | misnamed | strangers accepted | median threshold |",
              "|---|---|---|---:|---|---:|"]
    for name, kinds in results["report"].items():
        for kind, r in kinds.items():
            lines.append(f"| {name} | {kind} | {_pct(r['named_right'])} | {r['misnamed']} | "
                         f"{_pct(r['strangers_accepted'])} | {r['median_threshold']:.4f} |")
    lines += ["", "`kshot calibrate` on the train photos of all five (store-all):", ""]
    lines += [f"- {line}" for line in calibration.lines()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/gallery_demo")
    run(out)
    print((out / "summary.md").read_text(encoding="utf-8"))
