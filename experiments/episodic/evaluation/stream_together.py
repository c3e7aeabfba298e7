"""Several memories fed one stream together: one traced call advances all of them, drawing by drawing.

What is independent in the life-long stream (stream.py) is its readouts: every readout and
size answers the same seeded order of drawings, and none of them sees another. There is
only one order per evaluation, so there are no repeats of one memory to put side by side
in a batched twin (memory_module.batched holds R states of one kind with one size; the
stream's memories differ in kind or in size). What can be shared is the call: a chunk of
memories goes into one tf.function whose loop, at every drawing, asks each memory of the
chunk, then writes the drawing into it. One trace and one loop replace one of each per
memory, and TensorFlow may run the memories' independent ops side by side.

Each memory runs the ops its own runner (sequences.make_sequence_runner) would run, on its
own variables and generator, so its answers are that runner's to the last bit
(tests/experiments/test_stream_together.py checks every kind at several chunk sizes).
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import tensorflow as tf

from experiments.episodic.evaluation.sequences import make_sequence_runner


def check_stream_chunk(chunk: int | None) -> int | None:
    """`chunk` memories per call (None: all of them in one call), refused unless a positive integer."""
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"the stream's chunk must be an integer >= 1 (memories per traced call) or None (all), "
                         f"got {chunk!r}")
    return chunk


def make_shared_runner(memories: Sequence):
    """A tf.function feeding keys [L, d] with labels [L] to every memory of `memories` one drawing at a
    time, each answering before it is written; returns answers [len(memories), L].

    It wraps a partial for the reason make_sequence_runner does (the retracing detector
    would count the runners of all chunks together).
    """
    return tf.function(functools.partial(_feed_together, tuple(memories)), reduce_retracing=True)


def _feed_together(memories, keys, labels):
    length = tf.shape(labels)[0]
    answers = tf.TensorArray(tf.int64, size=length)
    for t in tf.range(length):
        step = [memory(keys[t : t + 1], labels=labels[t : t + 1], update=True)["labels"][0] for memory in memories]
        answers = answers.write(t, tf.stack(step))
    return tf.transpose(answers.stack())


def answers_together(memories: Sequence, keys: np.ndarray, labels: np.ndarray, chunk: int | None = None) -> np.ndarray:
    """[len(memories), L] answers of each memory, from cleared, to the stream (keys [L, d], labels [L]).

    `chunk` memories share a traced call (None: all); a chunk of 1 is the memory's own
    runner, make_sequence_runner. The answers do not depend on the chunk.
    """
    check_stream_chunk(chunk)
    keys, labels = tf.constant(keys), tf.constant(labels.astype(np.int64))
    size = len(memories) if chunk is None else chunk
    out = []
    for first in range(0, len(memories), size):
        part = list(memories[first : first + size])
        for memory in part:
            memory.reset()
        if len(part) == 1:
            out.append(make_sequence_runner(part[0])(keys, labels).numpy()[None])
        else:
            out.append(make_shared_runner(part)(keys, labels).numpy())
    return np.concatenate(out) if out else np.zeros((0, int(labels.shape[0])), np.int64)
