"""Run a sweep's cells: decide what is left to do, hand tasks to an executor, write what comes back.

The executors (experiments.sweeps.executors: a local process pool, or Ray) only move
tasks and outcomes. Ctrl-C (or any error of the driver) stops the workers at once
rather than waiting for their cells; every cell and repeat finished before it is on
disk, and the same command resumes. A task's Python warnings come back with its
outcome and are printed here, one line each, naming the cell.

Layout of DIR:
    cells/<cell>/        an ordinary `kshot run` directory per cell (same files, same resume)
    status/<cell>.json   "done" (with the cell's config hash and seconds) or "failed" (error, traceback)
    plan.csv             the cells of the last invocation and the values they set
    sweep.csv, sweep.md, figures/   the merged table, summary and figures (experiments.sweeps.report)

A cell is skipped when its status is "done" for the same configuration and its summary
is on disk; anything else runs again and resumes from the repeat files it has.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from experiments.core.run_files import CONFIG_FILE, PLAN_FILE, REPEATS_DIR, SUMMARY_CSV
from experiments.sweeps import report as sweep_report
from experiments.sweeps.executors import (  # noqa: F401 - the executors, for callers that import them from here
    RAY_INSTALL_HINT,
    LocalExecutor,
    RayExecutor,
    available_cores,
)
from experiments.sweeps.spec import (
    Cell,
    Sweep,
    cell_dir,
    check_sweep_dir,
    read_status,
    status_path,
)
from experiments.sweeps.task import (
    Task,
    repeat_file,
    repeats_of,
)
from kshot_io import write_bytes_atomic, write_text_atomic

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
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> dict:
    """Run every cell not yet complete, then write the merged table, summary and figures.

    `log` gets the progress lines, `warn` the cells' warnings (one line each).

    Returns {"done": [names], "failed": {name: error}, "skipped": [names], "table": DataFrame}.
    """

    out_dir = Path(out_dir)
    cells = list(sweep.cells)
    if only:
        unknown = sorted(set(only) - {c.name for c in cells})
        if unknown:
            raise ValueError(f"--only: no cell named {', '.join(unknown)} in {sweep.path}; its cells: {', '.join(c.name for c in cells)}")
        cells = [c for c in cells if c.name in only]
    check_sweep_dir(out_dir)
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

    finished = 0
    try:
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

        while executor.pending():
            for task, outcome in executor.wait_any():
                state = states[task.cell]
                state.seconds += outcome.seconds
                for message in outcome.warnings:
                    warn(f"kshot sweep: warning in cell {task.key}: {message}")
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
    except BaseException:
        executor.stop()  # Ctrl-C or a failure of the driver: end the workers now, never wait for their cells
        raise
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
