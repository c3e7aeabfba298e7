"""Open-set calibration: pair scores, threshold at a FAR, TAR, EER, against hand-made cases."""

import numpy as np
import pytest

from experiments.faces import open_set


def test_pair_scores_split_genuine_and_impostor():
    e = np.array([[1, 0], [1, 0], [0, 1]], np.float32)
    genuine, impostor = open_set.pair_scores(e, ["a", "a", "b"])
    assert genuine.tolist() == [1.0]
    assert sorted(impostor.tolist()) == [0.0, 0.0]


def test_threshold_lets_through_at_most_the_target_share_of_impostors():
    rng = np.random.default_rng(0)
    impostor = rng.uniform(-1, 1, 5000)
    for far in (0.1, 0.01, 0.001):
        t = open_set.threshold_at_far(impostor, far)
        assert open_set.accept_rate(impostor, t) <= far
        # and it is the lowest such threshold: one step lower lets one more impostor in
        below = np.max(impostor[impostor < t])
        assert open_set.accept_rate(impostor, below) > far


def test_threshold_beyond_resolution_sits_above_every_impostor():
    impostor = np.array([0.1, 0.2, 0.3])
    t = open_set.threshold_at_far(impostor, 1e-3)
    assert t > 0.3 and open_set.accept_rate(impostor, t) == 0.0


def test_eer_of_separable_and_of_identical_scores():
    eer, _ = open_set.equal_error_rate(np.array([0.9, 0.8]), np.array([0.1, 0.2]))
    assert eer == 0.0
    eer, _ = open_set.equal_error_rate(np.array([0.5, 0.5]), np.array([0.5, 0.5]))
    assert eer == 0.5


def test_calibrate_reports_tar_at_both_fars_and_resolution():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(6, 16))
    labels = np.repeat(np.arange(6), 8)
    e = centers[labels] + 0.3 * rng.normal(size=(48, 16))
    c = open_set.calibrate(e, labels, far=1e-2)
    assert set(c.tar_at_far) == {"0.01", "0.001"}
    assert c.genuine_pairs == 6 * 28 and c.impostor_pairs == 48 * 47 // 2 - 6 * 28
    assert c.far_resolvable == pytest.approx(1 / c.impostor_pairs)
    assert 0 <= c.eer < 0.2 and c.tar_at_far["0.01"] >= c.tar_at_far["0.001"]
    assert any("chosen threshold" in line for line in c.lines())


@pytest.mark.parametrize("far", [0, 1, -0.1, 2])
def test_bad_far_is_refused(far):
    with pytest.raises(ValueError, match="false-accept rate"):
        open_set.check_far(far)


def test_no_impostors_is_a_clear_error():
    with pytest.raises(ValueError, match="two identities"):
        open_set.calibrate(np.ones((3, 4)), ["a", "a", "a"])


def test_hold_out_keeps_two_known_and_is_seeded():
    a = open_set.hold_out_identities(5, 2, np.random.default_rng(3))
    b = open_set.hold_out_identities(5, 2, np.random.default_rng(3))
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 2
    with pytest.raises(ValueError, match="between 1 and 3"):
        open_set.hold_out_identities(5, 4, np.random.default_rng(0))


class _Entries:
    """Stands in for a memory: filled keys and their labels, -1 for empty slots."""

    def __init__(self, keys, values):
        self.keys, self.values = _Array(keys), _Array(values)


class _Array:
    def __init__(self, value):
        self.value = np.asarray(value)

    def numpy(self):
        return self.value


def test_fed_threshold_needs_two_identities_in_the_memory():
    one = _Entries([[1.0, 0.0], [0.0, 0.0]], [0, -1])
    assert open_set.fed_threshold(np.ones((1, 2)), np.array([0]), one, 1e-3) == float("inf")
    e = np.array([[1, 0], [0.6, 0.8]])
    two = _Entries(np.vstack([e, [[0, 0]]]), [0, 1, -1])
    assert open_set.fed_threshold(e, np.array([0, 1]), two, 1e-3) > 0.6   # just above both non-mated scores


def test_fed_threshold_searches_the_memory_entries_of_other_identities_only():
    # Fed items 0 and 1 of identity 0 are stored as one merged slot; identity 1 as one slot.
    items = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    slots = _Entries([[0.9486833, 0.31622777], [0.0, 1.0]], [0, 1])
    threshold = open_set.fed_threshold(items, np.array([0, 0, 1]), slots, 0.5)
    nonmated = np.array([0.0, 0.6, 0.31622777])               # each item's best slot of the other identity
    rate = 1 - (1 - 0.5) ** (1 / 2)                           # leave-one-out rate of a 2-person gallery
    assert threshold >= np.nextafter(np.sort(nonmated)[::-1][int(np.floor(rate * 3))], np.inf)


def test_open_set_counts():
    counts = open_set.open_set_counts(
        truth=np.array([0, 1, 2, 3]), predicted=np.array([0, 0, 1, 1]),
        similarity=np.array([0.9, 0.9, 0.2, 0.8]), stranger=np.array([False, False, True, True]), threshold=0.5)
    assert counts == {"n_known": 2, "n_known_correct": 1, "n_stranger": 2, "n_stranger_rejected": 1}


def test_fed_threshold_projects_the_items_like_a_memory_with_a_query_projection():
    items = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])               # the projection swaps the two axes
    slots = _Entries(items @ swap, [0, 1, 2])
    slots.projection = _Array(swap)
    plain = _Entries(items, [0, 1, 2])
    labels = np.array([0, 1, 2])
    assert open_set.fed_threshold(items, labels, slots, 0.01) == open_set.fed_threshold(items, labels, plain, 0.01)
