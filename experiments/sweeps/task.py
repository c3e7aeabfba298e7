"""One unit of sweep work, as a worker runs it: a whole cell, or a slice of its repeats.

A task is plain data (the cell's configuration as TOML, which repeats, where to write)
so that it pickles to a local worker process or a Ray worker on another machine alike,
and `run_task` never raises for a problem of the cell itself: the error and its
traceback come back in the outcome, so the sweep records it and goes on.

Where the files go:
- `run_dir` set: the worker writes straight into the cell's run directory (the local
  executor, or a path every Ray node mounts). Repeats land one file at a time as their
  chunk finishes ([run] chunk_size repeats of a frozen method per batched call), so a
  killed worker loses at most the chunk it was computing.
- `run_dir` None: the worker writes into a scratch directory, seeded with the files the
  cell already has (so an interrupted cell resumes), and returns the bytes of every
  file it wrote; the driver writes them into DIR atomically.

A slice ("shard") computes the repeats it names and writes only their repeat files;
the cell task that follows finds every repeat on disk and only assembles the tables,
summary and figures. Each repeat depends only on (config, data, model, repeat) (see
experiments.faces.runner), so results.csv is byte-identical however the repeats were spread.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from experiments.core.run_dir import GROWABLE, open_run_dir
from experiments.core.run_files import CONFIG_FILE
from experiments.faces import methods
from experiments.faces import settings as cfg
from experiments.faces.repeats import load_repeat, repeat_path, save_repeat

THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


@dataclass(frozen=True)
class Task:
    cell: str
    config_toml: str
    repeats: tuple[tuple[str, int], ...] = ()  # a shard's (model, repeat) pairs, one model; empty: the whole cell
    run_dir: str | None = None  # write here directly; None: scratch directory, files returned
    seed_files: dict[str, bytes] = field(default_factory=dict)  # the cell's files so far (return mode)
    make_figures: bool = True
    threads: int = 1

    @property
    def key(self) -> str:
        if not self.repeats:
            return self.cell
        (model, first), (_, last) = self.repeats[0], self.repeats[-1]
        return f"{self.cell} [{model} repeats {first}-{last}]"


@dataclass
class Outcome:
    ok: bool
    seconds: float
    error: str = ""
    traceback: str = ""
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> bytes (return mode)
    log: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # Python warnings of the task, one line each, for the driver


def limit_threads(threads: int) -> None:
    """Cap TensorFlow's (and OpenMP's) thread pools so parallel cells don't oversubscribe the CPU.

    The environment variables only take effect before TensorFlow starts its runtime, so
    this runs first in every worker; once the runtime is up (a reused worker) it stays.
    """
    threads = max(1, int(threads))
    for name in THREAD_ENV:
        os.environ[name] = str(threads)
    if "tensorflow" in sys.modules:
        import tensorflow as tf  # already loaded: this only fetches the module, it never starts TensorFlow

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # the runtime already started in this process with its pools sized


def start_worker(threads: int) -> None:
    """A local pool worker's initializer: ignore Ctrl-C, cap the threads, then start TensorFlow once, up front.

    Ctrl-C reaches every process of the terminal's process group. Only the driver acts
    on it (it stops the workers); a worker interrupted on its own would leave the pool
    half broken while the driver waits for it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A warning outside any task (while TensorFlow starts) is one line too, like the CLI's own.
    warnings.formatwarning = lambda message, category, *rest, **kw: f"kshot sweep worker: warning: {message}\n"
    limit_threads(threads)
    import tensorflow  # noqa: F401 -- every task needs it; importing here keeps task times comparable


def run_task(task: Task) -> Outcome:
    """Run one task; a failure of the cell comes back as an Outcome with ok False.

    Python warnings raised by the task are caught and come back as one line each in
    `Outcome.warnings` (the driver prints them naming the cell): a worker's stderr shows
    them with a source line, and a Ray worker's not at all.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        outcome = _run_task(task)
    outcome.warnings = list(dict.fromkeys(str(w.message) for w in caught))
    return outcome


def _run_task(task: Task) -> Outcome:
    limit_threads(task.threads)
    started = time.perf_counter()
    log: list[str] = []
    try:
        if task.run_dir is not None:
            _run_in(Path(task.run_dir), task, log)
            files = {}
        else:
            with tempfile.TemporaryDirectory(prefix="kshot-sweep-") as scratch:
                scratch = Path(scratch)
                for relative, data in task.seed_files.items():
                    (scratch / relative).parent.mkdir(parents=True, exist_ok=True)
                    (scratch / relative).write_bytes(data)
                if task.seed_files and CONFIG_FILE not in task.seed_files:
                    # Repeats sent back by an older version came without their config.toml.
                    (scratch / CONFIG_FILE).write_text(task.config_toml, encoding="utf-8")
                written = _run_in(scratch, task, log)
                files = {
                    rel: (scratch / rel).read_bytes()
                    for rel in written
                    if task.seed_files.get(rel) != (scratch / rel).read_bytes()
                }
    except Exception as error:  # noqa: BLE001 -- any failure of the cell is recorded, not fatal to the sweep
        return Outcome(
            ok=False,
            seconds=time.perf_counter() - started,
            error=f"{type(error).__name__}: {error}",
            traceback=traceback.format_exc(),
            log=log,
        )
    return Outcome(ok=True, seconds=time.perf_counter() - started, files=files, log=log)


def _run_in(run_dir: Path, task: Task, log: list[str]) -> list[str]:
    """Run the task in `run_dir`; returns the files (relative paths) it may have written."""
    # Here, not at the top: a worker imports this module before limit_threads has capped
    # TensorFlow's threads, and these modules start TensorFlow.
    from experiments.faces.run_data import prepare_data

    config = cfg.from_dict(tomllib.loads(task.config_toml), origin=f"sweep cell {task.cell}")
    data = prepare_data(config.data, need_crops=needs_images(config, task), progress=False)
    if task.repeats:
        return compute_repeats(config, run_dir, data, task.repeats)
    from experiments.faces.runner import run_experiment  # starts TensorFlow: see prepare_data above

    run_experiment(config, run_dir, data, progress=False, log=log.append, make_figures=task.make_figures,
                   chunk_size=config.run.chunk_size)
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())


# ---------------------------------------------------------------- what the sweep needs from the runner
# The run entry point (prepare_data + run_experiment) runs whole cells. A shard needs the
# runner's per-repeat pieces; they are named here, and only here.


def needs_images(config, task: Task) -> bool:
    models = {m for m, _ in task.repeats} if task.repeats else set(config.run.models)
    return any(methods.needs_images(m) for m in models)


def repeats_of(config, model: str) -> int:
    return config.budget(model).repeats


def repeat_file(run_dir: Path, model: str, repeat: int) -> Path:
    return repeat_path(run_dir, model, repeat)


def compute_repeats(config, run_dir: Path, data, wanted: tuple[tuple[str, int], ...]) -> list[str]:
    """Compute the (model, repeat) pairs not yet on disk into `run_dir`; returns their files.

    Through the runner's `compute_repeats`: a frozen method's repeats go in chunks of
    [run] chunk_size through one batched memory (experiments.faces.chunks), the others one
    at a time. Each repeat is saved as its chunk yields it, one file per repeat, so a
    killed shard loses at most the chunk it was computing and the rerun skips the rest.
    """
    # These start TensorFlow: imported only in the worker, after limit_threads (see _run_in).
    from experiments.faces.adapters import build_adapter
    from experiments.faces.runner import check_data, compute_repeats as compute_model_repeats, repeat_digest

    check_data(data, config, log=lambda line: None)
    open_run_dir(run_dir, config, may_change=GROWABLE)
    digest = repeat_digest(config, data)
    for model in dict.fromkeys(m for m, _ in wanted):  # the shard's models, in order
        todo = [r for m, r in wanted if m == model and load_repeat(run_dir, m, r, digest) is None]
        if todo:
            adapter = build_adapter(model, data, config)
            for result in compute_model_repeats(adapter, model, todo, data, config, config.run.chunk_size):
                save_repeat(run_dir, result, digest)
    # config.toml too: a cell directory holds its configuration from its first repeat on, so the
    # driver's copy of it is a run directory (experiments.core.run_dir) like any other.
    return [CONFIG_FILE] + [str(repeat_file(run_dir, m, r).relative_to(run_dir)) for m, r in wanted]
