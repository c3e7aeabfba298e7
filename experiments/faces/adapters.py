"""Adapters: how one method takes part in the protocol, behind four calls.

Every adapter answers the same four calls, so the runner holds one loop:
    start_repeat(seed)      forget everything learned (memory cleared, fine-tuned weights reset)
    step(feed, evaluate)    feed a batch of dataset items (may be empty), then predict the
                            evaluated ones: (memory loss of the batch, dense class ids, with
                            memory_module.UNKNOWN_LABEL where nothing is stored)
    memory_bytes(), slots_in_use()   the memory's own `usage()` after the step
and, for open-set evaluation (experiments.faces.open_set):
    last_similarity         the memory's similarity behind each answer of the last step
                            (-inf where the memory is empty)
    embeddings_of(indices)  the items' embeddings as the method sees them now

- `FrozenMethod`: any memory_module memory on embeddings computed once; the baseline
  is StoreAllNearestNeighbour, `memory` is KaiserMemory. Items are rows of the
  precomputed embedding matrix.
- `FinetunedMemory` (experiments.faces.finetuned): the Kaiser memory whose loss trains FaceNet
  from [finetune] trainable_from up, with the blog's key rule (keys from the learn
  pass) or the consistent one (the memory rebuilt from inference-mode keys after
  every learn step). Items are rows of the prewhitened crops.

`build_adapter` builds any model of experiments.faces.methods' registry.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from experiments.core.memories import build_memory
from experiments.faces.finetuned import FinetunedMemory
from experiments.faces.methods import METHODS, split_name
from experiments.faces.run_data import PreparedData
from experiments.faces.settings import RunConfig


class FrozenMethod:
    """A memory on fixed embeddings, driven by one traced call per protocol iteration.

    Eager TensorFlow spends its Python overhead per small op, and an iteration of the
    protocol is dozens of small ops. Tracing feed + lookup + usage into one tf.function
    with a [None, d] signature runs each iteration as one graph call
    (benchmarks/protocol_speed.py measures it) and traces once per run, not once per
    repeat, because the same memory object is reset between repeats.
    """

    def __init__(self, memory, embeddings: np.ndarray, labels: np.ndarray):
        self.memory = memory
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.int64)
        self._usage = (0, 0)
        self.last_similarity = np.zeros(0, np.float32)
        queries = tf.TensorSpec([None, self.embeddings.shape[1]], tf.float32)

        @tf.function(input_signature=[queries, tf.TensorSpec([None], tf.int64), queries])
        def feed_then_lookup(feed_q, feed_v, eval_q):
            loss = memory(feed_q, feed_v, update=True)["loss"]
            return loss, memory.lookup(eval_q), memory.usage()

        @tf.function(input_signature=[queries])
        def lookup_only(eval_q):
            return tf.constant(0.0, tf.float32), memory.lookup(eval_q), memory.usage()

        self._feed_then_lookup = feed_then_lookup
        self._lookup_only = lookup_only

    def start_repeat(self, seed: int) -> None:
        # Each repeat's noise is seeded from the repeat's generator, so a repeat's result
        # does not depend on which repeats ran before it in this process (that is what
        # makes a resumed run equal an uninterrupted one).
        self.memory.reset(seed=seed)

    def step(self, feed: np.ndarray, evaluate: np.ndarray) -> tuple[float, np.ndarray]:
        eval_q = self.embeddings[evaluate]
        if len(feed) == 0:
            loss, answer, usage = self._lookup_only(eval_q)
        else:
            loss, answer, usage = self._feed_then_lookup(self.embeddings[feed], self.labels[feed], eval_q)
        self._usage = (int(usage.slots), int(usage.bytes))
        self.last_similarity = answer.similarity.numpy()
        # + 0.0: the store-all loss is a product with zero, which is -0.0 for some batches.
        return float(loss) + 0.0, answer.labels.numpy().astype(np.int64)

    def embeddings_of(self, indices: np.ndarray) -> np.ndarray:
        return self.embeddings[indices]

    def slots_in_use(self) -> int:
        return self._usage[0]

    def memory_bytes(self) -> int:
        return self._usage[1]


# ---------------------------------------------------------------- building a model's adapter


def build_adapter(model: str, data: PreparedData, config: RunConfig):
    """The adapter of a model; `method@size` builds the method with [memory] memory_size = size."""
    method_name, size = split_name(model)
    method = METHODS[method_name]
    if size is not None:
        config = dataclasses.replace(config, memory=dataclasses.replace(config.memory, memory_size=size))
    elif config.memory.is_sweep and method.bounded:
        raise ValueError(f"{model} has a memory-size sweep {list(config.memory.sizes)}; name one size: {model}@SIZE")
    n_items, key_dim = data.embeddings.shape
    # Store-all never holds more than every item of the dataset: allocate that, so it never grows.
    memory = build_memory(method.memory, key_dim, config.memory, seed=0, capacity=n_items,
                          classes=len(data.class_names), **method.options)
    if method.finetune is not None:
        return FinetunedMemory(data.facenet, data.crops, data.embeddings, data.labels, memory, config.finetune,
                               **method.finetune)
    return FrozenMethod(memory, data.embeddings, data.labels)
