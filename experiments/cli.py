"""The `kshot` command: one entry point, one module per subcommand (and `kshot sweep` here).

Each subcommand lives in its own module exposing `register(subparsers)`, which adds
its parser and sets `handler`. Modules are imported only when registering, and keep
TensorFlow imports inside their handlers so that `kshot --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

SUBCOMMAND_MODULES = (
    "experiments.cli_embed",
    "experiments.cli_run",
    "experiments.cli_report",
    "experiments.omniglot.cli",
)


class UserError(Exception):
    """A problem with what the user gave us; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kshot",
        description="Memory-augmented k-shot learning: Kaiser memory vs store-all 1-NN on FaceNet and Omniglot.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    add_sweep(subparsers)
    return parser


# ---------------------------------------------------------------- kshot sweep

SWEEP_DESCRIPTION = """\
Many `kshot run` configurations at once: a sweep file names a base run configuration
and a grid (and optionally explicit cells) over any of its keys; each cell is an
ordinary run directory under DIR/cells/, named from its settings. Cells already
complete are skipped and interrupted ones resume, so the same command continues a
sweep. A cell that fails is recorded (DIR/status/) and the sweep goes on. The merged
table is DIR/sweep.csv, the figures DIR/figures/. See docs/SWEEPS.md.
"""


def add_sweep(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run a grid of configurations, locally or on a Ray cluster",
        description=SWEEP_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
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


def handle_sweep(args) -> int:
    from experiments.sweep import load_sweep
    from experiments.sweep_exec import LocalExecutor, RayExecutor, run_sweep

    sweep = load_sweep(args.config)
    if args.dry_run:
        for cell in sweep.cells:
            print(cell.name)
        print(f"{len(sweep.cells)} cell(s); nothing run (--dry-run)")
        return 0
    if args.shared and args.ray is None:
        raise UserError("--shared only applies with --ray (local workers always write into DIR)")
    if args.workers is not None and args.ray is not None:
        raise UserError("--workers sizes the local pool; with --ray, Ray places the cells by [resources] num_cpus in the sweep file")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    if args.ray is not None:
        executor = RayExecutor(args.ray or None, sweep.resources, shared=args.shared)
    else:
        executor = LocalExecutor(args.workers, max_retries=sweep.resources.max_retries)
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    outcome = run_sweep(sweep, args.out, executor, only=only, make_figures=not args.no_figures)
    print(outcome["summary"])
    print(f"merged table: {args.out / 'sweep.csv'}; summary: {args.out / 'sweep.md'}")
    return 1 if outcome["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        # `kshot` alone behaves like `kshot run`: the default demo.
        args = parser.parse_args(["run", *(argv or [])])
    try:
        return int(args.handler(args) or 0)
    except UserError as error:
        print(f"kshot {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, PermissionError) as error:
        # Library code raises these with messages written for the user.
        print(f"kshot {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kshot {args.command}: interrupted; finished work is on disk, run the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
