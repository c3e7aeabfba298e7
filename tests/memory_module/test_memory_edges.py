"""Memory edge cases users of the Kaiser TF1 code hit, and bad inputs."""

import numpy as np
import pytest
import tensorflow as tf

from memory_module import (
    UNKNOWN_LABEL,
    KaiserMemory,
    LabelMap,
    StoreAllNearestNeighbour,
)

D = 4
EYE = np.eye(D, dtype=np.float32)


def _state(memory):
    """Every variable, plus the noise generator's state (not listed in tf.Module.variables)."""
    noise = [memory.noise.state] if hasattr(memory, "noise") else []
    return [v.numpy().copy() for v in list(memory.variables) + noise]


# ---------------------------------------------------------------- sizes


def test_memory_size_one_holds_the_latest_example():
    memory = KaiserMemory(1, D, age_noise=0.0)
    assert memory.pool_k == 1
    for label in range(3):
        with pytest.warns(UserWarning) if label == 1 else _no_warning():
            memory.write(EYE[label : label + 1], [label])
        np.testing.assert_array_equal(memory.lookup(EYE[:3]).labels, [label] * 3)
        assert np.isfinite(float(memory.loss(EYE[:3], [0, 1, 2])))
    assert memory.slots_in_use() == 1


@pytest.mark.filterwarnings("ignore:label ids reach:UserWarning")
def test_memory_smaller_than_the_batch_stores_the_last_misses_and_warns_once():
    memory = KaiserMemory(3, D, age_noise=0.0)
    with pytest.warns(UserWarning, match="batch of 4 is larger than memory_size=3"):
        memory.write(EYE, [0, 1, 2, 3])
    assert sorted(memory.values.numpy().tolist()) == [1, 2, 3]
    np.testing.assert_array_equal(memory.lookup(EYE[1:]).labels, [1, 2, 3])
    with _no_warning():
        memory.write(EYE, [0, 1, 2, 3])  # warned once per memory


def test_memory_smaller_than_the_number_of_classes_is_allowed_warned_and_handled():
    memory = KaiserMemory(4, 8, age_noise=0.0)
    keys = np.eye(8, dtype=np.float32)
    with pytest.warns(UserWarning, match="smaller than the number of classes"):
        for label in range(8):
            memory.write(keys[label : label + 1], [label])
    np.testing.assert_array_equal(memory.lookup(keys[4:]).labels, [4, 5, 6, 7])  # the latest four remain
    old = memory.lookup(keys[:4]).labels.numpy()
    assert set(old) <= {4, 5, 6, 7}  # forgotten classes get a wrong answer, never an error
    assert np.isfinite(float(memory.loss(keys, np.arange(8))))


def test_memory_smaller_than_choose_k_caps_the_pool():
    memory = KaiserMemory(4, D, choose_k=256)
    assert memory.pool_k == 4
    memory.write(EYE[:2], [0, 1])
    np.testing.assert_array_equal(memory.lookup(EYE[:2]).labels, [0, 1])
    assert float(memory.loss(EYE[:2], [1, 0])) > 0


def test_same_label_twice_in_one_batch():
    memory = KaiserMemory(8, D, age_noise=0.0)
    memory.write(EYE[:2], [5, 5])  # two misses of one label: two slots, the later is "recent"
    np.testing.assert_array_equal(memory.values.numpy()[:2], [5, 5])
    assert int(memory.recent_slot[5]) == 1
    memory.write(EYE[:2] + 0.1, [5, 5])  # two hits on two different slots of label 5
    assert memory.slots_in_use() == 2
    np.testing.assert_array_equal(memory.ages.numpy()[:2], [0, 0])


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "user_labels",
    [["ada", "grace", "alan"], [10**9 + 7, 42, -5], [np.str_("x"), "y", "z"]],
)
@pytest.mark.parametrize("make", [lambda: KaiserMemory(8, D), lambda: StoreAllNearestNeighbour(D)])
def test_string_and_sparse_labels_map_to_dense_ids_and_back_in_every_output(user_labels, make):
    memory, label_map = make(), LabelMap()
    empty = label_map.decode_output(memory.lookup(EYE[:1]))
    assert empty["labels"] == [None]
    ids = label_map.encode(user_labels)
    np.testing.assert_array_equal(ids, [0, 1, 2])
    memory.write(EYE[:3], ids)
    looked_up = label_map.decode_output(memory.lookup(EYE[:3]))
    called = label_map.decode_output(memory(EYE[:3], labels=ids))
    assert looked_up["labels"] == list(user_labels) == called["labels"]
    assert "loss" in called and looked_up["slot"].dtype == np.int64
    assert label_map.decode([UNKNOWN_LABEL, 2], unknown="?") == ["?", user_labels[2]]


def test_label_map_refuses_ids_it_never_gave_and_unhashable_labels():
    label_map = LabelMap(["a"])
    with pytest.raises(ValueError, match="id 3 is not in this LabelMap"):
        label_map.decode([3])
    with pytest.raises(ValueError, match="not hashable"):
        label_map.encode([["a", "list"]])
    with pytest.raises(ValueError, match="single string"):
        label_map.encode("abc")


def test_label_never_seen_before_at_query_time():
    memory, label_map = KaiserMemory(8, D, age_noise=0.0), LabelMap()
    memory.write(EYE[:2], label_map.encode(["cat", "dog"]))
    assert label_map.encode(["fox"], add_new=False).tolist() == [UNKNOWN_LABEL]
    with pytest.raises(ValueError, match="UNKNOWN_LABEL=-1 cannot be written"):
        memory.write(EYE[2:3], label_map.encode(["fox"], add_new=False))
    fox = label_map.encode(["fox"])  # a fresh id: the memory can only be wrong about it
    answer = memory.lookup(EYE[2:3])
    assert int(answer.labels[0]) != int(fox[0])
    assert float(memory.loss(EYE[2:3], fox)) == pytest.approx(0.0 + 0.1)  # no positive: negative term only
    memory.write(EYE[2:3], fox)
    assert label_map.decode(memory.lookup(EYE[2:3]).labels) == ["fox"]


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("make", [lambda: KaiserMemory(8, D), lambda: StoreAllNearestNeighbour(D)])
@pytest.mark.parametrize(
    "queries, message",
    [
        (np.array([[np.nan, 0, 0, 1]], np.float32), r"NaN or infinite values in rows \[0\]"),
        (np.array([[1, 0, 0, 0], [np.inf, 0, 0, 1]], np.float32), r"NaN or infinite values in rows \[1\]"),
        (np.zeros((1, D), np.float32), "all zeros"),
        (np.zeros((0, D), np.float32), "empty batch"),
        (np.ones((2, D + 1), np.float32), "5 features but the memory's key_dim is 4"),
        (np.ones(D, np.float32), r"shape \[batch, 4\]"),
        (np.ones((1, 2, D), np.float32), r"shape \[batch, 4\]"),
        (np.ones((1, D), np.float64), "must be float32"),
        (np.ones((1, D), np.int32), "must be float32"),
        ([["a", "b", "c", "d"]], "must be float32"),
    ],
)
def test_bad_queries_are_refused_by_name_and_change_nothing(make, queries, message):
    memory = make()
    memory.write(EYE[:2], [0, 1])
    before = _state(memory)
    labels = [0] * max(len(queries), 1)  # queries are checked before labels
    for call in (memory.lookup, lambda q: memory.loss(q, labels), lambda q: memory.write(q, labels)):
        with pytest.raises(ValueError, match=message):
            call(queries)
    for got, want in zip(_state(memory), before):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "labels, message",
    [
        (["a", "b"], "labels are strings"),
        ([0.0, 1.0], "must be integer ids"),
        ([[0, 1]], r"shape \[batch\]"),
        ([0, 1, 2], "3 entries but queries have 2 rows"),
        ([0, -1], r"dense ids in \[0, 100\)"),
        ([0, 100], r"dense ids in \[0, 100\)"),
    ],
)
def test_bad_labels_are_refused_by_name(labels, message):
    memory = KaiserMemory(8, D, label_limit=100)
    with pytest.raises(ValueError, match=message):
        memory.write(EYE[:2], labels)
    with pytest.raises(ValueError, match=message):
        memory.loss(EYE[:2], labels)
    assert memory.slots_in_use() == 0


def test_non_finite_queries_are_refused_inside_tf_function_too():
    memory = KaiserMemory(8, D)
    write = tf.function(memory.write)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinite"):
        write(tf.constant([[np.nan, 0, 0, 1]], tf.float32), tf.constant([0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="label_limit"):
        write(tf.constant(EYE[:1]), tf.constant([2**30]))
    with pytest.raises(ValueError, match="key_dim is 4"):
        write(tf.ones([1, 3]), tf.constant([0]))
    assert memory.slots_in_use() == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(memory_size=0), "memory_size must be >= 1, got 0"),
        (dict(memory_size=-3), "memory_size must be >= 1, got -3"),
        (dict(memory_size=2.5), "memory_size must be an integer"),
        (dict(key_dim=0), "key_dim must be >= 1"),
        (dict(choose_k=0), "choose_k must be >= 1"),
        (dict(vote_k=0), "vote_k must be >= 1"),
        (dict(alpha=-0.1), "alpha must be a finite number >= 0"),
        (dict(alpha=float("nan")), "alpha must be a finite number >= 0"),
        (dict(age_noise=-1.0), "age_noise must be a finite number >= 0"),
        (dict(dtype=tf.int32), "dtype must be float32 or float64"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs, message):
    settings = dict(memory_size=8, key_dim=D) | kwargs
    with pytest.raises(ValueError, match=message):
        KaiserMemory(**settings)


class _no_warning:
    """Fail if a UserWarning is raised inside the block."""

    def __enter__(self):
        import warnings

        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.simplefilter("error", UserWarning)

    def __exit__(self, *exc):
        self._catcher.__exit__(*exc)
        return False
