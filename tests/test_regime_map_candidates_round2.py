"""The second round of the write policy study: the added candidate must beat round one's choice by round one's rule."""

import json
from pathlib import Path

import pytest

from experiments.faces.methods import METHODS
from experiments.studies import regime_map as rm
from experiments.studies import regime_map_candidates as cand

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results" / "regime_map" / "policy_candidates"


def _cell(slots, accuracy, bytes_ratio=0.2, store_all=0.80, class_means=0.80):
    methods = {"baseline": {"accuracy": store_all}, "class_means": {"accuracy": class_means}}
    for name, value in accuracy.items():
        entry = {"accuracy": value, "bytes_ratio": bytes_ratio}
        for versus, other in (("vs_store_all", store_all), ("vs_class_means", class_means)):
            entry.update({versus: value - other, versus + "_low": value - other, versus + "_high": value - other})
        methods[name] = entry
    return {"key_set": "k", "classes": 5, "slots_per_class": slots, "repeats": 1, "methods": methods}


def _results(cells):
    return {"methods": ["baseline", "class_means", *cand.ROUND_TWO], "cells": cells}


def test_round_two_runs_round_ones_choice_against_the_added_candidate():
    assert cand.ROUND_TWO == ("memory_ward_fill", "memory_ward_keep")
    assert all(name in METHODS for name in cand.ROUND_TWO)
    assert METHODS["memory_ward_keep"].options["keep_classes"] is True


def test_the_added_candidate_is_chosen_only_when_it_beats_round_ones_choice():
    better_worst = {"memory_ward_fill": 0.70, "memory_ward_keep": 0.79}
    assert cand.choose(_results([_cell(1.0, better_worst)]), cand.ROUND_TWO) == "memory_ward_keep"
    # Worst gaps within 0.1 point, round one's choice has the larger mean gap: it stays.
    tied = [_cell(1.0, {"memory_ward_fill": 0.7000, "memory_ward_keep": 0.7005}),
            _cell(2.0, {"memory_ward_fill": 0.90, "memory_ward_keep": 0.85})]
    assert cand.choose(_results(tied), cand.ROUND_TWO) == "memory_ward_fill"
    # An exact tie everywhere keeps round one's choice.
    same = {"memory_ward_fill": 0.75, "memory_ward_keep": 0.75}
    assert cand.choose(_results([_cell(1.0, same)]), cand.ROUND_TWO) == "memory_ward_fill"


def test_round_two_reports_only_its_own_entrants():
    assert cand.reporting_methods("memory_ward_keep", cand.ROUND_TWO)[-1] == "memory_ward_keep"
    with pytest.raises(ValueError, match="not a candidate"):
        cand.reporting_methods("memory_ward", cand.ROUND_TWO)


def test_the_round_two_table_names_its_entrants():
    table = cand.candidates_markdown(_results([_cell(1.0, {"memory_ward_fill": 0.7, "memory_ward_keep": 0.8})]),
                                     cand.ROUND_TWO)
    assert "among memory_ward_fill, memory_ward_keep: **memory_ward_keep**" in table


@pytest.mark.parametrize("folder", ["round2/choosing", "round2/reporting"])
def test_the_committed_round_two_tables_are_rendered_from_their_results_files(folder):
    root = RESULTS / folder
    results = json.loads((root / rm.RESULTS_JSON).read_text())
    rendered = cand.candidates_markdown(results, cand.ROUND_TWO)
    assert (root / cand.TABLE_MD).read_text() == rendered, f"re-render {root} with --round 2 --report-only"
