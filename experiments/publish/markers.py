"""The generated blocks of a Markdown file: find them, read them, replace their bodies.

A block is

    <!-- generated:NAME -->
    ...body, written only by `make docs`...
    <!-- /generated:NAME -->

NAME is a registry key (experiments/publish/registry.py). Everything outside the
markers is hand-written and never touched.
"""

from __future__ import annotations

import re

BLOCK = re.compile(r"<!-- generated:(?P<name>[a-z0-9][a-z0-9-]*) -->\n(?P<body>.*?)\n?<!-- /generated:(?P=name) -->", re.S)
ANY_MARKER = re.compile(r"<!-- /?generated:[a-z0-9][a-z0-9-]* -->")


def start(name: str) -> str:
    return f"<!-- generated:{name} -->"


def end(name: str) -> str:
    return f"<!-- /generated:{name} -->"


def read_blocks(text: str) -> dict[str, str]:
    """NAME -> body of every block in the text; a name used twice, or a marker without its pair, is an error."""
    blocks: dict[str, str] = {}
    for match in BLOCK.finditer(text):
        name = match["name"]
        if name in blocks:
            raise ValueError(f"block {name!r} appears twice in one file")
        blocks[name] = match["body"]
    paired = {m for name in blocks for m in (start(name), end(name))}
    for marker in ANY_MARKER.finditer(text):
        if marker.group(0) not in paired:
            raise ValueError(f"marker {marker.group(0)!r} has no matching start or end")
    return blocks


def replace_blocks(text: str, bodies: dict[str, str]) -> str:
    """The text with the body of every block named in `bodies` replaced; other blocks are kept as they are."""
    read_blocks(text)  # refuses unpaired or repeated markers before anything is replaced

    def body_for(match: re.Match) -> str:
        name = match["name"]
        body = bodies.get(name, match["body"]).strip("\n")
        return f"{start(name)}\n{body}\n{end(name)}"

    return BLOCK.sub(body_for, text)
