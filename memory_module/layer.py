"""A Keras 3 layer around a memory, so a model can be embedder -> memory.

The layer owns a KaiserMemory (or any other memory of memory_module) as an attribute;
its tf.Variables are tracked, so tf.train.Checkpoint(model=model) saves and
restores the memory with the model's weights, and none of them is trainable.

call(embeddings, labels=None, training=False):
  - returns the memory's answers {labels, similarity, slot} (before any write);
  - with labels, adds the memory's margin loss to the layer's losses (so `fit`
    and custom loops pick it up through `model.losses`);
  - with labels and training=True, writes the batch into the memory after the
    loss is taken (the paper's order: predict, score, then update).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from memory_module.baseline import StoreAllNearestNeighbour
from memory_module.fixed_baselines import ClassBalancedReservoir, ClassMeans, FifoBuffer
from memory_module.memory import KaiserMemory

_KINDS = {
    kind.__name__: kind
    for kind in (KaiserMemory, StoreAllNearestNeighbour, FifoBuffer, ClassBalancedReservoir, ClassMeans)
}


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

    def get_config(self) -> dict:
        """Settings only (name, trainable, memory kind and its settings); the state goes in checkpoints."""
        return {
            "name": self.name,
            "trainable": self.trainable,
            "memory_kind": type(self.memory).__name__,
            **self.memory.get_config(),
        }
