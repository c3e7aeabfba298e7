"""Forgetting people, free slots before occupied ones, and the gallery under kill -9 at any point.

Fast tests with the stand-in embedder (support.FakeEmbedder). The kill -9 test runs real
writer processes and kills them (SIGKILL, no cleanup) at chosen points of enroll, forget
and calibrate: the gallery must then hold the state before or after, and the next write
must leave nothing of the killed writer behind.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from support import FakeEmbedder, fake_centre, photo_folder

import experiments.gallery.forgetting as forgetting
from experiments.gallery.gallery import Gallery
from experiments.gallery.storage import GalleryError

REPO = Path(__file__).resolve().parents[2]


def _enrolled(tmp_path, people: dict, **options) -> Gallery:
    gallery = Gallery(FakeEmbedder(), **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gallery.enroll(photo_folder(tmp_path / "_".join(people), people))
    return gallery


def _file_arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: np.asarray(data[name]) for name in data.files}


@pytest.mark.parametrize("store_all", [False, True])
def test_forgetting_leaves_nothing_of_the_person_in_any_array_of_the_file(tmp_path, store_all):
    path = tmp_path / "g.npz"
    gallery = _enrolled(tmp_path, {"ada": 4, "bob": 5, "cleo": 4, "dora": 3}, memory_size=16, store_all=store_all)
    gallery.save(path)
    with Gallery.edit(path, embedder=FakeEmbedder()) as editing:
        assert editing.forget(["bob"]) == {"bob": 5}
    arrays = _file_arrays(path)
    header = json.loads(str(arrays["header"]))
    assert header["labels"] == ["ada", "cleo", "dora"] and set(header["enrolled"]) == {"ada", "cleo", "dora"}
    for name, array in arrays.items():
        if array.dtype.kind in "US":
            assert "bob" not in str(array), name
        elif array.dtype.kind == "f" and array.ndim == 2 and array.shape[1] == fake_centre("bob").size:
            # bob's photos and merged slots point at his centre (cosine ~0.99); nobody else's do
            filled = array[np.linalg.norm(array, axis=1) > 0]
            assert (filled @ fake_centre("bob") < 0.8).all(), name
    values = arrays["memory.values"]
    assert set(values[values >= 0].tolist()) == {0, 1, 2}                  # re-numbered, no gap
    assert set(arrays["calibration_labels"].tolist()) == {0, 1, 2}
    empty = values < 0
    assert not arrays["memory.keys"][empty].any()
    for name, array in arrays.items():                                     # every per-slot array is zero there
        if not store_all and name != "memory.values" and array.ndim >= 1 and array.shape[0] == values.size:
            assert not array[empty].any(), name
    loaded = Gallery.load(path, embedder=FakeEmbedder())
    assert loaded.threshold is not None and loaded.calibration.people == 3   # recalibrated without bob
    # A threshold between the stand-in's known and strangers' scores: 3 people name almost no one at FPIR 0.001.
    answers = [r.answer for r in loaded.identify([photo_folder(tmp_path / "q", {"cleo": 1, "bob": 1})], threshold=0.35)]
    assert answers == ["unknown", "cleo"]                                  # bob is a stranger now


def test_a_forgotten_store_all_gallery_equals_one_that_never_had_the_person(tmp_path):
    forgot = _enrolled(tmp_path, {"ada": 3, "bob": 3, "cleo": 3}, store_all=True)
    forgot.forget("bob")
    forgot.save(tmp_path / "forgot.npz")
    never = Gallery(FakeEmbedder(), store_all=True)
    never.enroll(photo_folder(tmp_path / "never", {"ada": 3, "cleo": 3}))   # the same photos, without bob's
    never.save(tmp_path / "never.npz")
    a, b = _file_arrays(tmp_path / "forgot.npz"), _file_arrays(tmp_path / "never.npz")
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_forgetting_an_unknown_name_lists_the_enrolled_ones_and_changes_nothing(tmp_path):
    path = tmp_path / "g.npz"
    _enrolled(tmp_path, {"ada": 2, "bob": 2, "cleo": 2}).save(path)
    before = path.read_bytes()
    with pytest.raises(GalleryError, match=r"not in the gallery: 'zed'; enrolled: ada, bob, cleo"):
        with Gallery.edit(path) as gallery:
            gallery.forget(["ada", "zed"])
    assert path.read_bytes() == before


def test_kshot_forget_from_the_command_line(tmp_path, capsys):
    from experiments.cli import main  # the whole command line, only for the test that runs it

    path = tmp_path / "g.npz"
    _enrolled(tmp_path, {"ada": 2, "bob": 2, "cleo": 2}).save(path)
    assert main(["forget", "--gallery", str(path), "bob"]) == 0
    assert "removed bob (2 photos)" in capsys.readouterr().out
    assert Gallery.load(path).names.labels == ["ada", "cleo"]
    assert main(["forget", "--gallery", str(path), "bob"]) == 2
    assert "enrolled: ada, cleo" in capsys.readouterr().err


def test_free_slots_are_written_before_occupied_ones(tmp_path, monkeypatch):
    """8 slots, 3 people then 2 more (2 photos each): all 5 keep a slot. The memory alone overwrote one."""
    def enroll_twice():
        gallery = Gallery(FakeEmbedder(), memory_size=8)
        gallery.enroll(photo_folder(tmp_path / "groupA", {"ada": 2, "bob": 2, "cleo": 2}))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gallery.enroll(photo_folder(tmp_path / "people", {"dora": 2, "eve": 2}))
        return gallery, caught

    gallery, caught = enroll_twice()
    assert gallery.forgotten() == [] and gallery.memory.slots_in_use() == 5 and not caught
    monkeypatch.setattr(forgetting, "use_free_slots_first", lambda memory: None)   # the memory's own choice
    gallery, caught = enroll_twice()
    assert gallery.forgotten() == ["bob"] and gallery.memory.slots_in_use() == 4  # lost while 4 slots were free
    assert any("bob" in str(w.message) and "hold no slot" in str(w.message) for w in caught)   # and said so


def test_the_python_api_warns_when_a_full_memory_drops_someone(tmp_path):
    gallery = Gallery(FakeEmbedder(), memory_size=2)
    with pytest.warns(UserWarning, match=r"hold no slot any more .*use a larger memory_size"):
        gallery.enroll(photo_folder(tmp_path / "p", {"ada": 3, "bob": 3, "cleo": 3}))
    assert gallery.forgotten()


def test_two_enrolls_creating_one_gallery_cannot_drop_each_others_memory_settings(tmp_path):
    path = tmp_path / "g.npz"
    _enrolled(tmp_path, {"ada": 2, "bob": 2}, store_all=True).save(path)   # the other enroll won the race
    before = path.read_bytes()
    with pytest.raises(GalleryError, match=r"created by another command meanwhile .*store_all"):
        with Gallery.edit(path, embedder=FakeEmbedder(), create={"memory_size": 8}, expect_new=True) as gallery:
            gallery.enroll(photo_folder(tmp_path / "more", {"cleo": 2}))
    assert path.read_bytes() == before
    with Gallery.edit(path, embedder=FakeEmbedder(), create={"store_all": True}, expect_new=True) as gallery:
        gallery.enroll(photo_folder(tmp_path / "more", {"cleo": 2}))    # same settings: simply added
    assert Gallery.load(path).names.labels == ["ada", "bob", "cleo"]


KILLER = """
    import os, signal, sys
    from pathlib import Path
    from experiments.gallery.gallery import Gallery
    from support import FakeEmbedder, photo_folder

    operation, path, point, folder = sys.argv[1:5]
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    real_fsync, real_replace = os.fsync, os.replace
    gallery_temporary = lambda name: Path(name).name.startswith(".g.npz.")   # not the memory's own state file

    def fsync(fd):
        if point == "mid_write" and gallery_temporary(os.readlink(f"/proc/self/fd/{fd}")):
            die()                                    # the temporary file is written, not yet renamed
        real_fsync(fd)

    def replace(source, target):
        if point == "before_rename" and gallery_temporary(source):
            die()
        real_replace(source, target)
        if point == "after_rename" and gallery_temporary(source):
            die()                                    # the new file is in place; the lock is still held

    os.fsync, os.replace = fsync, replace
    with Gallery.edit(path, embedder=FakeEmbedder()) as gallery:
        if operation == "enroll":
            gallery.enroll(photo_folder(Path(folder), {"dora": 3}))
        elif operation == "forget":
            gallery.forget(["bob"])
        else:
            gallery.recalibrate(0.05)
        if point == "in_edit":
            die()
"""
AFTER = {"enroll": lambda g: "dora" in g.names, "forget": lambda g: "bob" not in g.names,
         "calibrate": lambda g: g.fpir == 0.05}


@pytest.mark.parametrize("operation, points", [
    ("forget", ["in_edit", "mid_write", "before_rename", "after_rename", "none"]),
    ("enroll", ["mid_write", "after_rename"]),
    ("calibrate", ["before_rename", "after_rename"]),
])
def test_kill_9_at_any_point_loses_nothing_and_leaves_nothing(tmp_path, operation, points):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    for point in points:
        folder = tmp_path / point
        folder.mkdir()
        path = folder / "g.npz"
        _enrolled(folder, {"ada": 3, "bob": 3, "cleo": 3}).save(path)
        before = path.read_bytes()
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLER), operation, path, point, folder / "new"],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == (0 if point == "none" else -9), (point, done.stderr[-2000:])
        leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
        assert bool(leftovers) == (point in ("mid_write", "before_rename")), (point, leftovers)
        gallery = Gallery.load(path, embedder=FakeEmbedder())               # loads, values checked
        changed = AFTER[operation](gallery)
        assert changed == (point in ("after_rename", "none")), point
        if not changed:
            assert path.read_bytes() == before, point                       # exactly the old file
        with Gallery.edit(path, embedder=FakeEmbedder()):                   # the next writer cleans up
            pass
        assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["g.npz", "g.npz.lock"], point
