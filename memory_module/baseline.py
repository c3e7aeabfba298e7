"""Store-all nearest neighbour: the "FaceNet alone" model the memory is compared with.

It keeps every embedding it is given (unbounded, no merging, no forgetting) and
answers with the label of the most similar one. Same interface as KaiserMemory
(lookup, loss, write, __call__, reset, footprint_bytes, slots_in_use) so that an
experiment can swap one for the other; its loss is always zero.

Storage is a tf.Variable whose capacity doubles when full, so n writes cost O(n)
copies in total; rows past the stored count hold UNKNOWN_LABEL and never win.
Its footprint counts what it holds (each stored key and label, plus the count), not
the allocated capacity: the capacity starts large and doubles, which would hide the
point of the comparison, that store-all grows with every example and the Kaiser
memory does not.
"""

from __future__ import annotations

import tensorflow as tf

from memory_module.base import MemoryBase, grow_rows, nbytes
from memory_module.labels import UNKNOWN_LABEL
from memory_module.readout import LookupResult, answer, nearest_pool, unit_rows
from memory_module.validation import DEFAULT_LABEL_LIMIT, check_dtype, check_labels, check_positive_int, check_queries


class NeighbourStore(MemoryBase):
    """What the baselines share: they answer by the nearest stored key(s) and have no loss.

    A subclass sets key_dim, vote_k, dtype and label_limit, and defines `_table()` (the
    keys and values a lookup reads) and `_store(unit, labels)` (how a batch is kept).
    """

    def lookup(self, queries) -> LookupResult:
        q = check_queries(queries, self.key_dim, self.dtype)
        return self._answer(unit_rows(q, axis=1))

    def loss(self, queries, labels) -> tf.Tensor:
        """Always 0, but connected to `queries` so a gradient is zeros rather than None."""
        q = check_queries(queries, self.key_dim, self.dtype)
        check_labels(labels, q.shape[0], self.label_limit)
        return tf.reduce_sum(q) * tf.zeros([], q.dtype)

    def write(self, queries, labels) -> LookupResult:
        """Keep the labelled batch by the store's rule; returns the answers given before the write."""
        q = check_queries(queries, self.key_dim, self.dtype)
        v = check_labels(labels, q.shape[0], self.label_limit)
        unit = tf.stop_gradient(unit_rows(q, axis=1))
        before = self._answer(unit)
        self._store(unit, v)
        return before

    def __call__(self, queries, labels=None, update: bool = False) -> dict:
        if labels is None and update:
            raise ValueError(f"update=True needs labels: {type(self).__name__} cannot store without them")
        out = (self.write(queries, labels) if update else self.lookup(queries))._asdict()
        if labels is not None:
            out["loss"] = self.loss(queries, labels)
        return out

    def _table(self) -> tuple:
        return self.keys, self.values

    def _answer(self, unit: tf.Tensor) -> LookupResult:
        keys, values = self._table()
        return answer(nearest_pool(unit, keys, values, self.vote_k), self.vote_k)

    def _store(self, unit: tf.Tensor, v: tf.Tensor) -> None:
        raise NotImplementedError


class StoreAllNearestNeighbour(NeighbourStore):
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
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.vote_k = check_positive_int("vote_k", vote_k)
        self.label_limit = check_positive_int("label_limit", label_limit)
        self.initial_capacity = max(check_positive_int("initial_capacity", initial_capacity), self.vote_k)
        self.dtype = check_dtype(dtype)
        capacity, empty = self.initial_capacity, tf.constant(UNKNOWN_LABEL, tf.int64)
        self.keys = self._add_state("keys", lambda: tf.zeros([capacity, self.key_dim], self.dtype), [None, self.key_dim])
        self.values = self._add_state("values", lambda: tf.fill([capacity], empty), [None])
        self.count = self._add_state("count", lambda: tf.constant(0, tf.int64))

    def get_config(self) -> dict:
        return {
            "key_dim": self.key_dim,
            "vote_k": self.vote_k,
            "dtype": self.dtype.name,
            "initial_capacity": self.initial_capacity,
            "label_limit": self.label_limit,
        }

    def _slots_tensor(self) -> tf.Tensor:
        return self.count.read_value()

    def _footprint_parts(self) -> dict[str, tf.Tensor]:
        rows = self.count.read_value()
        return {
            "keys": rows * self.key_dim * self.dtype.size,
            "values": rows * self.values.dtype.size,
            "ages": tf.constant(0, tf.int64),
            "bookkeeping": nbytes(self.count),
        }

    def _store(self, unit: tf.Tensor, v: tf.Tensor) -> None:
        """Append every row, doubling the capacity when full."""
        batch = tf.shape(v, out_type=tf.int64)[0]
        needed = self.count + batch
        grow_rows(self.keys, needed, 0)
        grow_rows(self.values, needed, UNKNOWN_LABEL)
        rows = (self.count + tf.range(batch))[:, None]
        self.keys.scatter_nd_update(rows, unit)
        self.values.scatter_nd_update(rows, v)
        self.count.assign(needed)
