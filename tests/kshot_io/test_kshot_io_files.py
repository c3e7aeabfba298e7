"""kshot_io: atomic writes keep the user's umask and name the file when the disk is full; the cache
location refuses a file in its place."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from kshot_io import atomic_write, cache_root, write_text_atomic


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_get_the_permissions_of_a_plain_open_under_the_umask(tmp_path, umask, expected):
    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "results.csv", "a,b\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "results.csv").stat().st_mode) == expected


def test_a_full_disk_names_the_file_and_what_to_do_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "summary.md"
    with pytest.raises(OSError, match=r"no space left .*summary\.md.*--out") as caught:
        with atomic_write(target, "w"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_cache_root_pointing_at_a_file_is_refused_with_the_variable_to_change(tmp_path, monkeypatch):
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("x")
    monkeypatch.setenv("KSHOT_CACHE", str(a_file))
    with pytest.raises(NotADirectoryError, match="not_a_folder.*KSHOT_CACHE"):
        cache_root()


def test_a_write_that_is_not_durable_skips_the_fsync_but_is_still_atomic(tmp_path, monkeypatch):
    import os  # deferred: only this test counts fsyncs

    from kshot_io import atomic_write

    calls = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    with atomic_write(tmp_path / "a.bin", "wb", durable=False) as handle:
        handle.write(b"new")
    assert calls == [] and (tmp_path / "a.bin").read_bytes() == b"new"
    with atomic_write(tmp_path / "a.bin", "wb") as handle:
        handle.write(b"newer")
    assert len(calls) == 1 and (tmp_path / "a.bin").read_bytes() == b"newer"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]
