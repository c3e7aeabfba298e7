"""A Keras 3 layer around a memory, so a model can be embedder -> memory.

The layer owns a KaiserMemory (or any other memory of memory_module) as an attribute;
its tf.Variables are tracked, so tf.train.Checkpoint(model=model) saves and
restores the memory with the model's weights, and none of them is trainable.

Keras' own saving (`model.save_weights("*.weights.h5")`, `model.save("*.keras")`
and loading them) does not see variables held by a tf.Module, and used to bring
the memory back EMPTY without a word. The layer therefore writes its memory's
whole state itself (`save_own_variables`, one entry per state array) and reads
it back (`load_own_variables`), refusing a file whose memory does not fit (other
size, key_dim, dtype or kind) or that holds no memory state at all, instead of
loading an empty memory. The layer is registered as `kshot_memory>MemoryLayer`, so
`keras.models.load_model` rebuilds it from its config.

call(embeddings, labels=None, training=False):
  - returns the memory's answers {labels, similarity, slot} (before any write);
  - with labels, adds the memory's margin loss to the layer's losses (so `fit`
    and custom loops pick it up through `model.losses`);
  - with labels and training=True, writes the batch into the memory after the
    loss is taken (the paper's order: predict, score, then update).
"""

from __future__ import annotations

import sys

import keras
import tensorflow as tf

from memory_module.baseline import StoreAllNearestNeighbour
from memory_module.fixed_baselines import ClassBalancedReservoir, ClassMeans, FifoBuffer
from memory_module.memory import KaiserMemory

_KINDS = {
    kind.__name__: kind
    for kind in (KaiserMemory, StoreAllNearestNeighbour, FifoBuffer, ClassBalancedReservoir, ClassMeans)
}


def _refuse_legacy_h5(layer_name: str) -> None:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith("keras.src.legacy.saving"):
            raise ValueError(
                f"layer {layer_name!r}: the legacy HDF5 format (model.save('*.h5')) cannot hold the memory and "
                "would load it back empty; save with model.save('*.keras') or model.save_weights('*.weights.h5')"
            )
        frame = frame.f_back


@keras.saving.register_keras_serializable(package="kshot_memory")
class MemoryLayer(keras.layers.Layer):
    """Wraps `memory`, or a memory of `memory_kind` built from `memory_kwargs`."""

    def __init__(self, memory=None, memory_kind: str = "KaiserMemory", name=None, trainable=True, **memory_kwargs):
        super().__init__(name=name, trainable=trainable)
        if memory is None:
            if memory_kind not in _KINDS:
                raise ValueError(f"memory_kind must be one of {sorted(_KINDS)}, got {memory_kind!r}")
            memory = _KINDS[memory_kind](**memory_kwargs)
        elif memory_kwargs:
            raise ValueError(f"give either a memory or its settings, not both (got {sorted(memory_kwargs)})")
        self.memory = memory

    def call(self, embeddings, labels=None, training=False):
        if embeddings.dtype != self.memory.dtype:
            embeddings = tf.cast(embeddings, self.memory.dtype)
        out = self.memory(embeddings, labels=labels, update=bool(training) and labels is not None)
        if labels is not None:
            self.add_loss(out.pop("loss"))
        return out

    def compute_output_spec(self, embeddings, labels=None, training=False):
        batch = embeddings.shape[0]
        return {
            "labels": keras.KerasTensor((batch,), dtype="int64"),
            "similarity": keras.KerasTensor((batch,), dtype=self.memory.dtype.name),
            "slot": keras.KerasTensor((batch,), dtype="int64"),
        }

    def save_own_variables(self, store) -> None:
        """The memory's whole state into Keras' weights store (`.weights.h5`, `.keras`)."""
        for name, variable in self.memory.state_variables().items():
            store[name] = variable.numpy()

    def load_own_variables(self, store) -> None:
        """The memory's state back from Keras' weights store; all checked before anything is assigned."""
        expected = self.memory.state_variables()
        stored = set(store.keys())
        if not stored:
            raise ValueError(
                f"layer {self.name!r}: the weights file holds no memory state (it was saved by a kshot-memory "
                "that did not save the memory, or by another layer); loading it would leave the memory empty. "
                "Save the model again with this version, or restore it with tf.train.Checkpoint"
            )
        if stored != set(expected):
            raise ValueError(
                f"layer {self.name!r}: the weights file holds memory arrays {sorted(stored)}, but this layer's "
                f"{type(self.memory).__name__} has {sorted(expected)}; build the MemoryLayer with the settings "
                "it was saved with (memory kind, running_mean)"
            )
        values = {name: store[name][...] for name in expected}
        for name, variable in expected.items():
            if not variable.shape.is_compatible_with(values[name].shape) or values[name].dtype != variable.dtype.as_numpy_dtype:
                raise ValueError(
                    f"layer {self.name!r}: the saved memory's {name} is {values[name].dtype}{list(values[name].shape)}, "
                    f"this layer's is {variable.dtype.name}{variable.shape.as_list()}; build the MemoryLayer with the "
                    f"settings it was saved with (memory_size, key_dim, dtype)"
                )
        for name, variable in expected.items():
            variable.assign(values[name])

    def get_config(self) -> dict:
        """Settings only (name, trainable, memory kind and its settings); the state is saved by save_own_variables.

        The legacy HDF5 model format (`model.save("x.h5")`) saves only Keras weights and
        has no hook for the memory, so it is refused here, where it asks for the config.
        """
        _refuse_legacy_h5(self.name)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "memory_kind": type(self.memory).__name__,
            **self.memory.get_config(),
        }
