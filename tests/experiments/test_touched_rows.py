"""Kaiser-memory tasks held as the rows they write answer exactly as the dense memory does.

Each case runs the same tasks through a real KaiserMemory, one task at a time from a
cleared memory (tasks.make_task_runner, sequences.make_sequence_runner), and through
touched_rows at several chunk sizes (1, one that does not divide the tasks, all). The
memories range from the tightest one touched_rows accepts (twice the writes, so the age
noise makes inserts overwrite written slots) to the shipped checkpoint's 8,192 slots,
with and without age noise and a merge threshold.
"""

import numpy as np
import pytest
import tensorflow as tf

from experiments.episodic.evaluation import touched_rows
from experiments.episodic.evaluation.sequences import make_sequence_runner
from experiments.episodic.evaluation.tasks import make_task_runner
from memory_module import ClassMeans, KaiserMemory

D, CLASSES = 16, 30


@pytest.fixture(scope="module")
def keys_and_labels():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(CLASSES), 10)
    keys = (rng.normal(size=(CLASSES, D))[labels] + 1.2 * rng.normal(size=(labels.size, D))).astype(np.float32)
    return keys, labels


def draw_tasks(labels, rng, ways, shots, episodes=23, queries=12):
    rounds = np.stack([np.stack([rng.choice(np.flatnonzero(labels == c), shots, replace=False)
                                 for c in rng.choice(CLASSES, ways, replace=False)]).T for _ in range(episodes)])
    query_items = np.stack([rng.choice(np.flatnonzero(np.isin(labels, labels[task[0]])), queries) for task in rounds])
    return rounds, query_items


@pytest.mark.parametrize("memory_size, merge_threshold, age_noise", [
    (50, -1.0, 8.0), (50, 0.5, 8.0), (8192, -1.0, 8.0), (60, -1.0, 0.0), (50, 0.2, 2.0)])
@pytest.mark.parametrize("ways, shots", [(5, 1), (5, 5)])
def test_tasks_answer_as_the_dense_memory(keys_and_labels, memory_size, merge_threshold, age_noise, ways, shots):
    keys, labels = keys_and_labels
    memory = KaiserMemory(memory_size, D, age_noise=age_noise, merge_threshold=merge_threshold, seed=7, choose_k=16)
    assert touched_rows.supports(memory, ways * shots)
    rounds, query_items = draw_tasks(labels, np.random.default_rng(memory_size + shots), ways, shots)
    run = make_task_runner(memory)
    dense = np.stack([run(tf.constant(keys[task]), tf.constant(np.arange(ways)), tf.constant(keys[query])).numpy()
                      for task, query in zip(rounds, query_items)])
    for chunk in (1, 7, 23):
        np.testing.assert_array_equal(touched_rows.task_answers(memory, keys, rounds, query_items, ways, chunk), dense)


@pytest.mark.parametrize("memory_size", [60, 8192])
def test_sequences_answer_as_the_dense_memory(keys_and_labels, memory_size):
    keys, labels = keys_and_labels
    memory = KaiserMemory(memory_size, D, seed=3, choose_k=8)
    rng = np.random.default_rng(memory_size)
    sequence_labels = rng.integers(0, 5, size=(9, 30))
    sequences = keys[rng.integers(0, len(keys), size=(9, 30))]
    run = make_sequence_runner(memory)
    dense = []
    for sequence, truth in zip(sequences, sequence_labels):
        memory.reset()
        dense.append(run(tf.constant(sequence), tf.constant(truth)).numpy())
    np.testing.assert_array_equal(touched_rows.sequence_answers(memory, sequences, sequence_labels, 4), np.stack(dense))


def test_only_the_papers_rule_with_room_to_spare_is_held_as_rows():
    assert touched_rows.supports(KaiserMemory(8192, D), 100)
    assert not touched_rows.supports(KaiserMemory(150, D), 100)  # less than twice the writes
    assert not touched_rows.supports(KaiserMemory(8192, D, eviction="class_balanced"), 100)
    assert not touched_rows.supports(KaiserMemory(8192, D, on_evict="merge"), 100)
    assert not touched_rows.supports(KaiserMemory(8192, D, running_mean=True), 100)
    assert not touched_rows.supports(KaiserMemory(8192, D, vote_k=3), 100)
    assert not touched_rows.supports(KaiserMemory(8192, D, query_projection=True), 100)
    assert not touched_rows.supports(ClassMeans(D), 100)
