"""The life-long stream's memories fed together through one traced call answer as each does alone.

Every stream readout kind (the Kaiser memory with age noise, FIFO, store-all, reservoir,
class means) at two sizes: 8 memories, fed at chunk sizes 1 (each through its own runner),
3 (does not divide 8), 8 and None (all), must give, memory by memory, the answers of
stream_answers (one memory at a time through sequences.make_sequence_runner), to the bit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.core.memories import build_memory
from experiments.core.settings import MemorySection
from experiments.episodic.evaluation import stream_together
from experiments.episodic.evaluation.stream import stream_answers, stream_evaluation
from experiments.episodic.evaluation.stream_together import answers_together
from experiments.episodic.settings import STREAM_READOUT_KINDS

READOUTS = ("store-all", "prototype", "memory", "fifo", "reservoir")
SIZES = (9, 14)


def small_memory(kind: str, size: int):
    # age noise on and merges possible: the Kaiser memory draws from its generator at every write
    return build_memory(kind, 16, MemorySection(memory_size=size, choose_k=min(8, size), age_noise=4.0), seed=3,
                        capacity=size, classes=size)


def clustered_stream(seed: int, classes: int = 12, per_class: int = 6):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    keys = (rng.normal(size=(classes, 16))[labels] + 0.6 * rng.normal(size=(labels.size, 16))).astype(np.float32)
    order = rng.permutation(labels.size)
    return keys[order], labels[order].astype(np.int64)


def specs():
    return [(kind, size) for kind in ("store_all", "class_means") for size in (72,)] + \
        [(STREAM_READOUT_KINDS[name], size) for size in SIZES for name in ("memory", "fifo", "reservoir")]


@pytest.fixture(scope="module")
def alone():
    keys, labels = clustered_stream(0)
    return keys, labels, np.stack([stream_answers(keys, labels, small_memory(kind, size)) for kind, size in specs()])


@pytest.mark.parametrize("chunk", [1, 3, 8, None])
def test_memories_fed_together_answer_as_each_does_alone(alone, chunk, monkeypatch):
    keys, labels, want = alone
    shared = []
    original = stream_together.make_shared_runner
    monkeypatch.setattr(stream_together, "make_shared_runner", lambda memories: shared.append(len(memories))
                        or original(memories))
    got = answers_together([small_memory(kind, size) for kind, size in specs()], keys, labels, chunk)
    assert got.dtype == want.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    assert shared == {1: [], 3: [3, 3, 2], 8: [8], None: [8]}[chunk]  # traced calls and their memories
    assert (want[:, 1:] != -1).all() and (want[:, 0] == -1).all()  # every memory answered after the first write


def test_the_last_short_chunk_shares_a_call_too():
    keys, labels = clustered_stream(1)
    memories = [small_memory("kaiser", 9) for _ in range(5)]
    got = answers_together(memories, keys, labels, 2)  # chunks of 2, 2 and 1
    want = stream_answers(keys, labels, small_memory("kaiser", 9))
    for row in got:  # five identical memories from cleared: five identical answer rows
        np.testing.assert_array_equal(row, want)


def test_a_stream_evaluation_is_the_same_at_every_chunk_size():
    keys, labels = clustered_stream(2)
    results = [stream_evaluation(keys, labels, list(SIZES), small_memory, seed=4, readouts=READOUTS, chunk=chunk)
               for chunk in (1, 3, None)]
    assert json.dumps(results[0]) == json.dumps(results[1]) == json.dumps(results[2])  # NaN for empty groups
    assert [(r["readout"], r["size"]) for r in results[0]["rows"]] == [
        ("store-all", 72), ("prototype", 12), *[(name, s) for s in SIZES for name in ("memory", "fifo", "reservoir")]]


@pytest.mark.parametrize("chunk", [0, -1, 2.0, True, "3"])
def test_a_chunk_that_is_not_a_positive_integer_is_refused_naming_it(chunk):
    keys, labels = clustered_stream(0)
    with pytest.raises(ValueError, match=rf"the stream's chunk must be an integer >= 1 .*, got {chunk!r}"):
        stream_evaluation(keys, labels, [9], small_memory, chunk=chunk)
