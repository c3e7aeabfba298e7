"""The `kshot` command: the top-level parser, and one module per command group.

    kshot run        the k-shot face experiment (no arguments: the celebrity demo)   run.py
    kshot embed      a dataset's FaceNet embeddings in one npz                        run.py
    kshot report     rebuild a run's summary and figures from its files               run.py
    kshot sweep      a grid of runs, on a local process pool or a Ray cluster         sweep.py
    kshot omniglot   train | eval | compare | lake | stream | curve | ship | embed     omniglot.py
    kshot enroll     add people's photos to a face gallery file                       gallery.py
    kshot identify   name the people in photos from a gallery, or answer "unknown"    gallery.py
    kshot calibrate  the gallery's open-set threshold: TAR at FAR, EER, ROC figure    gallery.py
    kshot forget     remove people from a gallery file, leaving nothing of them      gallery.py

Every command that reads a configuration takes `--set SECTION.KEY=VALUE` (options.py).
runtime.py quiets TensorFlow's start-up; notebooks.py is what the notebooks call.

The command modules import TensorFlow (and anything that imports it) inside their
handlers only, so that `kshot --help` and the checks of settings, data and run
directories are fast. Library code raises ValueError, FileNotFoundError or
PermissionError with messages written for the user; `main` prints them on one line
without a traceback and returns 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from experiments.cli import gallery, omniglot, run, sweep
from experiments.cli.runtime import filter_native_stderr, quiet_runtime

COMMAND_GROUPS = (run, sweep, omniglot, gallery)  # in the order `kshot --help` lists them


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kshot",
        description="Memory-augmented k-shot learning: Kaiser memory vs store-all 1-NN on FaceNet and Omniglot.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_runtime()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()  # the demo is `kshot run`; a bare command only explains itself
        return 0
    try:
        return int(args.handler(args) or 0)
    except (ValueError, OSError) as error:
        # Library code raises these with messages written for the user (OSError covers a
        # full disk, a file where a folder must be, and permissions).
        print(f"kshot {args.command}: error: {error}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"kshot {args.command}: error: out of memory; use a smaller [memory] memory_size or dataset", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kshot {args.command}: interrupted; finished work is on disk, run the same command to resume.", file=sys.stderr)
        return 130


def console_main() -> int:
    """The `kshot` executable: `main` with TensorFlow's native start-up lines filtered out."""
    if os.environ.get("KSHOT_RAW_STDERR") != "1":  # 1: see everything TensorFlow prints (debugging)
        filter_native_stderr()
    return main()


if __name__ == "__main__":
    sys.exit(console_main())
