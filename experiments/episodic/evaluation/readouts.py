"""The prototype readout: one mean key per class, answering with the most similar mean.

The third readout of the N-way k-shot table, next to the Kaiser memory and store-all
1-NN: with several shots the memory merges drawings of a class into one slot, 1-NN keeps
them apart, and the prototype averages all of them (Snell et al.'s prototypical
readout, on unit keys and by cosine similarity like the other two). It has the
reset / write / lookup calls of the memories so that evaluate.make_task_runner runs it
unchanged; it only answers N-way tasks, so it holds at most `max_labels` classes.
"""

from __future__ import annotations

import tensorflow as tf

from memory_module.labels import UNKNOWN_LABEL
from memory_module.readout import LookupResult


class PrototypeReadout(tf.Module):
    """Mean of the unit keys written for each label 0..max_labels-1."""

    def __init__(self, key_dim: int, max_labels: int = 64, name: str | None = None) -> None:
        super().__init__(name=name)
        if key_dim < 1 or max_labels < 1:
            raise ValueError(f"key_dim and max_labels must be >= 1, got {key_dim} and {max_labels}")
        self.key_dim, self.max_labels = key_dim, max_labels
        self.sums = tf.Variable(tf.zeros([max_labels, key_dim]), trainable=False, name="sums")
        self.counts = tf.Variable(tf.zeros([max_labels]), trainable=False, name="counts")

    def reset(self) -> None:
        self.sums.assign(tf.zeros_like(self.sums))
        self.counts.assign(tf.zeros_like(self.counts))

    def write(self, keys, labels) -> None:
        labels = tf.convert_to_tensor(labels, tf.int64)
        tf.debugging.assert_less(labels, tf.constant(self.max_labels, tf.int64),
                                 message=f"PrototypeReadout holds labels 0..{self.max_labels - 1} only")
        unit = tf.math.l2_normalize(tf.convert_to_tensor(keys, tf.float32), axis=1)
        self.sums.scatter_add(tf.IndexedSlices(unit, labels))
        self.counts.scatter_add(tf.IndexedSlices(tf.ones_like(labels, tf.float32), labels))

    def lookup(self, queries) -> LookupResult:
        unit = tf.math.l2_normalize(tf.convert_to_tensor(queries, tf.float32), axis=1)
        prototypes = tf.math.l2_normalize(self.sums, axis=1)
        similarity = tf.matmul(unit, prototypes, transpose_b=True)
        similarity = tf.where(self.counts[None, :] > 0, similarity, -float("inf"))
        best = tf.argmax(similarity, axis=1)
        empty = tf.reduce_all(self.counts == 0)
        labels = tf.where(empty, tf.constant(UNKNOWN_LABEL, tf.int64), best)
        return LookupResult(labels=labels, similarity=tf.reduce_max(similarity, axis=1),
                            slot=tf.where(empty, tf.constant(-1, tf.int64), best))
