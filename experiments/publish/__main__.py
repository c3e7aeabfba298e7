"""`make docs`: render every generated block of README.md and docs/ from the committed results files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.core.paths import REPO_ROOT
from experiments.publish.generate import misplaced, stale, write_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.publish",
                                     description="Render every generated block of README.md and docs/ "
                                                 "from the committed results files (experiments/publish/registry.py).")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming every stale or misplaced block")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the repository to render (default: this one)")
    args = parser.parse_args(argv)
    if args.check:
        problems = [f"{doc}: block {name!r} differs from its results files" for doc, name in stale(args.root)]
        problems += misplaced(args.root)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("run `make docs` (python -m experiments.publish) to regenerate", file=sys.stderr)
        return 1 if problems else 0
    changed = write_all(args.root)
    for line in misplaced(args.root):
        print(f"warning: {line}", file=sys.stderr)
    print(f"make docs: {len(changed)} file(s) updated" + (f": {', '.join(changed)}" if changed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
