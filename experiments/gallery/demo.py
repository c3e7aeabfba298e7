"""The gallery on the celebrity set: enroll three people, identify everyone, count.

    python -m experiments.gallery.demo docs/results/gallery

Enrolls the train photos of the first three celebrities (sorted by name) into a
gallery (Kaiser memory, and store-all), identifies the val photos of all five at the
gallery's calibrated threshold, and writes: answers_<memory>.csv, the accuracy on
the three enrolled (a rejected or misnamed photo counts as wrong) and the rejection
rate on the two strangers, in summary.md; then calibrates on the train photos of
all five (`kshot calibrate` numbers) with its ROC figure. Same data, same numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from experiments.faces.datasets import load_image_dataset
from experiments.faces.embedder import FaceEmbedder
from experiments.faces.open_set import DEFAULT_FAR, plot_roc
from experiments.gallery.gallery import UNKNOWN, Gallery, identifications_frame
from kshot_io import write_text_atomic

ENROLLED_PEOPLE = 3


def score(rows, truth: dict[str, str], enrolled: set[str]) -> dict:
    """Accuracy on enrolled people's photos, rejection rate on strangers' (skipped photos left out)."""
    known = [r for r in rows if not r.skipped and truth[r.path] in enrolled]
    strangers = [r for r in rows if not r.skipped and truth[r.path] not in enrolled]
    return {
        "known_photos": len(known),
        "known_accuracy": float(np.mean([r.answer == truth[r.path] for r in known])),
        "known_misnamed": sum(r.answer not in (truth[r.path], UNKNOWN) for r in known),
        "known_rejected": sum(r.answer == UNKNOWN for r in known),
        "stranger_photos": len(strangers),
        "stranger_rejection": float(np.mean([r.answer == UNKNOWN for r in strangers])),
        "skipped": sum(r.skipped for r in rows),
    }


def run(out_dir: Path, far: float = DEFAULT_FAR) -> dict:
    data = load_image_dataset("celebrities")
    people = sorted(set(data.labels))
    enrolled = set(people[:ENROLLED_PEOPLE])
    embedder = FaceEmbedder()
    train = [(str(p), l) for p, l, s in zip(data.paths, data.labels, data.split) if s == "train"]
    val = [(str(p), l) for p, l, s in zip(data.paths, data.labels, data.split) if s == "val"]
    truth = dict(val)
    results = {"far": far, "enrolled": sorted(enrolled), "strangers": sorted(set(people) - enrolled)}
    for kind, store_all in (("kaiser", False), ("store_all", True)):
        gallery = Gallery(embedder, store_all=store_all, far=far)
        report = gallery.enroll([p for p, l in train if l in enrolled], names=[l for p, l in train if l in enrolled])
        rows = gallery.identify([p for p, _ in val])
        write_text_atomic(out_dir / f"answers_{kind}.csv",
                          identifications_frame(rows).to_csv(index=False, float_format="%.6f"))
        results[kind] = {**score(rows, truth, enrolled), "threshold": gallery.threshold,
                         "slots_in_use": gallery.memory.slots_in_use(),
                         "enroll_skipped": len(report.skipped)}

    everyone = Gallery(embedder, store_all=True, far=far)
    everyone.enroll([p for p, _ in train], names=[l for _, l in train])
    calibration = everyone.calibration
    plot_roc(*everyone.calibration_pairs(), calibration, out_dir / "roc_train_all5")
    results["calibration_all5_train"] = calibration.to_dict()
    write_text_atomic(out_dir / "results.json", json.dumps(results, indent=2) + "\n")
    write_text_atomic(out_dir / "summary.md", summary_text(results, calibration))
    return results


def summary_text(results: dict, calibration) -> str:
    lines = [
        "# Gallery on the celebrity set",
        "",
        f"Enrolled (train photos): {', '.join(results['enrolled'])}. Strangers: {', '.join(results['strangers'])}.",
        f"Identified: every val photo of all five, at the threshold calibrated on the enrolled photos "
        f"(target FAR {results['far']:g}).",
        "",
        "| memory | slots in use | threshold | accuracy on enrolled | misnamed | rejected | stranger rejection |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in ("kaiser", "store_all"):
        r = results[kind]
        lines.append(f"| {kind} | {r['slots_in_use']} | {r['threshold']:.4f} | {r['known_accuracy']:.3f} "
                     f"({r['known_photos']} photos) | {r['known_misnamed']} | {r['known_rejected']} | "
                     f"{r['stranger_rejection']:.3f} ({r['stranger_photos']} photos) |")
    lines += ["", "Calibration on the train photos of all five (`kshot calibrate` numbers, at most "
              "20 photos per person):", ""]
    lines += [f"- {line}" for line in calibration.lines()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/gallery_demo")
    run(out)
    print((out / "summary.md").read_text(encoding="utf-8"))
