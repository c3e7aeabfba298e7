"""Frozen methods, many repeats at once: a chunk of repeats advanced by one traced call per shot.

A frozen repeat is a few dozen tiny matrix products; run one repeat at a time, the time
goes to per-call overhead. Here the memories of a chunk of repeats live in one batched
memory (memory_module.batched), so one graph call feeds and evaluates every repeat of the
chunk at one shot, and the chunk's answers are scored for all its repeats at once
(`chunk_results`). The schedules (shuffles, feed orders) are the per-repeat run's, the
unknown-answer guesses are drawn by the same function in the same order
(experiments.faces.scoring), and the answers are the per-repeat memory's to the last bit
(memory_module's batched memories are tested equal, repeat by repeat), so the results
are byte-identical to the per-repeat path's.

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
from experiments.faces import scoring
from experiments.faces.adapters import FrozenMethod
from experiments.faces.results import RepeatResult
from memory_module.labels import UNKNOWN_LABEL
from memory_module.readout import unit_rows

# Repeats per batched call. A write is a few hundred small ops whose dispatch costs nearly as much
# at 250 repeats as at 1,000, so larger chunks run faster (measured: docs/lab/2026-12-batched-runner.md);
# a chunk this size of a frozen celebrity method takes about a second, so a killed run loses about a
# second of work. fitting_chunk shrinks it for large item sets.
DEFAULT_CHUNK_SIZE = 1000
CALL_BUDGET_BYTES = 256 * 2**20  # the largest tensor of one call (similarities) stays below this
# When the budget allows fewer repeats than this per call, the memory's own work outweighs the
# per-call overhead batching saves (and memory_module.philox's noise in plain ops costs more per
# slot than TensorFlow's native generator): such a method runs one repeat at a time.
MIN_CHUNK = 32


@dataclass(frozen=True)
class ChunkAnswers:
    """What the chunk's memories answered at every iteration, one entry per iteration, repeats on axis 0."""

    loss: list  # float32 [R] each: the batch loss of the feed before the evaluation (0 at 0 shots)
    labels: list  # int64 [R, E] each: dense class ids, UNKNOWN_LABEL where nothing is stored
    slots: list  # int64 [R] each
    bytes: list  # int64 [R] each
    seconds: list  # float: the iteration's call, shared by the chunk's repeats
    evaluate: list  # int32 [R, E] each: the items evaluated (the schedules' indices, stacked once)


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
    """A frozen method's memory for `repeats` repeats at once, with one traced call per iteration.

    The items' unit embeddings are computed once and stay in the graph; a call takes the
    feed and evaluation indices of every repeat and gathers its queries itself, so neither
    a repeats x items x d copy nor its normalisation is paid per call.
    """

    def __init__(self, adapter: FrozenMethod, repeats: int):
        self.repeats = repeats
        n_items = len(adapter.embeddings)
        # Store-all's table starts with one row per class (what one shot feeds) and doubles as it
        # fills, instead of its default 1,024 rows: a lookup reads every row, and at a few shots
        # most of a larger table would be empty.
        classes = int(adapter.labels.max()) + 1 if n_items else 1
        fits = {"initial_capacity": classes} if "initial_capacity" in adapter.memory.get_config() else {}
        self.memory = memory = memory_module.batched(adapter.memory, repeats, **fits)
        unit = unit_rows(tf.constant(adapter.embeddings), axis=1)
        labels = tf.constant(adapter.labels)
        indices = tf.TensorSpec([repeats, None], tf.int32)
        # autograph=False: the memories use tf.cond / tf.while_loop explicitly, and converting
        # their Python to graph code costs more than the whole chunk's arithmetic.

        @tf.function(input_signature=[indices, indices], autograph=False)
        def feed_then_lookup(feed, evaluate):
            loss = memory(tf.gather(unit, feed), tf.gather(labels, feed), update=True, normalized=True)["loss"]
            return loss, memory.lookup(tf.gather(unit, evaluate), normalized=True).labels, memory.usage()

        self._feed_then_lookup = feed_then_lookup
        self._unit = unit
        self._empty_answers: dict = {}  # evaluated items per repeat -> the reset memories' 0-shot answers

    def _lookup_only(self, evaluate):
        """The 0-shot evaluation of a freshly reset memory, eagerly (cheaper than tracing a second graph).

        Reset leaves every repeat in the same state but its generator's seed, which a lookup
        never reads, so the answer of one chunk's reset memories is every chunk's: it is
        computed once per number of evaluated items and kept. An empty memory answers
        UNKNOWN_LABEL whatever it is asked, so it is asked about one item per repeat (a
        full lookup copies every query, tens of MB for a large chunk); should a memory
        answer anything else, the whole lookup is made.
        """
        known = self._empty_answers.get(evaluate.shape[1])
        if known is None:
            probe = self.memory.lookup(tf.gather(self._unit, evaluate[:, :1]), normalized=True).labels.numpy()
            if probe.size and (probe == UNKNOWN_LABEL).all():
                labels = np.full(evaluate.shape, UNKNOWN_LABEL, probe.dtype)
            else:
                labels = self.memory.lookup(tf.gather(self._unit, evaluate), normalized=True).labels.numpy()
            usage = self.memory.usage()
            known = (np.zeros([self.repeats], np.float32), labels, usage.slots.numpy(), usage.bytes.numpy())
            for array in known:
                array.setflags(write=False)  # shared by every chunk: scoring copies before it writes
            self._empty_answers[evaluate.shape[1]] = known
        return known

    def resize(self, memory_size: int) -> None:
        """Give the memories `memory_size` slots (memory_module's batched `resize`); a new size, new 0-shot footprints."""
        self.memory.resize(memory_size)
        self._empty_answers.clear()

    def run(self, seeds: list[int], schedules: list[list]) -> ChunkAnswers:
        """Every iteration of every repeat; `seeds` and `schedules` (protocol iterations) one per repeat.

        A chunk shorter than `repeats` is padded with copies of its last repeat, whose
        answers are dropped (each repeat's state is its own, so padding changes nothing).
        """
        used = len(seeds)
        pad = self.repeats - used
        seeds = list(seeds) + [seeds[-1]] * pad
        schedules = list(schedules) + [schedules[-1]] * pad
        self.memory.reset(seeds)
        answers = ChunkAnswers([], [], [], [], [], [])
        for i in range(len(schedules[0])):
            feed = np.stack([s[i].feed for s in schedules]).astype(np.int32)
            evaluate = np.stack([s[i].evaluate for s in schedules]).astype(np.int32)
            start = time.perf_counter()
            if feed.shape[1] == 0:
                loss, labels, slots, nbytes = self._lookup_only(evaluate)
            else:
                loss, labels, usage = self._feed_then_lookup(feed, evaluate)
                loss, labels, slots, nbytes = loss.numpy(), labels.numpy(), usage.slots.numpy(), usage.bytes.numpy()
            answers.loss.append(loss[:used])
            answers.labels.append(labels[:used])
            answers.slots.append(slots[:used])
            answers.bytes.append(nbytes[:used])
            answers.evaluate.append(evaluate[:used])
            answers.seconds.append(time.perf_counter() - start)
        return answers


_TRACED: dict = {}  # settings but the size -> (embeddings, labels, BatchedFrozen); see batched_frozen
# A run lists each method's sizes one after another (methods.run_models), so the last two
# methods' chunks are all it reuses; each entry holds a chunk of memories (up to hundreds of MB).
MAX_TRACED = 2


def batched_frozen(adapter: FrozenMethod, repeats: int) -> BatchedFrozen:
    """A BatchedFrozen for `adapter`: one already traced for the same method on the same items
    at another memory size, resized (memory_module's batched `resize`), or a new one.

    Tracing and optimising a memory's graph takes longer than running a chunk of it, and a
    footprint study runs each method at many sizes: this keeps it to one trace per method.
    The entries hold the item arrays they were traced on, so their ids stay theirs.
    """
    config = adapter.memory.get_config()
    if "memory_size" not in config:
        return BatchedFrozen(adapter, repeats)
    settings = tuple(sorted((name, repr(value)) for name, value in config.items() if name != "memory_size"))
    key = (type(adapter.memory), settings, adapter.memory.vote_k, repeats, id(adapter.embeddings), id(adapter.labels))
    if key in _TRACED:
        frozen = _TRACED[key][2]
        frozen.resize(config["memory_size"])
        return frozen
    frozen = BatchedFrozen(adapter, repeats)
    if len(_TRACED) >= MAX_TRACED:
        del _TRACED[next(iter(_TRACED))]
    _TRACED[key] = (adapter.embeddings, adapter.labels, frozen)
    return frozen


def chunk_results(model: str, repeats: list[int], rngs: list, schedules: list[list], answers: ChunkAnswers,
                  labels: np.ndarray, n_classes: int) -> list[RepeatResult]:
    """The RepeatResult of every repeat of a chunk, scored as run_repeat scores one repeat.

    `rngs`: each repeat's (model, repeat) generator, after the memory seed was drawn from
    it; unknown answers are guessed from it in iteration order (experiments.faces.scoring),
    exactly as the per-repeat path guesses, and the rest is counted for all repeats at once.
    """
    start = time.perf_counter()
    count, used = len(schedules[0]), len(repeats)
    predicted = [a.copy() for a in answers.labels]
    for r, rng in enumerate(rngs):
        for i in range(count):
            if (predicted[i][r] < 0).any():
                predicted[i][r] = scoring.guess_unknown(predicted[i][r], rng, n_classes)
    confusion = np.zeros((used, count, n_classes, n_classes), np.int64)
    n_correct = np.zeros((used, count), np.int64)
    for i in range(count):
        truth = labels[answers.evaluate[i]]
        confusion[:, i] = scoring.confusions(truth, predicted[i], n_classes)
        n_correct[:, i] = np.sum(truth == predicted[i], axis=1)
    feed = np.full((used, count, n_classes), -1, np.int64)
    for r, schedule in enumerate(schedules):
        for i, it in enumerate(schedule):
            feed[r, i, : it.feed.size] = it.feed
    scored = (time.perf_counter() - start) / (used * count)
    seconds = np.array(answers.seconds) / used + scored
    shots = np.array([it.shots for it in schedules[0]], np.int64)
    n_eval = np.array([it.evaluate.size for it in schedules[0]], np.int64)
    # + 0.0 as FrozenMethod.step: a zero loss is reported as 0.0, never -0.0.
    loss = np.stack(answers.loss, axis=1).astype(np.float64) + 0.0
    slots, nbytes = np.stack(answers.slots, axis=1), np.stack(answers.bytes, axis=1)
    return [
        RepeatResult(model=model, repeat=repeat, shots=shots.copy(), n_eval=n_eval.copy(), n_correct=n_correct[r],
                     memory_bytes=nbytes[r].astype(np.int64), slots_in_use=slots[r].astype(np.int64),
                     memory_loss=loss[r], seconds=seconds.copy(), confusion=confusion[r], feed=feed[r])
        for r, repeat in enumerate(repeats)
    ]


def same_shapes(schedules: list[list]) -> bool:
    """Whether the repeats feed and evaluate the same number of items at every iteration (batchable)."""
    first = schedules[0]
    return all(
        len(s) == len(first) and all(a.feed.size == b.feed.size and a.evaluate.size == b.evaluate.size
                                     for a, b in zip(s, first))
        for s in schedules
    )
