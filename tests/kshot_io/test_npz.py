"""The one npz reader: missing, unreadable, foreign and future files are refused with the file named."""

import numpy as np
import pytest

from kshot_io.npz import read_headed_npz, read_npz, write_headed_npz


def test_a_headed_file_reads_back_with_its_header(tmp_path):
    path = tmp_path / "thing.npz"
    write_headed_npz(path, "thing", 2, {"name": "Zoë"}, {"values": np.arange(3)}, ensure_ascii=False)
    header, arrays = read_headed_npz(path, "thing", 2, what="thing file", remedy="make it again")
    assert header == {"format_version": 2, "kind": "thing", "name": "Zoë"}
    assert list(arrays) == ["values"] and arrays["values"].tolist() == [0, 1, 2]
    assert "Zoë" in str(read_npz(path, "thing file", "make it again")["header"])  # kept as written


def test_bad_files_are_refused_with_the_file_and_the_remedy(tmp_path):
    write_headed_npz(tmp_path / "other.npz", "other", 1, {}, {})
    with pytest.raises(ValueError, match=r"other\.npz holds a 'other' file, not a thing file; make it again"):
        read_headed_npz(tmp_path / "other.npz", "thing", 1, what="thing file", remedy="make it again")
    write_headed_npz(tmp_path / "future.npz", "thing", 9, {}, {})
    with pytest.raises(ValueError, match=r"format_version 9; this kshot-memory reads version 1"):
        read_headed_npz(tmp_path / "future.npz", "thing", 1, what="thing file", remedy="make it again")
    np.savez(tmp_path / "plain.npz", values=np.zeros(2))
    with pytest.raises(KeyError, match="no kind-and-version header"):
        read_headed_npz(tmp_path / "plain.npz", "thing", 1, what="thing file", remedy="r", error=KeyError)
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match=r"broken\.npz is truncated or not a thing file .*; make it again"):
        read_npz(tmp_path / "broken.npz", "thing file", "make it again")
    with pytest.raises(FileNotFoundError, match=r"thing file .*missing\.npz does not exist; make it again"):
        read_npz(tmp_path / "missing.npz", "thing file", "make it again")


def test_no_array_may_take_the_headers_name(tmp_path):
    with pytest.raises(ValueError, match="header"):
        write_headed_npz(tmp_path / "x.npz", "thing", 1, {}, {"header": np.zeros(1)})
    assert not (tmp_path / "x.npz").exists()
