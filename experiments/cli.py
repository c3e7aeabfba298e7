"""The `kshot` command: one entry point, one module per subcommand.

Each subcommand lives in its own module exposing `register(subparsers)`, which adds
its parser and sets `handler`. Modules are imported only when registering, and keep
TensorFlow imports inside their handlers so that `kshot --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

SUBCOMMAND_MODULES = (
    "experiments.cli_embed",
    "experiments.cli_run",
    "experiments.cli_report",
    "experiments.cli_gallery",
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
    return parser


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
