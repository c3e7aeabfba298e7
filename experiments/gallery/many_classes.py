"""A report-only probe of the gallery's FPIR promise with many look-alike identities.

Five celebrities cannot show whether the threshold keeps its FPIR with many people
(experiments.gallery.demo). This probe takes any `kshot embed`-style npz with many
classes, for instance the shipped Omniglot checkpoint's keys of the development split's
test alphabets (`kshot omniglot embed --checkpoint experiments/episodic/shipped --out
keys.npz`), and lays each split out as an enrolled gallery would be used: `enrolled`
classes enrolled with `photos` items each, their other items searched as known
identities, all items of `strangers` other classes searched as strangers. Nothing is
chosen on it: the gallery's default rule and FPIR are used as they are.

    python -m experiments.gallery.many_classes keys.npz docs/results/gallery/many_classes_omniglot.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from experiments.faces import identification
from experiments.gallery.gallery import UNKNOWN, Gallery
from kshot_io import write_text_atomic
from kshot_io.npz import read_npz

LAYOUT = {"enrolled": 30, "photos": 5, "strangers": 10, "splits": 10}


def split_rows(labels: np.ndarray, rng: np.random.Generator, enrolled: int, photos: int, strangers: int):
    """(enrolled rows, known rows, stranger rows) of one split, drawn from `rng`."""
    classes = rng.permutation(np.unique(labels))
    if len(classes) < enrolled + strangers:
        raise ValueError(f"the probe needs {enrolled + strangers} classes, the file has {len(classes)}")
    enroll, known = [], []
    for name in classes[:enrolled]:
        rows = rng.permutation(np.flatnonzero(labels == name))
        enroll += list(rows[:photos])
        known += list(rows[photos:])
    return np.array(enroll), np.array(known), np.flatnonzero(np.isin(labels, classes[enrolled:enrolled + strangers]))


def probe(embeddings: np.ndarray, labels: np.ndarray, store_all: bool, layout: dict = LAYOUT) -> dict:
    """Pooled counts over the splits: known items named right or misnamed, strangers accepted."""
    identity = {"embedding_size": int(embeddings.shape[1]), "weights": "probe"}
    tally = {"known": 0, "named_right": 0, "misnamed": 0, "strangers": 0, "strangers_accepted": 0}
    for split in range(layout["splits"]):
        enroll, known, strangers = split_rows(labels, np.random.default_rng(split), layout["enrolled"],
                                              layout["photos"], layout["strangers"])
        gallery = Gallery(identity=identity, store_all=store_all)
        gallery.enroll_embeddings(embeddings[enroll], list(labels[enroll]))
        answers = [row.answer for row in gallery.identify_embeddings(embeddings[known])]
        tally["known"] += len(known)
        tally["named_right"] += int(np.sum(np.array(answers) == labels[known]))
        tally["misnamed"] += sum(a not in (UNKNOWN, truth) for a, truth in zip(answers, labels[known]))
        tally["strangers"] += len(strangers)
        tally["strangers_accepted"] += sum(row.answer != UNKNOWN for row in gallery.identify_embeddings(
            embeddings[strangers]))
    for count, total in (("named_right", "known"), ("strangers_accepted", "strangers")):
        tally[count + "_ci"] = list(identification.clopper_pearson(tally[count], tally[total]))
    return tally


def run(npz: Path, out: Path) -> dict:
    data = read_npz(npz, "embeddings npz", "make one with `kshot embed` or `kshot omniglot embed`")
    embeddings, labels = data["embeddings"].astype(np.float32), data["labels"].astype(str)
    result = {"source": npz.name, "layout": LAYOUT, "fpir": identification.DEFAULT_FPIR,
              "kaiser": probe(embeddings, labels, store_all=False), "store_all": probe(embeddings, labels, store_all=True)}
    write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]), Path(sys.argv[2])), indent=2))
