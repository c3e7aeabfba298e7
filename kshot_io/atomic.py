"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Long runs are killed (Ctrl-C, OOM, kill -9) at arbitrary points. Every file that a
later run trusts (results, caches, memory state, downloaded weights) is therefore
written to a temporary file in the same directory, flushed to disk, and renamed
over the target; rename within one filesystem is atomic on POSIX and Windows.

What the new file looks like from outside stays what the user chose:
- its mode: a rewrite keeps the mode of the file it replaces (a gallery made private
  with chmod 600 stays private); a new file gets `new_file_mode` under the umask,
  by default what a plain open() would give (shared run folders and caches stay
  readable by the group); the temporary file itself is owner-only (mkstemp) until then;
- a symlink: the link's target is replaced and the link stays a link.
A kill -9 between creating the temporary file and the rename leaves it behind. Its
name carries the writer's pid (`.<name>.<pid>.<random>.tmp`), so a later writer can
tell a dead writer's leftover from a live writer's file and remove it
(`remove_stale_temporaries`). A full disk is reported with the file's name and what
to do, not as a bare errno.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator


def write_target(path: str | os.PathLike) -> Path:
    """The file a write to `path` replaces: `path` itself, or the final target of a symlink at `path`."""
    target = Path(path)
    if target.is_symlink():
        return Path(os.path.realpath(target))
    return target


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", new_file_mode: int | None = None,
                 durable: bool = True) -> Iterator[IO]:
    """Open a temporary sibling of `path` for writing; rename it to `path` on success.

    If the body raises, the temporary file is removed and `path` is untouched.
    new_file_mode: permissions of a file that does not exist yet (under the umask);
    default 0o666, as open() would. An existing file keeps its own mode.
    durable: fsync the data before the rename, so the file survives a power cut too.
    A writer of many small files may pass False and call `flush_to_disk` once per batch
    (an fsync each costs more than the work behind a frozen k-shot repeat); the rename is
    atomic either way, so a killed process leaves the old file or the new one.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write supports mode 'w' or 'wb', got {mode!r}")
    target = write_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{temporary_prefix(target)}{os.getpid()}.", suffix=".tmp",
                                    dir=target.parent)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding, newline=None if encoding is None else "") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp_name, _mode_for(target, new_file_mode))
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


def _mode_for(target: Path, new_file_mode: int | None) -> int:
    """The permission bits the new file gets: the replaced file's, else new_file_mode under the umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return (0o666 if new_file_mode is None else new_file_mode) & ~current_umask()


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temporary_prefix(target: Path) -> str:
    """The start of every temporary file name `atomic_write` uses for `target` (hidden, next to it)."""
    return f".{target.name}."


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed writers of `path` left behind; returns them.

    A temporary file whose writer's pid is not running any more can never be renamed
    into place. Files of a live pid are left alone (that writer may still finish).
    """
    target = write_target(path)
    pattern = re.compile(re.escape(temporary_prefix(target)) + r"(\d+)\.[^.]+\.tmp$")
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(target.parent):
            match = pattern.match(entry.name)
            if match and entry.is_file(follow_symlinks=False) and not _pid_is_running(int(match.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _pid_is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, owned by another user
        return True
    return True


def flush_to_disk() -> None:
    """Wait until everything written so far is on disk (os.sync): the barrier after files
    written with atomic_write(durable=False)."""
    os.sync()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)
