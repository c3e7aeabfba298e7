"""`kshot sweep`: a grid of `kshot run` configurations, on a local process pool or a Ray cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.sweeps.spec import check_sweep_dir, load_sweep

DESCRIPTION = """\
Many `kshot run` configurations at once: a sweep file names a base run configuration
and a grid (and optionally explicit cells) over any of its keys; each cell is an
ordinary run directory under DIR/cells/, named from its settings. Cells already
complete are skipped and interrupted ones resume, so the same command continues a
sweep. A cell that fails is recorded (DIR/status/) and the sweep goes on. The merged
table is DIR/sweep.csv, the figures DIR/figures/. See docs/SWEEPS.md.
"""


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run a grid of configurations, locally or on a Ray cluster",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, required=True, help="sweep file (TOML; see docs/SWEEPS.md)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="sweep directory; an existing one is resumed")
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="run the cells as Ray tasks: on a new local Ray instance, or on the cluster at ADDRESS "
                             "(host:port of `ray start --head`, or auto)")
    parser.add_argument("--shared", action="store_true",
                        help="with --ray: DIR is a path every node mounts; workers write there instead of sending files back")
    parser.add_argument("--workers", type=int, default=None, help="local pool size (default: the number of cores)")
    parser.add_argument("--only", default=None, metavar="CELLS", help="comma-separated cell names to run (the rest are left as they are)")
    parser.add_argument("--dry-run", action="store_true", help="check the sweep file and list its cells; run nothing")
    parser.add_argument("--no-figures", action="store_true", help="tables only, for the cells and the sweep")
    parser.set_defaults(handler=handle_sweep)


def check_placement(args) -> None:
    """Refuse option combinations that say where to run the cells in two contradicting ways."""
    if args.shared and args.ray is None:
        raise ValueError("--shared only applies with --ray (local workers always write into DIR)")
    if args.workers is not None and args.ray is not None:
        raise ValueError("--workers sizes the local pool; with --ray, Ray places the cells by [resources] num_cpus in the sweep file")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")


def handle_sweep(args) -> int:
    sweep = load_sweep(args.config)
    if args.dry_run:
        for cell in sweep.cells:
            print(cell.name)
        print(f"{len(sweep.cells)} cell(s); nothing run (--dry-run)")
        return 0
    check_placement(args)
    check_sweep_dir(args.out)  # before Ray or the worker pool start: a wrong --out costs nothing
    # The executors bring pandas and matplotlib (seconds): only for a sweep that runs, not for --help or --dry-run.
    from experiments.sweeps.execute import LocalExecutor, RayExecutor, run_sweep

    if args.ray is not None:
        executor = RayExecutor(args.ray or None, sweep.resources, shared=args.shared)
    else:
        executor = LocalExecutor(args.workers, max_retries=sweep.resources.max_retries)
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    outcome = run_sweep(sweep, args.out, executor, only=only, make_figures=not args.no_figures)
    print(outcome["summary"])
    print(f"merged table: {args.out / 'sweep.csv'}; summary: {args.out / 'sweep.md'}")
    return 1 if outcome["failed"] else 0
