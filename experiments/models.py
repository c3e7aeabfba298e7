"""The models a k-shot run compares, behind one small adapter interface.

Every adapter answers the same four questions, so the runner holds one loop:
    start_repeat(seed)      forget everything learned (memory cleared, fine-tuned weights reset)
    step(feed, evaluate)    feed a batch of dataset items (may be empty), then predict the
                            evaluated ones: (memory loss of the batch, dense class ids, with
                            memory_module.UNKNOWN_LABEL where nothing is stored)
    memory_bytes(), slots_in_use()

- `baseline`: store-all 1-NN on embeddings computed once ("FaceNet alone" in the blog);
  NumPy over the stored indices, checked equal to memory_module.StoreAllNearestNeighbour.
- `memory`: the Kaiser memory (memory_module.KaiserMemory) on the same embeddings.
- `memory_finetune_phase_off` / `_on` (the blog's code: keys from the learn pass) and
  `..._consistent` (the memory rebuilt from inference-mode keys after every learn
  step): the memory loss trains FaceNet from [finetune] trainable_from up; see
  experiments.finetuned.

Items are identified by their index in the dataset: frozen adapters look rows up in
the precomputed embedding matrix; the fine-tuning adapter looks up prewhitened crops.
"""

from __future__ import annotations

import numpy as np

from experiments.config import MemorySection
from experiments.finetuned import FinetunedMemory  # noqa: F401  (the fine-tuned adapter, in its own module)


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
        query_projection=settings.query_projection,
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
