"""eviction="ward", fill_first and keep_classes against a short, independent NumPy version of their rule.

Noise off, float64, one item per write: the rule is then a few lines (nearest slot; a hit
merges by running mean unless the memory still has an empty slot under fill_first; with
keep_classes and no empty slot, a miss of a held label merges into that label's nearest
slot; any other miss takes the first empty slot, else the label holding the most slots
folds its pair of lowest count-weighted merge cost). A scripted case shows the choice a reader can check by eye;
seeded random streams check the rest. The batched twins are checked, repeat by repeat,
in test_batched_memory.py.
"""

import numpy as np
import pytest
import tensorflow as tf

from memory_module import KaiserMemory
from memory_module.ward import pair_cost

D = 4


def _unit(x):
    return x / np.linalg.norm(x)


class WardReference:
    """The write of eviction="ward", on_evict="merge", running_mean=True (optionally fill_first), one item at a time."""

    def __init__(self, size, fill_first, keep_classes=False):
        self.keys = np.zeros((size, D))
        self.values = np.full(size, -1)
        self.counts = np.zeros(size, np.int64)
        self.fill_first = fill_first
        self.keep_classes = keep_classes

    def _absorb(self, slot, q):
        n = self.counts[slot]
        self.keys[slot] = _unit(n * self.keys[slot] + q)
        self.counts[slot] = n + 1

    def write(self, query, label):
        q = _unit(query)
        filled = self.values >= 0
        empty = np.flatnonzero(~filled)
        if filled.any():
            nearest = int(np.argmax(np.where(filled, self.keys @ q, -np.inf)))
            hit = self.values[nearest] == label and not (self.fill_first and empty.size >= 1)
            if hit:
                self._absorb(nearest, q)
                return
        own = np.flatnonzero(self.values == label)
        if self.keep_classes and empty.size == 0 and own.size:
            self._absorb(int(own[np.argmax(self.keys[own] @ q)]), q)
            return
        if empty.size:
            slot = int(empty[0])
        else:
            slot = self._fold()
        self.keys[slot], self.values[slot], self.counts[slot] = q, label, 1

    def _fold(self):
        labels, held = np.unique(self.values, return_counts=True)
        best = None
        for a in range(len(self.values)):
            if held[labels == self.values[a]][0] != held.max():
                continue
            for b in range(len(self.values)):
                if b == a or self.values[b] != self.values[a]:
                    continue
                cost = self.counts[a] * self.counts[b] / (self.counts[a] + self.counts[b]) * (2 - 2 * self.keys[a] @ self.keys[b])
                if best is None or cost < best[0] - 1e-12:
                    best = (cost, a, b)
        if best is None:  # every label holds one slot: the first slot is dropped (no fold possible)
            return 0
        _, a, b = best
        na, nb = self.counts[a], self.counts[b]
        self.keys[b] = _unit(na * self.keys[a] + nb * self.keys[b])
        self.counts[b] = na + nb
        return a


def _memory(size, fill_first, eviction="ward", keep_classes=False):
    return KaiserMemory(size, D, age_noise=0.0, dtype=tf.float64, running_mean=True, eviction=eviction,
                        on_evict="merge", fill_first=fill_first, keep_classes=keep_classes)


def _write(memory, query, label):
    memory.write(np.asarray([query], np.float64), np.asarray([label], np.int64))


def test_ward_folds_the_closest_pair_where_fold_folds_the_oldest_slot():
    stream = [(np.array([1.0, 0, 0, 0]), 0), (np.array([0, 1.0, 0, 0]), 0), (np.array([0, 1.0, 0.1, 0]), 0),
              (np.array([0, 0, 0, 1.0]), 1)]
    ward, fold = _memory(3, True), _memory(3, True, eviction="class_balanced")
    for query, label in stream:
        _write(ward, query, label)
        _write(fold, query, label)
    # Ward: the two near-duplicates (slots 1 and 2) merge; the oldest, far mode (slot 0) stays.
    assert ward.values.numpy().tolist().count(1) == 1
    assert np.max(ward.keys.numpy() @ np.array([1.0, 0, 0, 0])) == pytest.approx(1.0)
    # memory_fold's rule: the oldest slot (the far mode at slot 0) is folded away.
    assert np.max(fold.keys.numpy() @ np.array([1.0, 0, 0, 0])) < 0.9


def test_fill_first_inserts_hits_until_the_batch_no_longer_fits():
    memory = _memory(3, True)
    for _ in range(3):
        _write(memory, np.array([1.0, 0.1, 0, 0]), 0)
    assert memory.values.numpy().tolist() == [0, 0, 0]
    memory.write(np.array([[1.0, 0.2, 0, 0]]), np.array([0]))  # full: the hit merges
    assert memory.counts.numpy().sum() == 4 and memory.values.numpy().tolist() == [0, 0, 0]
    fresh = _memory(3, True)
    fresh.write(np.array([[1.0, 0, 0, 0]]), np.array([0]))
    fresh.write(np.array([[1.0, 0.1, 0, 0], [1.0, 0.2, 0, 0]]), np.array([0, 0]))  # 2 items, 2 empty: inserted
    assert fresh.slots_in_use() == 3
    merged = _memory(4, True)
    merged.write(np.array([[1.0, 0, 0, 0]]), np.array([0]))
    merged.write(np.array([[1.0, 0.1, 0, 0]] * 4), np.array([0] * 4))  # 4 items, 3 empty: the hits merge
    assert merged.slots_in_use() == 1 and int(merged.counts.numpy().max()) == 5


@pytest.mark.parametrize("fill_first", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ward_matches_the_numpy_rule_on_random_streams(seed, fill_first):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, D))
    _assert_follows_reference(_memory(6, fill_first), WardReference(6, fill_first), rng, centres)


def _assert_follows_reference(memory, reference, rng, centres, steps=40):
    """Write the same random stream (one item per write, around `centres`) to both; compare every state."""
    for step in range(steps):
        label = int(rng.integers(0, len(centres)))
        query = centres[label] + 0.7 * rng.normal(size=D)
        _write(memory, query, label)
        reference.write(query, label)
        np.testing.assert_array_equal(memory.values.numpy(), reference.values, err_msg=f"step {step}")
        np.testing.assert_array_equal(memory.counts.numpy(), reference.counts, err_msg=f"step {step}")
        np.testing.assert_allclose(memory.keys.numpy(), reference.keys, atol=1e-12, err_msg=f"step {step}")


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_classes", [4, 8])
def test_keep_classes_matches_the_numpy_rule_on_random_streams(seed, n_classes):
    # 8 classes on 6 slots: unheld labels still take victims; 4 classes: held labels' misses merge.
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, D))
    _assert_follows_reference(_memory(6, True, keep_classes=True), WardReference(6, True, keep_classes=True), rng, centres)


@pytest.mark.parametrize("keep_classes", [False, True])
def test_a_full_memory_of_one_slot_per_class_keeps_every_class_it_has_seen_only_with_keep_classes(keep_classes):
    # Five overlapping classes on five slots, one item per write.
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(5, D))
    memory, seen, always_kept = _memory(5, True, keep_classes=keep_classes), set(), True
    for _ in range(60):
        label = int(rng.integers(0, 5))
        _write(memory, centres[label] + 1.5 * rng.normal(size=D), label)
        seen.add(label)
        always_kept &= set(memory.values.numpy().tolist()) - {-1} == seen
    assert always_kept == keep_classes  # memory_ward_fill: a miss evicted some class's only key


def test_keep_classes_makes_one_slot_per_class_a_running_mean_per_class():
    # Batches of one item per class (the regime map's streams): without keep_classes every class
    # stays held too, but a missed item replaces its class's accumulated key.
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(5, D))
    kept, plain = _memory(5, True, keep_classes=True), _memory(5, True)
    for _ in range(20):
        batch = centres + 1.5 * rng.normal(size=(5, D))
        kept.write(batch, np.arange(5))
        plain.write(batch, np.arange(5))
    assert sorted(kept.values.numpy().tolist()) == [0, 1, 2, 3, 4] and kept.counts.numpy().tolist() == [20] * 5
    assert sorted(plain.values.numpy().tolist()) == [0, 1, 2, 3, 4] and plain.counts.numpy().sum() < 100


def test_keep_classes_merges_a_held_miss_into_its_own_nearest_slot_not_the_answering_one():
    memory = _memory(2, True, keep_classes=True)
    memory.write(np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]), np.array([0, 1]))  # full: one slot per class
    memory.write(np.array([[0.2, 1.0, 0, 0]]), np.array([0]))  # nearest slot is label 1's: a miss
    assert memory.values.numpy().tolist() == [0, 1] and memory.counts.numpy().tolist() == [2, 1]
    np.testing.assert_allclose(memory.keys.numpy()[1], [0, 1.0, 0, 0])  # label 1's key untouched


def test_pair_cost_is_the_count_weighted_growth_of_the_sum_of_squares():
    a, b = _unit(np.array([1.0, 0.3, 0, 0])), _unit(np.array([0.2, 1.0, 0, 0]))
    na, nb = 3, 5
    mean = (na * a + nb * b) / (na + nb)
    growth = na * np.sum((a - mean) ** 2) + nb * np.sum((b - mean) ** 2)
    cost = pair_cost(tf.constant(a @ b), tf.constant(na), tf.constant(nb))
    assert float(cost) == pytest.approx(growth, rel=1e-12)


def test_an_unknown_eviction_names_the_choices():
    with pytest.raises(ValueError, match="ward"):
        KaiserMemory(4, D, eviction="closest")
