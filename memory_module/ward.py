"""Ward merge costs: which same-label pair of slots a full memory should fold first.

The class-balanced fold (eviction="class_balanced", on_evict="merge") folds the oldest slot
of the label holding the most slots into that label's most similar slot; the slots' counts
weight the merge but not the choice. eviction="ward" chooses the pair by its count-weighted
merge cost instead, the growth of the label's within-cluster sum of squares when slots a
and b (holding n_a and n_b examples) become their count-weighted mean:

    cost(a, b) = n_a n_b / (n_a + n_b) * ||K_a - K_b||^2 = n_a n_b / (n_a + n_b) * (2 - 2 K_a.K_b)

for unit keys (Ward 1963; the greedy step of agglomerative clustering, here on a fixed
budget). Without counts (running_mean off) every slot counts one, and the cheapest pair
is the most similar one.

These functions take any number of leading (repeat) axes, so KaiserMemory ([N]) and
BatchedKaiserMemory ([R, N]) share them; the similarities come from readout.similarities,
whose batched matmul makes every repeat's slice equal to the single memory's.
"""

from __future__ import annotations

import tensorflow as tf

from memory_module.readout import similarities


def pair_cost(similarity: tf.Tensor, count_a: tf.Tensor, count_b: tf.Tensor) -> tf.Tensor:
    """cost(a, b) from the cosine similarity of unit keys a, b and their counts (broadcast together)."""
    n_a = tf.cast(count_a, similarity.dtype)
    n_b = tf.cast(count_b, similarity.dtype)
    # max(0, .): 2 - 2 cos rounds below zero for equal keys; a negative cost would be cheaper than equal.
    return n_a * n_b / (n_a + n_b) * tf.maximum(2.0 - 2.0 * similarity, 0.0)


def cheapest_merge(keys: tf.Tensor, values: tf.Tensor, counts: tf.Tensor | None) -> tf.Tensor:
    """[..., N] float64: each filled slot's lowest cost of merging with another slot of its label.

    keys [..., N, d] unit rows, values [..., N] (negative = empty), counts [..., N] or None
    (all ones). +inf for a slot whose label has no other slot, and for empty slots.
    """
    counts = tf.ones_like(values) if counts is None else counts
    similarity = similarities(keys, keys)  # [..., N, N]
    cost = pair_cost(similarity, counts[..., :, None], counts[..., None, :])
    size = tf.shape(values)[-1]
    same_label = tf.equal(values[..., :, None], values[..., None, :]) & (values[..., :, None] >= 0)
    allowed = same_label & ~tf.eye(size, dtype=tf.bool)
    cost = tf.where(allowed, cost, tf.constant(float("inf"), cost.dtype))
    return tf.cast(tf.reduce_min(cost, axis=-1), tf.float64)


def fold_priority(noisy_age: tf.Tensor, keys: tf.Tensor, values: tf.Tensor, counts: tf.Tensor | None) -> tf.Tensor:
    """The order key class-balanced eviction sorts slots by (descending) within a label and between ties.

    Filled slots: minus their cheapest merge cost (the cheapest fold first). Empty slots keep
    their noisy age (the oldest empty slot first, as the class-balanced rule); slots the
    caller excluded keep -inf. Empty and filled slots are never compared: empties go first.
    """
    filled_priority = -cheapest_merge(keys, values, counts)
    priority = tf.where(values >= 0, filled_priority, noisy_age)
    return tf.where(tf.math.is_inf(noisy_age) & (noisy_age < 0), noisy_age, priority)


def fold_target_scores(similarity: tf.Tensor, victim_counts: tf.Tensor, slot_counts: tf.Tensor) -> tf.Tensor:
    """[M, N] scores (higher = better target) of folding each victim into each slot: minus the Ward cost."""
    return -pair_cost(similarity, victim_counts[:, None], slot_counts)
