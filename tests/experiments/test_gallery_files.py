"""The gallery file against hostile paths and values: mode, lock, symlinks, stale temporaries,
impossible values, formula injection in the answers CSV, several faces in a photo.

Stand-in embedder (support.FakeEmbedder) only: no FaceNet.
"""

import json
import os
import stat
import subprocess
import sys
import unicodedata

import numpy as np
import pytest
from support import FakeEmbedder, photo_folder

from experiments.gallery.answers import answers_csv, neutralise_formula
from experiments.gallery.gallery import Gallery
from experiments.gallery.storage import GalleryError, write_lock
from facenet_tf.errors import WeightsError
from facenet_tf.weights import read_residual_scales
from kshot_io.atomic import remove_stale_temporaries


@pytest.fixture
def gallery(tmp_path):
    made = Gallery(FakeEmbedder())
    made.enroll(photo_folder(tmp_path / "people", {"ada": 3, "bob": 3, "cleo": 3}))
    return made


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------- mode


def test_a_new_gallery_is_private_and_a_rewrite_keeps_the_mode_the_user_chose(tmp_path, gallery):
    path = tmp_path / "g.npz"
    previous = os.umask(0o022)
    try:
        gallery.save(path)
        assert _mode(path) == 0o600                                   # biometric data: owner only
        os.chmod(path, 0o640)                                         # shared with the group on purpose
        with Gallery.edit(path, embedder=FakeEmbedder()) as editing:
            editing.enroll(photo_folder(tmp_path / "more", {"dora": 2}))
        assert _mode(path) == 0o640
        os.chmod(path, 0o600)
        for change in (lambda g: g.recalibrate(0.05), lambda g: g.forget("dora"),
                       lambda g: g.identify([tmp_path / "people" / "ada"], learn=True)):
            with Gallery.edit(path, embedder=FakeEmbedder()) as editing:
                change(editing)
            assert _mode(path) == 0o600
    finally:
        os.umask(previous)


# ---------------------------------------------------------------- lock and symlinks


def test_a_symlinked_lock_is_never_followed_nor_its_target_truncated(tmp_path, gallery):
    path = tmp_path / "g.npz"
    gallery.save(path)
    victim = tmp_path / "precious.txt"
    victim.write_text("do not truncate me")
    os.symlink(victim, tmp_path / "g.npz.lock")
    with pytest.raises(GalleryError, match=r"g\.npz\.lock is a symbolic link; kshot never follows it"):
        with Gallery.edit(path, embedder=FakeEmbedder()):
            pass
    assert victim.read_text() == "do not truncate me"


def test_a_hard_linked_lock_is_locked_but_never_rewritten(tmp_path, gallery):
    path = tmp_path / "g.npz"
    gallery.save(path)
    victim = tmp_path / "precious.txt"
    victim.write_text("do not truncate me")
    os.link(victim, tmp_path / "g.npz.lock")
    with write_lock(path, timeout=1):
        pass
    assert victim.read_text() == "do not truncate me"


def test_a_symlinked_gallery_is_written_through_and_stays_a_link(tmp_path, gallery):
    real = tmp_path / "store" / "team.npz"
    gallery.save(real)
    link = tmp_path / "team.npz"
    os.symlink(real, link)
    with Gallery.edit(link, embedder=FakeEmbedder()) as editing:
        editing.enroll(photo_folder(tmp_path / "more", {"dora": 2}))
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert Gallery.load(real).names.labels == ["ada", "bob", "cleo", "dora"]
    assert (tmp_path / "store" / "team.npz.lock").exists() and not (tmp_path / "team.npz.lock").exists()


# ---------------------------------------------------------------- stale temporary files


def test_a_dead_writers_temporary_file_is_removed_by_the_next_save_and_a_live_ones_kept(tmp_path, gallery):
    path = tmp_path / "g.npz"
    gallery.save(path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".g.npz.{dead_pid}.abc123.tmp"
    stale.write_bytes(b"\0" * 4096)
    live = tmp_path / f".g.npz.{os.getppid()}.def456.tmp"               # a writer that is still running
    live.write_bytes(b"\0")
    other = tmp_path / f".other.npz.{dead_pid}.x.tmp"                   # not this gallery's
    other.write_bytes(b"\0")
    with Gallery.edit(path, embedder=FakeEmbedder()) as editing:
        editing.recalibrate(0.05)
    assert not stale.exists() and live.exists() and other.exists()
    assert Gallery.load(path).fpir == 0.05
    assert remove_stale_temporaries(path) == []


# ---------------------------------------------------------------- values


def _rewrite(path, **arrays):
    with np.load(path) as data:
        content = {k: data[k] for k in data.files}
    content.update(arrays)
    with open(path, "wb") as handle:
        np.savez(handle, **content)


def _header_with(path, **changes):
    with np.load(path) as data:
        header = json.loads(str(data["header"]))
    header.update(changes)
    return np.array(json.dumps(header))


@pytest.mark.parametrize("damage, field", [
    (lambda a, p: {"memory.keys": np.where(np.arange(len(a["memory.keys"]))[:, None] == 0, np.nan, a["memory.keys"])},
     "memory.keys hold NaN"),
    (lambda a, p: {"memory.keys": a["memory.keys"] * 100}, "memory.keys are not unit vectors"),
    (lambda a, p: {"memory.keys": a["memory.keys"] + 0.01 * (a["memory.values"] < 0)[:, None]},
     "memory.keys hold values in empty slots"),
    (lambda a, p: {"memory.values": np.where(a["memory.values"] >= 0, 7, -1)}, "memory.values hold label ids|label ids and names disagree"),
    (lambda a, p: {"calibration_embeddings": a["calibration_embeddings"] * np.nan},
     "calibration_embeddings holds NaN"),
    (lambda a, p: {"calibration_labels": a["calibration_labels"][:-1]}, "label ids and names disagree|calibration_labels"),
    (lambda a, p: {"header": _header_with(p, enrolled={"ada": 3, "bob": 3})}, "enrolled does not list"),
    (lambda a, p: {"header": _header_with(p, enrolled={"ada": 3, "bob": -1, "cleo": 3})}, "enrolled holds -1"),
    (lambda a, p: {"header": _header_with(p, labels=["ada", "ada", "cleo"])}, "labels holds a name twice|label ids and names disagree"),
])
def test_impossible_values_in_a_well_formed_file_are_refused_with_the_field_named(tmp_path, gallery, damage, field):
    path = tmp_path / "g.npz"
    gallery.save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    _rewrite(path, **damage(arrays, path))
    with pytest.raises(GalleryError, match=field):
        Gallery.load(path)


@pytest.mark.parametrize("threshold", [-5.0, float("nan"), 3.0])
def test_a_threshold_outside_minus_one_to_one_is_refused_on_load_and_never_saved(tmp_path, gallery, threshold):
    path = tmp_path / "g.npz"
    gallery.save(path)
    with np.load(path) as data:
        calibration = json.loads(str(data["header"]))["calibration"]
    _rewrite(path, header=_header_with(path, calibration={**calibration, "threshold": threshold}))
    with pytest.raises(GalleryError, match=r"threshold is .*not a cosine similarity in \[-1, 1\]"):
        Gallery.load(path)
    gallery.calibration = type(gallery.calibration).from_dict({**calibration, "threshold": threshold})
    with pytest.raises(GalleryError, match="threshold"):
        gallery.save(tmp_path / "other.npz")
    assert not (tmp_path / "other.npz").exists()


def test_a_nan_photo_embedding_is_refused_with_its_path_before_anything_is_enrolled(tmp_path, gallery):
    class NanForOnePhoto(FakeEmbedder):
        def embed(self, paths, aligned=False):
            result = super().embed(paths, aligned)
            result.embeddings[[i for i, p in enumerate(result.kept_paths) if p.endswith("dora_1.jpg")]] = np.nan
            return result

    before = gallery.memory.keys.numpy().copy(), dict(gallery.enrolled), gallery.threshold
    gallery._embedder = NanForOnePhoto()
    with pytest.raises(ValueError, match=r"dora_1\.jpg: its embedding is NaN"):
        gallery.enroll(photo_folder(tmp_path / "more", {"dora": 3}))
    np.testing.assert_array_equal(gallery.memory.keys.numpy(), before[0])
    assert (gallery.enrolled, gallery.threshold) == before[1:]
    with pytest.raises(ValueError, match=r"photo 1 \(of 'eve'\): its embedding is NaN"):
        gallery.enroll_embeddings(np.array([np.ones(64), np.full(64, np.nan)], np.float32), ["eve", "eve"])


# ---------------------------------------------------------------- answers CSV


def test_names_and_file_names_cannot_run_as_spreadsheet_formulas(tmp_path, monkeypatch):
    hostile = ["=HYPERLINK(\"x\")", "+1+1", "-2", "@SUM(A1)"]
    made = Gallery(FakeEmbedder())
    made.enroll(photo_folder(tmp_path / "people", {hostile[0]: 2, "bob": 2}))
    monkeypatch.chdir(tmp_path)
    query = "=cmd|calc.jpg"                                           # a relative path, as a user types it
    (tmp_path / query).write_text(hostile[0])
    cells = answers_csv(made.identify([query], threshold=0.35)).splitlines()[1]   # 2 people name no one at FPIR 0.001
    assert cells.startswith("'=cmd|calc.jpg,\"'=HYPERLINK") and ",=" not in cells and ',"=' not in cells
    for name in hostile[1:] + ["\tx", "\rx"]:
        assert neutralise_formula(name) == "'" + name
    assert neutralise_formula("ada") == "ada" and neutralise_formula(-0.5) == -0.5   # numbers stay numbers


# ---------------------------------------------------------------- several faces


class CountingEmbedder(FakeEmbedder):
    """A stand-in with a detector: a photo's text 'ada+bob' holds two faces (the first is answered for)."""

    def embed(self, paths, aligned=False):
        for path in paths:
            text = open(path, encoding="utf-8").read()
            if "+" in text:
                open(path, "w", encoding="utf-8").write(text.split("+")[0])   # the most confident face
        return super().embed(paths, aligned)

    def count_faces(self, paths):
        return [2 if "group" in str(p) else 1 for p in paths]


def test_a_photo_with_two_faces_says_so_and_which_one_was_answered(tmp_path):
    made = Gallery(CountingEmbedder())
    made.enroll(photo_folder(tmp_path / "people", {"ada": 2, "bob": 2}))
    group = tmp_path / "q" / "group.jpg"
    group.parent.mkdir()
    group.write_text("ada+bob")
    single = tmp_path / "q" / "single.jpg"
    single.write_text("bob")
    rows = made.identify([group, single], threshold=0.35)                  # 2 people name no one at FPIR 0.001
    assert [(r.answer, r.faces) for r in rows] == [("ada", 2), ("bob", 1)]
    assert rows[0].note == "2 faces found; answered for the most confident detection" and rows[1].note == ""
    text = answers_csv(rows)
    assert text.splitlines()[0].endswith(",faces,note") and ",2,2 faces found" in text
    assert made.identify([single], aligned=True)[0].faces is None        # a face crop: nothing detected


def test_a_gallery_given_as_weights_is_not_called_a_truncated_file_to_delete(tmp_path, gallery):
    path = tmp_path / "team.npz"
    gallery.save(path)
    with pytest.raises(WeightsError) as caught:
        read_residual_scales(path)
    assert "zip/.npz archive" in str(caught.value) and "delete" not in str(caught.value)
    assert path.exists()


# ---------------------------------------------------------------- what a new user tries next


def test_a_folder_given_as_the_gallery_is_named_as_a_folder(tmp_path):
    with pytest.raises(GalleryError, match=r"is a folder, not a gallery file; give a file name such as"):
        with Gallery.edit(tmp_path, embedder=FakeEmbedder(), create={}):
            pass
    with pytest.raises(GalleryError, match="is a folder"):
        Gallery.load(tmp_path)


def test_one_name_in_two_unicode_forms_is_one_person(tmp_path):
    composed, decomposed = (unicodedata.normalize(form, "Zoë") for form in ("NFC", "NFD"))
    made = Gallery(FakeEmbedder())
    made.enroll(photo_folder(tmp_path / "linux", {composed: 2, "bob": 2}))
    made.enroll(photo_folder(tmp_path / "mac", {decomposed: 2}))          # the same folder copied from a Mac
    assert made.names.labels == [composed, "bob"] and made.enrolled == {composed: 4, "bob": 2}
    assert made.forget([decomposed]) == {composed: 4}


def test_forgetting_everyone_leaves_an_empty_gallery_that_says_so(tmp_path, gallery):
    path = tmp_path / "g.npz"
    gallery.forget(["ada", "bob", "cleo"])
    gallery.save(path)
    empty = Gallery.load(path)
    assert empty.names.labels == [] and empty.memory.slots_in_use() == 0 and empty.threshold is None
    with pytest.raises(GalleryError, match="the gallery is empty; enroll people first"):
        empty.identify_embeddings(np.ones((1, 64), np.float32), threshold=0.5)
