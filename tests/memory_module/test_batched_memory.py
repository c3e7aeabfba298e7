"""A batched memory equals R single memories, repeat by repeat, to the last bit.

Each repeat gets its own seed, its own labelled stream (different labels per repeat, so
the per-label tables differ in length) and its own queries; the single memories run
eagerly, the batched one inside a tf.function, as the runner drives them. Memories
smaller than the batch make every write policy evict, fold and balance.
"""

import numpy as np
import pytest
import tensorflow as tf

import memory_module
from memory_module import (
    BatchedKaiserMemory,
    ClassBalancedReservoir,
    ClassMeans,
    FifoBuffer,
    KaiserMemory,
    StoreAllNearestNeighbour,
    batched,
)
from memory_module.readout import similarities

D = 32
pytestmark = pytest.mark.filterwarnings("ignore:.*memory_size:UserWarning")
REPEATS = 3
SEEDS = (11, 7, 123456)
KAISER_POLICIES = {
    "paper": {},
    "running_mean": dict(running_mean=True),
    "balanced": dict(eviction="class_balanced"),
    "threshold": dict(eviction="class_balanced", merge_threshold=0.7),
    "fold": dict(eviction="class_balanced", on_evict="merge", running_mean=True),
    "ward": dict(eviction="ward", on_evict="merge", running_mean=True),
    "ward_fill": dict(eviction="ward", on_evict="merge", running_mean=True, fill_first=True),
    "fold_fill": dict(eviction="class_balanced", on_evict="merge", running_mean=True, fill_first=True),
    "ward_keep": dict(eviction="ward", on_evict="merge", running_mean=True, fill_first=True, keep_classes=True),
    "ward_plain": dict(eviction="ward", on_evict="merge"),
    "vote": dict(vote_k=3, choose_k=5),
    "no_noise": dict(age_noise=0.0, on_evict="merge"),
}
BUILDERS = {
    **{f"kaiser_{name}": (lambda n, o=options: KaiserMemory(n, D, **o)) for name, options in KAISER_POLICIES.items()},
    "store_all": lambda n: StoreAllNearestNeighbour(D, initial_capacity=4),
    "fifo": lambda n: FifoBuffer(n, D),
    "reservoir": lambda n: ClassBalancedReservoir(n, D),
    "class_means": lambda n: ClassMeans(D, initial_classes=16),
}


def _streams(seed, steps=8, batch=6, n_eval=9):
    """Per repeat: (feed queries, feed labels, eval queries) for every step; labels differ per repeat."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, D)).astype(np.float32)
    out = []
    for repeat in range(REPEATS):
        classes = rng.choice(12, size=4 + repeat, replace=False)
        steps_of_repeat = []
        for _ in range(steps):
            labels = rng.choice(classes, size=batch)
            feed = centres[labels] + 0.6 * rng.normal(size=(batch, D)).astype(np.float32)
            evaluate = centres[rng.choice(classes, size=n_eval)] + 0.6 * rng.normal(size=(n_eval, D)).astype(np.float32)
            steps_of_repeat.append((feed.astype(np.float32), labels.astype(np.int64), evaluate.astype(np.float32)))
        out.append(steps_of_repeat)
    return out


def _reset(memory, seed):
    if hasattr(memory, "noise") or hasattr(memory, "sampler"):
        memory.reset(seed=seed)
    else:
        memory.reset()


def _single_run(memory, steps, seed):
    _reset(memory, seed)
    outputs = []
    for feed, labels, evaluate in steps:
        called = memory(feed, labels, update=True)
        looked = memory.lookup(evaluate)
        usage = memory.usage()
        outputs.append((called, looked, usage))
    return outputs


@pytest.mark.parametrize("kind", sorted(BUILDERS))
@pytest.mark.parametrize("memory_size", [3, 10])
def test_batched_equals_single_repeat_by_repeat(kind, memory_size):
    single = BUILDERS[kind](memory_size)
    twin = batched(single, REPEATS)
    streams = _streams(memory_size)
    expected = [_single_run(single, streams[r], SEEDS[r]) for r in range(REPEATS)]

    @tf.function
    def step(feed, labels, evaluate):
        return twin(feed, labels, update=True), twin.lookup(evaluate), twin.usage()

    _assert_twin_replays(step, twin, streams, expected, f"{kind} N={memory_size}")


def _assert_twin_replays(step, twin, streams, expected, label):
    """Reset `twin` to SEEDS, feed every repeat's stream through `step`, and compare each repeat,
    step by step, with the single memories' `expected` outputs (_single_run)."""
    twin.reset(SEEDS)
    for i in range(len(streams[0])):
        feed, labels, evaluate = (np.stack([streams[r][i][part] for r in range(REPEATS)]) for part in range(3))
        called, looked, usage = step(feed, labels, evaluate)
        for r in range(REPEATS):
            want_called, want_looked, want_usage = expected[r][i]
            where = f"{label} step {i} repeat {r}"
            for name in ("labels", "similarity", "slot"):
                np.testing.assert_array_equal(called[name][r], want_called[name], err_msg=f"{where}: write answers {name}")
                np.testing.assert_array_equal(getattr(looked, name)[r], getattr(want_looked, name), err_msg=f"{where}: {name}")
            assert float(called["loss"][r]) + 0.0 == float(want_called["loss"]) + 0.0, where
            assert int(usage.slots[r]) == int(want_usage.slots), where
            assert int(usage.bytes[r]) == int(want_usage.bytes), where


def test_a_second_reset_replays_the_same_repeats():
    twin = BatchedKaiserMemory(REPEATS, 4, D)
    streams = _streams(0, steps=3)
    feed, labels, evaluate = (np.stack([streams[r][0][p] for r in range(REPEATS)]) for p in range(3))
    runs = []
    for _ in range(2):
        twin.reset(SEEDS)
        for _ in range(3):
            twin(feed, labels, update=True)
        runs.append(twin.keys.numpy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_batch_of_one_similarities_equal_every_slice_of_a_batch():
    """The kernel both paths share: a slice of a batched matmul equals the batch of one."""
    rng = np.random.default_rng(3)
    for repeats, rows, keys in [(64, 11, 8), (7, 117, 50), (3, 1, 300)]:
        q = tf.math.l2_normalize(rng.normal(size=(repeats, rows, D)).astype(np.float32), axis=2)
        k = tf.math.l2_normalize(rng.normal(size=(repeats, keys, D)).astype(np.float32), axis=2)
        together = similarities(q, k).numpy()
        for r in range(repeats):
            np.testing.assert_array_equal(together[r], similarities(q[r:r + 1], k[r:r + 1]).numpy()[0])


def test_batched_refuses_what_it_cannot_batch():
    with pytest.raises(ValueError, match="query_projection"):
        batched(KaiserMemory(4, D, query_projection=True), 2)
    with pytest.raises(ValueError, match="one seed per repeat"):
        BatchedKaiserMemory(2, 4, D).reset([1, 2, 3])
    with pytest.raises(ValueError, match=r"shape \[repeats=2"):
        BatchedKaiserMemory(2, 4, D).lookup(np.zeros((3, 1, D), np.float32))
    assert "batched" in memory_module.__all__


def test_a_batched_twin_takes_settings_that_change_no_answer_and_refuses_unknown_ones():
    twin = memory_module.batched(memory_module.StoreAllNearestNeighbour(8), 3, initial_capacity=16)
    assert twin.initial_capacity == 16 and tuple(twin.keys.read_value().shape) == (3, 16, 8)
    with pytest.raises(ValueError, match="no setting memory_size"):
        memory_module.batched(memory_module.StoreAllNearestNeighbour(8), 3, memory_size=16)


@pytest.mark.parametrize("kind", sorted(name for name in BUILDERS if name not in ("store_all", "class_means")))
def test_a_resized_memory_answers_as_one_made_at_that_size_under_the_same_trace(kind):
    twin = batched(BUILDERS[kind](10), REPEATS)

    @tf.function
    def step(feed, labels, evaluate):
        return twin(feed, labels, update=True), twin.lookup(evaluate), twin.usage()

    for memory_size in (10, 3, 7):
        if memory_size != twin.memory_size:
            twin.resize(memory_size)
        streams = _streams(memory_size)
        expected = [_single_run(BUILDERS[kind](memory_size), streams[r], SEEDS[r]) for r in range(REPEATS)]
        _assert_twin_replays(step, twin, streams, expected, f"{kind} resized to N={memory_size}")
    assert step.experimental_get_tracing_count() == 1, "resizing retraced the step"


def test_resize_refuses_a_size_below_the_vote_and_stores_without_a_size():
    twin = batched(KaiserMemory(10, D, vote_k=3, choose_k=5), REPEATS)
    with pytest.raises(ValueError, match="below vote_k 3"):
        twin.resize(2)
    with pytest.raises(ValueError, match="no fixed number of slots"):
        batched(StoreAllNearestNeighbour(D), REPEATS).resize(4)
