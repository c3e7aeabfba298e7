"""Hindsight tables: the runner's fed set, store-all with enough keys, class means with one."""

import dataclasses
import json

import numpy as np
import pytest
from support import write_embeddings_npz

from experiments.faces import settings as cfg
from experiments.faces.repeats import load_repeat
from experiments.faces.results import load_dataset
from experiments.faces.run_data import PreparedData
from experiments.studies import hindsight_report as report
from experiments.studies import hindsight_tables as ht
from experiments.studies import regime_map as rm

SHOTS = 3  # so 4 slots per class hold every fed item of a class
METHODS = ("baseline", "class_means", "memory_ward_keep")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny candidates-style map (6 classes x 6 items, 3 shots, 3 repeats), then the hindsight study on it."""
    root = tmp_path_factory.mktemp("hindsight")
    keys = write_embeddings_npz(root / "toy_shipped.npz", n_classes=6, per_class=6, dim=8, spread=0.9)
    rm.run_map([rm.KeySet("toy_shipped", keys)], [6], root / "cells", root / "work", shots=SHOTS, repeats=3,
               slots=ht.SLOTS, log=lambda _: None, methods=METHODS)
    results = ht.run_study(root / "cells", root / "work", root / "out", log=lambda _: None)
    return root, results


def _run(root):
    run_dir = root / "work" / "toy_shipped" / "6c"
    stored = load_dataset(run_dir)
    data = PreparedData(embeddings=stored["embeddings"], labels=stored["labels"],
                        class_names=[str(n) for n in stored["class_names"]], paths=[str(p) for p in stored["paths"]])
    return run_dir, data, cfg.load_config(run_dir / "config.toml")


def _confusion(truth, answered, classes):
    out = np.zeros((classes, classes), np.int64)
    np.add.at(out, (truth, answered), 1)
    return out


def test_its_fed_set_and_queries_are_the_runners_for_every_repeat(study):
    root, _ = study
    run_dir, data, config = _run(root)
    for repeat in range(3):
        fed, evaluate, _ = ht.top_shot_items(data, config, repeat)
        recorded = load_repeat(run_dir, "baseline", repeat, digest=None)
        assert np.array_equal(fed, recorded.feed[1:].ravel())  # every class once per shot, in the run's order
        assert len(evaluate) == recorded.n_eval[-1] and not set(fed) & set(evaluate)
        ht.check_feeds(run_dir, data, config, repeat)


def test_a_run_fed_another_schedule_is_refused(study):
    root, _ = study
    run_dir, data, config = _run(root)
    other = dataclasses.replace(config, run=dataclasses.replace(config.run, seed=7))
    with pytest.raises(ValueError, match="was not fed the schedule drawn here"):
        ht.check_feeds(run_dir, data, other, 0)


@pytest.mark.parametrize("reference", ht.REFERENCES)
def test_with_at_least_as_many_keys_as_items_a_table_answers_as_the_runs_store_all(study, reference):
    root, results = study
    run_dir, data, config = _run(root)
    unit = ht.unit_rows(data.embeddings)
    for repeat in range(3):
        fed, evaluate, _ = ht.top_shot_items(data, config, repeat)
        table = ht.hindsight_table(unit[fed], data.labels[fed], 4, reference, config.run.seed, repeat)
        mine = _confusion(data.labels[evaluate], ht.answers(*table, unit[evaluate]), 6)
        assert np.array_equal(mine, load_repeat(run_dir, "baseline", repeat, digest=None).confusion[-1])
    cell = next(c for c in results["cells"] if c["slots_per_class"] == 4.0)
    assert cell["methods"][reference]["vs_store_all"] == 0.0
    exact = {"repeats": 0, "most_answers": 0}
    assert cell["recomputed_differing"] == {"baseline": exact, "class_means": exact}


def test_with_one_key_per_class_kmeans_answers_as_the_runs_class_means(study):
    root, results = study
    run_dir, data, config = _run(root)
    unit = ht.unit_rows(data.embeddings)
    for repeat in range(3):
        fed, evaluate, _ = ht.top_shot_items(data, config, repeat)
        table = ht.hindsight_table(unit[fed], data.labels[fed], 1, "kmeans", config.run.seed, repeat)
        mine = _confusion(data.labels[evaluate], ht.answers(*table, unit[evaluate]), 6)
        assert np.array_equal(mine, load_repeat(run_dir, "class_means", repeat, digest=None).confusion[-1])
    cell = next(c for c in results["cells"] if c["slots_per_class"] == 1.0)
    assert cell["methods"]["kmeans"]["vs_class_means"] == 0.0


def test_kmeans_finds_two_modes_and_one_centroid_is_the_normalised_mean():
    rng = np.random.default_rng(0)
    modes = ht.unit_rows(np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    items = ht.unit_rows(np.repeat(modes, 5, axis=0) + 0.05 * rng.normal(size=(10, 3)))
    centres = ht.kmeans_keys(items, 2, np.random.default_rng(1))
    assert sorted(np.argmax(centres @ modes.T, axis=1).tolist()) == [0, 1]
    for k, mode in enumerate(modes):
        assert np.allclose(centres[np.argmax(centres @ mode)], ht.unit_rows(items[5 * k: 5 * k + 5].sum(axis=0)))
    assert np.allclose(ht.kmeans_keys(items, 1, np.random.default_rng(2))[0], ht.unit_rows(items.sum(axis=0)))
    # Same seed, same keys; fewer distinct items than b: fewer keys.
    again = [ht.kmeans_keys(items, 3, np.random.default_rng(4)) for _ in range(2)]
    assert np.array_equal(*again)
    twice = np.repeat(modes, 3, axis=0)
    assert len(ht.kmeans_keys(twice, 4, np.random.default_rng(0))) == 2


def test_farthest_first_starts_at_the_mean_and_takes_the_least_alike_next():
    items = ht.unit_rows(np.array([[1.0, 0.1], [1.0, 0.0], [1.0, -0.1], [-1.0, 0.05]]))
    taken = ht.farthest_first_keys(items, 2)
    assert np.array_equal(taken, items[[1, 3]])
    assert np.array_equal(ht.farthest_first_keys(items, 4), items)


def test_an_unknown_reference_and_a_json_without_memory_ward_keep_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown hindsight reference 'medoids'"):
        ht.hindsight_table(np.eye(2), np.array([0, 1]), 1, "medoids", 0, 0)
    (tmp_path / rm.RESULTS_JSON).write_text(json.dumps({"methods": ["baseline"], "cells": []}))
    with pytest.raises(ValueError, match="holds no memory_ward_keep cells"):
        ht.run_study(tmp_path, tmp_path, tmp_path / "out")


def test_the_table_is_rendered_from_the_json_per_regime_and_per_cell(study):
    root, results = study
    text = report.write_report(root / "out").read_text()
    assert text == report.hindsight_markdown(json.loads((root / "out" / ht.RESULTS_JSON).read_text()))
    assert "the same count of correct answers in every repeat." in text
    assert [line.split(" | ")[:2] for line in text.splitlines() if line.startswith("| shipped")] == [
        ["| shipped", "1"], ["| shipped", "2"], ["| shipped", "4"]]
    assert sum(line.startswith("| toy_shipped") for line in text.splitlines()) == 3
    assert report.keys_kind("face_cartoon") == "faces" and report.keys_kind("eval_untrained") == "untrained"
    with pytest.raises(ValueError, match="cannot tell its keys"):
        report.keys_kind("toy")
