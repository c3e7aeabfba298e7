"""Memories answering a sequence one drawing at a time, each answered before it is written.

Two measurements feed drawings this way: the per-shot accuracy of Kaiser-style
episodes (below), as the paper's train.py logs it, and the life-long stream
(stream.py). Both go through `make_sequence_runner`, so every memory of memory_module
sees a sequence the same way.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

import memory_module
from experiments.core.metrics import accuracy_by_shot, interval, shots_seen
from experiments.episodic.data import EpisodicData
from experiments.episodic.episodes import alphabet_pools, sample_episodes
from experiments.episodic.evaluation import touched_rows
from experiments.episodic.evaluation.task_spec import TaskSpec

SEQUENCE_CHUNK = 250  # sequences per batched call, at most
CHUNK_BUDGET_BYTES = 256 * 2**20  # the keys of one chunk's memories stay below this
# Below this many memories per call, batching does not pay: a large memory's own work (a
# matmul over thousands of slots, the noise of every slot) outweighs the per-call overhead
# it saves, and the noise, computed by memory_module.philox in plain ops, costs more per slot
# than TensorFlow's native generator. Such memories run one task at a time.
MIN_CHUNK = 32


def chunk_that_fits(memory, chunk: int) -> int:
    """`chunk`, or fewer memories when their keys together would pass CHUNK_BUDGET_BYTES.

    A batched memory holds every repeat's keys: the Kaiser memory's memory_size rows,
    store-all's allocated rows, class means' rows, each of key_dim floats (8,192 x 768
    floats for the shipped checkpoint's memory: 25 MB a task, so chunks of 10, below
    MIN_CHUNK: that memory answers one task at a time).
    """
    rows = getattr(memory, "memory_size", None) or getattr(memory, "initial_capacity", None) \
        or getattr(memory, "initial_classes", 1)
    per_memory = rows * (memory.key_dim * memory.dtype.size + 24)  # keys, and values/ages/counts per row
    return max(1, min(chunk, CHUNK_BUDGET_BYTES // per_memory))


def make_sequence_runner(memory):
    """A tf.function feeding keys [L, d] with labels [L] to the memory one at a time; returns answers [L].

    Every memory gets a runner of its own, compiled over its variables. The stream traces
    one per memory and calls each once; TensorFlow's retracing detector counts the traces of
    all closures of one Python function together (it keys on their shared code object) and
    would warn about that, so the runner wraps a partial, which it counts apart.
    """
    return tf.function(functools.partial(_feed_one_at_a_time, memory), reduce_retracing=True)


def _feed_one_at_a_time(memory, keys, labels):
    length = tf.shape(labels)[0]
    answers = tf.TensorArray(tf.int64, size=length)
    for t in tf.range(length):
        out = memory(keys[t : t + 1], labels=labels[t : t + 1], update=True)
        answers = answers.write(t, out["labels"][0])
    return answers.stack()


def one_at_a_time(memory, chunk: int) -> bool:
    """Whether tasks or sequences of `memory` run one at a time: asked (chunk 0), no batched form
    (query_projection), or too large a memory for a chunk of MIN_CHUNK."""
    if chunk == 0 or getattr(memory, "query_projection", False):
        return True
    return chunk_that_fits(memory, chunk) < min(chunk, MIN_CHUNK)


def padded_chunks(count: int, size: int):
    """(items, padded) per chunk of `count` items: `padded` repeats the last item up to `size`.

    A batched runner is traced for exactly `size` states, so the last, shorter chunk is
    padded; the caller keeps the first `len(items)` answers and drops the padding's.
    """
    for first in range(0, count, size):
        items = np.arange(first, min(first + size, count))
        yield items, np.concatenate([items, np.full(size - items.size, items[-1])])


def make_batched_sequence_runner(memory, repeats: int):
    """`make_sequence_runner` for `repeats` sequences at once through the memory's batched twin.

    keys [R, L, d], labels [R, L] -> answers [R, L]; each sequence starts from a cleared
    memory with its own seed (memory.reset()) and gets that runner's answers to the last bit.
    """
    twin = memory_module.batched(memory, repeats)
    seeds = [memory.seed] * repeats
    feed = tf.function(functools.partial(_feed_batched, twin), reduce_retracing=True, autograph=False)

    def run(keys, labels):
        twin.reset(seeds)
        return feed(keys, labels)

    return run


def _feed_batched(twin, keys, labels):
    length = tf.shape(labels)[1]

    def body(t, answers):
        out = twin(keys[:, t : t + 1], labels[:, t : t + 1], update=True)
        return t + 1, answers.write(t, out["labels"][:, 0])

    _, answers = tf.while_loop(lambda t, _: t < length, body, (tf.constant(0), tf.TensorArray(tf.int64, size=length)))
    return tf.transpose(answers.stack())


def sequence_answers(memory, keys: np.ndarray, labels: np.ndarray, chunk: int) -> np.ndarray:
    """[R, L] answers of the memory to R sequences (keys [R, L, d], labels [R, L]), each from a cleared memory.

    `chunk` sequences per batched call (0: one at a time through make_sequence_runner), the
    paper's Kaiser memory as the rows each sequence writes (touched_rows); the answers do not
    depend on it.
    """
    count = len(labels)
    if chunk and touched_rows.supports(memory, labels.shape[1]):
        return touched_rows.sequence_answers(memory, keys, labels, chunk)
    if one_at_a_time(memory, chunk):
        run = make_sequence_runner(memory)
        out = []
        for e in range(count):
            memory.reset()
            out.append(run(tf.constant(keys[e]), tf.constant(labels[e])).numpy())
        return np.stack(out)
    size = min(chunk_that_fits(memory, chunk), count)
    run = make_batched_sequence_runner(memory, size)
    return np.concatenate([run(tf.constant(keys[padded]), tf.constant(labels[padded])).numpy()[: part.size]
                           for part, padded in padded_chunks(count, size)])


def per_shot_accuracy(keys: np.ndarray, data: EpisodicData, memory, ways: int, tasks: TaskSpec,
                      chunk: int = SEQUENCE_CHUNK) -> list[dict]:
    """Accuracy at the 0th..(tasks.rounds - 1)th earlier showing, over tasks.per_shot_count Kaiser-style
    episodes of width `ways` (every class shown once per round, the memory predicting each drawing
    before it is written), with a 95% interval over episodes; with tasks.within_alphabet the
    classes of each episode come from one alphabet. The episodes are answered `chunk` at a time."""
    rounds = tasks.rounds
    by_class = data.indices_by_class()
    pools = alphabet_pools(data, ways) if tasks.within_alphabet else None
    rng = np.random.default_rng([tasks.seed, ways, rounds, 7])
    batches = [sample_episodes(by_class, rng, ways, ways * rounds, 1, pools) for _ in range(tasks.per_shot_count)]
    labels = np.stack([batch.labels[:, 0] for batch in batches])
    answers = sequence_answers(memory, np.stack([keys[batch.indices[:, 0]] for batch in batches]), labels, chunk)
    per_episode = np.array([accuracy_by_shot(answers[e] == labels[e], shots_seen(labels[e]), rounds - 1)
                            for e in range(len(batches))])  # every round has all shots
    return [{"shot": k, **interval(per_episode[:, k])} for k in range(rounds)]
