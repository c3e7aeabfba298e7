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

from experiments.core.metrics import accuracy_by_shot, interval, shots_seen
from experiments.episodic.data import EpisodicData
from experiments.episodic.episodes import alphabet_pools, sample_episodes
from experiments.episodic.evaluation.task_spec import TaskSpec


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


def per_shot_accuracy(keys: np.ndarray, data: EpisodicData, memory, ways: int, tasks: TaskSpec) -> list[dict]:
    """Accuracy at the 0th..(tasks.rounds - 1)th earlier showing, over tasks.per_shot_count Kaiser-style
    episodes of width `ways` (every class shown once per round, the memory predicting each drawing
    before it is written), with a 95% interval over episodes; with tasks.within_alphabet the
    classes of each episode come from one alphabet."""
    rounds = tasks.rounds
    by_class = data.indices_by_class()
    pools = alphabet_pools(data, ways) if tasks.within_alphabet else None
    rng = np.random.default_rng([tasks.seed, ways, rounds, 7])
    run = make_sequence_runner(memory)
    per_episode = []
    for _ in range(tasks.per_shot_count):
        batch = sample_episodes(by_class, rng, ways, ways * rounds, 1, pools)
        labels = batch.labels[:, 0]
        memory.reset()
        answers = run(tf.constant(keys[batch.indices[:, 0]]), tf.constant(labels)).numpy()
        shots = shots_seen(labels)
        per_episode.append(accuracy_by_shot(answers == labels, shots, rounds - 1))  # every round has all shots
    per_episode = np.array(per_episode)
    return [{"shot": k, **interval(per_episode[:, k])} for k in range(rounds)]
