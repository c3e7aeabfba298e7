"""The many-class probe of the gallery's FPIR: counts that add up, and a rate that tells separable from not."""

import json

import numpy as np
import pytest
from support import write_embeddings_npz

from experiments.gallery import many_classes

LAYOUT = {"enrolled": 12, "photos": 3, "strangers": 4, "splits": 2}


def _run(tmp_path, spread):
    npz = write_embeddings_npz(tmp_path / "keys.npz", n_classes=20, per_class=8, dim=64, spread=spread)
    data = np.load(npz)
    return {kind: many_classes.probe(data["embeddings"], data["labels"].astype(str), store_all, LAYOUT)
            for kind, store_all in (("kaiser", False), ("store_all", True))}


def test_every_search_is_counted_once_per_split(tmp_path):
    for tally in _run(tmp_path, spread=0.3).values():
        assert tally["known"] == 2 * 12 * (8 - 3) and tally["strangers"] == 2 * 4 * 8
        assert tally["named_right"] + tally["misnamed"] <= tally["known"]
        low, high = tally["strangers_accepted_ci"]
        assert 0.0 <= low <= tally["strangers_accepted"] / tally["strangers"] <= high <= 1.0


def test_separable_classes_name_the_known_and_reject_strangers_while_overlapping_ones_cannot(tmp_path):
    separable, overlapping = _run(tmp_path, spread=0.3), _run(tmp_path, spread=3.0)
    for kind in ("kaiser", "store_all"):
        assert separable[kind]["named_right"] / separable[kind]["known"] > 0.9
        assert separable[kind]["strangers_accepted"] == 0
        assert overlapping[kind]["named_right"] / overlapping[kind]["known"] < 0.5


def test_the_probe_writes_its_counts_and_refuses_too_few_classes(tmp_path):
    npz = write_embeddings_npz(tmp_path / "keys.npz", n_classes=45, per_class=8, dim=32, spread=0.3)
    result = many_classes.run(npz, tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text())["kaiser"]["known"] == result["kaiser"]["known"] == 10 * 30 * (8 - 5)
    few = write_embeddings_npz(tmp_path / "few.npz", n_classes=10, per_class=8, dim=16)
    with pytest.raises(ValueError, match="needs 40 classes, the file has 10"):
        many_classes.run(few, tmp_path / "few.json")
