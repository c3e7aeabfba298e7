"""Open-set k-shot runs: held-out identities never fed, scored on known accuracy and stranger rejection."""

import numpy as np
import pandas as pd
import pytest
from support import write_embeddings_npz

from experiments.faces import settings as cfg
from experiments.faces.run_data import load_embeddings_file
from experiments.faces.runner import run_experiment


def _data(tmp_path, **kwargs):
    path = write_embeddings_npz(tmp_path / "emb.npz", **kwargs)
    return load_embeddings_file(path, cfg.DataSection(embeddings=str(path)))


def _config(**overrides):
    base = cfg.from_dict({"run": {"repeats": 8, "max_shots": 3, "models": ["baseline", "memory"]},
                          "memory": {"memory_size": 16}, "open_set": {"strangers": 2, "fpir": 0.01}})
    return cfg.with_overrides(base, **overrides)


def test_strangers_are_never_fed_and_are_rejected_once_known_people_are_fed(tmp_path):
    data = _data(tmp_path, n_classes=6, per_class=10, dim=32, spread=0.3)
    outcome = run_experiment(_config(), tmp_path / "run", data, progress=False, make_figures=False)
    frame = pd.read_csv(tmp_path / "run" / "open_set.csv")
    assert len(frame) == 2 * 8 * 4
    assert (frame["n_stranger"] == 2 * 10).all()          # every stranger image, at every shot
    zero, later = frame[frame.shots == 0], frame[frame.shots >= 2]
    assert np.isinf(zero["threshold"]).all() and (zero["stranger_rejection"] == 1).all()
    assert (zero["known_accuracy"] == 0).all()            # nothing fed: nothing can be accepted
    assert later["known_accuracy"].mean() > 0.8 and later["stranger_rejection"].mean() > 0.3

    results = pd.read_csv(tmp_path / "run" / "results.csv")
    assert (results["n_eval"] == frame["n_known"]).all()  # closed-set accuracy counts known items only
    slots = results[results.model == "baseline"].groupby("shots").slots_in_use.first()
    assert slots.tolist() == [0, 4, 8, 12]                  # four known identities fed, never the two strangers
    with np.load(tmp_path / "run" / "confusion.npz") as conf:
        for repeat in conf["baseline"]:
            fed_rows = repeat[1:].sum(axis=(0, 2))
            assert (fed_rows > 0).sum() == 6                # strangers still evaluated (rows of the matrix)
    assert outcome["open_set"] is not None and set(outcome["open_set"]["model"]) == {"baseline", "memory"}
    assert "Open set" in (tmp_path / "run" / "summary.md").read_text()
    summary = pd.read_csv(tmp_path / "run" / "open_set_summary.csv")
    assert np.allclose(summary["fnir"], 1 - summary["known_accuracy"])      # FNIR: known not named right
    assert np.allclose(summary["fpir"], 1 - summary["stranger_rejection"])  # FPIR: strangers accepted
    assert (summary["fpir_ci_low"] <= summary["fpir"]).all() and (summary["fpir"] <= summary["fpir_ci_high"]).all()
    assert "FPIR (strangers accepted)" in (tmp_path / "run" / "summary.md").read_text()


def test_baseline_open_set_numbers_equal_an_independent_numpy_count(tmp_path):
    from scipy.stats import t as student_t

    from experiments.faces import protocol
    from experiments.faces.open_set import hold_out_identities
    from experiments.faces.runner import open_set_generator, shuffle_generator

    data = _data(tmp_path, n_classes=5, per_class=6, dim=8, spread=1.0)
    config = _config(run__models=("baseline",), run__repeats=3)
    run_experiment(config, tmp_path / "run", data, progress=False, make_figures=False)
    frame = pd.read_csv(tmp_path / "run" / "open_set.csv")
    unit = data.embeddings / np.linalg.norm(data.embeddings, axis=1, keepdims=True)
    for repeat in range(3):
        shuffled = protocol.shuffle_classes(protocol.class_members(data.labels, 5), shuffle_generator(0, repeat))
        strangers = hold_out_identities(5, 2, open_set_generator(0, repeat)).tolist()
        known = [c for c in range(5) if c not in strangers]
        stranger_items = np.concatenate([shuffled[c] for c in strangers])
        for shots in range(1, 4):
            fed = np.concatenate([[shuffled[c][i] for c in known] for i in range(shots)])
            # Leave one identity out: each fed item's best similarity to each other identity's rows.
            # The threshold is the largest of: just above the top score (9 searches cannot resolve 1%),
            # a Student-t prediction on atanh of the (item's identity, other identity) scores whose
            # spread includes the spread between identity pairs, an exponential tail on the top of
            # those scores (once there are more than 10), both read at the per-person rate of a
            # 3-person gallery, and the photo-pair threshold at FAR 1%; at most 1.
            fed_labels = data.labels[fed]
            pairs = unit[fed] @ unit[fed].T
            different = fed_labels[:, None] != fed_labels[None, :]
            nonmated = np.where(different, pairs, -np.inf).max(axis=1)
            groups = [np.arctanh(pairs[np.ix_(fed_labels == a, fed_labels == b)].max(axis=1))
                      for a in known for b in known if a != b]
            means = np.array([g.mean() for g in groups])
            within = sum(((g - g.mean()) ** 2).sum() for g in groups) / max(sum(g.size - 1 for g in groups), 1)
            per_person = 1 - (1 - 0.01) ** (1 / 3)
            g = len(groups)
            tail = np.tanh(means.mean() + np.sqrt(means.var(ddof=1) + within) * np.sqrt(1 + 1 / g)
                           * student_t.ppf(1 - per_person, g - 1))
            z = np.sort(np.concatenate(groups))[::-1]
            top = max(10, int(np.ceil(0.05 * z.size)))
            extreme = -np.inf if z.size <= top else np.tanh(
                z[top] + np.mean(z[:top] - z[top]) * np.log(top / (z.size * per_person)))
            impostor = np.sort(pairs[np.triu(different, 1)])[::-1]
            floor = np.nextafter(impostor[int(np.floor(0.01 * impostor.size))], np.inf)
            threshold = min(max(np.nextafter(nonmated.max(), np.inf), tail, extreme, floor), 1.0)
            known_items = np.concatenate([shuffled[c][shots:] for c in known])
            best = lambda items: (unit[items] @ unit[fed].T)
            right = (best(known_items).max(1) >= threshold) & (
                data.labels[fed][best(known_items).argmax(1)] == data.labels[known_items])
            rejected = best(stranger_items).max(1) < threshold
            row = frame[(frame.repeat == repeat) & (frame.shots == shots)].iloc[0]
            assert row.threshold == pytest.approx(threshold, rel=1e-6)
            assert row.known_accuracy == pytest.approx(right.mean())
            assert row.stranger_rejection == pytest.approx(rejected.mean())


def test_the_held_out_identities_are_shared_by_every_model_and_repeat_seeded(tmp_path):
    data = _data(tmp_path, n_classes=6, per_class=8, dim=16, spread=0.3)
    run_experiment(_config(), tmp_path / "a", data, progress=False, make_figures=False)
    run_experiment(_config(), tmp_path / "b", data, progress=False, make_figures=False)
    assert (tmp_path / "a" / "open_set.csv").read_bytes() == (tmp_path / "b" / "open_set.csv").read_bytes()
    with np.load(tmp_path / "a" / "confusion.npz") as conf:
        fed = {m: [tuple(np.flatnonzero(r[1].sum(axis=1) - r[0].sum(axis=1) != 0)) for r in conf[m]]
               for m in ("baseline", "memory")}
    assert fed["baseline"] == fed["memory"]                 # same known classes per repeat: a paired design


def test_a_closed_set_run_writes_no_open_set_table(tmp_path):
    data = _data(tmp_path, n_classes=4, per_class=6, dim=16)
    run_experiment(_config(open_set__strangers=0), tmp_path / "run", data, progress=False, make_figures=False)
    assert not (tmp_path / "run" / "open_set.csv").exists()


def test_too_many_strangers_is_refused(tmp_path):
    data = _data(tmp_path, n_classes=4, per_class=6, dim=16)
    with pytest.raises(ValueError, match="strangers must be between 1 and 2"):
        run_experiment(_config(open_set__strangers=3), tmp_path / "run", data, progress=False, make_figures=False)
    assert not (tmp_path / "run").exists()      # refused before the run directory is made


@pytest.mark.parametrize("section, message", [
    ({"strangers": -1}, "strangers = -1 is out of range"),
    ({"fpir": 0.0}, "fpir = 0.0 is out of range"),
    ({"fpir": 1.5}, "fpir = 1.5 is out of range"),
])
def test_open_set_settings_are_checked(section, message):
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.from_dict({"open_set": section})
