"""`kshot embed`: the npz contract other commands rely on, skips reported in the file and on stderr."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import facenet_tf
from experiments.cli import main

pytestmark = pytest.mark.weights


@pytest.fixture
def shared_model(monkeypatch, facenet_pretrained):
    """The session's FaceNet instead of a second load (same weights, same hash)."""
    monkeypatch.setattr(facenet_tf, "load_pretrained", lambda weights=None: facenet_pretrained)
    return facenet_pretrained.model


def _check_contract(out):
    with np.load(out) as data:
        arrays = {k: data[k] for k in data.files}
    n = len(arrays["embeddings"])
    assert arrays["embeddings"].dtype == np.float32 and arrays["embeddings"].shape == (n, 128)
    np.testing.assert_allclose(np.linalg.norm(arrays["embeddings"], axis=1), 1.0, atol=1e-5)
    assert len(arrays["labels"]) == len(arrays["paths"]) == n
    assert arrays["labels"].dtype.kind == "U" and arrays["skipped"].dtype.kind == "U"
    return arrays


def test_embed_celebrities_writes_the_contract_with_split_and_skips(shared_model, tmp_path, capsys):
    out = tmp_path / "celebrities.npz"
    assert main(["embed", "--data", "celebrities", "--out", str(out), "--quiet"]) == 0
    arrays = _check_contract(out)
    n, skipped = len(arrays["embeddings"]), list(arrays["skipped"])
    assert n + len(skipped) == 118 and len(arrays["split"]) == n
    assert set(arrays["split"]) == {"train", "val"}
    stderr = capsys.readouterr().err
    for line in skipped:
        assert line in stderr and ": no face found" in line


def test_embed_a_folder_skipping_bad_entries(shared_model, messy_folder, tmp_path, capsys):
    out = tmp_path / "people.npz"
    assert main(["embed", "--data", str(messy_folder), "--out", str(out), "--skip-bad", "--quiet"]) == 0
    arrays = _check_contract(out)
    assert "split" not in arrays and len(arrays["embeddings"]) == 10
    assert sorted(set(arrays["labels"])) == ["elton_john", "madonna"]
    skipped = " ".join(arrays["skipped"])
    assert "blank_wall.png: no face" in skipped and "setlist.txt: not an image" in skipped
    assert "blank_wall.png" in capsys.readouterr().err


def test_adding_and_removing_files_changes_what_is_embedded(shared_model, messy_folder, tmp_path):
    (messy_folder / "elton_john" / "setlist.txt").unlink()
    first = tmp_path / "first.npz"
    assert main(["embed", "--data", str(messy_folder), "--out", str(first), "--quiet"]) == 0
    removed = sorted((messy_folder / "madonna").glob("*.jpg"))[0]
    removed.unlink()
    second = tmp_path / "second.npz"
    assert main(["embed", "--data", str(messy_folder), "--out", str(second), "--quiet"]) == 0
    a, b = _check_contract(first), _check_contract(second)
    assert str(removed) in set(a["paths"]) and str(removed) not in set(b["paths"])
    assert len(b["paths"]) == len(a["paths"]) - 1
    keep = [list(a["paths"]).index(p) for p in b["paths"]]
    np.testing.assert_allclose(b["embeddings"], a["embeddings"][keep], atol=1e-6)


def test_aligned_images_are_not_searched_for_faces(shared_model, tmp_path):
    root = tmp_path / "crops"
    (root / "someone").mkdir(parents=True)
    Image.new("RGB", (160, 160), (150, 120, 100)).save(root / "someone" / "crop.png")
    out = tmp_path / "crops.npz"
    assert main(["embed", "--data", str(root), "--out", str(out), "--aligned", "--quiet"]) == 0
    arrays = _check_contract(out)
    assert len(arrays["embeddings"]) == 1 and len(arrays["skipped"]) == 0


def test_a_non_image_without_skip_bad_stops_with_a_message_naming_it(shared_model, messy_folder, tmp_path, capsys):
    out = tmp_path / "x.npz"
    assert main(["embed", "--data", str(messy_folder), "--out", str(out)]) == 2
    assert "setlist.txt" in capsys.readouterr().err and not out.exists()


def test_an_out_file_that_is_not_npz_is_refused(shared_model, tmp_path, capsys):
    assert main(["embed", "--data", "celebrities", "--out", str(tmp_path / "x.csv")]) == 2
    assert ".npz" in capsys.readouterr().err
