"""Adapters: how one method takes part in the protocol, behind four calls.

Every adapter answers the same four calls, so the runner holds one loop:
    start_repeat(seed)      forget everything learned (memory cleared, fine-tuned weights reset)
    step(feed, evaluate)    feed a batch of dataset items (may be empty), then predict the
                            evaluated ones: (memory loss of the batch, dense class ids, with
                            memory_module.UNKNOWN_LABEL where nothing is stored)
    memory_bytes(), slots_in_use()   the memory's own `usage()` after the step
and, for open-set evaluation (experiments.open_set):
    last_similarity         the memory's similarity behind each answer of the last step
                            (-inf where the memory is empty)
    embeddings_of(indices)  the items' embeddings as the method sees them now

- `FrozenMethod`: any memory_module memory on embeddings computed once; the baseline
  is StoreAllNearestNeighbour, `memory` is KaiserMemory. Items are rows of the
  precomputed embedding matrix.
- `FinetunedMemory` (experiments.finetuned): the Kaiser memory whose loss trains FaceNet
  from [finetune] trainable_from up, with the blog's key rule (keys from the learn
  pass) or the consistent one (the memory rebuilt from inference-mode keys after
  every learn step). Items are rows of the prewhitened crops.

The builders at the bottom are what experiments.methods registers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from experiments.config import RunConfig
    from experiments.finetuned import FinetunedMemory
    from experiments.run_data import PreparedData


class FrozenMethod:
    """A memory on fixed embeddings, driven by one traced call per protocol iteration.

    Eager TensorFlow spends its Python overhead per small op, and an iteration of the
    protocol is dozens of small ops. Tracing feed + lookup + usage into one tf.function
    with a [None, d] signature runs each iteration as one graph call
    (benchmarks/protocol_speed.py measures it) and traces once per run, not once per
    repeat, because the same memory object is reset between repeats.
    """

    def __init__(self, memory, embeddings: np.ndarray, labels: np.ndarray):
        import tensorflow as tf

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


# ---------------------------------------------------------------- builders (see experiments.methods)


def build_store_all(data: "PreparedData", config: "RunConfig") -> FrozenMethod:
    from memory_module import StoreAllNearestNeighbour

    # It never holds more than every item of the dataset: allocate that, so it never grows.
    n, key_dim = data.embeddings.shape
    return FrozenMethod(StoreAllNearestNeighbour(key_dim=key_dim, initial_capacity=n), data.embeddings, data.labels)


def frozen_memory(**policy):
    """A builder of the Kaiser memory from [memory], with `policy` fixing some of its options."""

    def build(data: "PreparedData", config: "RunConfig") -> FrozenMethod:
        memory = config.memory.build(key_dim=data.embeddings.shape[1], seed=0, **policy)
        return FrozenMethod(memory, data.embeddings, data.labels)

    return build


def frozen_store(kind: str):
    """A builder of a fixed-size baseline of memory_module (`kind`) with [memory] memory_size slots."""

    def build(data: "PreparedData", config: "RunConfig") -> FrozenMethod:
        import memory_module

        store = getattr(memory_module, kind)(config.memory.memory_size, data.embeddings.shape[1])
        return FrozenMethod(store, data.embeddings, data.labels)

    return build


def build_class_means(data: "PreparedData", config: "RunConfig") -> FrozenMethod:
    from memory_module import ClassMeans

    return FrozenMethod(ClassMeans(data.embeddings.shape[1], initial_classes=len(data.class_names)),
                        data.embeddings, data.labels)


def finetuned(phase_train: bool, keys: str = "learn_pass"):
    def build(data: "PreparedData", config: "RunConfig") -> FinetunedMemory:
        from experiments.finetuned import FinetunedMemory

        memory = config.memory.build(key_dim=data.embeddings.shape[1], seed=0)
        return FinetunedMemory(data.facenet, data.crops, data.embeddings, data.labels, memory, config.finetune,
                               phase_train, keys)

    return build
