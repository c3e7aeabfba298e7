"""Fixed-size alternatives to the Kaiser memory, so it is compared at equal footprint.

A fixed-size memory that beats an unbounded store is not the question; the question
is whether its write rule beats simpler rules holding the same number of keys:

- `FifoBuffer`: the N most recent embeddings, 1-NN (or vote_k) over them.
- `ClassBalancedReservoir`: N embeddings kept by class-balanced reservoir sampling
  (CBRS, Chrysakis and Moens, ICML 2020), seeded.
- `ClassMeans`: one running mean per class, nearest prototype (Mensink et al. 2013's
  nearest class mean); its size is the number of classes, not a setting.

All have the interface of StoreAllNearestNeighbour (lookup, zero loss, write,
__call__, reset, state_variables, usage, footprint_bytes, slots_in_use, save, load)
and trace in tf.function. Footprints count what the fixed-size stores allocate (as the
Kaiser memory's does) and, for ClassMeans, the classes it holds.
"""

from __future__ import annotations

import tensorflow as tf

from memory_module.base import grow_rows, nbytes
from memory_module.baseline import NeighbourStore
from memory_module.labels import UNKNOWN_LABEL
from memory_module.readout import unit_rows
from memory_module.validation import DEFAULT_LABEL_LIMIT, check_dtype, check_positive_int


class _FixedTable(NeighbourStore):
    """N keys and labels, with the settings and footprint the fixed-size stores share."""

    def __init__(self, memory_size, key_dim, vote_k, dtype, label_limit, name) -> None:
        super().__init__(name=name)
        self.memory_size = check_positive_int("memory_size", memory_size)
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.vote_k = min(check_positive_int("vote_k", vote_k), self.memory_size)
        self.label_limit = check_positive_int("label_limit", label_limit)
        self.dtype = check_dtype(dtype)
        n = self.memory_size
        self.keys = self._add_state("keys", lambda: tf.zeros([n, self.key_dim], self.dtype))
        self.values = self._add_state("values", lambda: tf.fill([n], tf.constant(UNKNOWN_LABEL, tf.int64)))

    def get_config(self) -> dict:
        return {
            "memory_size": self.memory_size,
            "key_dim": self.key_dim,
            "vote_k": self.vote_k,
            "dtype": self.dtype.name,
            "label_limit": self.label_limit,
        }

    def _footprint_parts(self) -> dict[str, tf.Tensor]:
        state = self.state_variables()
        bookkeeping = [nbytes(v) for name, v in state.items() if name not in ("keys", "values")]
        return {
            "keys": nbytes(self.keys),
            "values": nbytes(self.values),
            "ages": tf.constant(0, tf.int64),
            "bookkeeping": tf.add_n(bookkeeping),
        }


class FifoBuffer(_FixedTable):
    """The N most recently written embeddings; the oldest is overwritten first.

    A batch larger than N keeps its last N rows, as if written one at a time.
    """

    def __init__(
        self,
        memory_size: int,
        key_dim: int,
        vote_k: int = 1,
        dtype=tf.float32,
        label_limit: int = DEFAULT_LABEL_LIMIT,
        name: str | None = None,
    ) -> None:
        super().__init__(memory_size, key_dim, vote_k, dtype, label_limit, name)
        self.written = self._add_state("written", lambda: tf.constant(0, tf.int64))  # rows ever written

    def _store(self, unit: tf.Tensor, v: tf.Tensor) -> None:
        batch = tf.shape(v, out_type=tf.int64)[0]
        kept = tf.minimum(batch, self.memory_size)
        first = batch - kept
        rows = tf.math.floormod(self.written + first + tf.range(kept), self.memory_size)[:, None]
        self.keys.scatter_nd_update(rows, unit[first:])
        self.values.scatter_nd_update(rows, v[first:])
        self.written.assign_add(batch)


class ClassBalancedReservoir(_FixedTable):
    """N embeddings kept by class-balanced reservoir sampling (CBRS), one item at a time.

    While a slot is empty, an item takes the lowest empty slot. Once full, a class is
    "full" if it is, or once was, among the classes holding the most slots. An item of a
    class that is not full replaces a uniformly chosen slot of the largest classes; an item
    of a full class c is kept with probability (slots c holds) / (items of c seen), in a
    uniformly chosen slot of c. So rare classes are kept whole and frequent ones are a
    uniform sample of their stream.

    Randomness: two uniforms per item, drawn for the whole batch from the store's seeded
    generator (saved with the state, restarted by reset).
    """

    def __init__(
        self,
        memory_size: int,
        key_dim: int,
        vote_k: int = 1,
        seed: int = 0,
        dtype=tf.float32,
        label_limit: int = DEFAULT_LABEL_LIMIT,
        name: str | None = None,
    ) -> None:
        super().__init__(memory_size, key_dim, vote_k, dtype, label_limit, name)
        # Per label id: items seen, and whether the class has been among the largest.
        self.seen = self._add_state("seen", lambda: tf.zeros([0], tf.int64), shape=[None])
        self.full = self._add_state("full", lambda: tf.zeros([0], tf.bool), shape=[None])
        self.sampler = self._add_generator("sampler", seed)

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}

    def _store(self, unit: tf.Tensor, v: tf.Tensor) -> None:
        table_size = tf.reduce_max(v) + 1
        grow_rows(self.seen, table_size, 0, doubling=False)
        grow_rows(self.full, table_size, False, doubling=False)
        uniforms = self.sampler.uniform(tf.stack([tf.size(v), 2]), dtype=tf.float64)
        batch = tf.shape(v)[0]

        def body(i, _):
            self._offer(unit[i], v[i], uniforms[i, 0], uniforms[i, 1])
            return i + 1, tf.constant(True)

        tf.while_loop(lambda i, _: i < batch, body, (tf.constant(0), tf.constant(False)))

    def _offer(self, key: tf.Tensor, label: tf.Tensor, accept: tf.Tensor, choose: tf.Tensor) -> None:
        """One step of CBRS for one item: where it goes, if anywhere."""
        self.seen.scatter_nd_add([[label]], [1])
        values = self.values.read_value()
        empty = values < 0
        held = tf.math.bincount(
            tf.where(empty, tf.zeros_like(values), values), weights=tf.cast(~empty, tf.int64),
            minlength=tf.size(self.seen, out_type=tf.int64), dtype=tf.int64,
        )
        largest = tf.reduce_max(held)
        in_largest = (held == largest) & (largest > 0)
        self.full.assign(self.full | (in_largest & ~tf.reduce_any(empty)))
        label_full = tf.gather(self.full, label)
        own = tf.equal(values, label)
        candidates = tf.where(label_full, own, tf.gather(in_largest, tf.maximum(values, 0)) & ~empty)
        own_held = tf.cast(tf.gather(held, label), tf.float64)
        keep = tf.where(label_full, accept * tf.cast(tf.gather(self.seen, label), tf.float64) < own_held, True)
        n_candidates = tf.reduce_sum(tf.cast(candidates, tf.int64))
        pick = tf.minimum(tf.cast(choose * tf.cast(n_candidates, tf.float64), tf.int64), n_candidates - 1)
        rows = tf.concat([tf.where(candidates)[:, 0], [0]], axis=0)  # row 0 pads: never used when empty
        chosen = tf.gather(rows, tf.maximum(pick, 0))
        first_empty = tf.argmax(tf.cast(empty, tf.int32), output_type=tf.int64)
        slot = tf.where(tf.reduce_any(empty), first_empty, chosen)
        store = tf.reduce_any(empty) | (keep & (n_candidates > 0))

        def write():
            self.keys.scatter_nd_update([[slot]], key[None])
            self.values.scatter_nd_update([[slot]], label[None])
            return tf.constant(True)

        tf.cond(store, write, lambda: tf.constant(False))


class ClassMeans(NeighbourStore):
    """Nearest class mean: one key per class, the normalised mean of its unit embeddings.

    State per class id: the sum of its unit embeddings and its count, so the mean is
    exact whatever the order of writes. Its footprint is (classes held) x (d floats + one
    count): the smallest memory that knows every class, and the prototype readout a
    merge-every-hit memory approximates.
    """

    def __init__(
        self,
        key_dim: int,
        dtype=tf.float32,
        initial_classes: int = 64,
        label_limit: int = DEFAULT_LABEL_LIMIT,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.initial_classes = check_positive_int("initial_classes", initial_classes)
        self.label_limit = check_positive_int("label_limit", label_limit)
        self.dtype = check_dtype(dtype)
        self.vote_k = 1
        rows = self.initial_classes
        self.sums = self._add_state("sums", lambda: tf.zeros([rows, self.key_dim], self.dtype), [None, self.key_dim])
        self.counts = self._add_state("counts", lambda: tf.zeros([rows], tf.int64), [None])

    def get_config(self) -> dict:
        return {
            "key_dim": self.key_dim,
            "dtype": self.dtype.name,
            "initial_classes": self.initial_classes,
            "label_limit": self.label_limit,
        }

    def _table(self) -> tuple:
        counts = self.counts.read_value()
        ids = tf.range(tf.size(counts, out_type=tf.int64))
        values = tf.where(counts > 0, ids, tf.constant(UNKNOWN_LABEL, tf.int64))
        return unit_rows(self.sums.read_value(), axis=1), values

    def _store(self, unit: tf.Tensor, v: tf.Tensor) -> None:
        needed = tf.reduce_max(v) + 1
        grow_rows(self.sums, needed, 0)
        grow_rows(self.counts, needed, 0)
        self.sums.scatter_nd_add(v[:, None], unit)
        self.counts.scatter_nd_add(v[:, None], tf.ones_like(v))

    def _slots_tensor(self) -> tf.Tensor:
        return tf.math.count_nonzero(self.counts.read_value() > 0)

    def _footprint_parts(self) -> dict[str, tf.Tensor]:
        classes = self._slots_tensor()
        return {
            "keys": classes * self.key_dim * self.dtype.size,
            "values": classes * self.counts.dtype.size,
            "ages": tf.constant(0, tf.int64),
            "bookkeeping": tf.constant(0, tf.int64),
        }
