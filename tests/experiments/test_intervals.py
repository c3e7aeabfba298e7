"""Accuracy intervals stay in [0, 1] and keep a width; paired comparisons need real evidence."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.core.metrics import (
    accuracy_interval,
    paired_difference,
    wilson_interval,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 40)), min_size=1, max_size=12))
def test_accuracy_interval_is_inside_0_1_and_contains_the_mean(pairs):
    n_eval = np.array([t for _, t in pairs])
    n_correct = np.minimum(np.array([c for c, _ in pairs]), n_eval)
    mean, low, high = accuracy_interval(n_correct, n_eval)
    assert 0.0 <= low <= mean <= high <= 1.0


def test_identical_repeats_do_not_collapse_to_zero_width():
    mean, low, high = accuracy_interval([24, 24, 24], [25, 25, 25])
    assert mean == 0.96
    assert low < 0.9 and high > 0.98  # the Wilson floor of 72/75
    assert (low, high) == wilson_interval(72, 75)


def test_many_varied_repeats_are_driven_by_the_bootstrap_and_are_reproducible():
    rng = np.random.default_rng(0)
    n_eval = np.full(200, 100)
    n_correct = rng.binomial(100, rng.uniform(0.6, 0.9, size=200))
    first = accuracy_interval(n_correct, n_eval)
    assert first == accuracy_interval(n_correct, n_eval)
    accuracy = n_correct / n_eval
    t_width = 2 * 1.972 * accuracy.std(ddof=1) / np.sqrt(accuracy.size)  # Student t, 199 df
    wilson_low, wilson_high = wilson_interval(int(n_correct.sum()), int(n_eval.sum()))
    assert first.high - first.low > wilson_high - wilson_low
    assert abs((first.high - first.low) / t_width - 1) < 0.15


def test_a_consistent_paired_gain_over_many_repeats_is_resolved():
    rng = np.random.default_rng(1)
    reference = rng.uniform(0.5, 0.9, size=60)
    model = reference + 0.02 + rng.normal(0, 0.01, size=60)
    result = paired_difference(model, reference)
    assert result.resolved and result.low > 0 and result.p_value < 0.001
    assert -1.0 <= result.low <= result.mean <= result.high <= 1.0


def test_a_few_repeats_or_a_noisy_difference_are_within_noise():
    assert not paired_difference([0.99, 0.98, 0.99], [0.97, 0.96, 0.97]).resolved  # 3 repeats: p >= 0.25
    rng = np.random.default_rng(2)
    reference = rng.uniform(0.5, 0.9, size=60)
    noisy = reference + rng.normal(0, 0.05, size=60) - np.mean(rng.normal(0, 0.05, size=60))
    result = paired_difference(noisy, reference)
    assert result.low < 0 < result.high and not result.resolved


def test_identical_models_have_a_zero_difference_and_p_of_one():
    result = paired_difference([0.5, 0.7, 0.9], [0.5, 0.7, 0.9])
    assert result.mean == 0.0 and result.p_value == 1.0 and not result.resolved
