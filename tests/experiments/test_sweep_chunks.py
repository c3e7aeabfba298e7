"""Sweep tasks run frozen methods in chunks of [run] chunk_size repeats, with the per-repeat results.

In-process (run_task, no worker pool), on a tiny synthetic embeddings npz: a cell
computed in shards of chunked repeats assembles to the results.csv of a one-repeat-at-a-time
run, byte for byte; a shard killed inside its second chunk keeps the first chunk's repeat
files, one per repeat, and its rerun completes the cell to the same bytes; a whole-cell task
honours the chunk size too; and a finished cell stays finished under another chunk size.
"""

from __future__ import annotations

import pytest
import tomllib
from support import write_embeddings_npz

from experiments.core.settings import to_toml, with_assignments
from experiments.faces import chunks
from experiments.faces import settings as cfg
from experiments.faces.run_data import load_embeddings_file
from experiments.faces.runner import run_experiment
from experiments.sweeps.spec import Cell
from experiments.sweeps.task import Task, run_task

MODELS = ["baseline", "memory", "reservoir"]
REPEATS = 7
pytestmark = pytest.mark.filterwarnings("ignore:.*memory_size:UserWarning")


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory):
    return write_embeddings_npz(tmp_path_factory.mktemp("emb") / "emb.npz", n_classes=5, per_class=7, dim=16,
                                spread=1.0)


def config_toml(embeddings, chunk_size: int) -> str:
    config = cfg.from_dict({"run": {"repeats": REPEATS, "max_shots": 4, "models": MODELS, "chunk_size": chunk_size},
                            "memory": {"memory_size": 6}, "data": {"embeddings": str(embeddings)}})
    return to_toml(config)


@pytest.fixture(scope="module")
def reference(embeddings, tmp_path_factory):
    """results.csv of a single-process run, one repeat per call."""
    text = config_toml(embeddings, 1)
    config = cfg.from_dict(tomllib.loads(text))
    out = tmp_path_factory.mktemp("reference") / "run"
    data = load_embeddings_file(embeddings, config.data)
    run_experiment(config, out, data, progress=False, make_figures=False, chunk_size=1)
    return (out / "results.csv").read_bytes()


@pytest.fixture
def batched_calls(monkeypatch):
    """The repeats of every BatchedFrozen.run call, in order."""
    original = chunks.BatchedFrozen.run
    calls = []

    def counted(self, seeds, schedules):
        calls.append(len(seeds))
        return original(self, seeds, schedules)

    monkeypatch.setattr(chunks.BatchedFrozen, "run", counted)
    return calls


def shards(models, repeats=REPEATS, size=4):
    return [tuple((m, r) for r in range(first, min(first + size, repeats))) for m in models
            for first in range(0, repeats, size)]


def run_ok(task: Task) -> None:
    outcome = run_task(task)
    assert outcome.ok, outcome.traceback


@pytest.mark.parametrize("chunk_size", [1, 3, 50])
def test_sharded_chunks_assemble_to_the_per_repeat_results(embeddings, reference, tmp_path, batched_calls, chunk_size):
    text, run_dir = config_toml(embeddings, chunk_size), tmp_path / "cell"
    for shard in shards(MODELS):
        run_ok(Task("cell", text, shard, run_dir=str(run_dir), make_figures=False))
    if chunk_size > 1:  # every frozen model: shards of 4 and 3 repeats, each in chunks of chunk_size
        per_shard = {3: [3, 1, 3], 50: [4, 3]}[chunk_size]
        assert batched_calls == per_shard * len(MODELS)
    computed = list(batched_calls)
    run_ok(Task("cell", text, (), run_dir=str(run_dir), make_figures=False))  # assembles the tables only
    assert batched_calls == computed
    assert (run_dir / "results.csv").read_bytes() == reference


def test_a_shard_killed_inside_a_chunk_keeps_the_finished_chunk_and_resumes(embeddings, reference, tmp_path, monkeypatch):
    text, run_dir = config_toml(embeddings, 3), tmp_path / "cell"
    original = chunks.BatchedFrozen.run
    calls = {"n": 0}

    def killed_in_second_chunk(self, seeds, schedules):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return original(self, seeds, schedules)

    monkeypatch.setattr(chunks.BatchedFrozen, "run", killed_in_second_chunk)
    whole_model = tuple(("memory", r) for r in range(REPEATS))
    outcome = run_task(Task("cell", text, whole_model, run_dir=str(run_dir), make_figures=False))
    assert not outcome.ok and "killed" in outcome.error
    stored = sorted(p.name for p in (run_dir / "repeats" / "memory").glob("*.npz"))
    assert stored == ["00000.npz", "00001.npz", "00002.npz"]  # the first chunk, one file a repeat; nothing of the second

    monkeypatch.setattr(chunks.BatchedFrozen, "run", original)
    resumed = []
    monkeypatch.setattr(chunks.BatchedFrozen, "run", lambda self, seeds, schedules: resumed.append(len(seeds))
                        or original(self, seeds, schedules))
    run_ok(Task("cell", text, whole_model, run_dir=str(run_dir), make_figures=False))
    assert resumed == [3, 1]  # only the 4 repeats not on disk
    run_ok(Task("cell", text, (), run_dir=str(run_dir), make_figures=False))
    assert (run_dir / "results.csv").read_bytes() == reference


def test_a_whole_cell_task_uses_the_cells_chunk_size(embeddings, reference, tmp_path, batched_calls):
    run_ok(Task("cell", config_toml(embeddings, 3), (), run_dir=str(tmp_path / "cell"), make_figures=False))
    assert batched_calls == [3, 3, 1] * len(MODELS)
    assert (tmp_path / "cell" / "results.csv").read_bytes() == reference


def test_a_finished_cell_is_recognised_under_another_chunk_size(embeddings):
    text = config_toml(embeddings, 250)
    other = to_toml(with_assignments(cfg.from_dict(tomllib.loads(text)), ["run.chunk_size=9"]))
    seeded = to_toml(with_assignments(cfg.from_dict(tomllib.loads(text)), ["run.seed=9"]))
    assert other != text
    assert Cell("c", {}, other).config_sha == Cell("c", {}, text).config_sha
    assert Cell("c", {}, seeded).config_sha != Cell("c", {}, text).config_sha
