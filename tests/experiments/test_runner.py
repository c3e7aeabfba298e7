"""The runner on synthetic clustered embeddings: chance at 0 shots, learning after, clear refusals."""

import numpy as np
import pandas as pd
import pytest
from support import clustered_embeddings, write_embeddings_npz

from experiments.core.memories import build_memory
from experiments.faces import settings as cfg
from experiments.faces.adapters import build_adapter
from experiments.faces.run_data import load_embeddings_file
from experiments.faces.runner import forget_schedules, repeat_iterations, run_experiment, run_notes, run_repeat


def small_config(**overrides):
    base = cfg.from_dict({"run": {"repeats": 6, "max_shots": 3, "models": ["baseline", "memory"]}, "memory": {"memory_size": 16}})
    return cfg.with_overrides(base, **overrides)


def synthetic_data(tmp_path, **kwargs):
    path = write_embeddings_npz(tmp_path / "emb.npz", **kwargs)
    return load_embeddings_file(path, cfg.DataSection(embeddings=str(path)))


def test_zero_shots_is_chance_and_one_shot_learns(tmp_path):
    data = synthetic_data(tmp_path, n_classes=4, per_class=12, dim=16, spread=0.5)
    config = small_config(run__repeats=30)
    outcome = run_experiment(config, tmp_path / "run", data, progress=False, make_figures=False)
    frame = pd.read_csv(tmp_path / "run" / "results.csv")
    assert len(frame) == 2 * 30 * 4
    zero = frame[frame.shots == 0].groupby("model").accuracy.mean()
    one = frame[frame.shots == 1].groupby("model").accuracy.mean()
    assert ((zero > 0.15) & (zero < 0.35)).all(), zero  # chance = 0.25
    assert (one > 0.9).all(), one
    with np.load(tmp_path / "run" / "confusion.npz") as conf:
        for model in ("baseline", "memory"):
            at_zero = conf[model][:, 0].sum(axis=0)  # [true, predicted] summed over repeats
            columns = at_zero.sum(axis=0) / at_zero.sum()
            assert columns.max() < 0.4, columns  # no single column takes everything
    assert set(outcome["timing"]) == {"baseline", "memory"}
    memory_rows = frame[frame.model == "memory"]
    assert (memory_rows.slots_in_use <= 16).all() and (memory_rows[memory_rows.shots == 0].slots_in_use == 0).all()
    assert (frame[frame.model == "baseline"].groupby("shots").slots_in_use.first() == [0, 4, 8, 12]).all()
    assert "uniform random guess" in (tmp_path / "run" / "summary.md").read_text()


@pytest.mark.parametrize("method", ["baseline", "memory"])
def test_the_traced_step_equals_a_fresh_eager_memory_module_memory(tmp_path, method):
    """One traced memory, reset with each repeat's seed, answers as a fresh eager memory with that seed."""
    from experiments.faces.runner import model_generator, repeat_iterations
    from memory_module import StoreAllNearestNeighbour

    data = synthetic_data(tmp_path, n_classes=5, per_class=6, dim=8, spread=1.0)
    config = small_config(**{"memory__memory_size": 4, "run__max_shots": 4})
    adapter = build_adapter(method, data, config)
    for repeat in (2, 0, 1):
        fast = run_repeat(adapter, method, repeat, data, config)
        seed = int(model_generator(config.run.seed, repeat, method).integers(0, 2**31 - 1))
        memory = build_memory("kaiser", 8, config.memory, seed=seed) if method == "memory" else StoreAllNearestNeighbour(8)
        for i, it in enumerate(repeat_iterations(data.labels, 5, config, method, repeat)):
            if it.feed.size:
                loss = float(memory.loss(data.embeddings[it.feed], data.labels[it.feed]))
                assert loss == pytest.approx(fast.memory_loss[i], abs=1e-6)
                memory.write(data.embeddings[it.feed], data.labels[it.feed])
            predicted = np.asarray(memory.lookup(data.embeddings[it.evaluate]).labels)
            assert fast.slots_in_use[i] == memory.slots_in_use()
            assert fast.memory_bytes[i] == memory.footprint_bytes()["total"]
            if method == "baseline":  # what it holds: a float32 key and an int64 label per row, and the count
                assert fast.memory_bytes[i] == 5 * i * (8 * 4 + 8) + 8
            if i > 0:
                assert int(np.sum(predicted == data.labels[it.evaluate])) == fast.n_correct[i]
                expected = np.zeros((5, 5), np.int64)
                np.add.at(expected, (data.labels[it.evaluate], predicted), 1)
                assert np.array_equal(expected, fast.confusion[i])


def test_memory_smaller_than_the_classes_is_warned_and_runs(tmp_path):
    data = synthetic_data(tmp_path, n_classes=6, per_class=5, dim=8)
    config = small_config(memory__memory_size=3, run__repeats=2)
    logged = []
    expected = r"memory_size 3 is smaller than the 18 keys store-all holds at 3 shots \(6 classes x 3\)"
    with pytest.warns(UserWarning, match=expected):
        run_experiment(config, tmp_path / "run", data, progress=False, make_figures=False, log=logged.append)
    frame = pd.read_csv(tmp_path / "run" / "results.csv")
    assert frame[frame.model == "memory"].slots_in_use.max() == 3
    assert not any("store-all holds" in line for line in logged)  # a warning, said once, not also logged


def test_class_with_fewer_images_than_the_shots_stops_early_with_a_note(tmp_path):
    embeddings, labels, paths = clustered_embeddings(3, 6, 8)
    keep = np.ones(len(labels), bool)
    keep[np.flatnonzero(labels == "class_01")[3:]] = False  # class_01 keeps 3 images -> 2 shots
    path = tmp_path / "uneven.npz"
    np.savez(path, embeddings=embeddings[keep], labels=labels[keep], paths=paths[keep])
    data = load_embeddings_file(path, cfg.DataSection(embeddings=str(path)))
    logged = []
    run_experiment(small_config(run__max_shots=5, run__repeats=2), tmp_path / "run", data, progress=False, make_figures=False, log=logged.append)
    frame = pd.read_csv(tmp_path / "run" / "results.csv")
    assert frame.shots.max() == 2
    assert any("class 'class_01' has only 3 images, so the run stops at 2 shots" in line for line in logged)


def test_single_class_is_refused(tmp_path):
    embeddings, labels, paths = clustered_embeddings(1, 6, 8)
    path = tmp_path / "one.npz"
    np.savez(path, embeddings=embeddings, labels=labels, paths=paths)
    with pytest.raises(ValueError, match="needs at least 2 classes"):
        load_embeddings_file(path, cfg.DataSection(embeddings=str(path)))


@pytest.mark.parametrize(
    "arrays, needle",
    [
        ({"labels": 5, "paths": 6}, r"arrays of different lengths \(embeddings has 6, labels has 5, paths has 6\)"),
        ({"labels": 6, "paths": 4}, r"embeddings has 6, labels has 6, paths has 4"),
        ({"labels": None}, r"lacks the array\(s\) labels"),
    ],
)
def test_embeddings_file_with_mismatched_arrays_names_the_file_and_the_arrays(tmp_path, arrays, needle):
    embeddings, labels, paths = clustered_embeddings(2, 3, 8)
    content = {"embeddings": embeddings}
    if arrays["labels"] is not None:
        content["labels"] = labels[: arrays["labels"]]
    if arrays.get("paths"):
        content["paths"] = paths[: arrays["paths"]]
    path = tmp_path / "bad.npz"
    np.savez(path, **content)
    with pytest.raises(ValueError, match=r"bad\.npz.*" + needle):
        load_embeddings_file(path, cfg.DataSection(embeddings=str(path)))


def test_embeddings_file_other_problems(tmp_path):
    embeddings, labels, paths = clustered_embeddings(2, 3, 8)
    bad = embeddings.copy()
    bad[4, 1] = np.nan
    np.savez(tmp_path / "nan.npz", embeddings=bad, labels=labels, paths=paths)
    with pytest.raises(ValueError, match=r"nan\.npz: 1 row\(s\) of `embeddings` hold NaN or infinity \(row 4\)"):
        load_embeddings_file(tmp_path / "nan.npz", cfg.DataSection())
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk\.npz is not an \.npz archive"):
        load_embeddings_file(tmp_path / "junk.npz", cfg.DataSection())
    with pytest.raises(FileNotFoundError, match="missing.npz does not exist"):
        load_embeddings_file(tmp_path / "missing.npz", cfg.DataSection())


def test_finetuned_models_need_images(tmp_path):
    data = synthetic_data(tmp_path)
    config = small_config(run__models=("memory_finetune_phase_off",))
    with pytest.raises(ValueError, match="need images.*--models baseline,memory"):
        run_experiment(config, tmp_path / "run", data, progress=False, make_figures=False)


def test_a_run_directory_of_another_configuration_is_refused(tmp_path):
    data = synthetic_data(tmp_path)
    run_experiment(small_config(run__repeats=2), tmp_path / "run", data, progress=False, make_figures=False)
    with pytest.raises(ValueError, match=r"another configuration \(\[memory\] memory_size: saved 16, now 8\)"):
        run_experiment(small_config(run__repeats=2, memory__memory_size=8), tmp_path / "run", data, progress=False,
                       make_figures=False)


def test_a_memory_smaller_than_the_classes_stores_every_class_about_equally_often(tmp_path):
    """Feed order is drawn per repeat: no class is evicted in every repeat because of its name.

    With 3 slots for 5 well-separated classes, a batch in class order always stored the
    last three classes (per-class recall [0, 0, 1, 1, 1] in every repeat).
    """
    data = synthetic_data(tmp_path, n_classes=5, per_class=6, dim=16, spread=0.2)
    config = small_config(run__repeats=60, run__models=("memory",), memory__memory_size=3, memory__age_noise=0.0)
    run_experiment(config, tmp_path / "run", data, progress=False, make_figures=False)
    with np.load(tmp_path / "run" / "confusion.npz") as conf:
        at_one_shot = conf["memory"][:, 1]  # [repeats, true, predicted]
    recall_per_repeat = np.diagonal(at_one_shot, axis1=1, axis2=2) / at_one_shot.sum(axis=2)
    stored_often = (recall_per_repeat > 0.5).mean(axis=0)  # how often each class was stored
    assert np.all((stored_often > 0.35) & (stored_often < 0.85)), stored_often  # 3 of 5: about 0.6 each
    feed = np.load(tmp_path / "run" / "repeats" / "memory" / "00000.npz")["feed"]
    assert sorted(data.labels[feed[1]].tolist()) == list(range(5))  # the recorded feed: one per class


def test_sorted_order_feeds_image_i_of_every_class_at_iteration_i(tmp_path):
    """The blog's fixed order: no shuffle, the same feeds in every repeat, in dataset order."""
    data = synthetic_data(tmp_path, n_classes=3, per_class=5, dim=8, spread=1.0)

    class Recorder:
        def __init__(self):
            self.feeds = []

        def start_repeat(self, seed):
            pass

        def step(self, feed, evaluate):
            self.feeds.append(np.asarray(feed).tolist())
            return 0.0, np.full(len(evaluate), -1)

        def memory_bytes(self):
            return 0

        def slots_in_use(self):
            return 0

    config = small_config(run__order="sorted", run__max_shots=4)
    members = [np.flatnonzero(data.labels == c) for c in range(3)]
    for repeat in (0, 1):
        recorder = Recorder()
        result = run_repeat(recorder, "baseline", repeat, data, config)
        assert recorder.feeds[0] == []
        assert recorder.feeds[1:] == [[int(m[i]) for m in members] for i in range(4)]
        zero_shot = result.n_correct[0] / result.n_eval[0]
        assert 0.0 <= zero_shot <= 1.0   # a uniform guess, not a fixed answer
    with pytest.raises(cfg.ConfigError, match=r"\[run\] order = 'random' is out of range; allowed: shuffle or sorted"):
        small_config(run__order="random")


def test_a_repeats_schedule_is_shared_by_models_read_only_and_follows_the_seed():
    labels = np.repeat(np.arange(4), 6)
    config = small_config()
    first = repeat_iterations(labels, 4, config, "memory", 3)
    assert repeat_iterations(labels, 4, config, "baseline", 3) is first  # drawn once, for every model
    with pytest.raises(ValueError, match="read-only"):
        first[1].feed[0] = 0
    forget_schedules()
    again = repeat_iterations(labels, 4, config, "memory", 3)
    assert again is not first
    assert all(np.array_equal(a.feed, b.feed) and np.array_equal(a.evaluate, b.evaluate) for a, b in zip(first, again))
    other_seed = small_config(run__seed=1)
    assert any(not np.array_equal(a.feed, b.feed) for a, b in zip(first, repeat_iterations(labels, 4, other_seed, "memory", 3)))


def test_the_summary_names_the_fine_tuning_recipe_a_run_used(tmp_path):
    data = synthetic_data(tmp_path)
    assert not any("Fine-tuning recipe" in note for note in run_notes(small_config(), data))
    demo = small_config(run__models=["baseline", "memory_finetune_phase_off"])
    note = next(note for note in run_notes(demo, data) if "Fine-tuning recipe" in note)
    assert "learning rate 1e-05, 1 optimizer step(s)" in note and "chose another" in note
    chosen = small_config(run__models=["memory_finetune_phase_off_consistent"], finetune__learning_rate=1e-4,
                          finetune__steps_per_shot=3)
    assert "It is the recipe docs/FINETUNING.md chose on face shifts" in next(n for n in run_notes(chosen, data) if "recipe" in n)
