"""Adapters: how one method takes part in the protocol, behind four calls.

Every adapter answers the same four calls, so the runner holds one loop:
    start_repeat(seed)      forget everything learned (memory cleared, fine-tuned weights reset)
    step(feed, evaluate)    feed a batch of dataset items (may be empty), then predict the
                            evaluated ones: (memory loss of the batch, dense class ids, with
                            memory_module.UNKNOWN_LABEL where nothing is stored)
    memory_bytes(), slots_in_use()   the memory's own `usage()` after the step

- `FrozenMethod`: any memory_module memory on embeddings computed once; the baseline
  is StoreAllNearestNeighbour, `memory` is KaiserMemory. Items are rows of the
  precomputed embedding matrix.
- `FinetunedMemory`: the Kaiser memory whose loss trains FaceNet. Each learn step runs
  FaceNet forward on the fed batch with the train-phase switch (BatchNorm batch
  statistics and Dropout) OFF or ON, takes one optimizer step on the memory loss, and
  writes that forward pass's embeddings into the memory. Evaluation always runs FaceNet
  in inference mode (switch off) so that the two variants differ only in how they
  learn. Weights (BatchNorm moving statistics included) and the optimizer state are
  reset at the start of every repeat. Evaluation embeddings are recomputed only after
  the weights changed, and only for the images being evaluated. Items are rows of the
  prewhitened crops.

The builders at the bottom are what experiments.methods registers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from experiments.config import RunConfig
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
        queries = tf.TensorSpec([None, self.embeddings.shape[1]], tf.float32)

        @tf.function(input_signature=[queries, tf.TensorSpec([None], tf.int64), queries])
        def feed_then_lookup(feed_q, feed_v, eval_q):
            loss = memory(feed_q, feed_v, update=True)["loss"]
            return loss, memory.lookup(eval_q).labels, memory.usage()

        @tf.function(input_signature=[queries])
        def lookup_only(eval_q):
            return tf.constant(0.0, tf.float32), memory.lookup(eval_q).labels, memory.usage()

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
            loss, predicted, usage = self._lookup_only(eval_q)
        else:
            loss, predicted, usage = self._feed_then_lookup(self.embeddings[feed], self.labels[feed], eval_q)
        self._usage = (int(usage.slots), int(usage.bytes))
        # + 0.0: the store-all loss is a product with zero, which is -0.0 for some batches.
        return float(loss) + 0.0, predicted.numpy().astype(np.int64)

    def slots_in_use(self) -> int:
        return self._usage[0]

    def memory_bytes(self) -> int:
        return self._usage[1]


class FinetunedMemory:
    """The Kaiser memory whose loss trains FaceNet; train-phase switch OFF or ON."""

    def __init__(self, facenet, crops: np.ndarray, initial_embeddings: np.ndarray, labels: np.ndarray,
                 config: "RunConfig", phase_train: bool):
        from facenet_tf import Embedder

        self.facenet = facenet
        self.crops = crops
        self.initial_embeddings = np.asarray(initial_embeddings, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.finetune = config.finetune
        self.phase_train = phase_train
        self.initial_weights = [np.array(w, copy=True) for w in facenet.get_weights()]
        self.memory = config.memory.build(key_dim=self.initial_embeddings.shape[1], seed=0)
        self.optimizer = None
        self.weights_changed = False
        # Inference-mode re-embedding after the weights changed: one traced function that
        # reads the current weights, `finetune.batch_size` images per forward pass.
        self.embed_crops = Embedder(facenet, batch_size=self.finetune.batch_size, progress=False).embed_crops

    def _make_optimizer(self):
        import keras

        optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
        return optimizers[self.finetune.optimizer](learning_rate=self.finetune.learning_rate)

    def start_repeat(self, seed: int) -> None:
        self.facenet.set_weights(self.initial_weights)
        # Dropout masks under phase ON come from Keras SeedGenerator states, which are
        # not weights (set_weights leaves them) and start from an unseeded value when the
        # model is built. Set each to the repeat's seed so a repeat is the same in any process.
        for index, variable in enumerate(v for v in self.facenet.variables if "seed_generator_state" in v.path):
            variable.assign(np.array([int(seed), index], dtype=variable.dtype))
        self.optimizer = self._make_optimizer()
        self.memory.reset(seed=seed)
        self.weights_changed = False

    def learn(self, indices: np.ndarray) -> float:
        import tensorflow as tf

        crops = tf.constant(self.crops[indices])
        labels = self.labels[indices]
        variables = self.facenet.trainable_variables
        with tf.GradientTape() as tape:
            queries = self.facenet(crops, training=self.phase_train)
            # Loss and write share one nearest-slot pool; the write stores stopped-gradient keys.
            loss = self.memory(queries, labels, update=True)["loss"]
        if self.phase_train:
            # A training-mode forward pass moves BatchNorm's moving statistics even when
            # the loss is zero, so inference embeddings must be recomputed after it.
            self.weights_changed = True
        gradients = tape.gradient(loss, variables)
        pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
        if pairs and float(loss) != 0.0:
            # A zero hinge loss has a zero gradient: skip the step (and the re-embedding).
            self.optimizer.apply_gradients(pairs)
            self.weights_changed = True
        return float(loss)

    def embed(self, indices: np.ndarray) -> np.ndarray:
        """Inference-mode embeddings of `indices` under the current weights."""
        if not self.weights_changed:
            return self.initial_embeddings[indices]
        return np.asarray(self.embed_crops(self.crops[indices]), dtype=np.float32)

    def step(self, feed: np.ndarray, evaluate: np.ndarray) -> tuple[float, np.ndarray]:
        loss = self.learn(feed) if len(feed) else 0.0
        return loss, np.asarray(self.memory.lookup(self.embed(evaluate)).labels, dtype=np.int64)

    def slots_in_use(self) -> int:
        return int(self.memory.usage().slots)

    def memory_bytes(self) -> int:
        return int(self.memory.usage().bytes)

    def weights_digest(self) -> str:
        """A short hash of the current FaceNet weights (tests use it to see change and reset)."""
        import hashlib

        digest = hashlib.sha256()
        for w in self.facenet.get_weights():
            digest.update(np.ascontiguousarray(w).tobytes())
        return digest.hexdigest()[:16]


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


def finetuned(phase_train: bool):
    def build(data: "PreparedData", config: "RunConfig") -> FinetunedMemory:
        return FinetunedMemory(data.facenet, data.crops, data.embeddings, data.labels, config, phase_train)

    return build
