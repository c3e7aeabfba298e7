"""Where a sweep's tasks run: a local process pool, or Ray tasks on a local or remote cluster.

Both executors only move tasks and outcomes (experiments.sweeps.execute decides what to
run and writes what comes back), and both offer the same five calls: `submit`,
`pending`, `wait_any`, `close` (the sweep ended: release the workers) and `stop` (Ctrl-C
or an error of the driver: end the workers now).
- `LocalExecutor`: a spawn-started process pool (TensorFlow and fork do not mix), at
  most one task per worker at a time, each worker capping TensorFlow's thread pools
  at cores / workers. A worker that dies (killed, out of memory) breaks the pool; the
  pool is rebuilt and the tasks it was running are retried up to `max_retries` times.
- `RayExecutor`: each task is a Ray task with the sweep file's [resources] (num_cpus,
  num_gpus, max_retries); Ray re-runs a task whose worker died, on any node.

Why `stop` kills rather than waits: a worker may be deep in TensorFlow's C++ code for
minutes, and waiting for it is what made a Ctrl-C hang. Workers ignore Ctrl-C
themselves (experiments.sweeps.task.start_worker), the driver terminates them, and
what they lose is only the repeat they were computing: finished repeats and cells are
on disk, and the same command resumes them.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Callable, Iterator

from experiments.sweeps.spec import Resources
from experiments.sweeps.task import Outcome, Task, run_task, start_worker

RAY_INSTALL_HINT = 'pip install "kshot-memory[ray]" (or pip install "ray>=2.9")'
TERMINATE_GRACE_SECONDS = 2.0  # after SIGTERM, before SIGKILL
TRACKER_QUIET = "ignore:resource_tracker:UserWarning"  # see LocalExecutor._new_pool
RAY_POLL_SECONDS = 1.0  # ray.wait in slices, so Ctrl-C is seen even while Ray blocks


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Ignore further Ctrl-C while the workers are being stopped, so a second one cannot leave one running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
        # Workers stopped by `stop` leave the pool's semaphores to multiprocessing's resource
        # tracker, which removes them and says so in a two-line warning with a source line.
        # The tracker process takes its -W options from this interpreter when it starts.
        if TRACKER_QUIET not in sys.warnoptions:
            sys.warnoptions.append(TRACKER_QUIET)
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

    def stop(self) -> None:
        """End every worker now (SIGTERM, then SIGKILL), without waiting for the tasks they run."""
        with ctrl_c_deferred():
            processes = list((self.pool._processes or {}).values())  # the pool offers no public kill before 3.14
            self.queue.clear()
            self.running.clear()
            for process in processes:
                if process.is_alive():
                    process.terminate()
            for process in processes:
                process.join(TERMINATE_GRACE_SECONDS)
                if process.is_alive():
                    process.kill()
                    process.join(TERMINATE_GRACE_SECONDS)
            # The pool's manager thread sees its workers gone, closes its queues and ends: nothing to wait for.
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
        ready: list = []
        while not ready:
            ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=RAY_POLL_SECONDS)
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

    def stop(self) -> None:
        """Cancel every running task (force: its worker process is killed), then leave Ray as `close` does."""
        with ctrl_c_deferred():
            for ref in list(self.running):
                try:
                    self.ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 -- a task that already ended cannot be cancelled; nothing to stop
                    pass
            self.running.clear()
            self.close()


