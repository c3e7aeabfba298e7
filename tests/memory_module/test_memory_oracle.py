"""Oracle episodes on well-separated synthetic clusters.

"Chance" is defined as the runner scores it: an UNKNOWN_LABEL answer counts as
wrong, so an empty memory (and an empty baseline) scores exactly 0. After one
example per class both must score >= 0.95 on fresh draws from the clusters.
"""

import numpy as np
import pytest
import tensorflow as tf

from memory_module import UNKNOWN_LABEL, KaiserMemory, StoreAllNearestNeighbour

N_CLASSES, DIM, SPREAD = 20, 32, 0.15


def _clusters(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(N_CLASSES, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def draw(labels):
        return (centres[labels] + SPREAD * rng.normal(size=(len(labels), DIM)) / np.sqrt(DIM)).astype(np.float32)

    return draw


@pytest.mark.parametrize(
    "make",
    [
        lambda: KaiserMemory(64, DIM, seed=0),
        lambda: KaiserMemory(N_CLASSES, DIM, age_noise=0.0),  # exactly one slot per class
        lambda: KaiserMemory(64, DIM, vote_k=3, running_mean=True),
        lambda: StoreAllNearestNeighbour(DIM),
    ],
)
def test_chance_when_empty_and_near_perfect_after_one_shot(make):
    memory, draw = make(), _clusters()
    queries_labels = np.repeat(np.arange(N_CLASSES), 10)
    queries = draw(queries_labels)

    empty = memory.lookup(queries).labels.numpy()
    assert (empty == UNKNOWN_LABEL).all()
    assert np.mean(empty == queries_labels) == 0.0

    one_shot = np.random.default_rng(1).permutation(N_CLASSES)
    for start in range(0, N_CLASSES, 5):  # one example per class, in batches of 5
        batch = one_shot[start : start + 5]
        memory.write(draw(batch), batch)
    accuracy = np.mean(memory.lookup(queries).labels.numpy() == queries_labels)
    assert accuracy >= 0.95, accuracy


def _train(learning_rate, steps=40):
    """Inputs carry the class in 16 weak dimensions and noise in 16 strong ones."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(N_CLASSES, DIM // 2))
    embedder = tf.Variable(tf.eye(DIM))
    optimizer = tf.keras.optimizers.Adam(learning_rate)
    memory = KaiserMemory(64, DIM, seed=0)
    losses = []
    for _ in range(steps):
        labels = rng.integers(0, N_CLASSES, size=16)
        inputs = np.hstack([0.2 * centres[labels], rng.normal(size=(16, DIM // 2))]).astype(np.float32)
        with tf.GradientTape() as tape:
            out = memory(inputs @ embedder, labels=labels, update=True)
        optimizer.apply_gradients([(tape.gradient(out["loss"], embedder), embedder)])
        losses.append(float(out["loss"]))
    return np.mean(losses[-10:])


def test_the_loss_trains_an_embedder_through_the_memory():
    """A linear embedder learns to ignore noise dimensions using only the memory's loss:
    the same run with a zero learning rate (the memory filling up alone) ends higher."""
    assert _train(learning_rate=0.05) < 0.5 * _train(learning_rate=0.0)
