"""Frozen methods, many repeats at once: a chunk of repeats advanced by one traced call per shot.

A frozen repeat is a few dozen tiny matrix products; run one repeat at a time, the time
goes to per-call overhead. Here the memories of a chunk of repeats live in one batched
memory (memory_module.batched), so one graph call feeds and evaluates every repeat of the
chunk at one shot. The answers are then handed, repeat by repeat, to the ordinary
`run_repeat` through `Replay`, an adapter that serves the chunk's answers in order: the
shuffles, feed orders, unknown-answer guesses and scoring stay the one code path the
per-repeat run uses, and the answers are the per-repeat memory's to the last bit
(memory_module's batched memories are tested equal, repeat by repeat).

What is batched: frozen methods (experiments.faces.adapters.FrozenMethod) whose memory has
a batched form, in closed-set runs (an open-set run evaluates a different number of
items per repeat), when at least MIN_CHUNK repeats fit a call. Everything else keeps the
per-repeat loop, with the same results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

import memory_module
from experiments.faces.adapters import FrozenMethod

DEFAULT_CHUNK_SIZE = 250  # repeats per batched call: 1,000 repeats in 4 calls per shot
CALL_BUDGET_BYTES = 256 * 2**20  # the largest tensor of one call (similarities) stays below this
# When the budget allows fewer repeats than this per call, the memory's own work outweighs the
# per-call overhead batching saves (and memory_module.philox's noise in plain ops costs more per
# slot than TensorFlow's native generator): such a method runs one repeat at a time.
MIN_CHUNK = 32


@dataclass(frozen=True)
class StepAnswers:
    """What a frozen adapter's step reports for one repeat at one iteration."""

    loss: float
    labels: np.ndarray  # int64 [E] dense class ids, UNKNOWN_LABEL where nothing is stored
    similarity: np.ndarray  # [E] similarity behind each answer
    slots: int
    bytes: int
    seconds: float  # this repeat's share of the chunk's call


def batchable(adapter, config) -> bool:
    """Whether `adapter` runs in chunks: a frozen memory with a batched form, in a closed-set run."""
    if not isinstance(adapter, FrozenMethod) or config.open_set.strangers:
        return False
    return not getattr(adapter.memory, "query_projection", False)


def check_chunk_size(chunk_size: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1 (repeats per batched call), got {chunk_size!r}")
    return chunk_size


def fitting_chunk(chunk_size: int, n_items: int, memory_size: int) -> int:
    """`chunk_size`, or fewer repeats when their similarity matrices would pass CALL_BUDGET_BYTES.

    One call holds, per repeat, a similarity for every evaluated item against every key:
    at most n_items x max(n_items, memory_size) floats (store-all holds every item). On 117
    face embeddings that is 55 kB and the chunk stays whole; on 3,440 Omniglot drawings it
    is 47 MB, so 5 repeats, fewer than MIN_CHUNK: that run goes one repeat at a time.
    """
    per_repeat = 4 * n_items * max(n_items, memory_size)
    return max(1, min(chunk_size, CALL_BUDGET_BYTES // per_repeat))


class BatchedFrozen:
    """A frozen method's memory for `repeats` repeats at once, with one traced call per iteration."""

    def __init__(self, adapter: FrozenMethod, repeats: int):
        self.repeats = repeats
        self.embeddings = adapter.embeddings
        self.labels = adapter.labels
        # Store-all is fed at most every item once: a table of that many rows, not its default 1,024.
        fits = {"initial_capacity": len(self.embeddings)} if "initial_capacity" in adapter.memory.get_config() else {}
        self.memory = memory_module.batched(adapter.memory, repeats, **fits)
        memory = self.memory
        key_dim = self.embeddings.shape[1]
        queries = tf.TensorSpec([repeats, None, key_dim], tf.float32)
        # autograph=False: the memories use tf.cond / tf.while_loop explicitly, and converting
        # their Python to graph code costs more than the whole chunk's arithmetic.

        @tf.function(input_signature=[queries, tf.TensorSpec([repeats, None], tf.int64), queries], autograph=False)
        def feed_then_lookup(feed_q, feed_v, eval_q):
            loss = memory(feed_q, feed_v, update=True)["loss"]
            return loss, memory.lookup(eval_q), memory.usage()

        self._feed_then_lookup = feed_then_lookup

    def _lookup_only(self, eval_q):
        """The 0-shot evaluation, eagerly: once per chunk, cheaper than tracing a second graph."""
        return tf.zeros([self.repeats], tf.float32), self.memory.lookup(eval_q), self.memory.usage()

    def run(self, seeds: list[int], schedules: list[list]) -> list[list[StepAnswers]]:
        """Every iteration of every repeat; `seeds` and `schedules` (protocol iterations) one per repeat.

        A chunk shorter than `repeats` is padded with copies of its last repeat, whose
        answers are dropped (each repeat's state is its own, so padding changes nothing).
        """
        used = len(seeds)
        pad = self.repeats - used
        seeds = list(seeds) + [seeds[-1]] * pad
        schedules = list(schedules) + [schedules[-1]] * pad
        self.memory.reset(seeds)
        answers: list[list[StepAnswers]] = [[] for _ in range(used)]
        for i in range(len(schedules[0])):
            feed = np.stack([s[i].feed for s in schedules])
            evaluate = np.stack([s[i].evaluate for s in schedules])
            start = time.perf_counter()
            if feed.shape[1] == 0:
                loss, answer, usage = self._lookup_only(self.embeddings[evaluate])
            else:
                loss, answer, usage = self._feed_then_lookup(self.embeddings[feed], self.labels[feed],
                                                             self.embeddings[evaluate])
            loss, labels, similarity = loss.numpy(), answer.labels.numpy(), answer.similarity.numpy()
            slots, nbytes = usage.slots.numpy(), usage.bytes.numpy()
            share = (time.perf_counter() - start) / used
            for r in range(used):
                # + 0.0 as FrozenMethod.step: a zero loss is reported as 0.0, never -0.0.
                answers[r].append(StepAnswers(float(loss[r]) + 0.0, labels[r].astype(np.int64), similarity[r],
                                              int(slots[r]), int(nbytes[r]), share))
        return answers


def same_shapes(schedules: list[list]) -> bool:
    """Whether the repeats feed and evaluate the same number of items at every iteration (batchable)."""
    first = schedules[0]
    return all(
        len(s) == len(first) and all(a.feed.size == b.feed.size and a.evaluate.size == b.evaluate.size
                                     for a, b in zip(s, first))
        for s in schedules
    )


class Replay:
    """The adapter calls `run_repeat` makes, answered from one repeat's share of a chunk."""

    def __init__(self, seed: int, steps: list[StepAnswers], adapter: FrozenMethod):
        self.seed = seed
        self.steps = steps
        self.memory = adapter.memory  # its settings only; the state is the chunk's
        self.embeddings = adapter.embeddings
        self.last_similarity = np.zeros(0, np.float32)
        self._next = 0
        self._current: StepAnswers | None = None

    def start_repeat(self, seed: int) -> None:
        if seed != self.seed:
            raise RuntimeError(f"this repeat was computed with memory seed {self.seed}, but the run asks for {seed}")
        self._next = 0

    def step(self, feed: np.ndarray, evaluate: np.ndarray) -> tuple[float, np.ndarray]:
        self._current = self.steps[self._next]
        self._next += 1
        if self._current.labels.size != len(evaluate):
            raise RuntimeError(f"step {self._next - 1}: {self._current.labels.size} answers for {len(evaluate)} items")
        self.last_similarity = self._current.similarity
        return self._current.loss, self._current.labels

    def seconds(self) -> np.ndarray:
        return np.array([s.seconds for s in self.steps])

    def embeddings_of(self, indices: np.ndarray) -> np.ndarray:
        return self.embeddings[indices]

    def slots_in_use(self) -> int:
        return self._current.slots

    def memory_bytes(self) -> int:
        return self._current.bytes
