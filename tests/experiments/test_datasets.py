"""Folder-per-identity datasets and the built-in celebrity set."""

from __future__ import annotations

import pytest

from experiments.faces.datasets import BUILTIN_DATASETS, load_image_dataset


def _touch(path, content=b"\xff\xd8 not decoded here"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "faces"
    for label, names in {"bob": ["b2.jpg", "b1.PNG"], "alice": ["a1.jpeg"]}.items():
        for name in names:
            _touch(root / label / name)
    _touch(root / ".DS_Store", b"junk")
    _touch(root / "alice" / ".hidden.jpg")
    (root / ".git").mkdir()
    return root


def test_folder_layout_is_read_sorted_and_hidden_files_are_ignored(folder):
    dataset = load_image_dataset(folder)
    assert [p.name for p in dataset.paths] == ["a1.jpeg", "b1.PNG", "b2.jpg"]
    assert dataset.labels == ("alice", "bob", "bob")
    assert dataset.split is None and dataset.classes == ("alice", "bob")
    assert load_image_dataset(str(folder)) == dataset   # deterministic


def test_a_non_image_file_is_an_error_naming_it_unless_skipping(folder):
    notes = _touch(folder / "bob" / "notes.txt", b"hello")
    with pytest.raises(ValueError, match=r"notes\.txt.*not an image"):
        load_image_dataset(folder)
    dataset = load_image_dataset(folder, skip_bad=True)
    assert (str(notes), dataset.skipped[0][1]) == dataset.skipped[0] and len(dataset) == 3


def test_an_empty_class_folder_is_an_error_naming_it_unless_skipping(folder):
    (folder / "carol").mkdir()
    with pytest.raises(ValueError, match=r"carol.*empty class folder"):
        load_image_dataset(folder)
    assert load_image_dataset(folder, skip_bad=True).skipped[0][0].endswith("carol")


def test_a_file_lying_in_the_root_is_an_error(folder):
    _touch(folder / "stray.jpg")
    with pytest.raises(ValueError, match=r"stray\.jpg.*<label>"):
        load_image_dataset(folder)


def test_a_single_class_dataset_loads(tmp_path):
    _touch(tmp_path / "only" / "x.jpg")
    assert load_image_dataset(tmp_path).classes == ("only",)


def test_missing_or_imageless_folders_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*celebrities"):
        load_image_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        load_image_dataset(tmp_path / "empty")


@pytest.mark.weights
def test_celebrities_has_93_train_and_25_val_photos_of_5_people(celebrities):
    assert "celebrities" in BUILTIN_DATASETS
    assert len(celebrities) == 118
    assert celebrities.split.count("train") == 93 and celebrities.split.count("val") == 25
    assert celebrities.classes == ("ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling")
    for path, label, split in zip(celebrities.paths, celebrities.labels, celebrities.split):
        assert path.parent.name == label and path.parent.parent.name == split
    assert list(celebrities.split) == sorted(celebrities.split, key=["train", "val"].index)
