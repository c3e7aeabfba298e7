"""The Omniglot loader: zip and folder sources, merging, splitting, resizing, rotations, cache, errors.

Small synthetic zips in the dataset's own layout keep these fast; one test reads the
two real MIT subsets from ../shared/omniglot (where CI keeps them).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.episodic import omniglot as omniglot_data
from experiments.episodic.data import add_mirrors, add_rotations
from experiments.episodic.omniglot import default_sources, load_omniglot
from experiments.episodic.split import choose_test_alphabets, split_by_alphabet


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "cache"))


def drawing_png(character_id: int, drawer: int) -> bytes:
    """A 105x105 one-bit image, white background, a black block placed by character and drawer."""
    pixels = np.ones((105, 105), dtype=bool)
    top = 4 + 8 * (character_id % 10)
    left = 4 + 5 * drawer
    pixels[top : top + 20, left : left + 12] = False
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("1").save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(path: Path, set_name: str, alphabets: dict[str, int], drawers: int = 3, start_id: int = 0) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        char_id = start_id
        for alphabet, n_chars in alphabets.items():
            for c in range(1, n_chars + 1):
                for d in range(1, drawers + 1):
                    name = f"{set_name}/{alphabet}/character{c:02d}/{char_id:04d}_{d:02d}.png"
                    archive.writestr(name, drawing_png(char_id, d))
                char_id += 1
    return path


def test_zip_and_extracted_folder_load_the_same_arrays(tmp_path):
    archive = make_zip(tmp_path / "set_a.zip", "set_a", {"Alpha": 3, "Beta": 2})
    folder = tmp_path / "extracted"
    zipfile.ZipFile(archive).extractall(folder)

    from_zip, sets = load_omniglot(archive)
    from_folder, _ = load_omniglot(folder / "set_a")  # the set folder itself
    from_root, _ = load_omniglot(folder)  # a folder of set folders

    assert from_zip.images.shape == (15, 28, 28)
    assert from_zip.characters == ("Alpha/character01", "Alpha/character02", "Alpha/character03",
                                   "Beta/character01", "Beta/character02")
    assert sets == {"Alpha": ["set_a"], "Beta": ["set_a"]}
    for other in (from_folder, from_root):
        np.testing.assert_array_equal(other.images, from_zip.images)
        np.testing.assert_array_equal(other.labels, from_zip.labels)
        assert other.characters == from_zip.characters


def test_resize_keeps_ink_where_it_was_and_honours_image_size(tmp_path):
    archive = make_zip(tmp_path / "s.zip", "s", {"Alpha": 1}, drawers=1)
    data, _ = load_omniglot(archive)
    image = data.images[0]
    assert image.dtype == np.uint8 and image.shape == (28, 28)
    # The block covers rows 4..23 and columns 9..20 of 105: about rows 1..6, columns 2..5 of 28.
    assert image[3, 4] == 255  # fully inside the block: ink is bright
    assert image[20, 20] == 0  # background is dark
    small, _ = load_omniglot(archive, image_size=14)
    assert small.images.shape == (1, 14, 14)


def test_alphabets_in_two_sources_are_merged_without_duplicates(tmp_path):
    # "Greek" is in both sources with the same drawings; the second source also adds one character.
    first = make_zip(tmp_path / "small1.zip", "small1", {"Greek": 2, "Korean": 2})
    second = tmp_path / "small2.zip"
    with zipfile.ZipFile(second, "w") as archive:
        with zipfile.ZipFile(first) as original:
            for name in original.namelist():
                if "/Greek/" in name:
                    archive.writestr(name.replace("small1/", "small2/"), original.read(name))
        for d in range(1, 4):
            archive.writestr(f"small2/Greek/character03/0099_{d:02d}.png", drawing_png(99, d))
            archive.writestr(f"small2/Tagalog/character01/0100_{d:02d}.png", drawing_png(100, d))

    data, sets = load_omniglot([first, second])
    assert data.characters == ("Greek/character01", "Greek/character02", "Greek/character03",
                               "Korean/character01", "Korean/character02", "Tagalog/character01")
    assert [len(ix) for ix in data.indices_by_class()] == [3] * 6
    assert sets["Greek"] == ["small1", "small2"]
    # A folder holding both zips is the same as naming them.
    folder_data, _ = load_omniglot(tmp_path)
    np.testing.assert_array_equal(folder_data.images, data.images)


def test_split_is_by_alphabet_deterministic_and_honours_an_evaluation_set(tmp_path):
    archive = make_zip(tmp_path / "bg.zip", "images_background", {"A": 4, "B": 3, "C": 2, "D": 1})
    data, sets = load_omniglot(archive)
    # Reverse name order until >= 20% of 10 characters: D (1) then C (2).
    assert choose_test_alphabets(data, sets, test_fraction=0.2) == ["C", "D"]
    train, test = split_by_alphabet(data, ["C", "D"])
    assert set(train.alphabets) == {"A", "B"} and set(test.alphabets) == {"C", "D"}
    assert train.num_classes == 7 and test.num_classes == 3
    assert set(train.characters).isdisjoint(test.characters)
    assert sorted(np.unique(test.labels).tolist()) == [0, 1, 2]

    evaluation = make_zip(tmp_path / "ev.zip", "images_evaluation", {"E": 2}, start_id=50)
    both, both_sets = load_omniglot([archive, evaluation])
    assert choose_test_alphabets(both, both_sets) == ["E"]

    with pytest.raises(ValueError, match=r"test alphabets \['Klingon'\] are not in the data"):
        split_by_alphabet(data, ["Klingon"])
    with pytest.raises(ValueError, match="empty train or test"):
        split_by_alphabet(data, ["A", "B", "C", "D"])


def test_rotations_make_three_new_classes_per_character(tmp_path):
    data, _ = load_omniglot(make_zip(tmp_path / "s.zip", "s", {"Alpha": 2}, drawers=2))
    rotated = add_rotations(data)
    assert rotated.num_classes == 8 and rotated.images.shape == (16, 28, 28)
    assert rotated.characters[:4] == ("Alpha/character01", "Alpha/character01@rot90",
                                      "Alpha/character01@rot180", "Alpha/character01@rot270")
    first = data.images[data.labels == 0][0]
    for r in range(4):
        np.testing.assert_array_equal(rotated.images[rotated.labels == r][0], np.rot90(first, k=r))
    assert not np.array_equal(np.rot90(first), first)  # the fixture is not rotation-symmetric


def test_mirrors_after_rotations_give_the_eight_symmetries_of_each_character(tmp_path):
    data, _ = load_omniglot(make_zip(tmp_path / "s.zip", "s", {"Alpha": 2}, drawers=2))
    both = add_mirrors(add_rotations(data))
    assert both.num_classes == 16 and both.images.shape == (32, 28, 28)
    assert both.characters[:4] == ("Alpha/character01", "Alpha/character01@mirror",
                                   "Alpha/character01@rot90", "Alpha/character01@rot90@mirror")
    assert both.alphabets == ("Alpha",) * 16
    first = data.images[data.labels == 0][0]
    symmetries = [both.images[both.labels == c][0] for c in range(8)]
    for r in range(4):
        np.testing.assert_array_equal(symmetries[2 * r], np.rot90(first, k=r))
        np.testing.assert_array_equal(symmetries[2 * r + 1], np.rot90(first, k=r)[:, ::-1])
    distinct = {s.tobytes() for s in symmetries}
    assert len(distinct) == 8  # the fixture has no symmetry, so all eight differ
    assert [len(i) for i in both.indices_by_class()] == [2] * 16


def test_decoded_arrays_are_cached_and_the_key_follows_the_file_content(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "s.zip", "s", {"Alpha": 2})
    first, _ = load_omniglot(archive)
    cached = list((tmp_path / "cache" / "omniglot").glob("*.npz"))
    assert len(cached) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache holds these files")

    monkeypatch.setattr(omniglot_data, "_decode_all", no_decoding)
    again, _ = load_omniglot(archive)
    np.testing.assert_array_equal(again.images, first.images)
    assert again.characters == first.characters

    make_zip(archive, "s", {"Alpha": 3})  # new content under the same name
    with pytest.raises(AssertionError, match="decoded again"):
        load_omniglot(archive)


def test_bad_paths_are_refused_with_the_path_named(tmp_path):
    missing = tmp_path / "nowhere.zip"
    with pytest.raises(FileNotFoundError, match="nowhere.zip does not exist"):
        load_omniglot(missing)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.txt is a file but not a .zip"):
        load_omniglot(text)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="broken.zip is not a readable zip"):
        load_omniglot(broken)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty holds no zips or PNGs"):
        load_omniglot(empty)
    corrupt = tmp_path / "corrupt.zip"
    with zipfile.ZipFile(corrupt, "w") as archive:
        archive.writestr("s/Alpha/character01/0001_01.png", b"garbage")
    with pytest.raises(ValueError, match="cannot decode Omniglot image Alpha/character01/0001_01.png"):
        load_omniglot(corrupt)


@pytest.mark.needs_omniglot
def test_the_shared_mit_subsets_merge_to_242_characters_with_enough_held_out():
    # The two small subsets by name: the shared folder also holds the full background set.
    sources = [default_sources()[0] / f"images_background_small{i}.zip" for i in (1, 2)]
    if not all(s.exists() for s in sources):
        pytest.skip(f"the shared Omniglot subsets are not at {sources}")
    data, sets = load_omniglot(sources)
    assert data.num_classes == 242  # 136 + 156 minus the 50 Greek and Latin characters in both
    assert data.images.shape == (4840, 28, 28)
    assert sets["Greek"] == ["images_background_small1", "images_background_small2"]
    held_out = choose_test_alphabets(data, sets)
    assert held_out == ["Sanskrit", "Tagalog"]
    train, test = split_by_alphabet(data, held_out)
    assert (train.num_classes, test.num_classes) == (183, 59)
    assert test.num_classes >= 20  # 20-way tasks need 20 held-out characters


@pytest.mark.needs_omniglot
def test_the_default_sources_are_the_full_background_set():
    """The shared folder holds the full background set and its two subsets; merged, they are the 964 characters."""
    data, _ = load_omniglot(default_sources())
    assert data.num_classes == 964 and len(data.alphabet_names()) == 30

