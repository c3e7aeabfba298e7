"""Small helpers the renderers share: reading committed results files, writing Markdown tables.

Every renderer reads its files relative to a repository root it is given (never through a
module-level path), so the generator can be pointed at a copy of the repository: that is
how tests/test_docs.py shows that a changed results file changes the docs.
"""

from __future__ import annotations

import csv
import json
import runpy
from pathlib import Path
from typing import Any, Iterable, Sequence


def read_json(root: Path, name: str) -> Any:
    return json.loads(_existing(root, name).read_text(encoding="utf-8"))


def read_csv(root: Path, name: str) -> list[dict[str, str]]:
    with _existing(root, name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_jsonl(root: Path, name: str) -> list[dict]:
    text = _existing(root, name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_text(root: Path, name: str) -> str:
    return _existing(root, name).read_text(encoding="utf-8")


def read_module(root: Path, name: str) -> dict:
    """The globals of a committed Python file that holds published numbers (read from root, not imported)."""
    return runpy.run_path(str(_existing(root, name)))


def read_md_table(root: Path, name: str) -> list[dict[str, str]]:
    """The first Markdown table of a results .md file written by a run, as rows keyed by its header."""
    rows: list[list[str]] = []
    for line in read_text(root, name).splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    if len(rows) < 2:
        raise ValueError(f"{name} holds no Markdown table")
    header, body = rows[0], rows[2:]
    return [dict(zip(header, row)) for row in body]


def require(root: Path, name: str) -> str:
    """`name` itself, after checking that the file exists (for a figure a block links to)."""
    _existing(root, name)
    return name


def _existing(root: Path, name: str) -> Path:
    path = Path(root) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; the docs are rendered from it (see experiments/publish/registry.py)")
    return path


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A Markdown table; `align` has one letter per column, l or r (default: first left, others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(value: float, digits: int = 1) -> str:
    """A fraction as a percentage without the sign: 0.9602 -> '96.0'."""
    return f"{100 * float(value):.{digits}f}"


def pct_ci(mean: float, low: float, high: float, digits: int = 1) -> str:
    """'96.0 [95.5, 96.5]' from fractions."""
    return f"{pct(mean, digits)} [{pct(low, digits)}, {pct(high, digits)}]"


def points(value: float, digits: int = 2) -> str:
    """A difference of fractions in signed points: 0.0015 -> '+0.15'."""
    return f"{100 * float(value):+.{digits}f}"


def points_ci(diff: float, low: float, high: float, digits: int = 2) -> str:
    """'+0.15 [+0.01, +0.29]' from fractions."""
    return f"{points(diff, digits)} [{points(low, digits)}, {points(high, digits)}]"


def thousands(value: float) -> str:
    return f"{int(round(float(value))):,}"
