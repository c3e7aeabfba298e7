"""The k-shot metrics shared by both experiments: shots seen, accuracy by shot, the t-interval."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.core.metrics import accuracy_by_shot, interval, mean_ci, shots_seen


def test_shots_seen_counts_earlier_occurrences_per_sequence():
    np.testing.assert_array_equal(shots_seen(np.array([3, 1, 3, 3, 1])), [0, 0, 1, 2, 1])
    two = np.array([[0, 5], [0, 5], [1, 6], [0, 5]])
    np.testing.assert_array_equal(shots_seen(two), [[0, 0], [1, 1], [0, 0], [2, 2]])
    with pytest.raises(ValueError, match="must be"):
        shots_seen(np.zeros((2, 2, 2)))


def test_accuracy_by_shot_groups_items_by_earlier_showings():
    labels = np.array([3, 1, 3, 3, 1])  # shots 0, 0, 1, 2, 1
    correct = np.array([False, True, True, False, True])
    assert accuracy_by_shot(correct, shots_seen(labels), 3) == [0.5, 1.0, 0.0, None]


def test_mean_ci_is_the_student_t_interval():
    values = np.array([0.8, 0.9, 0.85, 0.95, 1.0])
    mean, low, high = mean_ci(values)
    expected = scipy_stats.t.interval(0.95, df=4, loc=values.mean(), scale=scipy_stats.sem(values))
    assert mean == values.mean() and np.allclose([low, high], expected)
    assert mean_ci([1.0, 1.0]) == (1.0, 1.0, 1.0)
    assert np.isnan(mean_ci([0.5])[1])
    assert interval([1.0, 1.0])["half_width"] == 0.0
