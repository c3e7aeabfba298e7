"""The accuracy-against-footprint table: names of a sweep, paired differences, byte ratios."""

import numpy as np
import pandas as pd
import pytest

from experiments.faces import footprint


def _frame(repeats=8, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    models = {"baseline": None, "memory@4": 4, "fifo@4": 4, "reservoir@4": 4, "memory@8": 8}
    for model, size in models.items():
        for r in range(repeats):
            for shots in range(4):
                bytes_ = 100 * 3 * shots if size is None else 60 * size
                rows.append({"model": model, "repeat": r, "shots": shots, "accuracy": rng.uniform(0.5, 1.0),
                             "memory_bytes": bytes_})
    return pd.DataFrame(rows)


def test_sweep_names_round_trip_and_bad_sizes_are_refused():
    assert footprint.split_name(footprint.sweep_name("memory_fold", 64)) == ("memory_fold", 64)
    assert footprint.split_name("baseline") == ("baseline", None)
    with pytest.raises(ValueError, match="memory size"):
        footprint.split_name("memory@big")


def test_table_pairs_each_model_with_store_all_and_same_size_baselines():
    frame = _frame()
    table = footprint.footprint_table(frame).set_index("model")
    at = frame[frame["shots"] == 3].set_index(["model", "repeat"])["accuracy"]
    expected = (at["memory@4"] - at["baseline"]).mean()
    assert table.loc["memory@4", "vs_store_all"] == pytest.approx(expected)
    assert table.loc["memory@4", "vs_fifo"] == pytest.approx((at["memory@4"] - at["fifo@4"]).mean())
    assert np.isnan(table.loc["memory@8", "vs_fifo"])  # no FIFO of 8 slots in this run
    assert table.loc["memory@4", "bytes_ratio"] == pytest.approx(240 / 900)
    low, high = table.loc["memory@4", ["vs_store_all_low", "vs_store_all_high"]]
    assert -1 <= low <= expected <= high <= 1
    assert "| memory@4 |" in footprint.footprint_markdown(table.reset_index())


def test_table_needs_store_all():
    frame = _frame()
    with pytest.raises(ValueError, match="needs store-all"):
        footprint.footprint_table(frame[frame["model"] != "baseline"])


def test_figure_and_files(tmp_path):
    paths = footprint.write_footprint(tmp_path, _frame())
    assert {p.name for p in paths} == {"footprint.csv", "footprint.md", "footprint.png", "footprint.svg"}
