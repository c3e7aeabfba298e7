"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Long runs are killed (Ctrl-C, OOM, kill -9) at arbitrary points. Every file that a
later run trusts (results, caches, memory state, downloaded weights) is therefore
written to a temporary file in the same directory, flushed to disk, and renamed
over the target; rename within one filesystem is atomic on POSIX and Windows.

The temporary file is created owner-only (mkstemp), so before the rename it is
given the permissions a plain open() would have given it under the user's umask:
shared run folders and shared caches must stay readable by the group.
A full disk is reported with the file's name and what to do, not as a bare errno.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary sibling of `path` for writing; rename it to `path` on success.

    If the body raises, the temporary file is removed and `path` is untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write supports mode 'w' or 'wb', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding, newline=None if encoding is None else "") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~current_umask())
        os.replace(tmp_name, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(
                error.errno,
                f"no space left on the device to write {target}; free some disk space, or write to "
                "another disk (--out for run directories, KSHOT_CACHE for the cache), then run the "
                "same command again (finished work is kept)",
            ) from error
        raise


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)
