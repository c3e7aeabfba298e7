"""The memory's contract: graph = eager, float32 ~ float64, reads never write,
nothing trainable, exact save/load, checkpoints through a Keras model."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from memory_module import (
    FORMAT_VERSION,
    KaiserMemory,
    MemoryLayer,
    StoreAllNearestNeighbour,
)

D = 8


def _batches(n_batches=5, batch=6, n_classes=5, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, D))
    for _ in range(n_batches):
        labels = rng.integers(0, n_classes, size=batch)
        yield (centres[labels] + 0.4 * rng.normal(size=(batch, D))).astype(dtype), labels


def _state(memory):
    """Every state variable, the noise generator's state included."""
    return [v.numpy().copy() for v in memory.state_variables().values()]


def _assert_same_state(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("make", [lambda: KaiserMemory(16, D, choose_k=4, seed=3), lambda: StoreAllNearestNeighbour(D)])
def test_eager_and_tf_function_agree(make):
    eager, graph = make(), make()
    graph_write = tf.function(graph.write)
    graph_lookup = tf.function(graph.lookup)
    graph_loss = tf.function(graph.loss)
    for queries, labels in _batches():
        np.testing.assert_array_equal(eager.lookup(queries).labels, graph_lookup(queries).labels)
        np.testing.assert_allclose(eager.loss(queries, labels), graph_loss(queries, labels), rtol=1e-6)
        eager.write(queries, labels)
        graph_write(tf.constant(queries), tf.constant(labels))
    _assert_same_state(_state(eager), _state(graph))


def test_float32_and_float64_agree():
    m32 = KaiserMemory(16, D, choose_k=4, seed=3, dtype=tf.float32)
    m64 = KaiserMemory(16, D, choose_k=4, seed=3, dtype=tf.float64)
    for (q32, labels), (q64, _) in zip(_batches(), _batches(dtype=np.float64)):
        r32, r64 = m32.lookup(q32), m64.lookup(q64)
        np.testing.assert_array_equal(r32.labels, r64.labels)
        np.testing.assert_allclose(r32.similarity, r64.similarity, rtol=1e-5)
        np.testing.assert_allclose(m32.loss(q32, labels), m64.loss(q64, labels), rtol=1e-5, atol=1e-6)
        m32.write(q32, labels)
        m64.write(q64, labels)
    np.testing.assert_array_equal(m32.values, m64.values)
    np.testing.assert_allclose(m32.keys, m64.keys, atol=1e-5)
    assert m64.keys.dtype == tf.float64


@pytest.mark.parametrize("make", [lambda: KaiserMemory(16, D, choose_k=4, seed=3), lambda: StoreAllNearestNeighbour(D)])
def test_lookup_and_loss_leave_the_state_bit_identical(make):
    memory = make()
    batches = list(_batches())
    for queries, labels in batches[:3]:
        memory.write(queries, labels)
    before = _state(memory)
    queries, labels = batches[3]
    memory.lookup(queries)
    memory.loss(queries, labels)
    memory(queries, labels=labels)  # update defaults to False
    tf.function(memory.lookup)(queries)
    _assert_same_state(before, _state(memory))


def test_nothing_in_the_memory_is_trainable():
    for memory in (KaiserMemory(8, D, running_mean=True), StoreAllNearestNeighbour(D)):
        assert memory.trainable_variables == ()
        assert len(memory.variables) >= 3
    layer = MemoryLayer(memory_size=8, key_dim=D)
    assert layer.trainable_weights == []


def test_call_does_lookup_loss_and_write_as_asked():
    memory, twin = KaiserMemory(16, D, seed=1), KaiserMemory(16, D, seed=1)
    for queries, labels in _batches():
        out = memory(queries, labels=labels, update=True)
        assert set(out) == {"labels", "similarity", "slot", "loss"}
        np.testing.assert_allclose(out["loss"], twin.loss(queries, labels))
        np.testing.assert_array_equal(out["labels"], twin.write(queries, labels).labels)
    _assert_same_state(_state(memory), _state(twin))
    with pytest.raises(ValueError, match="needs labels"):
        memory(queries, update=True)


@pytest.mark.parametrize("running_mean", [False, True])
def test_save_load_round_trip_is_exact_and_continues_identically(tmp_path, running_mean):
    batches = list(_batches(n_batches=6))
    memory = KaiserMemory(16, D, choose_k=4, seed=5, running_mean=running_mean)
    for queries, labels in batches[:4]:
        memory.write(queries, labels)
    path = tmp_path / "memory.npz"
    memory.save(path)
    restored = KaiserMemory(16, D, choose_k=4, seed=99, running_mean=running_mean)
    restored.load(path)
    _assert_same_state(_state(memory), _state(restored))
    for queries, labels in batches[4:]:  # the noise generator continues where it was
        memory.write(queries, labels)
        restored.write(queries, labels)
    _assert_same_state(_state(memory), _state(restored))
    assert [p.name for p in tmp_path.iterdir()] == ["memory.npz"]  # no temporary left behind


def test_baseline_save_load_round_trip(tmp_path):
    baseline = StoreAllNearestNeighbour(D, initial_capacity=2)
    for queries, labels in _batches(n_batches=2):
        baseline.write(queries, labels)
    baseline.save(tmp_path / "b.npz")
    restored = StoreAllNearestNeighbour(D, initial_capacity=2)
    restored.load(tmp_path / "b.npz")
    _assert_same_state(_state(baseline), _state(restored))
    assert restored.slots_in_use() == 12


def test_state_file_refuses_another_size_dim_dtype_kind_or_version(tmp_path):
    path = tmp_path / "memory.npz"
    KaiserMemory(16, D).save(path)
    for other, word in [
        (KaiserMemory(32, D), "memory_size=16"),
        (KaiserMemory(16, D + 1), "key_dim=8"),
        (KaiserMemory(16, D, dtype=tf.float64), "dtype='float32'"),
        (KaiserMemory(16, D, running_mean=True), "running_mean"),
        (StoreAllNearestNeighbour(D), "'KaiserMemory' file, not a StoreAllNearestNeighbour state file"),
    ]:
        before = _state(other)
        with pytest.raises(ValueError, match=word):
            other.load(path)
        _assert_same_state(before, _state(other))  # a refused load changes nothing
    with np.load(path) as data:
        arrays = dict(data)
    arrays["header"] = np.array(str(arrays["header"]).replace(f'"format_version": {FORMAT_VERSION}', '"format_version": 999'))
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(ValueError, match="format_version 999"):
        KaiserMemory(16, D).load(tmp_path / "future.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="broken.npz"):
        KaiserMemory(16, D).load(tmp_path / "broken.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        KaiserMemory(16, D).load(tmp_path / "missing.npz")


def _model(memory_size=16, key_dim=4):
    layer = MemoryLayer(memory_size=memory_size, key_dim=key_dim, choose_k=8, seed=2, name="memory")
    images = keras.Input((6,), name="images")
    labels = keras.Input((), dtype="int64", name="labels")
    out = layer(keras.layers.Dense(key_dim, name="embedder")(images), labels=labels)
    return keras.Model([images, labels], out), layer


def test_keras_layer_trains_and_round_trips_through_a_checkpoint(tmp_path):
    model, layer = _model()
    optimizer = keras.optimizers.SGD(0.1)
    rng = np.random.default_rng(0)
    images, labels = rng.normal(size=(8, 6)).astype(np.float32), np.arange(8) % 4
    for _ in range(3):
        with tf.GradientTape() as tape:
            out = model([images, labels], training=True)
            loss = tf.add_n(model.losses)
        grads = tape.gradient(loss, model.trainable_weights)
        assert all(g is not None for g in grads)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
    assert layer.memory.slots_in_use() > 0
    assert set(out) == {"labels", "similarity", "slot"}

    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    saved = _state(layer.memory)
    fresh, fresh_layer = _model()
    tf.train.Checkpoint(model=fresh).read(path).assert_consumed()
    _assert_same_state(saved, _state(fresh_layer.memory))
    np.testing.assert_array_equal(fresh([images, labels])["labels"], model([images, labels])["labels"])

    wrong, _ = _model(memory_size=32)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="32"):
        tf.train.Checkpoint(model=wrong).read(path)


def test_keras_fit_writes_the_memory_and_lowers_nothing_it_should_not():
    model, layer = _model()
    model.compile(optimizer="sgd")
    rng = np.random.default_rng(1)
    images, labels = rng.normal(size=(16, 6)).astype(np.float32), np.arange(16) % 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        history = model.fit([images, labels], epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert int(layer.memory.clock) == 4  # two batches per epoch, each written once


def test_keras_layer_config_rebuilds_the_same_memory_settings():
    for layer in (
        MemoryLayer(memory_size=8, key_dim=D, choose_k=4, vote_k=2, running_mean=True, dtype="float64", name="m"),
        MemoryLayer(StoreAllNearestNeighbour(D, initial_capacity=4)),
    ):
        rebuilt = MemoryLayer.from_config(layer.get_config())
        assert type(rebuilt.memory) is type(layer.memory)
        assert rebuilt.memory.get_config() == layer.memory.get_config()
    with pytest.raises(ValueError, match="memory_kind must be one of"):
        MemoryLayer(memory_kind="Nope", key_dim=D)


def test_reset_with_a_seed_equals_a_memory_built_with_that_seed():
    """One memory reused across repeats: reset(seed=s) must leave it exactly as new with seed s."""
    used = KaiserMemory(8, D, choose_k=4, seed=1)
    for queries, labels in _batches():
        used.write(queries, labels)
    used.reset(seed=7)
    fresh = KaiserMemory(8, D, choose_k=4, seed=7)
    _assert_same_state(_state(used), _state(fresh))
    for queries, labels in _batches(seed=5):  # and the two go on drawing the same age noise
        used.write(queries, labels)
        fresh.write(queries, labels)
    _assert_same_state(_state(used), _state(fresh))
    assert used.get_config()["seed"] == 7


@pytest.mark.parametrize(
    "make",
    [
        lambda: KaiserMemory(16, D, choose_k=4, seed=3),
        lambda: KaiserMemory(16, D, choose_k=4, seed=3, running_mean=True),
        lambda: StoreAllNearestNeighbour(D, initial_capacity=4),
    ],
)
def test_usage_in_a_tf_function_equals_the_eager_footprint_and_slot_count(make, tmp_path):
    """One definition of the state: the traced read-out an experiment uses agrees with the eager one."""
    memory = make()
    traced = tf.function(lambda: memory.usage())
    for queries, labels in _batches(n_batches=4):
        memory.write(queries, labels)
        slots, nbytes = traced()
        assert int(slots) == memory.slots_in_use()
        assert int(nbytes) == memory.footprint_bytes()["total"]
    memory.save(tmp_path / "state.npz")
    with np.load(tmp_path / "state.npz") as saved:
        assert set(memory.state_variables()) == set(saved.files) - {"header"}


def test_store_all_footprint_counts_the_rows_it_holds_not_its_capacity():
    baseline = StoreAllNearestNeighbour(D, initial_capacity=1024)
    assert baseline.footprint_bytes()["total"] == 8  # the count alone
    queries, labels = next(iter(_batches(n_batches=1)))
    baseline.write(queries, labels)
    assert baseline.footprint_bytes()["total"] == len(labels) * (D * 4 + 8) + 8


# ---------------------------------------------------------------- every memory kind, one contract

def _every_kind():
    from memory_module import ClassBalancedReservoir, ClassMeans, FifoBuffer

    return [
        lambda: KaiserMemory(16, D, choose_k=4, seed=3, merge_threshold=0.5, eviction="class_balanced", on_evict="merge"),
        lambda: KaiserMemory(6, D, choose_k=4, seed=3, running_mean=True, vote_k=3, eviction="class_balanced", on_evict="merge"),
        lambda: FifoBuffer(6, D),
        lambda: ClassBalancedReservoir(6, D, seed=3),
        lambda: ClassMeans(D, initial_classes=2),
    ]


@pytest.mark.parametrize("make", _every_kind())
def test_every_kind_traces_like_eager_reads_without_writing_and_round_trips(make, tmp_path):
    eager, graph = make(), make()
    step = tf.function(lambda q, v: (graph(q, labels=v, update=True), graph.usage()))
    lookup = tf.function(graph.lookup)
    batches = list(_batches(n_batches=6))
    for queries, labels in batches[:4]:
        out = eager(queries, labels=labels, update=True)
        traced, (slots, nbytes) = step(tf.constant(queries), tf.constant(labels))
        np.testing.assert_array_equal(out["labels"], traced["labels"])
        np.testing.assert_allclose(out["loss"], traced["loss"], rtol=1e-6)
        assert int(slots) == eager.slots_in_use() and int(nbytes) == eager.footprint_bytes()["total"]
    _assert_same_state(_state(eager), _state(graph))
    before = _state(graph)
    lookup(batches[4][0])
    graph.loss(*batches[4])
    _assert_same_state(before, _state(graph))
    assert graph.trainable_variables == ()

    graph.save(tmp_path / "state.npz")
    restored = make()
    restored.load(tmp_path / "state.npz")
    _assert_same_state(_state(graph), _state(restored))
    for queries, labels in batches[4:]:  # the generators continue where they were
        graph.write(queries, labels)
        restored.write(queries, labels)
    _assert_same_state(_state(graph), _state(restored))
    graph.reset(seed=11)
    fresh = make()
    fresh.reset(seed=11)
    _assert_same_state(_state(graph), _state(fresh))
    rebuilt = MemoryLayer.from_config(MemoryLayer(make()).get_config())
    assert rebuilt.memory.get_config() == make().get_config()
