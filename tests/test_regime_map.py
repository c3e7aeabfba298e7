"""The regime map of write policies: its cells, its json, resuming, the table and the figure."""

import json

import pytest
from support import clustered_embeddings, write_embeddings_npz

from experiments.studies import regime_map as rm
from experiments.studies import regime_map_report as report
from experiments.studies.regime_map_keys import key_spread

SLOTS = (0.5, 2.0)


@pytest.fixture(scope="module")
def small_map(tmp_path_factory):
    """A map of one synthetic key set: 6 classes x 6 items, 3 and 6 classes, 2 slot ratios, 3 shots, 4 repeats."""
    root = tmp_path_factory.mktemp("regime")
    keys = write_embeddings_npz(root / "keys.npz", n_classes=6, per_class=6, dim=8, spread=0.6)
    log = []
    results = rm.run_map([rm.KeySet("toy", keys)], [3, 6], root / "out", root / "work", shots=3, repeats=4,
                         slots=SLOTS, log=log.append)
    return root, keys, results, log


def test_memory_size_is_slots_times_classes_rounded_and_at_least_one():
    assert rm.memory_size(0.5, 79) == 40
    assert rm.memory_size(4, 659) == 2636
    assert rm.memory_size(0.5, 1) == 1
    with pytest.raises(ValueError, match="slots per class"):
        rm.memory_size(0, 5)


def test_class_subsample_is_seeded_sorted_and_the_same_for_any_order_of_names():
    names = [f"c{i:03d}" for i in range(40)]
    picked = rm.subsample_classes(names, 7, seed=0)
    assert picked == sorted(picked) and len(set(picked)) == 7
    assert rm.subsample_classes(list(reversed(names)), 7, seed=0) == picked
    assert rm.subsample_classes(names, 7, seed=1) != picked
    assert rm.subsample_classes(names, 40, seed=0) == names
    with pytest.raises(ValueError, match="cannot draw 41 classes"):
        rm.subsample_classes(names, 41, seed=0)


def test_one_cell_per_key_set_classes_and_slots_with_every_method(small_map):
    root, _, results, _ = small_map
    cells = {(c["key_set"], c["classes"], c["slots_per_class"]): c for c in results["cells"]}
    assert set(cells) == {("toy", n, s) for n in (3, 6) for s in SLOTS}
    assert cells[("toy", 6, 0.5)]["memory_size"] == 3 and cells[("toy", 6, 2.0)]["memory_size"] == 12
    for cell in results["cells"]:
        assert cell["shots"] == 3 and cell["repeats"] == 4
        assert list(cell["methods"]) == list(rm.MAP_METHODS)
    # The unbounded methods do not depend on the slots: the same numbers in every cell of a (set, classes).
    assert cells[("toy", 6, 0.5)]["methods"]["baseline"] == cells[("toy", 6, 2.0)]["methods"]["baseline"]
    on_disk = json.loads((root / "out" / rm.RESULTS_JSON).read_text())
    assert on_disk == json.loads(json.dumps(results, sort_keys=True))


def test_the_json_schema_and_intervals_stay_in_range(small_map):
    _, _, results, _ = small_map
    assert results["study"] == "regime_map" and results["schema"] == rm.SCHEMA
    info = results["key_sets"]["toy"]
    assert info["classes"] == 6 and info["items"] == 36 and info["key_dim"] == 8
    assert -1 <= info["spread"]["between"] < info["spread"]["within"] <= 1
    for cell in results["cells"]:
        store_all_bytes = cell["methods"]["baseline"]["bytes"]
        for method, entry in cell["methods"].items():
            assert 0 <= entry["accuracy_low"] <= entry["accuracy"] <= entry["accuracy_high"] <= 1
            assert entry["bytes"] > 0 and entry["bytes_ratio"] == pytest.approx(entry["bytes"] / store_all_bytes)
            if method == "baseline":
                assert entry["vs_store_all"] is None
            else:
                assert -1 <= entry["vs_store_all_low"] <= entry["vs_store_all"] <= entry["vs_store_all_high"] <= 1
                difference = entry["accuracy"] - cell["methods"]["baseline"]["accuracy"]
                assert entry["vs_store_all"] == pytest.approx(difference)


def test_a_rerun_skips_finished_cells_and_leaves_the_file_alone(small_map, monkeypatch):
    root, keys, _, _ = small_map
    path = root / "out" / rm.RESULTS_JSON
    before = path.read_bytes()

    def no_runs(*args, **kwargs):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr(rm, "run_experiment", no_runs)
    log = []
    rm.run_map([rm.KeySet("toy", keys)], [3, 6], root / "out", root / "work", shots=3, repeats=4, slots=SLOTS,
               log=log.append)
    assert log == ["toy 3 classes: done, skipped", "toy 6 classes: done, skipped"]
    assert path.read_bytes() == before


def test_a_new_slots_value_runs_only_the_missing_cells(small_map, tmp_path):
    root, keys, results, _ = small_map
    out = tmp_path / "out"
    out.mkdir()
    kept = dict(results, cells=[c for c in results["cells"] if c["slots_per_class"] != 2.0 or c["classes"] != 6])
    (out / rm.RESULTS_JSON).write_text(json.dumps(kept))
    log = []
    again = rm.run_map([rm.KeySet("toy", keys)], [3, 6], out, root / "work", shots=3, repeats=4, slots=SLOTS,
                       log=log.append)
    assert log == ["toy 3 classes: done, skipped", "toy 6 classes: 1 cell(s) written"]
    assert again["cells"] == results["cells"]   # the run directory resumed: the same numbers


def test_another_file_under_a_known_name_is_refused(small_map, tmp_path):
    root, _, _, _ = small_map
    other = write_embeddings_npz(tmp_path / "other.npz", n_classes=6, per_class=6, dim=8, spread=0.6, seed=3)
    with pytest.raises(ValueError, match="not the file the map"):
        rm.run_map([rm.KeySet("toy", other)], [3], root / "out", tmp_path / "work", shots=3, repeats=4, slots=SLOTS)


def test_a_broken_results_file_is_refused_by_name(tmp_path):
    (tmp_path / rm.RESULTS_JSON).write_text("{not json")
    with pytest.raises(ValueError, match="regime_map.json is not valid JSON"):
        rm.read_results(tmp_path / rm.RESULTS_JSON)
    (tmp_path / rm.RESULTS_JSON).write_text(json.dumps({"study": "other"}))
    with pytest.raises(ValueError, match="not a regime map"):
        rm.read_results(tmp_path / rm.RESULTS_JSON)


def test_table_and_figure(small_map):
    root, _, results, _ = small_map
    paths = report.write_report(root / "out")
    assert [p.name for p in paths] == ["regime_map.md", "regime_map.png"]
    table = paths[0].read_text()
    assert table.count("\n| toy |") == len(results["cells"])
    for cell in results["cells"]:
        best = report.best_bounded(cell)
        top = max(cell["methods"][m]["accuracy"] for m in report.BOUNDED)
        assert best and all(cell["methods"][m]["accuracy"] == top for m in best)
        assert all(cell["methods"][m]["accuracy"] < top for m in report.BOUNDED if m not in best)


def test_the_table_marks_a_loss_whose_interval_is_below_zero():
    entry = {"vs_store_all": -0.05, "vs_store_all_low": -0.08, "vs_store_all_high": -0.01}
    assert report._difference(entry) == "-5.0†"
    assert report._difference(dict(entry, vs_store_all_high=0.01)) == "-5.0"


def test_spread_is_tighter_for_tighter_clusters():
    tight = key_spread(*clustered_embeddings(n_classes=6, per_class=8, dim=16, spread=0.1)[:2])
    loose = key_spread(*clustered_embeddings(n_classes=6, per_class=8, dim=16, spread=2.0)[:2])
    assert tight["within"] > 0.99 > loose["within"]
    assert tight["within"] - tight["between"] > loose["within"] - loose["between"]


def test_exact_ties_are_all_named_as_best():
    cell = {"methods": {m: {"accuracy": 0.5} for m in report.BOUNDED}}
    cell["methods"]["memory_running_mean"]["accuracy"] = cell["methods"]["memory_fold"]["accuracy"] = 0.9
    assert report.best_bounded(cell) == ("memory_running_mean", "memory_fold")


@pytest.mark.parametrize("folder", ["choosing", "reporting", "reporting/official_evaluation"])
def test_the_committed_tables_are_rendered_from_their_results_files(folder):
    from pathlib import Path  # deferred: only this test reads the committed results

    from experiments.studies.regime_map_report import TABLE_MD, map_markdown

    root = Path(__file__).resolve().parents[1] / "docs" / "results" / "regime_map" / folder
    results = json.loads((root / "regime_map.json").read_text())
    assert (root / TABLE_MD).read_text() == map_markdown(results), f"re-render {root} with --report-only"
