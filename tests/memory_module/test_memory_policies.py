"""The write policies beyond the paper against the independent NumPy reference.

Scripted sequences with the age noise off pin down each policy's exact choice of slot
(the cases worth reading); hypothesis then checks every combination of policies, with
noise off and on (seeded), on random sequences. The gradient path is checked separately:
every policy leaves `loss` the very function of (state, batch) the paper defines.
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ReferenceMemory

from memory_module import KaiserMemory

KEY_DIM = 3
POLICIES = st.fixed_dictionaries(
    {
        "running_mean": st.booleans(),
        "merge_threshold": st.sampled_from([-1.0, 0.0, 0.6, 0.95]),
        "eviction": st.sampled_from(["oldest", "class_balanced"]),
        "on_evict": st.sampled_from(["drop", "merge"]),
    }
)


def _next_noise(memory: KaiserMemory) -> np.ndarray:
    clone = tf.random.Generator.from_state(memory.noise.state.numpy(), memory.noise.algorithm)
    noise = clone.uniform([memory.memory_size], -memory.age_noise, memory.age_noise, dtype=tf.float32)
    return noise.numpy().astype(np.float64)


def _assert_same(memory: KaiserMemory, reference: ReferenceMemory) -> None:
    np.testing.assert_array_equal(memory.values, reference.values)
    np.testing.assert_array_equal(memory.ages, reference.ages)
    np.testing.assert_allclose(memory.keys, reference.keys, rtol=1e-12, atol=1e-12)
    if memory.counts is not None:
        filled = reference.values >= 0
        np.testing.assert_array_equal(memory.counts.numpy()[filled], reference.counts[filled])
    recent = memory.recent_slot.numpy()
    assert {label: int(recent[label]) for label in reference.recent} == reference.recent


def _step(memory, reference, queries, labels, noise=None, graph_write=None):
    queries = np.asarray(queries, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    result = memory.lookup(queries)
    ref_labels, ref_sims, ref_slots = reference.lookup(queries)
    np.testing.assert_array_equal(result.labels, ref_labels)
    np.testing.assert_array_equal(result.slot, ref_slots)
    np.testing.assert_allclose(float(memory.loss(queries, labels)), reference.loss(queries, labels), atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        (graph_write or memory.write)(tf.constant(queries), tf.constant(labels))
    reference.write(queries, labels, noise=noise)
    _assert_same(memory, reference)


def _pair(memory_size, **policy):
    memory = KaiserMemory(memory_size, KEY_DIM, choose_k=4, age_noise=0.0, dtype=tf.float64, **policy)
    return memory, ReferenceMemory(memory_size, KEY_DIM, choose_k=4, **policy)


E = np.eye(KEY_DIM)


def test_merge_threshold_inserts_a_far_hit_and_merges_a_near_one():
    memory, reference = _pair(4, merge_threshold=0.9)
    _step(memory, reference, [E[0]], [0])
    _step(memory, reference, [E[0] + 0.1 * E[1]], [0])  # cos 0.995: merges into slot of label 0
    assert memory.slots_in_use() == 1
    _step(memory, reference, [E[0] + 1.0 * E[1]], [0])  # a hit at cos ~0.75: a second mode
    assert memory.slots_in_use() == 2
    assert list(np.sort(memory.values.numpy())) == [-1, -1, 0, 0]


def test_class_balanced_eviction_takes_from_the_label_holding_most_slots():
    sequence = [([E[2]], [1]), ([E[0], E[0] + E[1], E[0] - E[1]], [0, 0, 0]), ([-E[2]], [2])]
    balanced, reference = _pair(4, eviction="class_balanced", merge_threshold=0.99)
    paper, paper_reference = _pair(4, merge_threshold=0.99)
    for queries, labels in sequence:  # label 1 is the oldest; label 0 holds three far modes
        _step(balanced, reference, queries, labels)
        _step(paper, paper_reference, queries, labels)
    assert sorted(balanced.values.numpy().tolist()) == [0, 0, 1, 2]  # one of 0's modes went
    assert sorted(paper.values.numpy().tolist()) == [0, 0, 0, 2]  # the paper pushed label 1 out


def test_on_evict_merge_folds_the_evicted_key_into_its_labels_nearest_slot():
    memory, reference = _pair(3, eviction="class_balanced", on_evict="merge", merge_threshold=0.99)
    _step(memory, reference, [E[0], E[0] + E[1]], [0, 0])
    _step(memory, reference, [E[2]], [1])
    kept = memory.keys.numpy().copy()
    _step(memory, reference, [-E[2]], [2])  # evicts label 0's older slot (E[0]) into the other one
    slot_of_mode = int(np.argmax(kept @ (E[0] + E[1])))
    np.testing.assert_allclose(memory.keys.numpy()[slot_of_mode], (kept[0] + kept[slot_of_mode]) / np.linalg.norm(kept[0] + kept[slot_of_mode]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    memory_size=st.integers(1, 9),
    n_classes=st.integers(1, 5),
    batches=st.lists(st.integers(1, 5), min_size=1, max_size=7),
    age_noise=st.sampled_from([0.0, 2.0]),
    seed=st.integers(0, 2**16),
    policy=POLICIES,
)
def test_every_policy_matches_the_reference(memory_size, n_classes, batches, age_noise, seed, policy):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, KEY_DIM))
    memory = KaiserMemory(memory_size, KEY_DIM, choose_k=4, age_noise=age_noise, seed=seed, dtype=tf.float64, **policy)
    reference = ReferenceMemory(memory_size, KEY_DIM, choose_k=4, **policy)
    for batch in batches:
        labels = rng.integers(0, n_classes, size=batch)
        queries = centres[labels] + 0.5 * rng.normal(size=(batch, KEY_DIM))
        _step(memory, reference, queries, labels, noise=_next_noise(memory) if age_noise else None)


@pytest.mark.parametrize(
    "policy",
    [
        dict(merge_threshold=0.8),
        dict(eviction="class_balanced"),
        dict(eviction="class_balanced", on_evict="merge", running_mean=True, merge_threshold=0.5),
    ],
)
def test_a_policy_changes_the_state_but_not_the_loss_function(policy):
    """The loss (and its gradient) is the paper's function of the state: copy a policy
    memory's keys and bookkeeping into a paper memory and both give the same loss and gradient."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, KEY_DIM))
    memory = KaiserMemory(6, KEY_DIM, choose_k=3, seed=1, dtype=tf.float64, **policy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(5):
            labels = rng.integers(0, 4, size=3)
            memory.write(centres[labels] + 0.4 * rng.normal(size=(3, KEY_DIM)), labels)
    paper = KaiserMemory(6, KEY_DIM, choose_k=3, seed=1, dtype=tf.float64)
    for name in ("keys", "values", "last_written", "clock", "recent_slot"):
        getattr(paper, name).assign(getattr(memory, name))
    labels = rng.integers(0, 4, size=5)
    queries = tf.Variable(centres[labels] + 0.4 * rng.normal(size=(5, KEY_DIM)))
    gradients = []
    for each in (memory, paper):
        with tf.GradientTape() as tape:
            loss = each.loss(queries, labels)
        gradients.append((float(loss), tape.gradient(loss, queries).numpy()))
    assert gradients[0][0] == pytest.approx(gradients[1][0], abs=1e-12)
    np.testing.assert_allclose(gradients[0][1], gradients[1][1], atol=1e-12)
    assert np.abs(gradients[0][1]).sum() > 0  # a real gradient, not a vacuous match


def test_policy_options_are_checked():
    with pytest.raises(ValueError, match="merge_threshold is a cosine similarity"):
        KaiserMemory(4, KEY_DIM, merge_threshold=1.5)
    with pytest.raises(ValueError, match="eviction must be one of 'oldest', 'class_balanced'"):
        KaiserMemory(4, KEY_DIM, eviction="newest")
    with pytest.raises(ValueError, match="on_evict must be one of"):
        KaiserMemory(4, KEY_DIM, on_evict="keep")
