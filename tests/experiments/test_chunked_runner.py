"""Frozen methods run in chunks of repeats give, repeat by repeat, what the per-repeat loop gives.

Every frozen method and write policy, on synthetic embeddings with a memory smaller than
the classes times the shots (so every policy evicts), at chunk sizes 1, one that does
not divide the repeats, exactly the repeats, and more than the repeats. Then a run
killed inside its second chunk resumes to the uninterrupted run's results.csv.
"""

import numpy as np
import pytest
from support import write_embeddings_npz

from experiments.faces import chunks, methods
from experiments.faces import settings as cfg
from experiments.faces.adapters import build_adapter
from experiments.faces.results import RepeatResult
from experiments.faces.run_data import load_embeddings_file
from experiments.faces.runner import compute_repeats, run_experiment, run_repeat

FROZEN = [name for name, method in methods.METHODS.items() if method.finetune is None]
REPEATS = 7
pytestmark = pytest.mark.filterwarnings("ignore:.*memory_size:UserWarning")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = write_embeddings_npz(tmp_path_factory.mktemp("emb") / "emb.npz", n_classes=5, per_class=7, dim=16, spread=1.0)
    return load_embeddings_file(path, cfg.DataSection(embeddings=str(path)))


def config_for(models, **run):
    return cfg.from_dict({"run": {"repeats": REPEATS, "max_shots": 4, "models": models, **run},
                          "memory": {"memory_size": 6}})


def assert_same_repeat(got: RepeatResult, want: RepeatResult, where: str) -> None:
    assert (got.model, got.repeat) == (want.model, want.repeat), where
    for name in RepeatResult.ARRAYS:
        if name != "seconds":
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=f"{where}: {name}")
            assert getattr(got, name).dtype == getattr(want, name).dtype, f"{where}: {name} dtype"


@pytest.mark.parametrize("model", FROZEN)
def test_chunks_equal_the_per_repeat_loop(data, model):
    config = config_for([model])
    adapter = build_adapter(model, data, config)
    assert chunks.batchable(adapter, config)
    todo = list(range(REPEATS))
    per_repeat = [run_repeat(adapter, model, r, data, config) for r in todo]
    for chunk_size in (1, 3, REPEATS, 50):
        chunked = list(compute_repeats(adapter, model, todo, data, config, chunk_size))
        for got, want in zip(chunked, per_repeat, strict=True):
            assert_same_repeat(got, want, f"{model} chunk_size={chunk_size} repeat {want.repeat}")


def test_a_run_over_several_memory_sizes_traces_each_method_once_and_equals_the_per_repeat_loop(data, tmp_path,
                                                                                                    monkeypatch):
    config = cfg.from_dict({"run": {"repeats": REPEATS, "max_shots": 4, "models": FROZEN},
                            "memory": {"memory_size": [6, 3, 9]}})
    reference = tmp_path / "reference"
    run_experiment(config, reference, data, progress=False, make_figures=False, chunk_size=1)
    made = []
    original = chunks.BatchedFrozen.__init__

    def counted(self, adapter, repeats):
        made.append(adapter.memory.get_config().get("memory_size"))
        original(self, adapter, repeats)

    monkeypatch.setattr(chunks.BatchedFrozen, "__init__", counted)
    monkeypatch.setattr(chunks, "_TRACED", {})
    run_experiment(config, tmp_path / "chunked", data, progress=False, make_figures=False, chunk_size=3)
    assert (tmp_path / "chunked" / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    assert len(made) == len(FROZEN), f"one batched memory per method, not per size: {made}"


def test_the_reset_memories_answer_at_zero_shots_is_computed_once_per_size_and_kept_read_only(data):
    from experiments.faces.runner import repeat_iterations  # the schedules the runner would feed

    model = "memory"
    config = config_for([model])
    frozen = chunks.BatchedFrozen(build_adapter(model, data, config), 3)
    schedules = [repeat_iterations(data.labels, len(data.class_names), config, model, r) for r in range(6)]
    first = frozen.run([0, 1, 2], schedules[:3])
    second = frozen.run([3, 4, 5], schedules[3:])
    assert second.labels[0].base is first.labels[0].base, "the second chunk reuses the first chunk's 0-shot answer"
    assert not first.labels[0].flags.writeable and not first.bytes[0].flags.writeable
    frozen.resize(2)
    smaller = frozen.run([0, 1, 2], schedules[:3])
    assert smaller.bytes[0].base is not first.bytes[0].base
    assert (smaller.bytes[0] < first.bytes[0]).all(), "a resized memory reports its own empty footprint"


def test_a_resumed_subset_of_repeats_equals_the_same_repeats_of_a_full_run(data):
    model = "memory_fold"
    config = config_for([model])
    adapter = build_adapter(model, data, config)
    whole = list(compute_repeats(adapter, model, list(range(REPEATS)), data, config, 4))
    part = list(compute_repeats(adapter, model, [1, 4, 6], data, config, 2))
    for got in part:
        assert_same_repeat(got, whole[got.repeat], f"repeat {got.repeat}")


def test_a_run_killed_inside_a_chunk_resumes_to_the_same_results(data, tmp_path, monkeypatch):
    config = config_for(["baseline", "memory", "reservoir"])
    reference = tmp_path / "reference"
    run_experiment(config, reference, data, progress=False, make_figures=False, chunk_size=1)

    original = chunks.BatchedFrozen.run
    calls = {"n": 0}

    def killed_in_second_chunk(self, seeds, schedules):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return original(self, seeds, schedules)

    monkeypatch.setattr(chunks.BatchedFrozen, "run", killed_in_second_chunk)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, out, data, progress=False, make_figures=False, chunk_size=3)
    stored = sorted(p.name for p in (out / "repeats" / "baseline").glob("*.npz"))
    assert stored == ["00000.npz", "00001.npz", "00002.npz"]  # the first chunk, whole; nothing of the second
    monkeypatch.setattr(chunks.BatchedFrozen, "run", original)
    run_experiment(config, out, data, progress=False, make_figures=False, chunk_size=3)
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()


def test_a_bad_chunk_size_is_refused(data, tmp_path):
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        run_experiment(config_for(["memory"]), tmp_path / "run", data, progress=False, make_figures=False, chunk_size=0)


def test_a_chunk_shrinks_when_its_similarities_would_not_fit():
    assert chunks.fitting_chunk(250, 117, 16) == 250  # the celebrity set: every chunk whole
    assert chunks.fitting_chunk(250, 3440, 573) == chunks.CALL_BUDGET_BYTES // (4 * 3440 * 3440)  # Omniglot's test set
    assert chunks.fitting_chunk(250, 10**6, 10**6) == 1  # never below one repeat


def test_a_memory_too_large_to_batch_runs_one_repeat_at_a_time(data, monkeypatch):
    monkeypatch.setattr(chunks, "CALL_BUDGET_BYTES", 4 * len(data.labels) * len(data.labels) * 3)  # 3 repeats fit
    monkeypatch.setattr(chunks.BatchedFrozen, "run", lambda *_: pytest.fail("a chunk of 3 was batched"))
    config = config_for(["memory"])
    adapter = build_adapter("memory", data, config)
    got = list(compute_repeats(adapter, "memory", [0, 1], data, config, 250))
    for result in got:
        assert_same_repeat(result, run_repeat(adapter, "memory", result.repeat, data, config), f"repeat {result.repeat}")


def test_a_chunked_run_makes_its_files_durable_once_per_chunk_not_once_per_file(data, tmp_path, monkeypatch):
    import os  # deferred: only this test counts the disk barriers

    from experiments.faces import runner

    fsyncs, barriers = [], []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    monkeypatch.setattr(runner, "flush_to_disk", lambda: barriers.append(1))
    config = config_for(["memory"])
    run_experiment(config, tmp_path / "run", data=data, progress=False, chunk_size=3)
    assert len(barriers) == 3  # 7 repeats in chunks of 3: after repeats 3, 6 and 7
    assert fsyncs and not [path for path in fsyncs if "/repeats/" in path]  # the summary files only
    assert len(list((tmp_path / "run" / "repeats" / "memory").glob("*.npz"))) == REPEATS
