import numpy as np
import pandas as pd
import pytest

from experiments.core.metrics import paired_differences
from experiments.faces.analysis import (
    describe_comparison,
    describe_run,
    top_confused_pairs,
)


def results_of(accuracy_by_model: dict[str, list[list[float]]]) -> pd.DataFrame:
    """A results.csv-like frame: accuracy_by_model[model][repeat][shots]."""
    rows = []
    for model, repeats in accuracy_by_model.items():
        for repeat, by_shot in enumerate(repeats):
            for shots, accuracy in enumerate(by_shot):
                rows.append({"model": model, "repeat": repeat, "shots": shots, "accuracy": accuracy})
    return pd.DataFrame(rows)


def test_paired_verdicts_follow_the_per_repeat_differences_not_overlapping_cis():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.9, size=(40, 2))
    results = results_of({
        "baseline": base.tolist(),
        # +2 points in every repeat at shot 0: the unpaired CIs would overlap, the pairs do not
        "memory": np.stack([base[:, 0] + 0.02, base[:, 1] + rng.normal(0, 0.03, 40)], axis=1).tolist(),
    })
    paired = paired_differences(results, reference="baseline")
    assert paired["verdict"].tolist() == ["wins", "within noise"]
    assert paired["repeats"].tolist() == [40, 40]
    assert ((paired["ci_low"] >= -1) & (paired["ci_high"] <= 1)).all()
    text = describe_comparison(paired, "memory").splitlines()
    assert text[0].startswith("At 0 shots memory leads baseline by 2.0 points (paired difference +2.0 points")
    assert text[0].endswith("a resolved difference.")
    assert text[1].endswith("within noise.")


def test_three_repeats_never_give_a_verdict():
    results = results_of({"baseline": [[0.5], [0.6], [0.7]], "a": [[0.9], [0.95], [0.99]]})
    paired = paired_differences(results)
    assert paired["verdict"].tolist() == ["within noise"] and paired["p_value"].iloc[0] >= 0.25


def test_models_pair_only_on_the_repeats_and_shots_both_ran():
    results = results_of({"baseline": [[0.5, 0.6, 0.7]] * 6, "finetuned": [[0.5, 0.6]] * 3})
    paired = paired_differences(results)
    assert paired["shots"].tolist() == [0, 1] and paired["repeats"].tolist() == [3, 3]


def test_top_confused_pairs_sums_repeats_and_ranks_off_diagonal():
    names = ["gollum", "smeagol", "frodo"]
    confusion = np.zeros((2, 2, 3, 3), dtype=np.int64)
    # iteration 0: gollum -> smeagol 3 times over both repeats, frodo -> gollum once
    confusion[0, 0] = [[1, 2, 0], [0, 3, 0], [1, 0, 2]]
    confusion[1, 0] = [[2, 1, 0], [0, 3, 0], [0, 0, 3]]
    # iteration 1: perfect
    confusion[:, 1] = np.diag([3, 3, 3])
    pairs = top_confused_pairs(confusion, names, top=2)
    assert pairs.to_dict("records") == [
        {"iteration": 0, "true": "gollum", "predicted": "smeagol", "count": 3, "rate_of_true": 0.5},
        {"iteration": 0, "true": "frodo", "predicted": "gollum", "count": 1, "rate_of_true": 1 / 6},
    ]


def test_top_confused_pairs_checks_shapes():
    with pytest.raises(ValueError, match="2 class names"):
        top_confused_pairs(np.zeros((1, 1, 3, 3)), ["a", "b"])


def test_describe_run_compares_every_model_with_the_reference():
    results = results_of({"baseline": [[0.9]] * 8, "memory": [[0.9]] * 8, "memory_finetune_phase_on": [[0.7]] * 8})
    text = describe_run(paired_differences(results))
    assert "memory against baseline:\nAt 0 shots memory and baseline give the same accuracy in every repeat." in text
    assert "At 0 shots baseline leads memory_finetune_phase_on by 20.0 points" in text
    assert text.count("a resolved difference") == 1


def test_describe_run_without_a_reference_says_so():
    assert "No model can be compared" in describe_run(paired_differences(results_of({"memory": [[0.9]]}), reference="baseline"))
