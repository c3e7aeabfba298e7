"""The episodic readouts are memory_module memories built by kind, under the labels results files carry."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from experiments.core.settings import MemorySection
from experiments.episodic.evaluation.tasks import build_readout, make_readouts, make_task_runner
from experiments.episodic.settings import (
    READOUT_KINDS,
    READOUTS,
    STREAM_READOUT_KINDS,
    STREAM_READOUTS,
    OmniglotConfig,
    OmniglotModelSection,
)
from memory_module import ClassMeans, KaiserMemory, StoreAllNearestNeighbour

CONFIG = OmniglotConfig(model=OmniglotModelSection(key_dim=8), memory=MemorySection(memory_size=32, choose_k=8))


def test_each_label_is_built_as_its_kind_and_the_labels_are_those_of_the_results_files():
    assert READOUTS == ("memory", "1-NN", "prototype")  # docs/results/*.json carry these
    assert STREAM_READOUTS == ("store-all", "memory", "fifo")
    assert READOUT_KINDS["1-NN"] == STREAM_READOUT_KINDS["store-all"] == "store_all"
    built = make_readouts(CONFIG, max_ways=5)
    assert list(built) == list(READOUTS)
    assert isinstance(built["memory"], KaiserMemory) and built["memory"].seed == CONFIG.train.seed + 2
    assert isinstance(built["1-NN"], StoreAllNearestNeighbour)
    assert isinstance(built["prototype"], ClassMeans) and built["prototype"].sums.numpy().shape == (5, 8)


def test_the_prototype_readout_averages_the_shots_of_a_class():
    readout = build_readout("prototype", OmniglotConfig(model=OmniglotModelSection(key_dim=2)), 0, classes=4)
    assert int(readout.lookup(tf.constant([[1.0, 0.0]])).labels[0]) < 0  # empty: unknown
    readout.write(tf.constant([[1.0, 0.0], [0.0, 1.0]]), tf.constant([0, 1], tf.int64))
    readout.write(tf.constant([[0.0, 1.0], [0.0, 1.0]]), tf.constant([0, 1], tf.int64))
    # class 0's mean points at 45 degrees, class 1's straight up
    answers = readout.lookup(tf.constant([[1.0, 0.2], [0.1, 1.0]])).labels.numpy()
    assert answers.tolist() == [0, 1]
    readout.reset()
    assert int(readout.lookup(tf.constant([[1.0, 0.0]])).labels[0]) < 0


def test_the_prototype_readout_answers_the_nearest_mean_of_unit_keys_in_every_task():
    """What the N-way tables call "prototype": the class whose mean unit support key has the
    largest cosine with the query (Snell et al.'s readout on cosines), shots written round by round."""
    rng = np.random.default_rng(3)
    readout = build_readout("prototype", CONFIG, 0, classes=5)
    labels = tf.constant(np.arange(5, dtype=np.int64))
    for shots in (1, 3):
        run = make_task_runner(readout)  # one runner per number of shots, as task_answers makes them
        for _ in range(20):
            support = rng.normal(size=(shots, 5, 8)).astype(np.float32)
            queries = rng.normal(size=(10, 8)).astype(np.float32)
            unit = support / np.linalg.norm(support, axis=2, keepdims=True)
            means = unit.sum(axis=0)
            means /= np.linalg.norm(means, axis=1, keepdims=True)
            expected = np.argmax(queries @ means.T, axis=1)
            answered = run(tf.constant(support), labels, tf.constant(queries)).numpy()
            np.testing.assert_array_equal(answered, expected)
