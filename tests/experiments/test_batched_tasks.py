"""N-way k-shot tasks and per-shot episodes answered in chunks equal those answered one at a time.

Every readout (the Kaiser memory with its age noise, store-all, class means), at chunk
sizes 1, one that does not divide the tasks, and more than the tasks, on synthetic keys
with fewer slots than ways so that the memory evicts and merges.
"""

import numpy as np
import pytest

from experiments.core.settings import MemorySection
from experiments.episodic.data import EpisodicData
from experiments.episodic.evaluation.sequences import (
    CHUNK_BUDGET_BYTES,
    chunk_that_fits,
    one_at_a_time,
    per_shot_accuracy,
    sequence_answers,
)
from experiments.episodic.evaluation.task_spec import TaskSpec
from experiments.episodic.evaluation.tasks import build_readout, make_readouts, task_answers
from experiments.episodic.settings import OmniglotConfig, OmniglotModelSection
from memory_module import KaiserMemory, StoreAllNearestNeighbour

D = 8
CLASSES, PER_CLASS = 12, 6


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(CLASSES), PER_CLASS).astype(np.int32)
    centres = rng.normal(size=(CLASSES, D))
    keys = (centres[labels] + 0.9 * rng.normal(size=(labels.size, D))).astype(np.float32)
    data = EpisodicData(images=np.zeros((labels.size, 2, 2), np.uint8), labels=labels,
                        characters=tuple(f"c{i}" for i in range(CLASSES)),
                        alphabets=tuple("AB"[i % 2] for i in range(CLASSES)),
                        drawers=tuple(f"{i}.png" for i in range(labels.size)))
    return keys, data


@pytest.mark.parametrize("ways, shots", [(5, 1), (5, 3), (4, 5)])
def test_chunked_tasks_equal_one_task_at_a_time(toy, ways, shots):
    keys, data = toy
    config = OmniglotConfig(model=OmniglotModelSection(key_dim=D), memory=MemorySection(memory_size=4, choose_k=4))  # fewer slots than ways: evictions
    readouts = make_readouts(config, ways)
    spec = TaskSpec(ways=(ways,), shots=(shots,), episodes=11, queries=1, seed=3)
    truth, one_by_one = task_answers(keys, data, readouts, ways, shots, spec, chunk=0)
    for chunk in (1, 4, 50):
        chunk_truth, chunked = task_answers(keys, data, readouts, ways, shots, spec, chunk=chunk)
        np.testing.assert_array_equal(chunk_truth, truth)
        for name in readouts:
            np.testing.assert_array_equal(chunked[name], one_by_one[name], err_msg=f"{name}, chunk {chunk}")
            assert chunked[name].dtype == one_by_one[name].dtype


@pytest.mark.parametrize("kind", ["memory", "1-NN", "prototype"])
def test_per_shot_episodes_in_chunks_equal_one_at_a_time(toy, kind):
    keys, data = toy
    config = OmniglotConfig(model=OmniglotModelSection(key_dim=D), memory=MemorySection(memory_size=4, choose_k=4))
    memory = build_readout(kind, config, seed_offset=2, classes=CLASSES)
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 5, size=(7, 15))
    sequences = keys[rng.integers(0, len(keys), size=(7, 15))]
    one_by_one = sequence_answers(memory, sequences, labels, chunk=0)
    for chunk in (1, 3, 20):
        np.testing.assert_array_equal(sequence_answers(memory, sequences, labels, chunk=chunk), one_by_one)
    spec = TaskSpec(ways=(4,), shots=(1,), episodes=6, seed=2)
    assert per_shot_accuracy(keys, data, memory, 4, spec, chunk=4) == per_shot_accuracy(keys, data, memory, 4, spec, chunk=0)


def test_a_chunk_of_large_memories_is_cut_to_fit():
    assert chunk_that_fits(KaiserMemory(8192, 768), 250) == CHUNK_BUDGET_BYTES // (8192 * (768 * 4 + 24))
    assert chunk_that_fits(StoreAllNearestNeighbour(8), 250) == 250
    assert chunk_that_fits(KaiserMemory(2**22, 768), 250) == 1
    assert one_at_a_time(KaiserMemory(8192, 768), 250) and not one_at_a_time(KaiserMemory(64, 768), 250)
    assert not one_at_a_time(KaiserMemory(8192, 768), 4)  # a small chunk asked for is batched if it fits
