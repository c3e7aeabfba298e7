"""Score distributions beside the ROC (experiments.faces.score_figures), and `kshot calibrate` drawing them."""

import re

import numpy as np
import pytest
from support import FakeEmbedder, photo_folder

from experiments.faces.score_figures import (
    identification_scores,
    plot_scores,
    rates_at,
    roc_curve,
    score_figure,
    verification_scores,
)


def _artists_with_gid(fig, gid):
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


@pytest.fixture
def pairs():
    rng = np.random.default_rng(0)
    return rng.normal(0.7, 0.1, 200), rng.normal(0.1, 0.15, 900)


def test_both_distributions_the_threshold_and_the_roc_are_drawn(pairs):
    fig = score_figure(verification_scores(*pairs), threshold=0.45, target="FPIR 0.001")
    scores_ax, roc_ax = fig.axes
    assert _artists_with_gid(fig, "accepted") and _artists_with_gid(fig, "rejected")
    (line,) = _artists_with_gid(fig, "threshold")
    assert list(line.get_xdata()) == [0.45, 0.45]
    assert "threshold 0.450 (chosen at FPIR 0.001)" in [t.get_text() for t in scores_ax.get_legend().get_texts()]
    assert scores_ax.get_yscale() == "log" and roc_ax.get_xscale() == "log"
    (roc,) = _artists_with_gid(fig, "roc")
    (point,) = _artists_with_gid(fig, "operating-point")
    genuine, impostor = pairs
    assert point.get_ydata()[0] == pytest.approx(np.mean(genuine >= 0.45))
    assert roc.get_ydata().max() == 1.0


def test_the_legend_gives_the_share_of_each_set_past_the_threshold(pairs):
    genuine, impostor = pairs
    fig = score_figure(verification_scores(genuine, impostor), threshold=0.45)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"genuine pairs: 200, {np.mean(genuine >= 0.45):.1%} at or above the threshold" in texts
    assert f"impostor pairs: 900, {np.mean(impostor >= 0.45):.1%} at or above the threshold" in texts


def test_a_wrong_name_is_never_accepted_and_is_counted_not_drawn():
    mated = np.array([0.9, 0.8, -np.inf, 0.7, -np.inf])
    sets = identification_scores(mated, np.array([0.2, 0.3, 0.75]))
    np.testing.assert_allclose(rates_at(sets.accepted, np.array([-1.0, 0.75])), [3 / 5, 2 / 5])
    fig = score_figure(sets, threshold=0.75)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("2 named someone else: not drawn" in t for t in texts)
    assert "FPIR" in fig.axes[1].get_xlabel() and "FNIR" in fig.axes[1].get_ylabel()


def test_roc_matches_counting_by_hand():
    accepted, rejected = np.array([0.9, 0.5, 0.5, 0.2]), np.array([0.6, 0.5, 0.1])
    false_rate, accept_rate = roc_curve(verification_scores(accepted, rejected))
    thresholds = sorted({0.9, 0.5, 0.2, 0.6, 0.1}, reverse=True)
    assert list(false_rate) == [sum(r >= t for r in rejected) / 3 for t in thresholds]
    assert list(accept_rate) == [sum(a >= t for a in accepted) / 4 for t in thresholds]


@pytest.mark.parametrize("accepted, rejected, threshold, message", [
    ([0.5, np.nan], [0.1], 0.3, "NaN"),
    ([0.5], [], 0.3, "needs both genuine pairs and impostor pairs"),
    ([-np.inf], [0.1], 0.3, "needs both"),
    ([0.5], [0.1], float("nan"), "finite similarity"),
])
def test_bad_scores_are_refused_with_the_reason(accepted, rejected, threshold, message):
    with pytest.raises(ValueError, match=message):
        score_figure(verification_scores(accepted, rejected), threshold)


def test_plot_scores_writes_png_and_svg(tmp_path, pairs):
    paths = plot_scores(verification_scores(*pairs), 0.45, tmp_path / "scores")
    assert [p.name for p in paths] == ["scores.png", "scores.svg"] and all(p.stat().st_size > 0 for p in paths)


def test_kshot_calibrate_draws_the_score_distributions_with_the_stored_threshold(tmp_path):
    from experiments.cli import main
    from experiments.gallery.gallery import Gallery

    gallery = Gallery(FakeEmbedder())
    gallery.enroll(photo_folder(tmp_path / "people", {"ada": 4, "bob": 4, "cleo": 4}))
    gallery.save(tmp_path / "g.npz")
    assert main(["calibrate", "--gallery", str(tmp_path / "g.npz"), "--figure", str(tmp_path / "fig")]) == 0
    svg = (tmp_path / "fig.svg").read_text(encoding="utf-8")
    assert re.search(r'id="threshold"', svg) and re.search(r'id="accepted', svg) and re.search(r'id="roc"', svg)
    assert (tmp_path / "fig.png").stat().st_size > 0
