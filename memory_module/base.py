"""What every memory shares: its state, defined once, and everything derived from it.

Each memory declares its state with `_add_state(name, initial)` (a tf.Variable, plus the
value it starts from). `reset`, the standalone state file (`save`/`load`), the
footprint and the slot count all read that one declaration, so a variable added to a
memory is saved, reset and counted without touching any other code.

`usage()` is graph-safe: an experiment can read slots and bytes inside the same
tf.function that writes and looks up, without a second formula for either.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import tensorflow as tf

from memory_module.readout import read_whole
from memory_module.state_file import load_memory, save_memory


class Usage(NamedTuple):
    """How full a memory is: int64 scalar tensors (safe inside tf.function)."""

    slots: tf.Tensor  # slots (or stored rows) holding a label
    bytes: tf.Tensor  # footprint_bytes()["total"]


class MemoryBase(tf.Module):
    """State bookkeeping shared by every memory of memory_module."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)
        self._warned: set[str] = set()
        # (name, initial value function) per state variable, in declaration order. A tuple of
        # plain values, so tf.Module's checkpoint tracking sees each variable once, by name.
        self._state_spec: tuple = ()
        self._generators: tuple = ()  # attribute names of seeded tf.random.Generators
        self.seed = 0

    # ------------------------------------------------------------------ state, declared once

    def _add_state(self, name: str, initial, shape=None) -> tf.Variable:
        """Create a non-trainable state variable and remember the value `reset` returns it to.

        `initial` is a zero-argument callable: states whose size changes (the store-all
        capacity, the recent-slot table) start again from their initial size.
        """
        with self.name_scope:
            variable = tf.Variable(initial(), shape=shape, trainable=False, name=name)
        self._state_spec += ((name, initial),)
        return variable

    def _add_generator(self, attribute: str, seed: int) -> tf.random.Generator:
        """A seeded random generator whose state is part of the memory's state.

        Saved and counted as `<attribute>_state`; `reset` restarts it from the memory's seed,
        so a memory reset with seed s draws exactly what a new memory with seed s draws.
        """
        self.seed = int(seed)
        with self.name_scope:
            generator = tf.random.Generator.from_seed(self.seed)
        setattr(self, attribute, generator)
        self._generators += (attribute,)
        self._state_spec += ((f"{attribute}_state", None),)
        return generator

    def _state_variable(self, name: str) -> tf.Variable:
        for attribute in self._generators:
            if name == f"{attribute}_state":
                return getattr(self, attribute).state
        return getattr(self, name)

    def state_variables(self) -> dict[str, tf.Variable]:
        """Every variable of the memory's state, by name (what save, load, reset and footprint see)."""
        return {name: self._state_variable(name) for name, _ in self._state_spec}

    def reset(self, seed: int | None = None) -> None:
        """Return every state variable to its initial value and restart the generators.

        With `seed`, the generators restart from that seed instead (and it becomes the
        memory's seed), so one memory can serve many independently seeded repeats.
        """
        if seed is not None:
            self.seed = int(seed)
        for name, initial in self._state_spec:
            if initial is not None:
                self._state_variable(name).assign(initial())
        for attribute in self._generators:
            getattr(self, attribute).reset_from_seed(self.seed)

    # ------------------------------------------------------------------ size

    def _footprint_parts(self) -> dict[str, tf.Tensor]:
        """Bytes held, as int64 tensors, under keys, values, ages and bookkeeping."""
        raise NotImplementedError

    def _slots_tensor(self) -> tf.Tensor:
        return tf.math.count_nonzero(read_whole(self._state_variable("values")) >= 0)

    def usage(self) -> Usage:
        parts = self._footprint_parts()
        return Usage(slots=self._slots_tensor(), bytes=tf.add_n(list(parts.values())))

    def slots_in_use(self) -> int:
        return int(self._slots_tensor())

    def footprint_bytes(self) -> dict:
        """{"keys", "values", "ages", "bookkeeping", "total"} in bytes (Python ints)."""
        parts = {name: int(value) for name, value in self._footprint_parts().items()}
        parts["total"] = sum(parts.values())
        return parts

    # ------------------------------------------------------------------ files

    def save(self, path) -> None:
        """Write the whole state to a standalone file (format versioned, written atomically)."""
        save_memory(self, path)

    def load(self, path) -> None:
        """Replace the state with one saved by `save`; another kind, size, dim or dtype is an error."""
        load_memory(self, path)

    # ------------------------------------------------------------------ warnings

    def _warn_if_outgrown(self, q: tf.Tensor, v: tf.Tensor, capacity: int) -> None:
        """Warn once when the batch, or the label ids, outgrow a fixed-size memory (allowed, but lossy).

        The batch check needs only the static shape; the class check needs label
        values, so inside a tf.function it is skipped (values are unknown while tracing).
        """
        batch = q.shape[0]
        if batch is not None and batch > capacity:
            self._warn_once(
                "batch",
                f"a batch of {batch} is larger than memory_size={capacity}: when more items miss "
                f"than there are slots, only the last misses of the batch are stored",
            )
        if tf.executing_eagerly():
            largest = int(tf.reduce_max(v)) + 1
            if largest > capacity:
                self._warn_once(
                    "classes",
                    f"label ids reach {largest - 1} but memory_size={capacity}: the memory is smaller "
                    f"than the number of classes, so older classes will be overwritten (allowed)",
                )

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=5)  # the caller of write()


def grow_rows(variable: tf.Variable, needed: tf.Tensor, fill, doubling: bool = True) -> None:
    """Give `variable` at least `needed` rows (appending rows of `fill`); graph-safe.

    Doubling makes n appends cost O(n) copies in total; without it the variable grows to
    exactly `needed` (for tables indexed by label id, where the largest id is the size).
    """
    size = tf.shape(variable, out_type=tf.int64)[0]

    def grow():
        new_size = tf.maximum(2 * size, needed) if doubling else needed
        extra_shape = tf.concat([[new_size - size], tf.shape(variable, out_type=tf.int64)[1:]], axis=0)
        extra = tf.fill(extra_shape, tf.constant(fill, variable.dtype))
        variable.assign(tf.concat([variable.read_value(), extra], axis=0))
        return tf.constant(True)

    tf.cond(needed > size, grow, lambda: tf.constant(False))


def nbytes(variable: tf.Variable) -> tf.Tensor:
    """Bytes of a variable's current value, as an int64 tensor."""
    return tf.size(variable, out_type=tf.int64) * variable.dtype.size
