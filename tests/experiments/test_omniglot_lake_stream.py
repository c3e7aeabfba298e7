"""Lake et al.'s one-shot runs (on a synthetic all_runs built from background drawings) and the life-long stream."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from support import shared_omniglot_file, write_synthetic_runs

from experiments.core.memories import build_memory
from experiments.core.settings import MemorySection
from experiments.episodic.evaluation.lake import evaluate_runs, load_runs
from experiments.episodic.evaluation.stream import stream_answers, stream_evaluation, summarize
from experiments.episodic.model import build_model
from experiments.episodic.settings import OmniglotConfig, OmniglotModelSection

TINY = OmniglotConfig(model=OmniglotModelSection(key_dim=16, channels=(4, 8), key_dropout=0.0),
                      memory=MemorySection(memory_size=64, choose_k=16))


def small_memory(kind: str, size: int):
    return build_memory(kind, 16, MemorySection(memory_size=size, choose_k=min(8, size)), seed=0, capacity=size,
                        classes=size)


@pytest.fixture(scope="module")
def synthetic_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    truth = write_synthetic_runs(shared_omniglot_file("images_background.zip"), root / "all_runs", runs=3, seed=1)
    shutil.make_archive(str(root / "all_runs"), "zip", root, "all_runs")
    return root, truth


@pytest.mark.needs_omniglot
def test_runs_load_from_a_folder_and_a_zip_alike(synthetic_runs):
    root, truth = synthetic_runs
    from_folder = load_runs(root / "all_runs", image_size=28)
    from_zip = load_runs(root / "all_runs.zip", image_size=28)
    assert [r.name for r in from_folder] == [r.name for r in from_zip] == sorted(truth)
    for run_a, run_b in zip(from_folder, from_zip):
        assert run_a.classes.shape == (20, 28, 28) and run_a.queries.shape == (20, 28, 28)
        np.testing.assert_array_equal(run_a.answers, truth[run_a.name])  # item k shows class answers[k]
        np.testing.assert_array_equal(run_a.classes, run_b.classes)
        np.testing.assert_array_equal(run_a.queries, run_b.queries)


@pytest.mark.needs_omniglot
def test_runs_report_accuracy_and_error_rate_for_memory_and_1nn(synthetic_runs):
    root, _ = synthetic_runs
    runs = load_runs(root / "all_runs", image_size=28)
    results = evaluate_runs(build_model(TINY), TINY, runs)
    assert results["runs"] == 3 and set(results["readouts"]) == {"memory", "1-NN"}
    for row in results["readouts"].values():
        assert 0.0 <= row["ci_low"] <= row["mean_accuracy"] <= row["ci_high"] <= 1.0
        assert row["error_rate"] == pytest.approx(1.0 - row["mean_accuracy"])
        assert row["mean_accuracy"] == pytest.approx(np.mean(list(row["per_run"].values())))
    # one drawing per class: the memory holds the same 20 keys as 1-NN and answers alike
    assert results["readouts"]["memory"]["per_run"] == results["readouts"]["1-NN"]["per_run"]


@pytest.mark.needs_omniglot
def test_a_broken_runs_layout_is_refused_with_the_file_named(tmp_path, synthetic_runs):
    root, _ = synthetic_runs
    with pytest.raises(FileNotFoundError, match="do not exist"):
        load_runs(tmp_path / "nowhere", 28)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no runNN/class_labels.txt"):
        load_runs(tmp_path / "empty", 28)
    broken = tmp_path / "broken"
    shutil.copytree(root / "all_runs", broken)
    (broken / "run01" / "class_labels.txt").write_text("run01/test/item01.png\n")
    with pytest.raises(ValueError, match="class_labels.txt line 1"):
        load_runs(broken, 28)
    (broken / "run01" / "class_labels.txt").write_text("run01/test/item01.png run01/training/class99.png\n")
    with pytest.raises(ValueError, match="class99"):
        load_runs(broken, 28)


def test_store_all_and_fifo_answer_the_nearest_earlier_drawing_in_their_window():
    """The memory_module memories the stream feeds answer what a direct search over the window finds."""
    rng = np.random.default_rng(0)
    keys = rng.normal(size=(700, 8)).astype(np.float32)
    labels = rng.integers(0, 30, 700)
    for kind, window in (("store_all", None), ("fifo", 1), ("fifo", 50)):
        memory = build_memory(kind, 8, MemorySection(memory_size=window or 1), capacity=700)
        answers = stream_answers(keys, labels, memory)
        assert answers[0] == -1
        unit = keys / np.linalg.norm(keys, axis=1, keepdims=True)
        for t in (1, 2, 51, 600, 699):
            lo = 0 if window is None else max(0, t - window)
            best = lo + int(np.argmax(unit[lo:t] @ unit[t]))
            assert answers[t] == labels[best]


def test_stream_compares_memory_fifo_and_store_all_on_one_order():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(12, 16))
    labels = np.repeat(np.arange(12), 6)
    keys = (centres[labels] + 0.3 * rng.normal(size=(72, 16))).astype(np.float32)
    results = stream_evaluation(keys, labels, [12, 24], small_memory)
    rows = {(r["readout"], r["size"]): r for r in results["rows"]}
    assert set(rows) == {("store-all", 72), ("memory", 12), ("fifo", 12), ("memory", 24), ("fifo", 24)}
    for row in rows.values():
        assert row["by_shot"][0]["mean"] == 0.0  # nothing can name a character never seen
        assert 0.0 <= row["accuracy"]["ci_low"] <= row["accuracy"]["mean"] <= row["accuracy"]["ci_high"] <= 1.0
        assert sum(b["items"] for b in row["by_position"]) == 72 - 12
    # well-separated clusters: store-all finds every seen character, a short FIFO forgets
    assert rows[("store-all", 72)]["accuracy"]["mean"] == 1.0
    assert rows[("fifo", 12)]["accuracy"]["mean"] < 1.0
    with pytest.raises(ValueError, match="not below"):
        stream_evaluation(keys, labels, [72], small_memory)
    with pytest.raises(ValueError, match="unknown"):
        stream_evaluation(keys, labels, [12], small_memory, readouts=("lru",))


def test_the_stream_also_runs_the_reservoir_and_class_means_on_request():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(8), 5)
    keys = (rng.normal(size=(8, 16))[labels] + 0.2 * rng.normal(size=(40, 16))).astype(np.float32)
    results = stream_evaluation(keys, labels, [8], small_memory, readouts=("store-all", "prototype", "reservoir"))
    assert [(r["readout"], r["size"]) for r in results["rows"]] == [("store-all", 40), ("prototype", 8), ("reservoir", 8)]
    for row in results["rows"]:
        assert row["by_shot"][0]["mean"] == 0.0 and row["accuracy"]["mean"] > 0.5


def test_summary_counts_shots_within_the_stream():
    labels = np.array([0, 1, 0, 0, 1])
    answers = np.array([-1, 0, 0, 1, 1])
    summary = summarize(answers, labels)
    assert [s["items"] for s in summary["by_shot"]] == [2, 2, 1]
    assert summary["by_shot"][1]["mean"] == 1.0 and summary["by_shot"][2]["mean"] == 0.0
    assert summary["accuracy"]["mean"] == pytest.approx(2 / 3)
