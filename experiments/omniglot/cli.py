"""`kshot omniglot train` and `kshot omniglot eval`.

TensorFlow is imported inside the handlers so that `kshot --help` stays fast.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("omniglot", help="train and evaluate the memory on Omniglot")
    commands = parser.add_subparsers(dest="omniglot_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
    commands.add_parser("train", help="train the embedder with the memory loss (not ready yet)")
    commands.add_parser("eval", help="N-way k-shot accuracy of a trained embedder (not ready yet)")
