import numpy as np
import pandas as pd
import pytest

from experiments.analysis import compare_models, describe_comparison, describe_run, top_confused_pairs


def summary_of(rows):
    return pd.DataFrame(rows, columns=["model", "shots", "mean", "ci_low", "ci_high"])


def test_compare_models_reports_difference_and_overlap():
    summary = summary_of(
        [
            ("memory", 1, 0.90, 0.88, 0.92),
            ("baseline", 1, 0.80, 0.78, 0.82),
            ("memory", 2, 0.95, 0.93, 0.97),
            ("baseline", 2, 0.94, 0.92, 0.96),
            ("memory", 3, 0.96, 0.94, 0.98),  # baseline never reached 3 shots
        ]
    )
    table = compare_models(summary, "memory", "baseline")
    assert list(table["shots"]) == [1, 2]
    assert table["difference"].tolist() == pytest.approx([0.10, 0.01])
    assert table["cis_overlap"].tolist() == [False, True]


def test_describe_comparison_says_who_leads_and_whether_it_is_noise():
    summary = summary_of(
        [
            ("memory", 1, 0.80, 0.78, 0.82),
            ("baseline", 1, 0.90, 0.88, 0.92),
            ("memory", 2, 0.95, 0.93, 0.97),
            ("baseline", 2, 0.94, 0.92, 0.96),
        ]
    )
    text = describe_comparison(summary, "memory", "baseline").splitlines()
    assert text[0] == "At 1 shots baseline leads memory by 10.0 points, and the 95% CIs do not overlap."
    assert text[1] == "At 2 shots memory leads baseline by 1.0 points, but the 95% CIs overlap, so this is within noise."


def test_describe_comparison_without_interval_says_so():
    summary = summary_of([("a", 1, 0.5, np.nan, np.nan), ("b", 1, 0.4, np.nan, np.nan)])
    assert "too few repeats" in describe_comparison(summary, "a", "b")


def test_a_zero_width_interval_from_three_repeats_gives_no_verdict():
    summary = pd.DataFrame(
        [("a", 3, 0.990, 0.990, 0.990, 3), ("b", 3, 0.987, 0.986, 0.988, 200)],
        columns=["model", "shots", "mean", "ci_low", "ci_high", "repeats"],
    )
    assert compare_models(summary, "a", "b")["cis_overlap"].tolist() == [None]
    assert "too few repeats for a CI verdict" in describe_comparison(summary, "a", "b")


def test_compare_unknown_model_is_named():
    summary = summary_of([("a", 1, 0.5, 0.4, 0.6)])
    with pytest.raises(ValueError, match="'nope'"):
        compare_models(summary, "a", "nope")


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
    summary = summary_of(
        [
            ("baseline", 1, 0.90, 0.88, 0.92),
            ("memory", 1, 0.90, 0.88, 0.92),
            ("memory_finetune_phase_on", 1, 0.70, 0.60, 0.80),
        ]
    )
    text = describe_run(summary)
    assert "memory against baseline:\nAt 1 shots memory and baseline score the same." in text
    assert "At 1 shots baseline leads memory_finetune_phase_on by 20.0 points, and the 95% CIs do not overlap." in text


def test_describe_run_without_the_reference_uses_the_first_model():
    summary = summary_of([("memory", 1, 0.9, 0.8, 1.0), ("other", 1, 0.5, 0.4, 0.6)])
    assert describe_run(summary).startswith("other against memory:")
