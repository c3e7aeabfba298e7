"""The k-shot protocol: one definition of k, the blog's iteration schedule, and its limits."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.core import metrics
from experiments.faces import protocol


def test_k_is_the_number_of_earlier_images_of_the_class_as_metrics_defines_it():
    """Every evaluation at k shots comes after exactly k fed images of the evaluated class (metrics.shots_seen)."""
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    shuffled = protocol.shuffle_classes(protocol.class_members(labels, 2), np.random.default_rng(0))
    fed: list[int] = []
    for it in protocol.schedule(shuffled, max_shots=3, feed_rng=None):
        fed += it.feed.tolist()
        stream = labels[np.concatenate([fed, it.evaluate[:1]]).astype(np.int64)]
        assert metrics.shots_seen(stream)[-1] == it.shots


def test_blog_schedule_on_a_hand_worked_case():
    shuffled = [np.array([4, 0, 2]), np.array([7, 5, 6, 3])]
    its = protocol.schedule(shuffled, max_shots=5, feed_rng=None)
    # class 0 has 3 images, so 2 shots at most (one image must stay to evaluate)
    assert [it.shots for it in its] == [0, 1, 2]
    assert its[0].feed.size == 0
    assert its[0].evaluate.tolist() == [0, 2, 3, 4, 5, 6, 7]
    assert its[1].feed.tolist() == [4, 7]
    assert its[1].evaluate.tolist() == [0, 2, 3, 5, 6]
    assert its[2].feed.tolist() == [0, 5]
    assert its[2].evaluate.tolist() == [2, 3, 6]


def test_schedule_stops_at_max_shots():
    shuffled = [np.arange(10), np.arange(10, 20)]
    assert [it.shots for it in protocol.schedule(shuffled, max_shots=3, feed_rng=None)] == [0, 1, 2, 3]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=2, max_value=9), min_size=2, max_size=6),
    max_shots=st.integers(min_value=1, max_value=10),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_schedule_invariants(sizes, max_shots, seed):
    labels = np.repeat(np.arange(len(sizes)), sizes)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(labels)
    members = protocol.class_members(labels, len(sizes))
    shuffled = protocol.shuffle_classes(members, np.random.default_rng(seed))
    its = protocol.schedule(shuffled, max_shots, feed_rng=np.random.default_rng(seed))
    assert len(its) - 1 == min(max_shots, min(sizes) - 1)
    fed = set()
    for i, it in enumerate(its):
        assert it.shots == i
        # one image of every class per iteration, never fed twice
        assert sorted(labels[it.feed].tolist()) == (list(range(len(sizes))) if i else [])
        assert fed.isdisjoint(it.feed.tolist())
        fed.update(it.feed.tolist())
        # evaluate exactly what has not been fed, and every class keeps an image
        assert set(it.evaluate.tolist()) == set(range(labels.size)) - fed
        assert set(labels[it.evaluate].tolist()) == set(range(len(sizes)))


def test_shuffle_is_a_permutation_per_class_and_seeded():
    members = [np.arange(0, 6), np.arange(6, 9)]
    a = protocol.shuffle_classes(members, np.random.default_rng(3))
    b = protocol.shuffle_classes(members, np.random.default_rng(3))
    c = protocol.shuffle_classes(members, np.random.default_rng(4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))
    assert [sorted(x.tolist()) for x in a] == [m.tolist() for m in members]


def test_a_single_class_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match=r"1 class \(alice\).*at least 2 classes"):
        protocol.check_classes(np.zeros(5, np.int64), ["alice"])


def test_a_class_with_one_image_is_refused_by_name():
    with pytest.raises(ValueError, match=r"class 'bob' has 1 image"):
        protocol.check_classes(np.array([0, 0, 1]), ["alice", "bob"])
