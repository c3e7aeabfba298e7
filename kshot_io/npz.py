"""The one reader and writer of this project's npz files, and of their kind-and-version header.

Several files of the project are npz archives that another program version may read
later: a memory's saved state, a face gallery, the embeddings `kshot embed` writes.
Reading each with its own try/except drifted into three sets of messages for the same
failures. Here, once:
- `read_npz`: every array of a file, or an error that names the file, says whether it
  is missing or unreadable (truncated, not an npz), and what to do;
- `read_headed_npz`: the same, plus a JSON `header` array whose `kind` and
  `format_version` must be the expected ones (a gallery is not a memory state, and a
  newer format is refused rather than misread);
- `write_headed_npz`: the header and arrays, written atomically (kshot_io.atomic_write),
  so a crash leaves the old file or the new one.
Arrays are read with allow_pickle=False: a file can hold numbers and strings, never code.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from kshot_io.atomic import atomic_write

HEADER = "header"  # the array holding the JSON header of a headed file
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def read_npz(path: str | os.PathLike, what: str, remedy: str, error: type[Exception] = ValueError) -> dict[str, np.ndarray]:
    """Every array of the npz at `path`.

    what: the file's role in messages ("memory state file", "kshot gallery").
    remedy: what the user should do when the file cannot be read.
    error: the exception class for an unreadable file (a missing one is FileNotFoundError).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist; {remedy}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: np.asarray(data[name]) for name in data.files}
    except UNREADABLE as failure:
        raise error(f"{path} is truncated or not a {what} ({type(failure).__name__}: {failure}); {remedy}") from failure


def read_headed_npz(
    path: str | os.PathLike,
    kind: str,
    version: int | tuple[int, ...],
    what: str,
    remedy: str,
    error: type[Exception] = ValueError,
) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, the other arrays) of a file written by `write_headed_npz` with this kind and version.

    `version` may be a tuple of the versions a reader still understands (the newest last);
    the header's `format_version` tells the caller which one it got.
    """
    accepted = (version,) if isinstance(version, int) else tuple(version)
    arrays = read_npz(path, what, remedy, error)
    try:
        header = json.loads(str(arrays.pop(HEADER)))
    except (KeyError, ValueError):
        header = None
    if not isinstance(header, dict) or header.get("kind") != kind:
        found = header.get("kind") if isinstance(header, dict) else None
        if found:
            raise error(f"{path} holds a {found!r} file, not a {what}; {remedy}")
        raise error(f"{path} is an .npz but not a {what} (no kind-and-version header); {remedy}")
    found_version = header.get("format_version")
    if found_version not in accepted:
        readable = " or ".join(str(v) for v in accepted)
        raise error(
            f"{path} is a {what} of format_version {found_version}; this kshot-memory reads version {readable}. {remedy}"
        )
    return header, arrays


def headed_npz_bytes(kind: str, version: int, header: Mapping, arrays: Mapping[str, np.ndarray],
                     ensure_ascii: bool = True) -> bytes:
    """The bytes `write_headed_npz` writes (for callers that must write them somewhere else)."""
    full = {"format_version": version, "kind": kind, **header}
    if HEADER in arrays:
        raise ValueError(f"an array may not be called {HEADER!r}: that name holds the file's header")
    buffer = io.BytesIO()
    np.savez(buffer, **{HEADER: np.array(json.dumps(full, ensure_ascii=ensure_ascii, sort_keys=True))}, **arrays)
    return buffer.getvalue()


def write_headed_npz(path: str | os.PathLike, kind: str, version: int, header: Mapping,
                     arrays: Mapping[str, np.ndarray], ensure_ascii: bool = True,
                     new_file_mode: int | None = None) -> None:
    """Write `arrays` with a JSON header {format_version, kind, **header}, atomically.

    new_file_mode: permissions if the file is new (kshot_io.atomic_write; a rewrite keeps the old mode).
    """
    data = headed_npz_bytes(kind, version, header, arrays, ensure_ascii)
    with atomic_write(path, "wb", new_file_mode=new_file_mode) as handle:
        handle.write(data)
