"""`kshot sweep` end to end on precomputed embeddings: local pool and a real local Ray.

Every test runs real cells (the frozen models on a tiny synthetic embeddings npz) and
checks what lands on disk: every cell done, the merged table complete, a cell whose
worker process is killed re-run to the same result, a failing cell recorded while the
others finish, resume, and results byte-identical to a single-process `kshot run`,
whichever executor ran them and however the repeats were spread over tasks.
"""

from __future__ import annotations

import functools
import os
import signal
from pathlib import Path

import pandas as pd
import pytest
from support import write_embeddings_npz

from experiments.faces.run_data import prepare_data
from experiments.faces.runner import run_experiment
from experiments.sweeps.execute import LocalExecutor, RayExecutor, run_sweep
from experiments.sweeps.report import MEASURED_COLUMNS
from experiments.sweeps.spec import load_sweep
from experiments.sweeps.task import Task, run_task

pytestmark = pytest.mark.slow  # several worker processes each start TensorFlow

WORKTREE = Path(__file__).resolve().parents[2]
VICTIM = "memory_size=8__seed=1"  # the cell whose first task kills its own worker process
CELLS = ["memory_size=2__seed=0", "memory_size=2__seed=1", "memory_size=8__seed=0", "memory_size=8__seed=1"]
MODELS = ["baseline", "memory"]


def crash_once(task: Task, marker: str, victim: str) -> object:
    """Kill this worker process (SIGKILL, no cleanup) the first time it runs a task of `victim`."""
    if task.cell == victim and not os.path.exists(marker):
        Path(marker).write_text(task.key)
        os.kill(os.getpid(), signal.SIGKILL)
    return run_task(task)


def make_sweep(folder: Path, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_embeddings_npz(folder / "emb.npz", n_classes=4, per_class=5, dim=8)
    (folder / "base.toml").write_text(f"""
[run]
repeats = 3
max_shots = 2
models = ["baseline", "memory"]
[data]
embeddings = "{folder / 'emb.npz'}"
""")
    (folder / "sweep.toml").write_text(f"""
[sweep]
base = "base.toml"
repeats_per_task = 2
[grid]
memory.memory_size = [2, 8]
run.seed = [0, 1]
[resources]
num_cpus = 1
max_retries = 2
{extra}""")
    return folder / "sweep.toml"


def deterministic(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=list(MEASURED_COLUMNS)).reset_index(drop=True)


def check_complete(out: Path, outcome: dict) -> None:
    assert outcome["failed"] == {}
    table = pd.read_csv(out / "sweep.csv")
    assert sorted(table["cell"].unique()) == sorted(CELLS)
    assert len(table) == len(CELLS) * len(MODELS)
    assert (table["status"] == "done").all()
    assert table[["acc_0shot", "acc_1shot", "acc_2shot", "memory_bytes"]].notna().all().all()
    assert (table["repeats"] == 3).all()
    for cell in CELLS:
        assert (out / "cells" / cell / "results.csv").is_file()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The sweep on the local pool (2 workers), one cell's worker killed once."""
    folder = tmp_path_factory.mktemp("local")
    sweep = load_sweep(make_sweep(folder))
    marker = folder / "killed"
    executor = LocalExecutor(workers=2, max_retries=2, task_fn=functools.partial(crash_once, marker=str(marker), victim=VICTIM))
    outcome = run_sweep(sweep, folder / "out", executor, log=lambda line: None)
    return sweep, folder / "out", outcome, marker


def test_local_sweep_finishes_every_cell_and_reruns_the_killed_one(local_run):
    sweep, out, outcome, marker = local_run
    assert marker.is_file(), "the victim cell's worker was never killed"
    check_complete(out, outcome)
    assert sorted(outcome["done"]) == sorted(CELLS)
    for name in ("accuracy_vs_footprint", "accuracy_vs_memory_memory_size", "accuracy_vs_run_seed"):
        assert (out / "figures" / f"{name}.png").is_file()


def test_each_cell_is_byte_identical_to_a_single_process_run(local_run, tmp_path):
    sweep, out, _, _ = local_run
    cell = next(c for c in sweep.cells if c.name == VICTIM)
    config = cell.config()
    single = tmp_path / "single"
    run_experiment(config, single, prepare_data(config.data, need_crops=False, progress=False),
                   progress=False, log=lambda line: None, make_figures=False)
    for name in ("results.csv", "summary.csv", "config.toml"):
        assert (out / "cells" / VICTIM / name).read_bytes() == (single / name).read_bytes(), name


def test_a_complete_sweep_is_skipped_and_an_interrupted_cell_resumes(local_run):
    sweep, out, _, _ = local_run
    cell_dir = out / "cells" / "memory_size=2__seed=0"
    results = (cell_dir / "results.csv").read_bytes()
    kept = cell_dir / "repeats" / "memory" / "00000.npz"
    kept_mtime = kept.stat().st_mtime_ns
    # Interrupt the cell as a kill would: no status, no tables, one repeat lost.
    (out / "status" / "memory_size=2__seed=0.json").unlink()
    (cell_dir / "summary.csv").unlink()
    (cell_dir / "repeats" / "memory" / "00002.npz").unlink()
    outcome = run_sweep(sweep, out, LocalExecutor(workers=1), make_figures=False, log=lambda line: None)
    assert outcome["done"] == ["memory_size=2__seed=0"]
    assert sorted(outcome["skipped"]) == sorted(set(CELLS) - {"memory_size=2__seed=0"})
    assert kept.stat().st_mtime_ns == kept_mtime, "a finished repeat was computed again"
    assert (cell_dir / "repeats" / "memory" / "00002.npz").is_file()
    assert (cell_dir / "results.csv").read_bytes() == results


def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path):
    sweep_path = make_sweep(tmp_path, extra='[[cells]]\n"data.embeddings" = "/nonexistent/emb.npz"\n')
    sweep = load_sweep(sweep_path)
    outcome = run_sweep(sweep, tmp_path / "out", LocalExecutor(workers=2), only=["embeddings=emb.npz", CELLS[0]],
                        make_figures=False, log=lambda line: None)
    assert list(outcome["failed"]) == ["embeddings=emb.npz"]
    assert "does not exist" in outcome["failed"]["embeddings=emb.npz"][0]
    assert outcome["done"] == [CELLS[0]]
    status = (tmp_path / "out" / "status" / "embeddings=emb.npz.json").read_text()
    assert '"state": "failed"' in status and "FileNotFoundError" in status
    assert "--only embeddings=emb.npz" in outcome["summary"]
    assert "embeddings=emb.npz" in (tmp_path / "out" / "sweep.md").read_text()
    table = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert table.loc[table["cell"] == "embeddings=emb.npz", "status"].tolist() == ["failed"]


# ---------------------------------------------------------------- a real local Ray


@pytest.fixture(scope="module")
def ray_cluster():
    import ray  # in the test extra, so CI runs these tests; never skipped

    # Workers import this worktree's packages and this module (for crash_once).
    here = Path(__file__).resolve().parent
    path = os.pathsep.join([str(WORKTREE), str(WORKTREE / "tests"), str(here), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}})
    yield ray
    ray.shutdown()


def test_ray_sweep_matches_the_local_one_and_reruns_a_killed_worker(ray_cluster, local_run, tmp_path):
    """Files come back to the driver; the victim's worker dies once and Ray re-runs its task."""
    _, local_out, _, _ = local_run
    sweep = load_sweep(make_sweep(tmp_path))
    marker = tmp_path / "killed"
    executor = RayExecutor(None, sweep.resources, task_fn=functools.partial(crash_once, marker=str(marker), victim=VICTIM))
    outcome = run_sweep(sweep, tmp_path / "out", executor, make_figures=False, log=lambda line: None)
    assert marker.is_file(), "the victim cell's worker was never killed"
    check_complete(tmp_path / "out", outcome)
    ours = deterministic(pd.read_csv(tmp_path / "out" / "sweep.csv"))
    theirs = deterministic(pd.read_csv(local_out / "sweep.csv"))
    pd.testing.assert_frame_equal(ours, theirs)
    for cell in CELLS:
        assert (tmp_path / "out" / "cells" / cell / "results.csv").read_bytes() == \
            (local_out / "cells" / cell / "results.csv").read_bytes()


def test_ray_on_a_shared_path_writes_in_place(ray_cluster, local_run, tmp_path):
    _, local_out, _, _ = local_run
    sweep = load_sweep(make_sweep(tmp_path))
    outcome = run_sweep(sweep, tmp_path / "out", RayExecutor(None, sweep.resources, shared=True), only=[VICTIM],
                        make_figures=False, log=lambda line: None)
    assert outcome["done"] == [VICTIM] and outcome["failed"] == {}
    assert (tmp_path / "out" / "cells" / VICTIM / "results.csv").read_bytes() == \
        (local_out / "cells" / VICTIM / "results.csv").read_bytes()
