"""kshot_io.atomic_write and what the user set on the target: its mode, a symlink, and dead writers' leftovers."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from kshot_io import atomic_write, write_text_atomic
from kshot_io.atomic import remove_stale_temporaries


def test_a_rewrite_keeps_the_files_mode_and_a_new_file_takes_new_file_mode(tmp_path):
    target = tmp_path / "results.csv"
    write_text_atomic(target, "a\n")
    os.chmod(target, 0o600)
    write_text_atomic(target, "b\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text() == "b\n"
    previous = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "private.npz", "wb", new_file_mode=0o600) as handle:
            handle.write(b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "private.npz").stat().st_mode) == 0o600


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    (tmp_path / "real").mkdir()
    real, link = tmp_path / "real" / "answers.csv", tmp_path / "answers.csv"
    real.write_text("old\n")
    link.symlink_to(real)
    write_text_atomic(link, "new\n")
    assert link.is_symlink() and real.read_text() == "new\n"


def test_temporary_files_of_dead_writers_are_removed_and_others_kept(tmp_path):
    target = tmp_path / "g.npz"
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                  capture_output=True, text=True).stdout)
    stale, live = tmp_path / f".g.npz.{dead_pid}.k2j.tmp", tmp_path / f".g.npz.{os.getpid()}.k2j.tmp"
    for path in (stale, live):
        path.write_bytes(b"partial")
    assert remove_stale_temporaries(target) == [stale]
    assert live.exists() and not stale.exists()
