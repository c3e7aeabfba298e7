"""Each rule of the Kaiser memory on tiny hand-worked 2-d cases (float64, noise off)."""

import numpy as np
import pytest
import tensorflow as tf

from memory_module import UNKNOWN_LABEL, KaiserMemory

R = np.sqrt(0.5)

# Hand-worked cases use small sparse label ids on tiny memories; that warning is tested in test_memory_edges.
pytestmark = pytest.mark.filterwarnings("ignore:label ids reach:UserWarning")


def make(memory_size=4, **kwargs):
    kwargs.setdefault("age_noise", 0.0)
    return KaiserMemory(memory_size, 2, dtype=tf.float64, **kwargs)


def q(*rows):
    return np.array(rows, dtype=np.float64)


def test_empty_memory_answers_unknown():
    memory = make()
    result = memory.lookup(q([1, 0], [0, 1]))
    np.testing.assert_array_equal(result.labels, [UNKNOWN_LABEL, UNKNOWN_LABEL])
    np.testing.assert_array_equal(result.slot, [-1, -1])
    assert np.all(np.isneginf(result.similarity))
    assert memory.slots_in_use() == 0


def test_empty_slots_never_win_even_against_a_negative_similarity():
    memory = make()
    memory.write(q([1, 0]), [7])  # empty slots hold zero keys: similarity 0 would beat -1
    result = memory.lookup(q([-1, 0]))
    assert int(result.labels[0]) == 7
    assert float(result.similarity[0]) == pytest.approx(-1.0)


def test_merge_on_hit():
    memory = make()
    memory.write(q([1, 0]), [0])
    before = memory.write(q([0, 3]), [0])  # nearest slot 0 holds label 0: a hit
    assert int(before.labels[0]) == 0 and int(before.slot[0]) == 0
    np.testing.assert_allclose(memory.keys.numpy()[0], [R, R])
    assert memory.slots_in_use() == 1
    np.testing.assert_array_equal(memory.ages, [0, 2, 2, 2])


def test_insert_into_oldest_on_miss_and_ages():
    memory = make()
    for label, key in enumerate([[1, 0], [0, 1], [-1, 0]]):
        memory.write(q(key), [label])
    np.testing.assert_array_equal(memory.values, [0, 1, 2, -1])
    np.testing.assert_array_equal(memory.ages, [2, 1, 0, 3])
    memory.write(q([0, -1]), [3])  # a miss: oldest is the empty slot 3 (age 3)
    np.testing.assert_array_equal(memory.values, [0, 1, 2, 3])
    np.testing.assert_array_equal(memory.ages, [3, 2, 1, 0])
    memory.write(q([R, R]), [4])  # another miss: now slot 0 (age 3) is the oldest
    np.testing.assert_array_equal(memory.values, [4, 1, 2, 3])
    np.testing.assert_allclose(memory.keys.numpy()[0], [R, R])
    np.testing.assert_array_equal(memory.ages, [0, 3, 2, 1])


def test_age_noise_changes_which_old_slot_is_taken_but_only_through_the_seed():
    chosen = []
    for seed in (0, 0, 1, 2, 3, 4):
        memory = make(memory_size=64, age_noise=8.0, seed=seed)
        memory.write(q([1, 0]), [0])
        chosen.append(int(memory.lookup(q([1, 0])).slot[0]))
    assert chosen[0] == chosen[1]
    assert len(set(chosen)) > 1


def test_two_misses_in_one_batch_take_distinct_slots():
    memory = make()
    memory.write(q([1, 0], [1, 0]), [0, 0])
    np.testing.assert_array_equal(memory.values, [0, 0, -1, -1])
    np.testing.assert_array_equal(memory.ages, [0, 0, 1, 1])


def test_two_hits_on_one_slot_merge_together_in_any_order():
    for batch in (q([0.6, 0.8], [0.6, -0.8]), q([0.6, -0.8], [0.6, 0.8])):
        memory = make()
        memory.write(q([1, 0]), [0])
        memory.write(batch, [0, 0])
        np.testing.assert_allclose(memory.keys.numpy()[0], [1, 0], atol=1e-15)
        assert memory.slots_in_use() == 1


def test_a_miss_never_lands_on_a_slot_merged_by_the_same_batch():
    memory = make(memory_size=2)
    memory.write(q([1, 0]), [0])  # slot 0
    memory.write(q([0, 1]), [1])  # slot 1; now slot 0 is the oldest
    memory.write(q([1, 0.1], [-1, 0]), [0, 2])  # hit on slot 0, miss for label 2
    np.testing.assert_array_equal(memory.values, [0, 2])


def test_more_misses_than_slots_keeps_the_last_misses():
    memory = make(memory_size=2)
    with pytest.warns(UserWarning, match="larger than memory_size"):
        memory.write(q([1, 0], [0, 1], [-1, 0]), [5, 6, 7])
    assert sorted(memory.values.numpy().tolist()) == [6, 7]
    np.testing.assert_array_equal(memory.lookup(q([0, 1], [-1, 0])).labels, [6, 7])


def _three_slot_memory(choose_k):
    memory = make(memory_size=3, choose_k=choose_k)
    memory.write(q([0.8, 0.6]), [1])  # slot 0, label 1
    memory.write(q([1, 0]), [0])  # slot 1, label 0
    memory.write(q([0.6, -0.8]), [1])  # nearest is slot 1 (label 0): a miss, so slot 2 gets label 1
    np.testing.assert_array_equal(memory.values, [1, 0, 1])  # slot 2 is label 1's most recent slot
    return memory


def test_choose_k_limits_the_pool_of_the_loss():
    # q = [1, 0] with true label 1: the negative is slot 1 (similarity 1).
    wide = _three_slot_memory(choose_k=3)  # positive from the pool: slot 0 (0.8)
    assert float(wide.loss(q([1, 0]), [1])) == pytest.approx(1 - 0.8 + 0.1)
    narrow = _three_slot_memory(choose_k=1)  # pool = [slot 1]; positive = recent slot 2 (0.6)
    assert float(narrow.loss(q([1, 0]), [1])) == pytest.approx(1 - 0.6 + 0.1)
    assert int(narrow.lookup(q([0.8, 0.6])).labels[0]) == 1


def test_recent_slot_positive_is_dropped_once_the_slot_is_overwritten():
    memory = make(memory_size=2, choose_k=1)
    memory.write(q([0, 1]), [1])  # slot 0
    memory.write(q([1, 0]), [0])  # slot 1
    assert float(memory.loss(q([1, 0]), [1])) == pytest.approx(1 - 0 + 0.1)
    memory.write(q([-1, 0]), [2])  # miss: overwrites slot 0, which held label 1
    # No positive anywhere: only the negative term, max(0, q.K[b] + alpha).
    assert float(memory.loss(q([R, R]), [1])) == pytest.approx(R + 0.1)


def test_loss_with_only_a_positive_and_with_neither():
    memory = make()
    assert float(memory.loss(q([1, 0]), [0])) == 0.0  # empty: no terms at all
    memory.write(q([1, 0]), [0])
    assert float(memory.loss(q([0, 1]), [0])) == pytest.approx(0.1 - 0.0)


def test_margin_satisfied_gives_zero_loss_and_zero_gradient():
    memory = make()
    memory.write(q([1, 0], [0, 1]), [0, 1])
    query = tf.Variable(q([1, 0.05]))
    with tf.GradientTape() as tape:
        loss = memory.loss(query, [0])
    assert float(loss) == 0.0
    np.testing.assert_array_equal(tape.gradient(loss, query), np.zeros((1, 2)))


def test_analytic_gradient_of_the_loss_with_respect_to_the_query():
    memory = make()
    memory.write(q([1, 0], [0, 1]), [0, 1])
    raw = q([2, 1])
    query = tf.Variable(raw)
    with tf.GradientTape(persistent=True) as tape:
        loss = memory.loss(query, [1])  # positive [0, 1], negative [1, 0]
    u = raw[0] / np.linalg.norm(raw[0])
    assert float(loss) == pytest.approx(u[0] - u[1] + 0.1)
    k_neg, k_pos = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    expected = (np.eye(2) - np.outer(u, u)) @ (k_neg - k_pos) / np.linalg.norm(raw[0])
    np.testing.assert_allclose(tape.gradient(loss, query).numpy()[0], expected, rtol=1e-12)
    assert tape.gradient(loss, memory.keys) is None  # the keys are never trained


def test_running_mean_weights_a_merge_by_the_slot_count():
    memory = make(running_mean=True)
    memory.write(q([1, 0]), [0])
    memory.write(q([0, 1]), [0])  # count 1: normalise(1*[1,0] + [0,1])
    np.testing.assert_allclose(memory.keys.numpy()[0], [R, R])
    memory.write(q([R, -R]), [0])  # count 2: normalise(2*[R,R] + [R,-R])
    np.testing.assert_allclose(memory.keys.numpy()[0], np.array([3, 1]) / np.sqrt(10))
    np.testing.assert_array_equal(memory.counts.numpy()[:2], [3, 0])


def test_vote_k_answers_the_label_with_the_largest_similarity_sum():
    keys, labels = q([1, 0], [0.6, 0.8], [0.6, -0.8]), [0, 1, 1]
    query = q([1, 0])  # similarities 1.0 (label 0) vs 0.6 + 0.6 (label 1)
    for vote_k, expected_label, expected_slot in ((1, 0, 0), (3, 1, 1)):
        memory = make(vote_k=vote_k)
        memory.write(keys, labels)
        result = memory.lookup(query)
        assert int(result.labels[0]) == expected_label
        assert int(result.slot[0]) == expected_slot
