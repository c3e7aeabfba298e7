"""The four models a k-shot run compares, behind one small adapter interface.

Every adapter answers the same four questions, so the runner holds one loop:
    start_repeat(seed)      forget everything learned (memory cleared, fine-tuned weights reset)
    step(feed, evaluate)    feed a batch of dataset items (may be empty), then predict the
                            evaluated ones: (memory loss of the batch, dense class ids, with
                            memory_module.UNKNOWN_LABEL where nothing is stored)
    memory_bytes(), slots_in_use()

- `baseline`: store-all 1-NN on embeddings computed once ("FaceNet alone" in the blog);
  NumPy over the stored indices, checked equal to memory_module.StoreAllNearestNeighbour.
- `memory`: the Kaiser memory (memory_module.KaiserMemory) on the same embeddings.
- `memory_finetune_phase_off` / `_on`: the memory loss trains FaceNet. Each learn step
  runs FaceNet forward on the fed batch with the train-phase switch (BatchNorm batch
  statistics and Dropout) OFF or ON, takes one optimizer step on the memory loss,
  and writes that forward pass's embeddings into the memory. Evaluation always runs
  FaceNet in inference mode (switch off) so that the two models differ only in how
  they learn. Weights (BatchNorm moving statistics included) and the optimizer state
  are reset at the start of every repeat. Evaluation embeddings are recomputed only
  after the weights changed, and only for the images being evaluated.

Items are identified by their index in the dataset: frozen adapters look rows up in
the precomputed embedding matrix; the fine-tuning adapter looks up prewhitened crops.
"""

from __future__ import annotations

import numpy as np

from experiments.config import MemorySection, FinetuneSection


def _memory_module():
    import memory_module

    return memory_module


class _FrozenStep:
    """One traced call per iteration of a frozen-embedder memory: loss, write, lookup, state size.

    Eager TensorFlow spends ~1 ms of Python overhead per small op, and an iteration of
    the protocol is dozens of small ops. Tracing loss + write + lookup (and the
    slots-in-use and footprint read-outs) into one tf.function with a [None, d]
    signature runs each iteration as one graph call, about 10x faster
    (benchmarks/protocol_speed.py), and traces once per run, not once per repeat,
    because the same memory object is reset between repeats.

    The footprint is computed in the graph as the bytes of every state variable of
    the memory (tf.Module.variables and the noise generator's state);
    tests/test_runner.py checks that this equals
    KaiserMemory.footprint_bytes()["total"].
    """

    def _build_step(self, model, key_dim: int) -> None:
        import tensorflow as tf

        queries = tf.TensorSpec([None, key_dim], tf.float32)
        labels = tf.TensorSpec([None], tf.int64)

        state = list(model.variables)
        noise = getattr(getattr(model, "noise", None), "state", None)  # the age-noise generator's state
        if noise is not None and all(noise is not v for v in state):
            state.append(noise)

        def state_size():
            slots = tf.math.count_nonzero(model.values >= 0)
            footprint = tf.add_n([tf.size(v, out_type=tf.int64) * v.dtype.size for v in state])
            return slots, footprint

        @tf.function(input_signature=[queries, labels, queries])
        def feed_then_lookup(feed_q, feed_v, eval_q):
            loss = model.loss(feed_q, feed_v)
            model.write(feed_q, feed_v)
            return (loss, model.lookup(eval_q).labels, *state_size())

        @tf.function(input_signature=[queries])
        def lookup_only(eval_q):
            return (tf.constant(0.0, tf.float32), model.lookup(eval_q).labels, *state_size())

        self._feed_then_lookup = feed_then_lookup
        self._lookup_only = lookup_only

    def step(self, feed: np.ndarray, evaluate: np.ndarray) -> tuple[float, np.ndarray]:
        """Feed `feed` (may be empty), then predict `evaluate`: (memory loss of the feed, dense ids)."""
        eval_q = self.embeddings[evaluate]
        if len(feed) == 0:
            loss, predicted, slots, footprint = self._lookup_only(eval_q)
        else:
            loss, predicted, slots, footprint = self._feed_then_lookup(self.embeddings[feed], self.labels[feed], eval_q)
        self._slots, self._footprint = int(slots), int(footprint)
        return float(loss), predicted.numpy().astype(np.int64)

    def memory_bytes(self) -> int:
        return self._footprint

    def slots_in_use(self) -> int:
        return self._slots


class FrozenBaseline:
    """Store-all 1-NN on fixed embeddings, in NumPy over the stored dataset indices.

    Same answers as memory_module.StoreAllNearestNeighbour (cosine similarity of unit
    rows, the earliest stored item wins a tie; tests/test_runner.py checks it against
    that class repeat by repeat), without its per-call TensorFlow overhead, which made
    the baseline the slowest part of 1000 frozen repeats (benchmarks/protocol_speed.py).
    """

    name = "baseline"

    def __init__(self, embeddings: np.ndarray, labels: np.ndarray):
        vectors = np.asarray(embeddings, dtype=np.float32)
        norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.float32(1e-12))
        self.unit = (vectors / norms).astype(np.float32)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.stored = np.empty(0, np.int64)

    def start_repeat(self, seed: int) -> None:
        self.stored = np.empty(0, np.int64)

    def step(self, feed: np.ndarray, evaluate: np.ndarray) -> tuple[float, np.ndarray]:
        from memory_module import UNKNOWN_LABEL

        if len(feed):
            self.stored = np.concatenate([self.stored, np.asarray(feed, np.int64)])
        if self.stored.size == 0:
            return 0.0, np.full(len(evaluate), UNKNOWN_LABEL, np.int64)
        similarity = self.unit[evaluate] @ self.unit[self.stored].T
        return 0.0, self.labels[self.stored[np.argmax(similarity, axis=1)]]

    def slots_in_use(self) -> int:
        return int(self.stored.size)

    def memory_bytes(self) -> int:
        """Bytes of what is stored: each row's key (float32) and label (int64), plus the count.

        StoreAllNearestNeighbour.footprint_bytes() reports its allocated capacity, which
        grows by doubling and starts large, so on a small dataset it is a constant that
        hides the point of the comparison: the baseline's footprint grows with every
        image it is shown, the Kaiser memory's does not.
        """
        return int(self.stored.size) * (self.unit.shape[1] * 4 + 8) + 8


def build_kaiser_memory(settings: MemorySection, key_dim: int, seed: int):
    mm = _memory_module()
    return mm.KaiserMemory(
        memory_size=settings.memory_size,
        key_dim=key_dim,
        choose_k=settings.choose_k,
        alpha=settings.alpha,
        age_noise=settings.age_noise,
        seed=seed,
        vote_k=settings.vote_k,
        running_mean=settings.running_mean,
    )


class FrozenMemory(_FrozenStep):
    """The Kaiser memory on fixed embeddings: loss, write, then lookup, per iteration."""

    name = "memory"

    def __init__(self, embeddings: np.ndarray, labels: np.ndarray, settings: MemorySection):
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.settings = settings
        self.memory = build_kaiser_memory(settings, self.embeddings.shape[1], seed=0)
        self._build_step(self.memory, self.embeddings.shape[1])

    def start_repeat(self, seed: int) -> None:
        # Each repeat's noise is seeded from the repeat's generator, so a repeat's result
        # does not depend on which repeats ran before it in this process (that is what
        # makes a resumed run equal an uninterrupted one).
        self.memory.reset(seed=seed)


class FinetunedMemory:
    """The Kaiser memory whose loss trains FaceNet; train-phase switch OFF or ON."""

    def __init__(
        self,
        name: str,
        facenet,
        crops: np.ndarray,
        initial_embeddings: np.ndarray,
        labels: np.ndarray,
        memory_settings: MemorySection,
        finetune: FinetuneSection,
        phase_train: bool,
    ):
        self.name = name
        self.facenet = facenet
        self.crops = crops
        self.initial_embeddings = np.asarray(initial_embeddings, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.memory_settings = memory_settings
        self.finetune = finetune
        self.phase_train = phase_train
        self.initial_weights = [np.array(w, copy=True) for w in facenet.get_weights()]
        self.memory = None
        self.optimizer = None
        self.weights_changed = False
        # Inference-mode re-embedding after the weights changed: one traced function that
        # reads the current weights, `finetune.batch_size` images per forward pass.
        from facenet_tf import Embedder

        self.embed_crops = Embedder(facenet, batch_size=finetune.batch_size, progress=False).embed_crops

    def _make_optimizer(self):
        import keras

        if self.finetune.optimizer == "adam":
            return keras.optimizers.Adam(learning_rate=self.finetune.learning_rate)
        return keras.optimizers.SGD(learning_rate=self.finetune.learning_rate)

    def start_repeat(self, seed: int) -> None:
        self.facenet.set_weights(self.initial_weights)
        # Dropout masks under phase ON come from Keras SeedGenerator states, which are
        # not weights (set_weights leaves them) and start from an unseeded value when the
        # model is built. Set each to the repeat's seed so a repeat is the same in any process.
        for index, variable in enumerate(v for v in self.facenet.variables if "seed_generator_state" in v.path):
            variable.assign(np.array([int(seed), index], dtype=variable.dtype))
        self.optimizer = self._make_optimizer()
        if self.memory is None:
            self.memory = build_kaiser_memory(self.memory_settings, self.initial_embeddings.shape[1], seed)
        self.memory.reset(seed=seed)
        self.weights_changed = False

    def learn(self, indices: np.ndarray) -> float:
        import tensorflow as tf

        crops = tf.constant(self.crops[indices])
        labels = self.labels[indices]
        variables = self.facenet.trainable_variables
        with tf.GradientTape() as tape:
            queries = self.facenet(crops, training=self.phase_train)
            loss = self.memory.loss(queries, labels)
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
        self.memory.write(tf.stop_gradient(queries), labels)
        return float(loss)

    def embed(self, indices: np.ndarray) -> np.ndarray:
        """Inference-mode embeddings of `indices` under the current weights."""
        if not self.weights_changed:
            return self.initial_embeddings[indices]
        return np.asarray(self.embed_crops(self.crops[indices]), dtype=np.float32)

    def predict(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(self.memory.lookup(self.embed(indices)).labels, dtype=np.int64)

    def step(self, feed: np.ndarray, evaluate: np.ndarray) -> tuple[float, np.ndarray]:
        loss = self.learn(feed) if len(feed) else 0.0
        return loss, self.predict(evaluate)

    def memory_bytes(self) -> int:
        return int(self.memory.footprint_bytes()["total"])

    def slots_in_use(self) -> int:
        return int(self.memory.slots_in_use())

    def weights_digest(self) -> str:
        """A short hash of the current FaceNet weights (tests use it to see change and reset)."""
        import hashlib

        digest = hashlib.sha256()
        for w in self.facenet.get_weights():
            digest.update(np.ascontiguousarray(w).tobytes())
        return digest.hexdigest()[:16]
