"""Open-set identification thresholds (FPIR / FNIR): leave one person out, gallery size, too few searches."""

import numpy as np
import pytest
from scipy.stats import norm

from experiments.faces import identification, open_set, person_tails


def _people(rng, n_people, per_person, dim=32, noise=0.35):
    """Photos around one random unit centre per person: [n_people * per_person, dim], labels."""
    centres = rng.normal(size=(n_people, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_people), per_person)
    photos = centres[labels] + noise * rng.normal(size=(len(labels), dim)) / np.sqrt(dim)
    return photos, labels


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_non_mated_score_equals_searching_the_gallery_rebuilt_without_the_person():
    rng = np.random.default_rng(0)
    photos, labels = _people(rng, 6, 4)
    scores = identification.nonmated_scores(photos, labels, photos, labels)
    for i, p in enumerate(labels):
        rest = photos[labels != p]                       # store-all rebuilt without person p
        assert scores[i] == pytest.approx((_unit(photos[i:i + 1]) @ _unit(rest).T).max())


def test_a_mated_search_never_finds_the_photo_itself():
    photos = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    labels = np.array([0, 0, 1])
    mated = identification.mated_scores(photos, labels, photos, labels, self_in_keys=True)
    assert mated[0] == pytest.approx(0.8) and mated[1] == pytest.approx(0.8)
    assert mated[2] == -np.inf                           # nothing else of person 1: no mated search


def test_the_gallery_size_correction_and_its_inverse():
    for people in (2, 5, 100):
        target = identification.loo_target(1e-3, people)
        assert target < 1e-3
        assert identification.gallery_size_rate(target, people) == pytest.approx(1e-3)
    # Independent stranger scores against each person: best of P vs best of P - 1.
    rng = np.random.default_rng(1)
    per_person = rng.normal(size=(200_000, 5))
    t = 2.0
    loo = np.mean(per_person[:, :4].max(axis=1) >= t)
    full = np.mean(per_person.max(axis=1) >= t)
    assert identification.gallery_size_rate(loo, 5) == pytest.approx(full, rel=0.03)


def test_a_resolved_fpir_uses_the_sample_and_accepts_at_most_its_share():
    rng = np.random.default_rng(2)
    scores = np.tanh(rng.normal(0.2, 0.1, size=20_000))
    t = identification.threshold_at_fpir(scores, 1e-2, people=50, rule="sample")
    rate = identification.loo_target(1e-2, 50)
    assert np.mean(scores >= t) <= rate and np.mean(scores >= np.nextafter(t, -np.inf)) > rate
    assert identification.threshold_at_fpir(scores, 1e-2, people=50) >= t     # "max" never below the sample


def test_too_few_searches_use_the_larger_of_the_sample_maximum_and_the_normal_tail():
    scores = np.array([0.10, 0.12, 0.15, 0.20, 0.31])
    rate = identification.loo_target(1e-3, 3)
    z = np.arctanh(scores)
    tail = np.tanh(z.mean() + z.std(ddof=1) * norm.ppf(1 - rate))
    assert identification.threshold_at_fpir(scores, 1e-3, people=3) == pytest.approx(max(tail, 0.31))
    assert identification.threshold_at_fpir(scores, 1e-3, people=3) > 0.31
    # Fewer than MIN_TAIL_SEARCHES: just above the highest score.
    assert identification.threshold_at_fpir(scores[:2], 1e-3, people=3) == np.nextafter(0.12, np.inf)
    assert identification.threshold_at_fpir(np.zeros(0), 1e-3, people=3) == np.inf
    with pytest.raises(ValueError, match="rule must be one of"):
        identification.threshold_at_fpir(scores, 1e-3, people=3, rule="mean")


def test_an_under_resolved_calibration_says_so_and_what_the_counts_guarantee():
    rng = np.random.default_rng(3)
    photos, labels = _people(rng, 4, 5)
    c = identification.calibrate(photos, labels, photos, labels, fpir=1e-3)
    assert c.nonmated_searches == 20 and c.people == 4 and c.entries == 20 and not c.resolved
    assert c.threshold > identification.nonmated_scores(photos, labels, photos, labels).max()
    assert c.loo_fpir == 0
    assert c.fpir_bound == pytest.approx(identification.gallery_size_rate(1 - 0.05 ** (1 / 20), 4))
    text = "\n".join(c.lines())
    assert "20 non-mated searches cannot resolve FPIR 1e-03" in text and "FPIR <= " in text
    assert set(c.fnir_at_fpir) == {"0.01", "0.001"} and 0 <= c.fnir_at_fpir["0.001"] <= 1
    assert identification.IdentificationCalibration.from_dict(c.to_dict()) == c


def test_fnir_counts_a_wrong_best_person_and_a_score_below_the_threshold():
    mated = np.array([0.9, 0.9, 0.4])
    nonmated = np.array([0.2, 0.95, 0.1])
    assert identification.fnir(mated, nonmated, 0.5) == pytest.approx(2 / 3)
    assert identification.fnir(mated, nonmated, 0.3) == pytest.approx(1 / 3)


@pytest.mark.parametrize("fpir", [0, 1, -0.1, 2])
def test_bad_fpir_is_refused(fpir):
    with pytest.raises(ValueError, match=r"FPIR .*must be in \(0, 1\)"):
        identification.check_fpir(fpir)


def test_the_pair_threshold_lets_strangers_into_a_large_gallery_far_more_often_than_the_fpir_one():
    """300 people x 5 photos (store-all rows), 3000 strangers' photos searched as identify does."""
    rng = np.random.default_rng(4)
    photos, labels = _people(rng, 320, 5, dim=64, noise=0.6)
    enrolled = labels < 300
    gallery, gallery_labels = photos[enrolled], labels[enrolled]
    strangers = _unit(np.concatenate([photos[~enrolled], _people(rng, 580, 5, dim=64, noise=0.6)[0]]))
    best = (strangers @ _unit(gallery).T).max(axis=1)

    pair = open_set.calibrate(gallery, gallery_labels, far=1e-3).threshold
    fpir = identification.calibrate(gallery, gallery_labels, gallery, gallery_labels, fpir=1e-3)
    assert fpir.resolved                                  # 1500 searches resolve 1e-3 for 300 people
    old_rate, new_rate = np.mean(best >= pair), np.mean(best >= fpir.threshold)
    assert old_rate > 0.2                                 # the pair threshold: strangers get 1495 chances
    assert new_rate <= 0.01                               # promised 0.1%; 3000 strangers measure it loosely
    assert fpir.fnir_at_fpir["0.001"] < 0.05              # and known photos are still named


def test_one_photo_enrolled_under_two_names_keeps_the_threshold_a_cosine():
    photos = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    labels = np.array([0, 1, 2, 2])
    c = identification.calibrate(photos, labels, photos, labels, fpir=1e-3)
    assert c.threshold == 1.0
    assert identification.threshold_for(photos, labels, photos[:1], labels[:1], 1e-3) == np.inf   # one person


def test_pairs_t_does_not_trust_the_spread_of_two_pairs_and_is_the_normal_with_many():
    rng = np.random.default_rng(5)
    photos, labels = _people(rng, 2, 10)
    by_person = identification.person_scores(photos, labels, photos, labels)
    normal = person_tails.pairs_threshold(by_person, labels, 1e-3)
    assert normal < 0.999                                                  # the normal trusts two pairs
    assert person_tails.pairs_threshold(by_person, labels, 1e-3, predictive=True) == pytest.approx(1.0, abs=1e-6)
    photos, labels = _people(rng, 40, 5)                                   # 40 * 39 pairs: t ~ normal
    by_person = identification.person_scores(photos, labels, photos, labels)
    assert person_tails.pairs_threshold(by_person, labels, 1e-3, predictive=True) == pytest.approx(
        person_tails.pairs_threshold(by_person, labels, 1e-3), abs=0.01)


def test_the_extreme_tail_reads_an_exponential_tail_at_the_per_person_rate():
    rng = np.random.default_rng(6)
    z = 0.1 * rng.exponential(size=(20_000, 5))                            # P(z > x) = exp(-x / 0.1)
    rate = person_tails.per_person_rate(1e-3, 5)
    threshold = person_tails.extreme_threshold(np.tanh(z), 1e-3)
    assert np.arctanh(threshold) == pytest.approx(-0.1 * np.log(rate), rel=0.05)
    assert np.isnan(person_tails.extreme_threshold(np.tanh(z[:2]), 1e-3))   # 10 scores: no tail to fit


def test_a_few_look_alike_pairs_raise_the_extreme_tail_above_the_normal():
    rng = np.random.default_rng(7)
    photos, labels = _people(rng, 30, 5, dim=64, noise=0.5)
    for twin in range(0, 6, 2):                                            # three pairs of look-alike people
        photos[labels == twin + 1] = photos[labels == twin] + 0.3 * rng.normal(size=(5, 64)) / 8
    by_person = identification.person_scores(photos, labels, photos, labels)
    assert person_tails.extreme_threshold(by_person, 1e-3) > person_tails.pairs_threshold(by_person, labels, 1e-3)


def test_the_default_threshold_is_the_largest_of_sample_both_models_and_the_pair_floor():
    rng = np.random.default_rng(8)
    photos, labels = _people(rng, 6, 8)
    by_person = identification.person_scores(photos, labels, photos, labels)
    rate = identification.loo_target(1e-3, 6)
    parts = [identification.sample_threshold(by_person.max(axis=1), rate),
             person_tails.pairs_threshold(by_person, labels, 1e-3, predictive=True),
             person_tails.extreme_threshold(by_person, 1e-3),
             identification.sample_threshold(identification.impostor_pair_scores(photos, labels), 1e-3)]
    assert identification.DEFAULT_RULE == "pairs_t+extreme"
    assert identification.threshold_for(photos, labels, photos, labels, 1e-3) == pytest.approx(min(max(parts), 1.0))


def test_a_calibration_that_names_no_one_says_so_and_what_to_do():
    from experiments.faces.identification import IdentificationCalibration  # deferred: only this test builds one

    fields = dict(fpir_target=1e-3, people=2, entries=10, nonmated_searches=10, mated_searches=10,
                  fpir_resolvable=0.1, fpir_bound=0.3, loo_fpir=0.0, fnir_at_fpir={}, threshold_at_fpir={})
    silent = IdentificationCalibration(threshold=0.7, **fields).lines()
    assert not any("names no one" in line for line in silent)
    loud = IdentificationCalibration(threshold=1.0, **fields).lines()
    assert any("names no one" in line and "--fpir" in line for line in loud)
