"""views.rivals_table: the reweighting to another mix of same-alphabet rivals, on hand-made rows."""

from __future__ import annotations

import pytest

from experiments.episodic.views import rivals_table


def rows(alphabet: str, rivals: int, answers: int, right: int) -> dict:
    return {"readout": "memory", "ways": 3, "shots": 1, "alphabet": alphabet, "rivals": rivals,
            "answers": answers, "right": right, "mean": right / answers}


RESULTS = {"by_rivals": [rows("A", 0, 10, 10), rows("A", 1, 10, 5), rows("B", 0, 20, 10),
                         {**rows("A", 0, 99, 0), "readout": "1-NN"}]}  # another readout: ignored


def test_the_estimate_reweights_within_each_alphabet_and_pools_alphabets_by_their_share():
    table, summary = rivals_table(RESULTS, ways=3, p_same=0.5)
    # Pooled over alphabets: 0 rivals 20 of 30 right, 1 rival 5 of 10.
    assert table["answers"].tolist() == [30, 10]
    assert table["accuracy (%)"].tolist() == pytest.approx([66.7, 50.0])
    # Binomial(2, 0.5) gives 0 and 1 rivals weights 1/4 and 1/2, renormalised to 1/3 and 2/3:
    # A = 1/3 * 1.0 + 2/3 * 0.5; B has only 0 rivals: 0.5. Each alphabet holds half the answers.
    assert summary["estimate"] == pytest.approx(0.5 * (1 / 3 + 2 / 3 * 0.5) + 0.5 * 0.5)
    assert 0.0 <= summary["ci_low"] < summary["estimate"] < summary["ci_high"] <= 1.0


def test_with_no_rivals_expected_the_estimate_is_each_alphabets_rival_free_accuracy():
    _, summary = rivals_table(RESULTS, ways=3, p_same=1e-9)
    assert summary["estimate"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)


def test_a_file_without_the_breakdown_gives_none():
    assert rivals_table({"nway": []}) is None
    assert rivals_table(RESULTS, ways=20) is None


@pytest.mark.parametrize("classes, described", [
    (2852, "2852 classes with their rotations"),
    (5704, "5704 classes with their rotations and mirror images"),
    (1426, "1426 classes with their mirror images"),
    (713, "713 classes"),
])
def test_the_eval_heading_names_only_the_copies_the_run_trained_on(classes, described):
    from experiments.episodic.evaluation.evaluate import _train_classes_described

    assert _train_classes_described({"train_classes": classes, "train_characters": 713}) == described
