"""Cells per minute of `kshot sweep` on this machine, with 1 and with 2 local workers.

What it measures: a local sweep (run_sweep with LocalExecutor) once its workers are
up: every cell's run directory (the two frozen models on precomputed embeddings,
tables only) and the merged table. Starting the workers (each imports TensorFlow,
a fixed cost per sweep, not per cell) is timed apart and printed. Each worker is
limited to cores / workers TensorFlow threads, so the ratio is the gain of running
cells side by side over letting one cell use every core. The embeddings are
synthetic clusters in the `kshot embed` format (or --embeddings FILE.npz).

    python benchmarks/sweep_scaling.py [--cells 8] [--repeats 40] [--embeddings FILE.npz]

Last line: RESULT sweep_speedup_2workers=<cells per minute with 2 workers / with 1>
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the synthetic embeddings the runner tests use

from support import write_embeddings_npz  # noqa: E402

from experiments.sweeps.execute import (  # noqa: E402
    LocalExecutor,
    available_cores,
    read_status,
    run_sweep,
)
from experiments.sweeps.spec import load_sweep  # noqa: E402


def write_sweep(folder: Path, embeddings: Path, cells: int, repeats: int) -> Path:
    (folder / "base.toml").write_text(
        f'[run]\nrepeats = {repeats}\nmax_shots = 10\nmodels = ["baseline", "memory"]\n'
        f'[data]\nembeddings = "{embeddings}"\n'
    )
    seeds = ", ".join(str(s) for s in range(cells))
    (folder / "sweep.toml").write_text(f'[sweep]\nbase = "base.toml"\n[grid]\nrun.seed = [{seeds}]\n')
    return folder / "sweep.toml"


def cells_per_minute(sweep_path: Path, out: Path, workers: int) -> float:
    sweep = load_sweep(sweep_path)
    started = time.perf_counter()
    executor = LocalExecutor(workers)
    # Each worker imports TensorFlow in its initializer; tasks that overlap in time make
    # the pool start every worker before the clock starts.
    concurrent.futures.wait([executor.pool.submit(time.sleep, 2.0) for _ in range(workers)])
    startup = time.perf_counter() - started - 2.0
    started = time.perf_counter()
    outcome = run_sweep(sweep, out, executor, make_figures=False, log=lambda line: None)
    seconds = time.perf_counter() - started
    if outcome["failed"] or len(outcome["done"]) != len(sweep.cells):
        raise SystemExit(f"{workers} worker(s): not every cell finished: {outcome['failed']}")
    rate = len(sweep.cells) / seconds * 60
    # Cell task seconds summed over wall time: how many cells really ran side by side.
    busy = sum(read_status(out, cell.name)["seconds"] for cell in sweep.cells) / seconds
    print(f"{workers} worker(s): started in {startup:.1f} s, then {len(sweep.cells)} cells in {seconds:.1f} s "
          f"= {rate:.2f} cells/min (cells running at once, on average: {busy:.2f})")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=40, help="repeats per model in every cell")
    parser.add_argument("--embeddings", type=Path, default=None, help="an npz from `kshot embed` (default: synthetic)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kshot-sweep-bench-") as scratch:
        scratch = Path(scratch)
        embeddings = args.embeddings or write_embeddings_npz(scratch / "emb.npz", n_classes=10, per_class=12, dim=128)
        sweep_path = write_sweep(scratch, Path(embeddings).resolve(), args.cells, args.repeats)
        print(f"{args.cells} cells x 2 frozen models x {args.repeats} repeats, up to 10 shots; {available_cores()} core(s), "
              f"load average {os.getloadavg()[0]:.1f} at the start (other processes share the cores)")
        one = cells_per_minute(sweep_path, scratch / "one", 1)
        two = cells_per_minute(sweep_path, scratch / "two", 2)
    print(f"RESULT sweep_speedup_2workers={two / one:.2f}")


if __name__ == "__main__":
    main()
