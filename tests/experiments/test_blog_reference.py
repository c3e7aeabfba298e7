"""The blog's published curves beside a run: shots 1..7, this run's mean in percent next to the blog's."""

import math

import pandas as pd

from experiments.studies.blog_reference import PUBLISHED, beside_the_blog


def test_run_means_sit_next_to_the_published_numbers():
    summary = pd.DataFrame({"model": ["baseline"] * 2, "shots": [1, 2], "mean": [0.856, 0.9]})
    table = beside_the_blog(summary)
    assert list(table.index) == [1, 2, 3, 4, 5, 6, 7]
    assert table.loc[1, "baseline (this run)"] == 85.6 and table.loc[1, "FaceNet alone (blog)"] == 85.6
    assert table.loc[7, "memory phase ON (blog)"] == 75.0
    assert math.isnan(table.loc[3, "baseline (this run)"])          # not run: shown as missing, never invented
    assert math.isnan(table.loc[1, "memory_finetune_phase_on (this run)"])
    assert all(len(curve) == 7 for _, curve in PUBLISHED.values())
