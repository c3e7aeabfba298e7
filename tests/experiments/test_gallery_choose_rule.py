"""Choosing the gallery's threshold rule: counts per candidate that add up, and the decision rule as written."""

import numpy as np
from support import write_embeddings_npz

from experiments.faces import identification
from experiments.gallery import choose_rule, many_classes

LAYOUT = {"enrolled": 12, "photos": 3, "strangers": 4, "splits": 2}


def _cell(accepted: dict, named: dict) -> dict:
    return {rule: {"strangers_accepted": {"rate": accepted[rule]}, "known_named_right": {"rate": named[rule]}}
            for rule in accepted}


def test_the_decision_takes_the_most_named_among_those_within_the_limit_in_every_cell():
    cells = {"a": _cell({"x": 0.005, "y": 0.002, "z": 0.03}, {"x": 0.9, "y": 0.6, "z": 0.99}),
             "b": _cell({"x": 0.02, "y": 0.008, "z": 0.0}, {"x": 0.9, "y": 0.7, "z": 0.99})}
    decision = choose_rule.decide(cells, candidates=("x", "y", "z"))
    assert decision["chosen"] == "y" and decision["worst_cell_strangers_accepted"]["x"] == 0.02
    # None within 1% everywhere: the lowest worst-cell acceptance, ties to the earlier candidate.
    cells["b"]["y"]["strangers_accepted"]["rate"] = 0.02
    assert choose_rule.decide(cells, candidates=("x", "y", "z"))["chosen"] == "x"
    assert "none stayed within" in choose_rule.decide(cells, candidates=("x", "y", "z"))["why"]


def test_the_many_class_counts_match_the_probe_for_the_default_rule(tmp_path):
    npz = write_embeddings_npz(tmp_path / "keys.npz", n_classes=20, per_class=8, dim=64, spread=1.5)
    data = np.load(npz)
    embeddings, labels = data["embeddings"], data["labels"].astype(str)
    for store_all in (False, True):
        counts = choose_rule.many_class_counts(embeddings, labels, store_all, LAYOUT)
        probe = many_classes.probe(embeddings, labels, store_all, LAYOUT)
        default = counts[identification.DEFAULT_RULE]      # what the gallery, and so the probe, uses
        assert default["strangers_accepted"]["count"] == probe["strangers_accepted"]
        assert default["known_named_right"]["count"] == probe["named_right"]
        assert all(c["strangers_accepted"]["total"] == 2 * 4 * 8 for c in counts.values())
