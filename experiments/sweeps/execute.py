"""Run a sweep's cells: on a local process pool, or as Ray tasks on a local or remote Ray cluster.

The driver (`run_sweep`) decides what is left to do, hands tasks to an executor, and
writes what comes back; the executors only move tasks and outcomes:
- `LocalExecutor`: a spawn-started process pool (TensorFlow and fork do not mix), at
  most one task per worker at a time, each worker capping TensorFlow's thread pools
  at cores / workers. A worker that dies (killed, out of memory) breaks the pool; the
  pool is rebuilt and the tasks it was running are retried up to `max_retries` times.
- `RayExecutor`: each task is a Ray task with the sweep file's [resources] (num_cpus,
  num_gpus, max_retries); Ray re-runs a task whose worker died, on any node.

Layout of DIR:
    cells/<cell>/        an ordinary `kshot run` directory per cell (same files, same resume)
    status/<cell>.json   "done" (with the cell's config hash and seconds) or "failed" (error, traceback)
    plan.csv             the cells of the last invocation and the values they set
    sweep.csv, sweep.md, figures/   the merged table, summary and figures (experiments.sweeps.report)

A cell is skipped when its status is "done" for the same configuration and its summary
is on disk; anything else runs again and resumes from the repeat files it has.
"""

from __future__ import annotations

import concurrent.futures as futures
import json
import multiprocessing
import os
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from experiments.core.run_files import CONFIG_FILE, PLAN_FILE, REPEATS_DIR, SUMMARY_CSV
from experiments.sweeps import report as sweep_report
from experiments.sweeps.spec import (
    Cell,
    Resources,
    Sweep,
    cell_dir,
    read_status,
    status_path,
)
from experiments.sweeps.task import (
    Outcome,
    Task,
    repeat_file,
    repeats_of,
    run_task,
    start_worker,
)
from kshot_io import write_bytes_atomic, write_text_atomic

RAY_INSTALL_HINT = 'pip install "kshot-memory[ray]" (or pip install "ray>=2.9")'


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------- executors


class LocalExecutor:
    """A pool of `workers` processes on this machine, each limited to `threads` TensorFlow threads."""

    shares_files = True  # workers see DIR: they write into the cell directories directly
    command_flags = ""  # what `kshot sweep` needs to be told to run this way again

    def __init__(self, workers: int | None = None, max_retries: int = 2, task_fn: Callable[[Task], Outcome] = run_task):
        self.workers = max(1, workers or available_cores())
        self.threads = max(1, available_cores() // self.workers)
        self.max_retries = max_retries
        self.task_fn = task_fn
        self.queue: list[Task] = []
        self.running: dict[futures.Future, Task] = {}
        self.attempts: dict[str, int] = {}
        self.pool = self._new_pool()

    def _new_pool(self):
        return futures.ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=start_worker, initargs=(self.threads,),
        )

    def describe(self) -> str:
        return f"local pool, {self.workers} worker(s) x {self.threads} thread(s)"

    def task_threads(self) -> int:
        return self.threads

    def submit(self, task: Task) -> None:
        self.queue.append(task)
        self._fill()

    def _fill(self) -> None:
        # At most one task per worker is handed to the pool, so a worker that dies takes
        # down (and costs a retry to) only the tasks that were really running.
        while self.queue and len(self.running) < self.workers:
            task = self.queue.pop(0)
            self.running[self.pool.submit(self.task_fn, task)] = task

    def pending(self) -> bool:
        return bool(self.running or self.queue)

    def wait_any(self) -> list[tuple[Task, Outcome]]:
        done, _ = futures.wait(list(self.running), return_when=futures.FIRST_COMPLETED)
        finished, broken = [], []
        for future in done:
            task = self.running.pop(future)
            try:
                finished.append((task, future.result()))
            except BrokenProcessPool:
                broken.append(task)
        if broken:
            broken += list(self.running.values())  # the pool is gone: everything it ran goes with it
            self.running.clear()
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()
            for task in broken:
                self.attempts[task.key] = self.attempts.get(task.key, 0) + 1
                if self.attempts[task.key] > self.max_retries:
                    finished.append((task, Outcome(
                        ok=False, seconds=0.0,
                        error=f"its worker process died {self.attempts[task.key]} times (killed, or out of memory)",
                    )))
                else:
                    self.queue.insert(0, task)
        self._fill()
        return finished

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def call_task(task_fn: Callable[[Task], Outcome], task: Task) -> Outcome:
    """The Ray task: `task_fn` travels as an argument, so any picklable callable (a partial) can run."""
    return task_fn(task)


class RayExecutor:
    """Ray tasks on a local Ray instance (address None) or an existing cluster (`ray start --head`)."""

    def __init__(self, address: str | None, resources: Resources, shared: bool = False,
                 task_fn: Callable[[Task], Outcome] = run_task):
        try:
            import ray
        except ImportError:
            raise ValueError(f"--ray needs Ray, which is not installed here: {RAY_INSTALL_HINT}") from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.shares_files = shared
        self.command_flags = (f" --ray {address}" if address else " --ray") + (" --shared" if shared else "")
        self.resources = resources
        self.task_fn = task_fn
        self.remote = ray.remote(call_task).options(
            num_cpus=resources.num_cpus, num_gpus=resources.num_gpus, max_retries=resources.max_retries,
        )
        self.running: dict = {}

    def describe(self) -> str:
        cluster = self.ray.cluster_resources()
        return (f"Ray, {int(cluster.get('CPU', 0))} CPU(s) and {int(cluster.get('GPU', 0))} GPU(s) in the cluster; "
                f"{self.resources.num_cpus} CPU(s) and {self.resources.num_gpus} GPU(s) per task")

    def task_threads(self) -> int:
        return max(1, int(self.resources.num_cpus))

    def submit(self, task: Task) -> None:
        self.running[self.remote.remote(self.task_fn, task)] = task

    def pending(self) -> bool:
        return bool(self.running)

    def wait_any(self) -> list[tuple[Task, Outcome]]:
        ready, _ = self.ray.wait(list(self.running), num_returns=1)
        finished = []
        for ref in ready:
            task = self.running.pop(ref)
            try:
                finished.append((task, self.ray.get(ref)))
            except self.ray.exceptions.RayError as error:
                # Retries exhausted (the worker kept dying) or the task could not be run at all.
                finished.append((task, Outcome(ok=False, seconds=0.0, error=f"Ray: {type(error).__name__}: {error}")))
        return finished

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()


# ---------------------------------------------------------------- the driver


@dataclass
class CellState:
    cell: Cell
    shards_left: int = 0
    errors: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    seconds: float = 0.0


def is_complete(out_dir: Path, cell: Cell) -> bool:
    status = read_status(out_dir, cell.name)
    return (
        status.get("state") == "done"
        and status.get("config_sha256") == cell.config_sha
        and (cell_dir(out_dir, cell.name) / SUMMARY_CSV).is_file()
    )


def shards_of(cell: Cell, out_dir: Path, repeats_per_task: int) -> list[tuple[tuple[str, int], ...]]:
    """The cell's missing repeats in slices of `repeats_per_task`, one model per slice; [] = one task."""
    if repeats_per_task <= 0:
        return []
    config = cell.config()
    if sum(repeats_of(config, m) for m in config.run.models) <= repeats_per_task:
        return []
    here = cell_dir(out_dir, cell.name)
    shards = []
    for model in config.run.models:
        todo = [(model, r) for r in range(repeats_of(config, model)) if not repeat_file(here, model, r).is_file()]
        shards += [tuple(todo[i:i + repeats_per_task]) for i in range(0, len(todo), repeats_per_task)]
    return shards


def seed_files(run_dir: Path) -> dict[str, bytes]:
    """What a worker without access to DIR needs to resume the cell: its config and finished repeats."""
    if not run_dir.is_dir():
        return {}
    paths = [run_dir / CONFIG_FILE, *sorted((run_dir / REPEATS_DIR).rglob("*.npz"))]
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in paths if p.is_file()}


def rerun_command(sweep: Sweep, out_dir: Path, failed: list[str], executor) -> str:
    return f"kshot sweep --config {sweep.path} --out {out_dir}{executor.command_flags} --only {','.join(failed)}"


def run_sweep(
    sweep: Sweep,
    out_dir: str | Path,
    executor,
    only: list[str] | None = None,
    make_figures: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Run every cell not yet complete, then write the merged table, summary and figures.

    Returns {"done": [names], "failed": {name: error}, "skipped": [names], "table": DataFrame}.
    """

    out_dir = Path(out_dir)
    cells = list(sweep.cells)
    if only:
        unknown = sorted(set(only) - {c.name for c in cells})
        if unknown:
            raise ValueError(f"--only: no cell named {', '.join(unknown)} in {sweep.path}; its cells: {', '.join(c.name for c in cells)}")
        cells = [c for c in cells if c.name in only]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / PLAN_FILE, sweep_report.plan_csv(sweep))

    skipped = [c.name for c in cells if is_complete(out_dir, c)]
    states: dict[str, CellState] = {}
    log(f"kshot sweep: {len(cells)} cell(s), {len(skipped)} already complete; {executor.describe()}")

    def cell_task(cell: Cell, repeats=()) -> Task:
        here = cell_dir(out_dir, cell.name)
        if executor.shares_files:
            return Task(cell.name, cell.config_toml, repeats, run_dir=str(here), make_figures=make_figures,
                        threads=executor.task_threads())
        return Task(cell.name, cell.config_toml, repeats, seed_files=seed_files(here), make_figures=make_figures,
                    threads=executor.task_threads())

    for cell in cells:
        if cell.name in skipped:
            continue
        state = states[cell.name] = CellState(cell)
        shards = shards_of(cell, out_dir, sweep.repeats_per_task)
        state.shards_left = len(shards)
        for shard in shards:
            executor.submit(cell_task(cell, shard))
        if not shards:
            executor.submit(cell_task(cell))

    finished = 0
    try:
        while executor.pending():
            for task, outcome in executor.wait_any():
                state = states[task.cell]
                state.seconds += outcome.seconds
                if outcome.ok and outcome.files:
                    for relative, data in outcome.files.items():
                        write_bytes_atomic(cell_dir(out_dir, task.cell) / relative, data)
                if not outcome.ok:
                    state.errors.append(f"{task.key}: {outcome.error}")
                    state.tracebacks.append(outcome.traceback)
                if task.repeats:
                    state.shards_left -= 1
                    if state.shards_left == 0 and not state.errors:
                        executor.submit(cell_task(state.cell))  # every repeat is on disk: assemble the cell
                    if state.shards_left > 0 or not state.errors:
                        continue
                finished += 1
                record_cell(out_dir, state)
                verdict = "done" if not state.errors else f"FAILED: {state.errors[0]}"
                log(f"[{finished + len(skipped)}/{len(cells)}] {task.cell}: {verdict} ({state.seconds:.1f} s)")
    finally:
        executor.close()

    failed = {name: s.errors for name, s in states.items() if s.errors}
    done = [c.name for c in cells if c.name not in failed and c.name not in skipped]
    rerun = rerun_command(sweep, out_dir, sorted(failed), executor) if failed else ""
    summary = sweep_report.summary_text(sweep, done, skipped, failed, rerun)
    table = sweep_report.write_sweep_report(out_dir, sweep, summary, make_figures=make_figures)
    return {"done": done, "skipped": skipped, "failed": failed, "table": table, "summary": summary}


def record_cell(out_dir: Path, state: CellState) -> None:
    """The cell's status, written after its files, so "done" always means the files are there."""
    status = {
        "cell": state.cell.name,
        "state": "failed" if state.errors else "done",
        "config_sha256": state.cell.config_sha,
        "settings": state.cell.settings,
        "seconds": round(state.seconds, 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if state.errors:
        status["errors"] = state.errors
        status["tracebacks"] = state.tracebacks
    write_text_atomic(status_path(out_dir, state.cell.name), json.dumps(status, indent=2) + "\n")
