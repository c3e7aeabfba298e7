"""Episode sampling: shape, class coverage, presentation order, seeding, and the k-shot count of the episodes."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.core.metrics import shots_seen
from experiments.episodic.data import EpisodicData
from experiments.episodic.episodes import alphabet_pools, sample_episodes, sample_task, step_rng
from experiments.episodic.evaluation.task_spec import TaskSpec
from experiments.episodic.evaluation.tasks import accuracy_of_answers, task_answers
from memory_module import StoreAllNearestNeighbour


def fake_classes(n_classes: int, per_class: int = 20) -> list[np.ndarray]:
    return [np.arange(c * per_class, (c + 1) * per_class) for c in range(n_classes)]


def test_episodes_show_each_class_once_per_round_with_its_own_images():
    classes = fake_classes(12)
    batch = sample_episodes(classes, step_rng(0, 0), width=5, length=23, batch_size=4)
    assert batch.indices.shape == batch.labels.shape == batch.classes.shape == (23, 4)
    shots = shots_seen(batch.labels)
    for b in range(4):
        labels = batch.labels[:, b]
        assert sorted(set(labels.tolist())) == [0, 1, 2, 3, 4]
        # 23 = 4 rounds of 5 plus 3 extra showings
        assert sorted(np.bincount(labels).tolist()) == [4, 4, 5, 5, 5]
        # every class is shown before any is shown again: shots never decrease along the episode
        assert np.all(np.diff(shots[:, b]) >= 0)
        np.testing.assert_array_equal(shots[:5, b], 0)
        # each image belongs to its class, and no image repeats inside an episode
        np.testing.assert_array_equal(batch.indices[:, b] // 20, batch.classes[:, b])
        assert len(set(batch.indices[:, b].tolist())) == 23
        # the episode-local label names one class consistently
        for label in range(5):
            assert len(set(batch.classes[labels == label, b].tolist())) == 1


def test_episodes_are_reproducible_from_seed_and_step():
    classes = fake_classes(30)
    a = sample_episodes(classes, step_rng(7, 3), 5, 30, 16)
    b = sample_episodes(classes, step_rng(7, 3), 5, 30, 16)
    c = sample_episodes(classes, step_rng(7, 4), 5, 30, 16)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)


def test_tasks_have_disjoint_support_and_queries_from_the_same_classes():
    classes = fake_classes(25)
    task = sample_task(classes, step_rng(1, 0), ways=20, shots=5, queries=2)
    assert task.support.shape == (100,) and task.query.shape == (40,)
    assert set(task.support.tolist()).isdisjoint(task.query.tolist())
    assert np.bincount(task.support_labels).tolist() == [5] * 20
    # labels map to one class each, shared by support and queries
    support_class = {int(l): int(i // 20) for l, i in zip(task.support_labels, task.support)}
    for label, index in zip(task.query_labels, task.query):
        assert support_class[int(label)] == index // 20


def test_impossible_episodes_are_refused_with_what_to_change():
    classes = fake_classes(4, per_class=3)
    with pytest.raises(ValueError, match="episode width 5 exceeds the 4 classes"):
        sample_episodes(classes, step_rng(0, 0), width=5, length=10, batch_size=1)
    with pytest.raises(ValueError, match="needs 4 images per episode but some class has only 3"):
        sample_episodes(classes, step_rng(0, 0), width=2, length=8, batch_size=1)
    with pytest.raises(ValueError, match="needs 4 images"):
        sample_task(classes, step_rng(0, 0), ways=2, shots=3, queries=1)


def three_alphabets(per_class: int = 4):
    """13 classes of `per_class` drawings: alphabet A has 6 classes, B 2, C 5; class c's key is axis c."""
    alphabets = ("A",) * 6 + ("B",) * 2 + ("C",) * 5
    labels = np.repeat(np.arange(13), per_class).astype(np.int32)
    data = EpisodicData(images=np.zeros((labels.size, 2, 2), np.uint8), labels=labels,
                        characters=tuple(f"{a}/c{i}" for i, a in enumerate(alphabets)), alphabets=alphabets,
                        drawers=tuple(f"{i}.png" for i in range(labels.size)))
    keys = np.eye(13, dtype=np.float32)[labels] + 0.01 * np.random.default_rng(0).normal(size=(labels.size, 13))
    return data, keys.astype(np.float32)


def test_within_alphabet_tasks_and_episodes_keep_to_one_alphabet_large_enough():
    data, _ = three_alphabets()
    by_class = data.indices_by_class()
    pools = alphabet_pools(data, 4)
    assert [sorted({data.alphabets[c] for c in pool}) for pool in pools] == [["A"], ["C"]]  # B has 2 classes
    rng = step_rng(0, 0)
    seen = set()
    for _ in range(40):
        task = sample_task(by_class, rng, ways=4, shots=2, queries=1, pools=pools)
        alphabets = {data.alphabets[data.labels[i]] for i in task.support}
        assert len(alphabets) == 1 and {data.alphabets[data.labels[i]] for i in task.query} == alphabets
        seen |= alphabets
        episode = sample_episodes(by_class, rng, width=4, length=8, batch_size=2, pools=pools)
        for b in range(2):
            assert len({data.alphabets[c] for c in episode.classes[:, b]}) == 1
    assert seen == {"A", "C"}
    # Without pools the classes mix alphabets, and the draws are those of the plain call.
    mixed = [sample_task(by_class, step_rng(0, s), ways=4, shots=2) for s in range(20)]
    assert any(len({data.alphabets[data.labels[i]] for i in t.support}) > 1 for t in mixed)
    again = sample_task(by_class, step_rng(0, 3), ways=4, shots=2, pools=None)
    np.testing.assert_array_equal(again.support, mixed[3].support)
    with pytest.raises(ValueError, match="7 classes from one alphabet need an alphabet of at least 7 classes; the largest, A, has 6: use fewer ways"):
        alphabet_pools(data, 7)


def test_eval_tasks_within_one_alphabet_are_scored_and_paired_by_seed():
    data, keys = three_alphabets()
    readouts = {"1-NN": StoreAllNearestNeighbour(13)}
    within = TaskSpec(ways=(4,), shots=(1,), episodes=30, seed=5, within_alphabet=True)
    truth, answered = task_answers(keys, data, readouts, 4, 1, within)
    for row in truth:
        assert len(row) == 4 and len({data.alphabets[c] for c in row}) == 1
    assert accuracy_of_answers(truth, answered)["1-NN"]["mean"] == 1.0  # every class on its own axis
    again, _ = task_answers(keys, data, readouts, 4, 1, within)
    np.testing.assert_array_equal(again, truth)
    mixed, _ = task_answers(keys, data, readouts, 4, 1, TaskSpec(ways=(4,), shots=(1,), episodes=30, seed=5))
    assert any(len({data.alphabets[c] for c in row}) > 1 for row in mixed)
