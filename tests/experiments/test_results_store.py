"""Per-repeat result files: atomic, trusted only when complete and from the same configuration."""

import numpy as np
import pytest

from experiments.faces import repeats
from experiments.faces import results as store


def make_result(model="memory", repeat=0, iterations=3, classes=2, offset=0):
    return store.RepeatResult(
        model=model,
        repeat=repeat,
        shots=np.arange(iterations),
        n_eval=np.full(iterations, 10),
        n_correct=np.arange(iterations) + 5 + offset,
        memory_bytes=np.arange(iterations) * 100,
        slots_in_use=np.arange(iterations),
        memory_loss=np.linspace(0, 0.3, iterations),
        seconds=np.full(iterations, 0.01),
        confusion=np.ones((iterations, classes, classes), np.int64),
        feed=np.full((iterations, classes), -1, np.int64),
    )


def test_round_trip(tmp_path):
    saved = make_result()
    repeats.save_repeat(tmp_path, saved, "abc")
    loaded = repeats.load_repeat(tmp_path, "memory", 0, "abc")
    for name in ("shots", "n_eval", "n_correct", "memory_bytes", "slots_in_use", "memory_loss", "confusion", "feed"):
        assert np.array_equal(getattr(loaded, name), getattr(saved, name)), name


def test_other_configuration_or_damaged_files_are_not_trusted(tmp_path):
    repeats.save_repeat(tmp_path, make_result(), "abc")
    assert repeats.load_repeat(tmp_path, "memory", 0, "other digest") is None
    path = repeats.repeat_path(tmp_path, "memory", 0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a half file, as a non-atomic writer could leave
    assert repeats.load_repeat(tmp_path, "memory", 0, "abc") is None
    path.write_bytes(b"")
    assert repeats.load_repeat(tmp_path, "memory", 0, "abc") is None
    assert repeats.load_repeat(tmp_path, "memory", 1, "abc") is None  # absent


def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(repeats.np, "savez", explode)
    with pytest.raises(KeyboardInterrupt):
        repeats.save_repeat(tmp_path, make_result(), "abc")
    assert not repeats.repeat_path(tmp_path, "memory", 0).exists()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_results_csv_is_independent_of_the_order_repeats_finished(tmp_path):
    parts = [make_result("memory", 1, offset=1), make_result("baseline", 0), make_result("memory", 0), make_result("baseline", 1, offset=2)]
    store.write_tables(tmp_path / "a", parts, ["baseline", "memory"], ["x", "y"])
    store.write_tables(tmp_path / "b", parts[::-1], ["baseline", "memory"], ["x", "y"])
    first = (tmp_path / "a" / "results.csv").read_bytes()
    assert first == (tmp_path / "b" / "results.csv").read_bytes()
    frame = store.load_results(tmp_path / "a")
    assert list(frame.columns[:4]) == ["model", "repeat", "shots", "accuracy"]
    assert {"n_eval", "memory_bytes"} <= set(frame.columns)
    assert frame[["model", "repeat"]].drop_duplicates().values.tolist() == [["baseline", 0], ["baseline", 1], ["memory", 0], ["memory", 1]]
    names, confusion = store.load_confusion(tmp_path / "a")
    assert names == ["x", "y"] and confusion["memory"].shape == (2, 3, 2, 2)
