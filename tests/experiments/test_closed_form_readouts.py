"""Store-all and class means answer N-way k-shot tasks in closed form exactly as the memories do.

The same tasks go through the real memories, one task at a time from a cleared memory
(tasks.make_task_runner), and through closed_form at chunk sizes 1, one that does not
divide the tasks, and all of them.
"""

import numpy as np
import pytest
import tensorflow as tf

from experiments.episodic.evaluation import closed_form
from experiments.episodic.evaluation.tasks import make_task_runner
from memory_module import ClassMeans, KaiserMemory, StoreAllNearestNeighbour

D, CLASSES = 16, 30


@pytest.mark.parametrize("make", [lambda: StoreAllNearestNeighbour(D), lambda: ClassMeans(D, initial_classes=20)])
@pytest.mark.parametrize("ways, shots", [(5, 1), (5, 5), (20, 3)])
def test_closed_form_answers_equal_the_memory(make, ways, shots):
    rng = np.random.default_rng(ways * shots)
    labels = np.repeat(np.arange(CLASSES), 10)
    keys = (rng.normal(size=(CLASSES, D))[labels] + 1.5 * rng.normal(size=(labels.size, D))).astype(np.float32)
    rounds = np.stack([np.stack([rng.choice(np.flatnonzero(labels == c), shots, replace=False)
                                 for c in rng.choice(CLASSES, ways, replace=False)]).T for _ in range(17)])
    query_items = np.stack([rng.choice(np.flatnonzero(np.isin(labels, labels[task[0]])), 9) for task in rounds])
    memory = make()
    assert closed_form.supports(memory)
    run = make_task_runner(memory)
    dense = np.stack([run(tf.constant(keys[task]), tf.constant(np.arange(ways)), tf.constant(keys[query])).numpy()
                      for task, query in zip(rounds, query_items)])
    for chunk in (1, 5, 17):
        np.testing.assert_array_equal(closed_form.task_answers(memory, keys, rounds, query_items, ways, chunk), dense)


def test_only_nearest_row_store_all_and_class_means_are_closed_form():
    assert not closed_form.supports(StoreAllNearestNeighbour(D, vote_k=3))
    assert not closed_form.supports(KaiserMemory(64, D))
