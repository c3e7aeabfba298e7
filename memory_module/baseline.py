"""Store-all nearest neighbour: the "FaceNet alone" model the memory is compared with.

It keeps every embedding it is given (unbounded, no merging, no forgetting) and
answers with the label of the most similar one. Same interface as KaiserMemory
(lookup, loss, write, __call__, reset, footprint_bytes, slots_in_use) so that an
experiment can swap one for the other; its loss is always zero.

Storage is a tf.Variable whose capacity doubles when full, so n writes cost O(n)
copies in total; rows past the stored count hold UNKNOWN_LABEL and never win.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from memory_module.labels import UNKNOWN_LABEL
from memory_module.state_file import SavesStateFile
from memory_module.memory import DEFAULT_LABEL_LIMIT, _check_positive_int
from memory_module.readout import LookupResult, answer, nearest_pool
from memory_module.validation import check_labels, check_queries


class StoreAllNearestNeighbour(SavesStateFile, tf.Module):
    """Unbounded 1-NN (or similarity-weighted vote_k-NN) over every stored embedding."""

    def __init__(
        self,
        key_dim: int,
        vote_k: int = 1,
        dtype=tf.float32,
        initial_capacity: int = 1024,
        label_limit: int = DEFAULT_LABEL_LIMIT,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.key_dim = _check_positive_int("key_dim", key_dim)
        self.vote_k = _check_positive_int("vote_k", vote_k)
        self.label_limit = _check_positive_int("label_limit", label_limit)
        self.initial_capacity = max(_check_positive_int("initial_capacity", initial_capacity), self.vote_k)
        dtype = tf.as_dtype(dtype)
        if dtype not in (tf.float32, tf.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype.name}")
        self.dtype = dtype
        with self.name_scope:
            self.keys = tf.Variable(
                tf.zeros([self.initial_capacity, self.key_dim], dtype),
                shape=tf.TensorShape([None, self.key_dim]),
                trainable=False,
                name="keys",
            )
            self.values = tf.Variable(
                tf.fill([self.initial_capacity], tf.constant(UNKNOWN_LABEL, tf.int64)),
                shape=tf.TensorShape([None]),
                trainable=False,
                name="values",
            )
            self.count = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="count")

    def get_config(self) -> dict:
        return {
            "key_dim": self.key_dim,
            "vote_k": self.vote_k,
            "dtype": self.dtype.name,
            "initial_capacity": self.initial_capacity,
            "label_limit": self.label_limit,
        }

    def lookup(self, queries) -> LookupResult:
        q = check_queries(queries, self.key_dim, self.dtype)
        pool = nearest_pool(tf.math.l2_normalize(q, axis=1), self.keys, self.values, self.vote_k)
        return answer(pool, self.vote_k)

    def loss(self, queries, labels) -> tf.Tensor:
        """Always 0, but connected to `queries` so a gradient is zeros rather than None."""
        q = check_queries(queries, self.key_dim, self.dtype)
        check_labels(labels, q.shape[0], self.label_limit)
        return tf.reduce_sum(q) * tf.zeros([], q.dtype)

    def write(self, queries, labels) -> LookupResult:
        """Append every (query, label); returns the answers given before the write."""
        q = check_queries(queries, self.key_dim, self.dtype)
        v = check_labels(labels, q.shape[0], self.label_limit)
        unit = tf.stop_gradient(tf.math.l2_normalize(q, axis=1))
        before = answer(nearest_pool(unit, self.keys, self.values, self.vote_k), self.vote_k)
        self._append(unit, v)
        return before

    def __call__(self, queries, labels=None, update: bool = False) -> dict:
        if labels is None and update:
            raise ValueError("update=True needs labels: the baseline cannot store without them")
        out = (self.write(queries, labels) if update else self.lookup(queries))._asdict()
        if labels is not None:
            out["loss"] = self.loss(queries, labels)
        return out

    def reset(self) -> None:
        self.keys.assign(tf.zeros([self.initial_capacity, self.key_dim], self.dtype))
        self.values.assign(tf.fill([self.initial_capacity], tf.constant(UNKNOWN_LABEL, tf.int64)))
        self.count.assign(0)

    def slots_in_use(self) -> int:
        return int(self.count)

    def footprint_bytes(self) -> dict:
        """Bytes allocated (capacity, not just the stored rows) for keys, values and the count."""
        keys = int(tf.size(self.keys)) * self.dtype.size
        values = int(tf.size(self.values)) * 8
        parts = {"keys": keys, "values": values, "ages": 0, "bookkeeping": 8}
        parts["total"] = sum(parts.values())
        return parts

    def _append(self, unit: tf.Tensor, v: tf.Tensor) -> None:
        batch = tf.shape(v, out_type=tf.int64)[0]
        needed = self.count + batch
        capacity = tf.shape(self.values, out_type=tf.int64)[0]

        def grow():
            new_capacity = tf.maximum(2 * capacity, needed)
            extra = new_capacity - capacity
            self.keys.assign(tf.concat([self.keys.read_value(), tf.zeros([extra, self.key_dim], self.dtype)], 0))
            self.values.assign(
                tf.concat([self.values.read_value(), tf.fill([extra], tf.constant(UNKNOWN_LABEL, tf.int64))], 0)
            )
            return tf.constant(True)

        tf.cond(needed > capacity, grow, lambda: tf.constant(False))
        rows = (self.count + tf.range(batch))[:, None]
        self.keys.scatter_nd_update(rows, unit)
        self.values.scatter_nd_update(rows, v)
        self.count.assign(needed)
