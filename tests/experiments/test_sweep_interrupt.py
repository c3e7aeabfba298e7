"""One Ctrl-C stops `kshot sweep` within seconds, leaves no worker process behind, and keeps finished cells.

Ctrl-C is sent as a terminal sends it: SIGINT to the whole process group of a real
subprocess. The workers of the first test (a local pool, and Ray) ignore SIGINT and
sleep, as a worker deep in TensorFlow's C++ code does (a Python-level interrupt never
reaches it); the sweep must not wait for them. Every process the driver started is recorded from /proc before the
signal and must be gone after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import write_embeddings_npz

from experiments.sweeps.execute import is_complete
from experiments.sweeps.spec import load_sweep

REPO = Path(__file__).resolve().parents[2]
EXIT_WITHIN_SECONDS = 15  # generous for a loaded 2-core machine; a hang lasted minutes

STUBBORN = '''
import os, signal, time
from pathlib import Path
from experiments.sweeps.task import run_task

def stubborn_task(task):
    """The first cell runs for real; the others ignore Ctrl-C and sleep, like a worker inside TensorFlow."""
    if task.cell == "seed=0":
        return run_task(task)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    (Path(os.environ["PID_DIR"]) / str(os.getpid())).write_text(task.cell)
    time.sleep(600)
'''

DRIVER = '''
import sys
from experiments.sweeps.execute import LocalExecutor, run_sweep
from experiments.sweeps.spec import load_sweep
from stubborn import stubborn_task

if __name__ == "__main__":  # spawned workers import this module too
    try:
        run_sweep(load_sweep(sys.argv[1]), sys.argv[2], LocalExecutor(workers=2, task_fn=stubborn_task),
                  make_figures=False)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
'''

RAY_DRIVER = '''
import os, sys
import ray
from experiments.sweeps.execute import RayExecutor, run_sweep
from experiments.sweeps.spec import load_sweep
from stubborn import stubborn_task

if __name__ == "__main__":
    env = {name: os.environ[name] for name in ("PYTHONPATH", "PID_DIR", "TF_CPP_MIN_LOG_LEVEL")}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    sweep = load_sweep(sys.argv[1])
    try:
        run_sweep(sweep, sys.argv[2], RayExecutor(None, sweep.resources, task_fn=stubborn_task), make_figures=False)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
'''


def write_sweep(folder: Path, seeds: list[int], repeats: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    npz = write_embeddings_npz(folder / "emb.npz", n_classes=3, per_class=4, dim=8, spread=1.0)
    (folder / "base.toml").write_text(
        f'[run]\nrepeats = {repeats}\nmax_shots = 2\nmodels = ["baseline", "memory"]\n[data]\nembeddings = "{npz}"\n'
    )
    (folder / "sweep.toml").write_text(f'[sweep]\nbase = "base.toml"\n[grid]\nrun.seed = {seeds}\n')
    return folder / "sweep.toml"


def descendants(pid: int) -> set[int]:
    """Every living process below `pid`, from /proc (psutil is not a dependency)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended while we looked
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def ctrl_c(process: subprocess.Popen) -> int:
    """SIGINT to the process group, as a terminal's Ctrl-C; the exit code, which must come within seconds."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        code = process.wait(timeout=EXIT_WITHIN_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"the sweep did not exit within {EXIT_WITHIN_SECONDS} s of Ctrl-C") from None
    return code


def no_process_left(pids: set[int]) -> None:
    wait_for(lambda: not any(alive(p) for p in pids), 5, "every worker process to end")


def environment(**extra: str) -> dict:
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


@pytest.mark.parametrize("backend", ["local", pytest.param("ray", marks=pytest.mark.slow)])
def test_ctrl_c_stops_workers_stuck_in_native_code_and_keeps_the_finished_cell(tmp_path, backend):
    sweep = write_sweep(tmp_path, [0, 1, 2])
    (tmp_path / "stubborn.py").write_text(STUBBORN)
    (tmp_path / "driver.py").write_text(DRIVER if backend == "local" else RAY_DRIVER)
    pids = tmp_path / "pids"
    pids.mkdir()
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), str(sweep), str(out)],
        cwd=tmp_path, env=environment(PID_DIR=str(pids), PYTHONPATH=f"{REPO}{os.pathsep}{tmp_path}"),
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # The first cell finishes; the other two are then held by workers that ignore SIGINT.
        wait_for(lambda: (out / "status" / "seed=0.json").is_file() and len(list(pids.iterdir())) == 2
                 or process.poll() is not None, 240, "the first cell to finish and two stubborn workers to start")
        assert process.poll() is None, process.stderr.read()
        started = descendants(process.pid)
        assert {int(p.name) for p in pids.iterdir()} <= started
        code = ctrl_c(process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert code == 130, process.stderr.read()
    no_process_left(started)

    # The finished cell stays on disk and a later sweep counts it as complete.
    first = next(c for c in load_sweep(sweep).cells if c.name == "seed=0")
    assert is_complete(out, first)
    assert (out / "cells" / "seed=0" / "results.csv").is_file()


@pytest.mark.slow
def test_ctrl_c_during_a_real_kshot_sweep_exits_and_the_rerun_resumes(tmp_path):
    """The real command: one worker computing repeats of the second cell when Ctrl-C comes.

    Its first cell warns (a memory smaller than store-all's keys): the warning must come
    through as one line naming the cell.
    """
    sweep = write_sweep(tmp_path, [0, 1], repeats=3)
    with open(tmp_path / "base.toml", "a") as base:
        base.write("[memory]\nmemory_size = 2\n")  # smaller than store-all's keys: each cell warns
    # The second cell is long: many repeats, so it is surely running when Ctrl-C comes.
    (tmp_path / "sweep.toml").write_text(
        '[sweep]\nbase = "base.toml"\n[grid]\nrun.seed = [0]\n'
        '[[cells]]\n"run.seed" = 1\n"run.repeats" = 100000\n'
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "experiments.cli", "sweep", "--config", str(sweep), "--out", str(out),
               "--workers", "1", "--no-figures"]
    process = subprocess.Popen(command, cwd=tmp_path, env=environment(), start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    long_cell = out / "cells" / "seed=1__repeats=100000" / "repeats" / "memory"
    try:
        wait_for(lambda: long_cell.is_dir() and len(list(long_cell.glob("*.npz"))) >= 2, 300,
                 "the long cell to be computing")
        started = descendants(process.pid)
        code = ctrl_c(process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert code == 130
    err = process.stderr.read()
    assert "interrupted" in err
    # The worker's warning, once, on one line naming the cell; no source line, no TensorFlow start-up noise.
    assert "kshot sweep: warning in cell seed=0: memory_size 2 is smaller than" in err
    assert "warnings.warn" not in err and ".py:" not in err and "oneDNN" not in err, err
    no_process_left(started)
    assert (out / "status" / "seed=0.json").is_file()
    kept = {p: p.stat().st_mtime_ns for p in long_cell.glob("*.npz")}

    rerun = subprocess.run([*command, "--only", "seed=0"], cwd=tmp_path, env=environment(),
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "1 cell(s), 1 already complete" in rerun.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())
