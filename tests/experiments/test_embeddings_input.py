"""An `--embeddings` npz from any program is checked row by row: one clear error, or a run that is right.

Each bad file is refused by `kshot run` with exit 2 and one line naming the file, the
array and the rows; byte-string labels (as h5py and Python 2 write them) are read as
the text they spell.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import clustered_embeddings

from experiments.cli import main
from experiments.faces.run_data import load_embeddings_file
from experiments.faces.settings import DataSection


def save(path, embeddings, labels, paths=None):
    arrays = {"embeddings": embeddings, "labels": labels}
    if paths is not None:
        arrays["paths"] = paths
    np.savez(path, **arrays)
    return path


def refused(tmp_path, capsys, npz) -> str:
    """`kshot run` on `npz`: exit 2, one line, no traceback; the message."""
    code = main(["run", "--embeddings", str(npz), "--out", str(tmp_path / "run"), "--no-figures", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(npz) in err
    assert not (tmp_path / "run").exists(), "a refused file still started a run"
    return err


def test_byte_string_labels_and_paths_are_read_as_text(tmp_path):
    embeddings, labels, paths = clustered_embeddings(n_classes=3, per_class=4, dim=8)
    as_text = load_embeddings_file(save(tmp_path / "text.npz", embeddings, labels, paths), DataSection())
    as_bytes = load_embeddings_file(
        save(tmp_path / "bytes.npz", embeddings, np.char.encode(labels, "utf-8"), np.char.encode(paths, "utf-8")),
        DataSection(),
    )
    assert as_bytes.class_names == as_text.class_names == ["class_00", "class_01", "class_02"]
    assert as_bytes.paths == as_text.paths
    np.testing.assert_array_equal(as_bytes.labels, as_text.labels)


def test_bytes_that_are_not_utf8_are_refused_naming_the_row(tmp_path, capsys):
    embeddings, labels, _ = clustered_embeddings(n_classes=2, per_class=3, dim=8)
    raw = np.char.encode(labels, "utf-8")
    raw[4] = b"\xff\xfe"
    err = refused(tmp_path, capsys, save(tmp_path / "latin.npz", embeddings, raw))
    assert "`labels` row 4 is bytes that are not UTF-8" in err


def test_all_zero_rows_are_refused_with_their_indices(tmp_path, capsys):
    embeddings, labels, _ = clustered_embeddings(n_classes=2, per_class=4, dim=8)
    embeddings[[1, 6]] = 0
    err = refused(tmp_path, capsys, save(tmp_path / "zeros.npz", embeddings, labels))
    assert "2 row(s) of `embeddings` are all zeros (rows 1, 6)" in err and "cosine" in err


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_infinite_rows_are_refused_with_their_indices(tmp_path, capsys, value):
    embeddings, labels, _ = clustered_embeddings(n_classes=2, per_class=4, dim=8)
    embeddings[3, 2] = value
    err = refused(tmp_path, capsys, save(tmp_path / "nan.npz", embeddings, labels))
    assert "NaN or infinity (row 3)" in err


def test_the_same_vector_under_two_labels_is_refused_naming_both_rows(tmp_path, capsys):
    embeddings, labels, paths = clustered_embeddings(n_classes=2, per_class=4, dim=8)
    embeddings[5] = embeddings[0]  # row 0 is class_00, row 5 class_01
    npz = save(tmp_path / "dup.npz", embeddings, labels, paths)
    err = refused(tmp_path, capsys, npz)
    assert "the same vector is labelled class_00, class_01: row 0 (class_00/img_000.jpg), row 5" in err
    assert "--allow-duplicates" in err
    allowed = load_embeddings_file(npz, DataSection(allow_duplicates=True))
    assert any("identical embeddings in classes class_00, class_01" in note for note in allowed.notes)


def test_the_same_vector_twice_in_one_class_is_a_warning_in_the_notes(tmp_path):
    embeddings, labels, paths = clustered_embeddings(n_classes=2, per_class=4, dim=8)
    embeddings[2] = embeddings[1]
    data = load_embeddings_file(save(tmp_path / "dup.npz", embeddings, labels, paths), DataSection())
    assert data.notes == [
        "warning: identical embeddings in class class_00 (a copy scores for free once the other is fed): "
        "row 1 (class_00/img_001.jpg), row 2 (class_00/img_002.jpg)"
    ]


@pytest.mark.parametrize("embeddings, message", [
    (np.ones(8, np.float32), "`embeddings` is 1-D (shape (8,)); it must be 2-D [n, d]"),
    (np.ones((8, 4), np.int64), "`embeddings` must be floating point, got int64"),
    (np.ones((8, 4), bool), "`embeddings` must be floating point, got bool"),
    (np.ones((8, 2, 2), np.float32), "must be a non-empty 2-D array [n, d], got shape (8, 2, 2)"),
])
def test_arrays_of_the_wrong_shape_or_type_are_refused(tmp_path, capsys, embeddings, message):
    labels = np.array(["a", "b"] * 4)
    assert message in refused(tmp_path, capsys, save(tmp_path / "shape.npz", embeddings, labels))


def test_one_class_or_a_class_with_one_row_is_refused_naming_it(tmp_path, capsys):
    embeddings, labels, _ = clustered_embeddings(n_classes=2, per_class=3, dim=8)
    err = refused(tmp_path, capsys, save(tmp_path / "one.npz", embeddings, np.array(["same"] * 6)))
    assert "1 class (same)" in err and "at least 2 classes" in err
    labels[5] = "lonely"
    err = refused(tmp_path, capsys, save(tmp_path / "lonely.npz", embeddings, labels))
    assert "fewer than 2 rows: 'lonely' (1)" in err


def test_an_empty_label_is_refused_naming_the_row(tmp_path, capsys):
    embeddings, labels, _ = clustered_embeddings(n_classes=2, per_class=3, dim=8)
    labels = labels.astype("<U8")
    labels[2] = " "
    assert "empty label(s) (row 2)" in refused(tmp_path, capsys, save(tmp_path / "blank.npz", embeddings, labels))


def test_a_file_that_is_not_an_npz_is_named_as_such(tmp_path, capsys):
    csv = tmp_path / "embeddings.csv"
    csv.write_text("0.1,0.2\n0.3,0.4\n")
    assert "is not an .npz archive" in refused(tmp_path, capsys, csv)
