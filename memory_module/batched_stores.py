"""The store-all, FIFO, reservoir and class-mean baselines for R independent repeats at once.

Each is its single-state class's rule (memory_module.baseline, memory_module.fixed_baselines)
with a leading repeat axis on every state: keys [R, n, d], values [R, n], and per-label
tables [R, L] (a repeat's own length kept in [R] for its footprint). Every repeat of a
call gets a batch of the same size, so write counters (store-all's count, FIFO's written)
are shared. `batched(memory, repeats)` builds the batched twin of any memory_module memory.
"""

from __future__ import annotations

import tensorflow as tf

from memory_module.batched_base import BatchedMemoryBase, grow_columns, repeat_index, rows_where
from memory_module.batched_memory import BatchedKaiserMemory
from memory_module.labels import UNKNOWN_LABEL
from memory_module.readout import LookupResult, batched_answer, batched_pool, unit_rows
from memory_module.validation import DEFAULT_LABEL_LIMIT, check_dtype, check_positive_int


class _BatchedStore(BatchedMemoryBase):
    """Nearest stored key(s) per repeat, zero loss; a subclass defines `_table()` and `_store(unit, labels)`."""

    def _settings(self, key_dim, vote_k, dtype, label_limit) -> None:
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.vote_k = check_positive_int("vote_k", vote_k)
        self.label_limit = check_positive_int("label_limit", label_limit)
        self.dtype = check_dtype(dtype)

    def _fixed_table(self, memory_size) -> None:
        """`memory_size` empty rows per repeat (keys and values): the table FIFO and reservoir fill."""
        self.memory_size = check_positive_int("memory_size", memory_size)
        self.vote_k = min(self.vote_k, self.memory_size)
        r, d = self.repeats, self.key_dim
        self._add_size()
        self.keys = self._add_state("keys", lambda: tf.zeros([r, self.memory_size, d], self.dtype), shape=[r, None, d])
        self.values = self._add_state("values", lambda: tf.fill([r, self.memory_size], tf.constant(UNKNOWN_LABEL, tf.int64)),
                                      shape=[r, None])

    def lookup(self, queries, normalized: bool = False) -> LookupResult:
        unit = self._unit_queries(queries, normalized)
        keys, values = self._table()
        return batched_answer(batched_pool(unit, keys, values, self.vote_k), self.vote_k)

    def __call__(self, queries, labels=None, update: bool = False, normalized: bool = False) -> dict:
        if labels is None and update:
            raise ValueError(f"update=True needs labels: {type(self).__name__} cannot store without them")
        unit = self._unit_queries(queries, normalized)
        out = self.lookup(unit, normalized=True)._asdict()
        if labels is not None:
            v = self._check_labels(labels, unit)
            out["loss"] = tf.zeros([self.repeats], self.dtype)
            if update:
                self._store(unit, v)
        return out

    def _table(self) -> tuple:
        return self.keys.read_value(), self.values.read_value()

    def _store(self, unit: tf.Tensor, v: tf.Tensor) -> None:
        raise NotImplementedError

    def _rows(self, rows: tf.Tensor) -> tf.Tensor:
        """[R, k, 2] scatter indices (repeat, row) for the same rows `rows` [k] of every repeat."""
        k = tf.shape(rows, out_type=tf.int64)[0]
        return tf.stack([repeat_index(self.repeats, k), tf.tile(rows[None], [self.repeats, 1])], axis=2)


class BatchedStoreAll(_BatchedStore):
    """StoreAllNearestNeighbour per repeat: every row kept, capacity doubling as the single one's."""

    def __init__(self, repeats, key_dim, vote_k=1, dtype=tf.float32, initial_capacity=1024,
                 label_limit=DEFAULT_LABEL_LIMIT, name=None) -> None:
        super().__init__(repeats, name=name)
        self._settings(key_dim, vote_k, dtype, label_limit)
        self.initial_capacity = max(check_positive_int("initial_capacity", initial_capacity), self.vote_k)
        r, cap, d = self.repeats, self.initial_capacity, self.key_dim
        self.keys = self._add_state("keys", lambda: tf.zeros([r, cap, d], self.dtype), [r, None, d])
        self.values = self._add_state("values", lambda: tf.fill([r, cap], tf.constant(UNKNOWN_LABEL, tf.int64)), [r, None])
        self.count = self._add_state("count", lambda: tf.constant(0, tf.int64))

    def _slots(self) -> tf.Tensor:
        return tf.fill([self.repeats], self.count.read_value())

    def _bytes(self) -> tf.Tensor:
        rows = self.count.read_value()
        return tf.fill([self.repeats], rows * self.key_dim * self.dtype.size + rows * 8 + 8)

    def _store(self, unit, v) -> None:
        batch = tf.shape(v, out_type=tf.int64)[1]
        needed = self.count + batch
        grow_columns(self.keys, needed, 0)
        grow_columns(self.values, needed, UNKNOWN_LABEL)
        where = self._rows(self.count + tf.range(batch))
        self.keys.scatter_nd_update(where, unit)
        self.values.scatter_nd_update(where, v)
        self.count.assign(needed)


class BatchedFifo(_BatchedStore):
    """FifoBuffer per repeat: the memory_size most recent rows."""

    def __init__(self, repeats, memory_size, key_dim, vote_k=1, dtype=tf.float32,
                 label_limit=DEFAULT_LABEL_LIMIT, name=None) -> None:
        super().__init__(repeats, name=name)
        self._settings(key_dim, vote_k, dtype, label_limit)
        self._fixed_table(memory_size)
        self.written = self._add_state("written", lambda: tf.constant(0, tf.int64))

    def _slots(self) -> tf.Tensor:
        return tf.math.count_nonzero(self.values.read_value() >= 0, axis=1)

    def _bytes(self) -> tf.Tensor:
        n = self._n()
        return tf.fill([self.repeats], n * self.key_dim * self.dtype.size + 8 * n + 8)

    def _store(self, unit, v) -> None:
        batch = tf.shape(v, out_type=tf.int64)[1]
        kept = tf.minimum(batch, self._n())
        first = batch - kept
        where = self._rows(tf.math.floormod(self.written + first + tf.range(kept), self._n()))
        self.keys.scatter_nd_update(where, unit[:, first:])
        self.values.scatter_nd_update(where, v[:, first:])
        self.written.assign_add(batch)


class BatchedClassMeans(_BatchedStore):
    """ClassMeans per repeat: a sum and a count per class id."""

    def __init__(self, repeats, key_dim, dtype=tf.float32, initial_classes=64,
                 label_limit=DEFAULT_LABEL_LIMIT, name=None) -> None:
        super().__init__(repeats, name=name)
        self._settings(key_dim, 1, dtype, label_limit)
        self.initial_classes = check_positive_int("initial_classes", initial_classes)
        r, rows, d = self.repeats, self.initial_classes, self.key_dim
        self.sums = self._add_state("sums", lambda: tf.zeros([r, rows, d], self.dtype), [r, None, d])
        self.counts = self._add_state("counts", lambda: tf.zeros([r, rows], tf.int64), [r, None])

    def _table(self) -> tuple:
        counts = self.counts.read_value()
        ids = tf.range(tf.shape(counts, out_type=tf.int64)[1])[None, :]
        values = tf.where(counts > 0, ids, tf.constant(UNKNOWN_LABEL, tf.int64))
        return unit_rows(self.sums.read_value(), axis=2), values

    def _slots(self) -> tf.Tensor:
        return tf.math.count_nonzero(self.counts.read_value() > 0, axis=1)

    def _bytes(self) -> tf.Tensor:
        return self._slots() * (self.key_dim * self.dtype.size + 8)

    def _store(self, unit, v) -> None:
        # Capacities follow the largest label of any repeat: equal to each single store's
        # as long as every repeat's labels stay below initial_classes (the runner's case).
        needed = tf.reduce_max(v) + 1
        grow_columns(self.sums, needed, 0)
        grow_columns(self.counts, needed, 0)
        where = tf.stack([repeat_index(self.repeats, tf.shape(v, out_type=tf.int64)[1]), v], axis=2)
        self.sums.scatter_nd_add(where, unit)
        self.counts.scatter_nd_add(where, tf.ones_like(v))


class BatchedReservoir(_BatchedStore):
    """ClassBalancedReservoir per repeat: CBRS one item at a time, every repeat's item of that position at once."""

    def __init__(self, repeats, memory_size, key_dim, vote_k=1, seed=0, dtype=tf.float32,
                 label_limit=DEFAULT_LABEL_LIMIT, name=None) -> None:
        super().__init__(repeats, name=name)
        self._settings(key_dim, vote_k, dtype, label_limit)
        self._fixed_table(memory_size)
        r = self.repeats
        self.seen = self._add_state("seen", lambda: tf.zeros([r, 0], tf.int64), shape=[r, None])
        self.full = self._add_state("full", lambda: tf.zeros([r, 0], tf.bool), shape=[r, None])
        self.seen_size = self._add_state("seen_size", lambda: tf.zeros([r], tf.int64))  # each repeat's table length
        self._add_generators(seed)

    def _slots(self) -> tf.Tensor:
        return tf.math.count_nonzero(self.values.read_value() >= 0, axis=1)

    def _bytes(self) -> tf.Tensor:
        n = self._n()
        fixed = n * self.key_dim * self.dtype.size + 8 * n + self._generator_bytes()
        return fixed + 9 * self.seen_size.read_value()  # seen (int64) and full (bool) per label id

    def _store(self, unit, v) -> None:
        needed = tf.reduce_max(v, axis=1) + 1
        self.seen_size.assign(tf.maximum(self.seen_size, needed))
        grow_columns(self.seen, tf.reduce_max(needed), 0, doubling=False)
        grow_columns(self.full, tf.reduce_max(needed), False, doubling=False)
        batch = tf.shape(v)[1]
        uniforms = tf.reshape(self._uniform(2 * batch, dtype=tf.float64), [self.repeats, batch, 2])  # as uniform([B, 2])

        def body(i, _):
            self._offer(unit[:, i], v[:, i], uniforms[:, i, 0], uniforms[:, i, 1])
            return i + 1, tf.constant(True)

        tf.while_loop(lambda i, _: i < batch, body, (tf.constant(0), tf.constant(False)))

    def _offer(self, key, label, accept, choose) -> None:
        """ClassBalancedReservoir._offer for item i of every repeat (key [R, d], the rest [R])."""
        r = tf.range(self.repeats, dtype=tf.int64)
        self.seen.scatter_nd_add(tf.stack([r, label], axis=1), tf.ones_like(label))
        values = self.values.read_value()
        empty = values < 0
        width = tf.shape(self.seen, out_type=tf.int64)[1]
        owner = tf.where(empty, tf.zeros_like(values), values) + r[:, None] * width
        held = tf.math.unsorted_segment_sum(tf.reshape(tf.cast(~empty, tf.int64), [-1]), tf.reshape(owner, [-1]),
                                            self.repeats * width)
        held = tf.reshape(held, [self.repeats, width])
        largest = tf.reduce_max(held, axis=1, keepdims=True)
        in_largest = (held == largest) & (largest > 0)
        any_empty = tf.reduce_any(empty, axis=1)
        self.full.assign(self.full | (in_largest & ~any_empty[:, None]))
        label_full = tf.gather(self.full, label, batch_dims=1)
        own = tf.equal(values, label[:, None])
        candidates = tf.where(label_full[:, None], own,
                              tf.gather(in_largest, tf.maximum(values, 0), batch_dims=1) & ~empty)
        own_held = tf.cast(tf.gather(held, label, batch_dims=1), tf.float64)
        seen = tf.cast(tf.gather(self.seen, label, batch_dims=1), tf.float64)
        keep = tf.where(label_full, accept * seen < own_held, True)
        n_candidates = tf.reduce_sum(tf.cast(candidates, tf.int64), axis=1)
        pick = tf.minimum(tf.cast(choose * tf.cast(n_candidates, tf.float64), tf.int64), n_candidates - 1)
        # The pick-th candidate row; row 0 when there is none (as the single store's padding).
        nth = candidates & tf.equal(tf.cumsum(tf.cast(candidates, tf.int64), axis=1), pick[:, None] + 1)
        chosen = tf.argmax(tf.cast(nth, tf.int32), axis=1, output_type=tf.int64)
        first_empty = tf.argmax(tf.cast(empty, tf.int32), axis=1, output_type=tf.int64)
        slot = tf.where(any_empty, first_empty, chosen)
        store = any_empty | (keep & (n_candidates > 0))
        where = rows_where(tf.stack([r, slot], axis=1), store)
        self.keys.scatter_nd_update(where, rows_where(key, store))
        self.values.scatter_nd_update(where, rows_where(label, store))


def batched(memory, repeats: int, **overrides):
    """The batched twin of a memory_module memory: same settings, `repeats` independent states.

    `overrides` replace settings that change no answer, such as store-all's initial_capacity:
    a caller that knows how many items a repeat can be fed sizes the table to them, instead
    of multiplying 1,024 mostly empty rows per repeat.
    """
    import memory_module  # deferred: memory_module/__init__ imports this module

    kinds = {
        memory_module.KaiserMemory: BatchedKaiserMemory,
        memory_module.StoreAllNearestNeighbour: BatchedStoreAll,
        memory_module.FifoBuffer: BatchedFifo,
        memory_module.ClassMeans: BatchedClassMeans,
        memory_module.ClassBalancedReservoir: BatchedReservoir,
    }
    kind = kinds.get(type(memory))
    if kind is None:
        raise ValueError(f"{type(memory).__name__} has no batched form; run it one repeat at a time")
    config = dict(memory.get_config())
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"{type(memory).__name__} has no setting {', '.join(sorted(unknown))}")
    config.update(overrides)
    config["dtype"] = tf.as_dtype(config["dtype"])
    return kind(repeats, **config)
