"""What every batched memory shares: R independent states of one memory, advanced by one call.

An experiment that repeats a protocol R times with R seeds runs R memories that never
interact. Their per-call work is tiny (a few dozen keys), so running them one after
another spends the time on per-call overhead. A batched memory holds the R states side
by side (a leading repeat axis, or R blocks of slots) and advances all of them with one
call: queries [R, B, d] and labels [R, B] in, answers [R, B] out.

Exactness: repeat r of a batched memory gives the answers, similarities, slots, losses
and footprints that a single memory seeded like repeat r gives, to the last bit. That
holds because both share one kernel (memory_module.readout.similarities is a batched
matmul even for one state, readout.unit_rows normalises without rsqrt) and because each
repeat draws its randomness from its own Philox generator state, seeded and advanced as
the single memory's tf.random.Generator (memory_module.philox computes all R at once).
tests/memory_module/test_batched_memory.py checks every kind and policy.
"""

from __future__ import annotations

import tensorflow as tf

from memory_module import philox
from memory_module.base import Usage
from memory_module.readout import unit_rows
from memory_module.validation import check_positive_int


class BatchedMemoryBase(tf.Module):
    """State declaration, reset with one seed per repeat, and input checks for R states."""

    def __init__(self, repeats: int, name: str | None = None) -> None:
        super().__init__(name=name)
        self.repeats = check_positive_int("repeats", repeats)
        self._state_spec: tuple = ()
        self.seeds: tuple = (0,) * self.repeats
        self._generator_state_bytes = 0  # kinds that draw nothing have no generator

    def _add_state(self, name: str, initial, shape=None) -> tf.Variable:
        with self.name_scope:
            variable = tf.Variable(initial(), shape=shape, trainable=False, name=name)
        self._state_spec += ((name, initial),)
        return variable

    def _add_generators(self, seed: int) -> None:
        """One Philox generator state per repeat ([R, 3] int64, memory_module.philox), from `seed`."""
        self.seeds = (int(seed),) * self.repeats
        self.rng_state = self._add_state("rng_state", lambda: tf.constant(philox.initial_states(self.seeds)))
        self._generator_state_bytes = 3 * 8  # Philox: a two-word counter and a key, as tf.random.Generator.state

    def _add_size(self) -> None:
        """Hold `memory_size` in the state, read as a tensor by the traced code (see `resize`)."""
        self.size = self._add_state("size", lambda: tf.constant(self.memory_size, tf.int64))

    def _n(self) -> tf.Tensor:
        """Slots per repeat as the state holds it (int64 scalar tensor)."""
        return self.size.read_value()

    def resize(self, memory_size: int) -> None:
        """Empty every repeat's memory and give it `memory_size` slots (the same seeds as before).

        The slot count is state, read as a tensor, and every slot table is a variable of
        unknown length, so calls traced before stay valid: a run over many memory sizes
        traces one graph per policy instead of one per size (tracing costs more than a
        chunk's arithmetic). A memory of that size made afresh answers the same
        (tests/memory_module/test_batched_memory.py). The lookup's vote is fixed when the
        memory is made, so a size below `vote_k` is refused.
        """
        if not hasattr(self, "size"):
            raise ValueError(f"{type(self).__name__} has no fixed number of slots to resize")
        memory_size = check_positive_int("memory_size", memory_size)
        if memory_size < self.vote_k:
            raise ValueError(f"memory_size {memory_size} is below vote_k {self.vote_k}: make a new memory instead")
        self.memory_size = memory_size
        self.reset()

    def reset(self, seeds=None) -> None:
        """Empty every state; restart repeat r's generator from `seeds[r]` (from the last seeds when None).

        Repeat r then draws exactly what a single memory reset with seed `seeds[r]` draws.
        """
        if seeds is not None:
            seeds = tuple(int(s) for s in seeds)
            if len(seeds) != self.repeats:
                raise ValueError(f"reset needs one seed per repeat ({self.repeats}), got {len(seeds)}")
            self.seeds = seeds
        for name, initial in self._state_spec:
            getattr(self, name).assign(initial())

    def _uniform(self, count, minval=0.0, maxval=1.0, dtype=tf.float32) -> tf.Tensor:
        """[R, count]: row r is what repeat r's tf.random.Generator.uniform([count]) would draw."""
        values, next_state = philox.uniform(self.rng_state.read_value(), count, minval, maxval, dtype)
        self.rng_state.assign(next_state)
        return values

    def _generator_bytes(self) -> int:
        """Bytes of one repeat's generator state (what a single memory counts as bookkeeping)."""
        return self._generator_state_bytes

    # ------------------------------------------------------------------ inputs

    def _check_queries(self, queries) -> tf.Tensor:
        q = tf.convert_to_tensor(queries)
        if q.dtype != self.dtype:
            raise ValueError(f"queries must be {self.dtype.name}, got {q.dtype.name}")
        if q.shape.rank != 3 or q.shape[0] != self.repeats or q.shape[2] != self.key_dim:
            raise ValueError(f"queries must have shape [repeats={self.repeats}, batch, {self.key_dim}], got {q.shape}")
        return q

    def _unit_queries(self, queries, normalized: bool) -> tf.Tensor:
        """The queries as unit rows; `normalized`: they already are (memory_module.readout.unit_rows of
        each row, e.g. gathered from a table normalised once), so they are used as given.

        A run that asks about the same items many times normalises each once instead of per call.
        """
        q = self._check_queries(queries)
        return q if normalized else unit_rows(q, axis=2)

    def _check_labels(self, labels, q: tf.Tensor) -> tf.Tensor:
        v = tf.convert_to_tensor(labels)
        if not v.dtype.is_integer:
            raise ValueError(f"labels must be integer ids, got dtype {v.dtype.name}")
        v = tf.cast(v, tf.int64)
        if v.shape.rank != 2 or v.shape[0] != self.repeats:
            raise ValueError(f"labels must have shape [repeats={self.repeats}, batch], got {v.shape}")
        if tf.executing_eagerly() and int(tf.size(v)) and (int(tf.reduce_min(v)) < 0 or int(tf.reduce_max(v)) >= self.label_limit):
            raise ValueError(f"labels must be dense ids in [0, {self.label_limit}), got {int(tf.reduce_min(v))}..{int(tf.reduce_max(v))}")
        return v

    # ------------------------------------------------------------------ the shared calls

    def usage(self) -> Usage:
        """Usage per repeat: slots [R] and bytes [R], int64 (what each single memory's usage() says)."""
        return Usage(slots=self._slots(), bytes=self._bytes())

    def _slots(self) -> tf.Tensor:
        raise NotImplementedError

    def _bytes(self) -> tf.Tensor:
        raise NotImplementedError


def grow_columns(variable: tf.Variable, needed: tf.Tensor, fill, doubling: bool = True) -> None:
    """Give `variable` [R, n, ...] at least `needed` columns (axis 1), like base.grow_rows; graph-safe."""
    shape = tf.shape(variable, out_type=tf.int64)
    size = shape[1]

    def grow():
        new_size = tf.maximum(2 * size, needed) if doubling else needed
        extra_shape = tf.tensor_scatter_nd_update(shape, [[1]], [new_size - size])
        extra = tf.fill(extra_shape, tf.constant(fill, variable.dtype))
        variable.assign(tf.concat([variable.read_value(), extra], axis=1))
        return tf.constant(True)

    tf.cond(needed > size, grow, lambda: tf.constant(False))


def repeat_index(repeats: int, batch: tf.Tensor) -> tf.Tensor:
    """[R, B] int64: the repeat of every item of a [R, B] batch."""
    return tf.tile(tf.range(repeats, dtype=tf.int64)[:, None], tf.stack([1, batch]))


def rows_where(tensor: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """The rows of `tensor` where the 1-D `mask` is true: tf.boolean_mask's answer, in a few graph ops.

    boolean_mask builds about 25 ops of shape bookkeeping per use; a batched memory's call
    is traced once per method and run a few dozen times, so its graph's size (tracing and
    optimising it) is a large share of a short run. The same gather of the same rows.
    """
    if mask.shape.rank != 1:
        raise ValueError(f"rows_where needs a 1-D mask (flatten both first), got shape {mask.shape}")
    return tf.gather(tensor, tf.reshape(tf.where(mask), [-1]))
