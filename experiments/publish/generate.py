"""Render every registered block into README.md and docs/**/*.md, or say which committed blocks are stale.

    python -m experiments.publish            # = make docs: rewrite every generated block
    python -m experiments.publish --check    # exit 1 and name every block that differs from a fresh render

Both work on any copy of the repository (`--root`): the renderers read only the files
their registry entry names, relative to the root.
"""

from __future__ import annotations

from pathlib import Path

from experiments.publish.markers import read_blocks, replace_blocks
from experiments.publish.registry import BLOCKS


def documents(root: Path) -> list[Path]:
    """README.md and every Markdown file under docs/ except the results files (guides and the lab logs)."""
    root = Path(root)
    docs = root / "docs"
    return [root / "README.md", *sorted(p for p in docs.rglob("*.md") if "results" not in p.relative_to(docs).parts)]


def render_all(root: Path) -> dict[str, str]:
    """NAME -> body, for every registered block."""
    return {name: block.render(Path(root)).strip("\n") for name, block in BLOCKS.items()}


def placement(root: Path) -> dict[str, set[str]]:
    """NAME -> the documents (paths from root) that hold it; a marker with no registry entry is an error."""
    root = Path(root)
    found: dict[str, set[str]] = {}
    for doc in documents(root):
        for name in read_blocks(doc.read_text(encoding="utf-8")):
            if name not in BLOCKS:
                raise ValueError(f"{doc.relative_to(root)} has a block {name!r} that experiments/publish/registry.py "
                                 "does not know; register it or remove the markers")
            found.setdefault(name, set()).add(doc.relative_to(root).as_posix())
    return found


def misplaced(root: Path) -> list[str]:
    """Every registered block missing from a document its entry names, or shown in one it does not."""
    found = placement(root)
    problems = []
    for name, block in BLOCKS.items():
        where = found.get(name, set())
        for doc in sorted(set(block.docs) - where):
            problems.append(f"{doc} lacks the block {name!r}")
        for doc in sorted(where - set(block.docs)):
            problems.append(f"{doc} shows the block {name!r}, which the registry does not place there")
    return problems


def stale(root: Path) -> list[tuple[str, str]]:
    """(document, block) for every committed block that differs from what the generator writes now."""
    root = Path(root)
    fresh = render_all(root)
    differing = []
    for doc in documents(root):
        for name, body in read_blocks(doc.read_text(encoding="utf-8")).items():
            if body.strip("\n") != fresh[name]:
                differing.append((doc.relative_to(root).as_posix(), name))
    return differing


def write_all(root: Path) -> list[str]:
    """Rewrite every block in every document; returns the documents that changed."""
    root = Path(root)
    fresh = render_all(root)
    placement(root)  # refuses unregistered blocks before anything is written
    changed = []
    for doc in documents(root):
        text = doc.read_text(encoding="utf-8")
        updated = replace_blocks(text, fresh)
        if updated != text:
            doc.write_text(updated, encoding="utf-8")
            changed.append(doc.relative_to(root).as_posix())
    return changed
