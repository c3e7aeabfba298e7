"""The write policy candidates study: its runs, its pre-written decision rule, and its tables."""

import json
from pathlib import Path

import pytest
from support import write_embeddings_npz

from experiments.studies import regime_map as rm
from experiments.studies import regime_map_candidates as cand

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results" / "regime_map" / "policy_candidates"


def _cell(slots, accuracy, bytes_ratio=0.2, store_all=0.80, class_means=0.80, key_set="k", classes=5):
    methods = {"baseline": {"accuracy": store_all}, "class_means": {"accuracy": class_means}}
    for name, value in accuracy.items():
        methods[name] = {"accuracy": value, "bytes_ratio": bytes_ratio, "vs_store_all": value - store_all}
    return {"key_set": key_set, "classes": classes, "slots_per_class": slots, "methods": methods}


def _results(cells):
    return {"methods": list(cand.CHOOSING_METHODS), "cells": cells}


def test_the_largest_worst_gap_is_chosen_then_the_mean_gap():
    worst = {"memory_fold": 0.8, "memory_ward": 0.78, "memory_ward_fill": 0.795, "memory_fold_fill": 0.60}
    best_mean = {"memory_fold": 0.8, "memory_ward": 0.90, "memory_ward_fill": 0.795, "memory_fold_fill": 0.95}
    results = _results([_cell(1.0, worst), _cell(2.0, best_mean)])
    assert cand.choose(results) == "memory_ward_fill"  # worst -0.5 point, against -2 and -20
    results = _results([_cell(1.0, dict(worst, memory_ward=0.7945)), _cell(2.0, best_mean)])
    assert cand.choose(results) == "memory_ward"  # worst within 0.1 point: the larger mean gap decides


def test_half_a_slot_per_class_decides_nothing():
    deciding = {"memory_fold": 0.8, "memory_ward": 0.8, "memory_ward_fill": 0.79, "memory_fold_fill": 0.78}
    results = _results([_cell(1.0, deciding), _cell(0.5, dict(deciding, memory_ward=0.1))])
    assert cand.choose(results) == "memory_ward"


def test_store_all_counts_only_at_a_third_of_its_bytes_or_less():
    cell = _cell(4.0, {"memory_ward": 0.70}, bytes_ratio=0.4, store_all=0.80, class_means=0.70)
    assert set(cand.gaps(cell, "memory_ward")) == {"vs_class_means"} and cand.holds(cell, "memory_ward")
    cell = _cell(2.0, {"memory_ward": 0.70}, bytes_ratio=0.2, store_all=0.80, class_means=0.70)
    assert cand.gaps(cell, "memory_ward")["vs_store_all"] == pytest.approx(-0.09)
    assert not cand.holds(cell, "memory_ward")


def test_reporting_runs_only_a_candidate():
    assert cand.reporting_methods("memory_ward") == ("baseline", "class_means", "memory_fold", "memory_ward")
    with pytest.raises(ValueError, match="not a candidate"):
        cand.reporting_methods("memory_fold")


def test_a_run_records_every_method_against_class_means_and_refuses_another_method_list(tmp_path):
    keys = write_embeddings_npz(tmp_path / "keys.npz", n_classes=4, per_class=5, dim=8, spread=0.6)
    results = rm.run_map([rm.KeySet("toy", keys)], [4], tmp_path / "out", tmp_path / "work", shots=2, repeats=2,
                         slots=(1.0, 2.0), log=lambda _: None, methods=cand.CHOOSING_METHODS)
    cell = results["cells"][0]
    assert set(cell["methods"]) == set(cand.CHOOSING_METHODS)
    ward = cell["methods"]["memory_ward"]
    assert ward["vs_class_means_low"] <= ward["vs_class_means"] <= ward["vs_class_means_high"]
    assert "vs_class_means" not in cell["methods"]["class_means"]
    with pytest.raises(ValueError, match="holds methods"):
        rm.run_map([rm.KeySet("toy", keys)], [4], tmp_path / "out", tmp_path / "work", shots=2, repeats=2,
                   slots=(1.0, 2.0), log=lambda _: None)


def test_a_method_list_without_store_all_is_refused(tmp_path):
    with pytest.raises(ValueError, match="baseline among them"):
        rm.run_map([], [4], tmp_path, tmp_path, shots=2, repeats=2, methods=("memory_ward",))


@pytest.mark.parametrize("folder", ["choosing", "reporting"])
def test_the_committed_tables_are_rendered_from_their_results_files(folder):
    root = RESULTS / folder
    results = json.loads((root / rm.RESULTS_JSON).read_text())
    assert (root / cand.TABLE_MD).read_text() == cand.candidates_markdown(results), f"re-render {root} with --report-only"


def test_one_slots_value_alone_runs(tmp_path):
    """One memory size is no sweep (its models are not named method@size); the cells must still be found."""
    keys = write_embeddings_npz(tmp_path / "keys.npz", n_classes=4, per_class=5, dim=8, spread=0.6)
    results = rm.run_map([rm.KeySet("toy", keys)], [4], tmp_path / "out", tmp_path / "work", shots=2, repeats=2,
                         slots=(1.0,), log=lambda _: None, methods=cand.CHOOSING_METHODS)
    (cell,) = results["cells"]
    assert cell["memory_size"] == 4 and set(cell["methods"]) == set(cand.CHOOSING_METHODS)
