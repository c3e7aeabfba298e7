"""The gallery without FaceNet: enroll / identify / save / load, its file, its lock, and bad input.

A stand-in embedder (support.FakeEmbedder) keeps these fast; test_gallery_facenet.py
runs the real FaceNet and MTCNN on a few photos.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from support import FAKE_IDENTITY, FakeEmbedder, photo_folder

from experiments.gallery.gallery import UNKNOWN, Gallery
from experiments.gallery.storage import GalleryBusyError, GalleryError, write_lock

REPO = Path(__file__).resolve().parents[2]
# Photos this close to their person's centre (the stand-in's default noise is 0.15) are named by a
# 3-person gallery's own threshold at FPIR 0.001; with the default noise it names almost no one.
SHARP = 0.05
NAMING_THRESHOLD = 0.35   # between the default stand-in's known (0.45 and up) and strangers' (0.3 and down) scores


@pytest.fixture
def people(tmp_path):
    return photo_folder(tmp_path / "people", {"ada": 4, "bob": 4, "cleo": 4})


@pytest.fixture
def saved(tmp_path, people):
    """The path of a saved gallery of ada, bob and cleo (Kaiser memory)."""
    gallery = Gallery(FakeEmbedder())
    gallery.enroll(people)
    gallery.save(tmp_path / "g.npz")
    return tmp_path / "g.npz"


@pytest.fixture
def stranger(tmp_path):
    path = tmp_path / "door" / "stranger.jpg"
    path.parent.mkdir(parents=True)
    path.write_text("zed")
    return path


def _photo(tmp_path, name, text):
    path = tmp_path / "queries" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_enroll_save_load_identify_known_and_stranger(tmp_path, people, stranger):
    gallery = Gallery(FakeEmbedder(noise=SHARP))
    report = gallery.enroll(people)
    assert report.enrolled == {"ada": 4, "bob": 4, "cleo": 4}
    assert gallery.threshold is not None
    gallery.save(tmp_path / "g.npz")

    loaded = Gallery.load(tmp_path / "g.npz", embedder=FakeEmbedder(noise=SHARP))
    assert loaded.names.labels == ["ada", "bob", "cleo"] and loaded.threshold == gallery.threshold
    rows = loaded.identify([_photo(tmp_path, "q_bob.jpg", "bob"), stranger])
    assert [r.answer for r in rows] == ["bob", UNKNOWN]
    assert rows[0].similarity >= loaded.threshold > rows[1].similarity
    assert rows[0].runner_up in {"ada", "cleo"} and rows[0].runner_up_similarity < rows[0].similarity
    assert rows[1].nearest in {"ada", "bob", "cleo"}


def test_the_memory_survives_the_file_exactly(tmp_path, people):
    gallery = Gallery(FakeEmbedder(), memory_size=8)
    gallery.enroll(people)
    gallery.save(tmp_path / "g.npz")
    loaded = Gallery.load(tmp_path / "g.npz", embedder=FakeEmbedder())
    saved = gallery.memory.state_variables()
    for name, variable in loaded.memory.state_variables().items():
        np.testing.assert_array_equal(variable.numpy(), saved[name].numpy(), err_msg=name)
    assert loaded.memory.memory_size == 8


def test_enrolling_again_adds_people_and_keeps_the_old_ones(tmp_path, people):
    path = tmp_path / "g.npz"
    first = Gallery(FakeEmbedder())
    first.enroll(people)
    first.save(path)
    more = photo_folder(tmp_path / "more", {"dora": 3, "ada": 2})
    with Gallery.edit(path, embedder=FakeEmbedder()) as gallery:
        report = gallery.enroll(more)
    assert report.enrolled == {"ada": 2, "dora": 3}
    again = Gallery.load(path, embedder=FakeEmbedder())
    assert again.names.labels == ["ada", "bob", "cleo", "dora"]
    assert again.enrolled == {"ada": 6, "bob": 4, "cleo": 4, "dora": 3}
    answers = [r.answer for r in again.identify([_photo(tmp_path, f"{n}.jpg", n) for n in ("ada", "cleo", "dora")])]
    assert answers == ["ada", "cleo", "dora"]


def test_store_all_keeps_every_photo(tmp_path, people):
    gallery = Gallery(FakeEmbedder(), store_all=True)
    gallery.enroll(people)
    gallery.save(tmp_path / "g.npz")
    loaded = Gallery.load(tmp_path / "g.npz", embedder=FakeEmbedder())
    assert loaded.memory_kind == "StoreAllNearestNeighbour" and loaded.memory.slots_in_use() == 12


def test_learn_writes_accepted_answers_only(tmp_path, people, stranger):
    gallery = Gallery(FakeEmbedder(noise=SHARP))
    gallery.enroll(people)
    clock = int(gallery.memory.clock)
    rows = gallery.identify([_photo(tmp_path, "q.jpg", "ada"), stranger], learn=True)
    assert [r.answer for r in rows] == ["ada", UNKNOWN]
    assert int(gallery.memory.clock) == clock + 1   # one write: the accepted answer


def test_names_with_spaces_and_non_latin_letters_round_trip(tmp_path):
    names = ["Zoë Saldaña", "王 菲", "Дмитрий Шостакович"]
    root = photo_folder(tmp_path / "people", {n: 3 for n in names})
    gallery = Gallery(FakeEmbedder(noise=SHARP))
    gallery.enroll(root)
    gallery.save(tmp_path / "g.npz")
    loaded = Gallery.load(tmp_path / "g.npz", embedder=FakeEmbedder(noise=SHARP))
    assert loaded.names.labels == sorted(names)
    rows = loaded.identify([_photo(tmp_path, "q.jpg", "王 菲")])
    assert rows[0].answer == "王 菲"


def test_another_embedder_is_refused_with_the_difference(tmp_path, people):
    gallery = Gallery(FakeEmbedder())
    gallery.enroll(people)
    gallery.save(tmp_path / "g.npz")
    other = FakeEmbedder({**FAKE_IDENTITY, "weights_sha256": "f" * 64})
    with pytest.raises(GalleryError, match="weights_sha256"):
        Gallery.load(tmp_path / "g.npz", embedder=other)
    with pytest.raises(GalleryError, match="aligner_version"):
        Gallery.load(tmp_path / "g.npz", embedder=FakeEmbedder({**FAKE_IDENTITY, "aligner_version": "2"}))


def _rewrite_header(path, **changes):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays["header"]))
    header.update(changes)
    arrays["header"] = np.array(json.dumps(header))
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def test_another_format_version_is_refused(tmp_path, saved):
    _rewrite_header(tmp_path / "g.npz", format_version=99)
    with pytest.raises(GalleryError, match="format_version 99.*reads version 1 or 2"):
        Gallery.load(tmp_path / "g.npz")


@pytest.mark.parametrize("keep", [0, 10, 300, -50])
def test_a_truncated_gallery_is_refused_by_name(tmp_path, people, keep):
    gallery = Gallery(FakeEmbedder())
    gallery.enroll(people)
    path = tmp_path / "g.npz"
    gallery.save(path)
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(GalleryError, match=f"{path.name} is truncated or not a kshot gallery"):
        Gallery.load(path)


def test_other_npz_and_missing_file(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(GalleryError, match="not a kshot gallery"):
        Gallery.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="kshot enroll"):
        Gallery.load(tmp_path / "nothing.npz")


def test_photo_without_face_is_a_skipped_row_and_folder_without_images_an_error(tmp_path, people):
    gallery = Gallery(FakeEmbedder(noise=SHARP))
    gallery.enroll(people)
    rows = gallery.identify([_photo(tmp_path, "wall.jpg", "noface"), _photo(tmp_path, "ada.jpg", "ada")])
    by_name = {Path(r.path).name: r for r in rows}
    assert by_name["wall.jpg"].skipped and "no face" in by_name["wall.jpg"].reason
    assert by_name["ada.jpg"].answer == "ada"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="empty holds no images"):
        gallery.identify([tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="missing.jpg does not exist"):
        gallery.identify([tmp_path / "missing.jpg"])


def test_enrolling_only_faceless_photos_or_a_person_called_unknown_is_refused(tmp_path):
    root = photo_folder(tmp_path / "p", {"ada": 2})
    for photo in (root / "ada").iterdir():
        photo.write_text("noface")
    with pytest.raises(ValueError, match="no usable face"):
        Gallery(FakeEmbedder()).enroll(root)
    with pytest.raises(ValueError, match="cannot be a person's name"):
        Gallery(FakeEmbedder()).enroll(photo_folder(tmp_path / "q", {"unknown": 2}))


def test_one_person_has_no_threshold_until_a_second_is_enrolled(tmp_path):
    gallery = Gallery(FakeEmbedder())
    gallery.enroll(photo_folder(tmp_path / "p", {"ada": 3}))
    assert gallery.threshold is None
    with pytest.raises(GalleryError, match="no calibrated threshold"):
        gallery.identify([_photo(tmp_path, "q.jpg", "ada")])
    assert gallery.identify([_photo(tmp_path, "q.jpg", "ada")], threshold=0.5)[0].answer == "ada"


def _python(script: str, *args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_identify_calls_all_answer_and_leave_the_file_alone(tmp_path, saved, stranger):
    path = saved
    before = path.read_bytes()
    query = _photo(tmp_path, "q.jpg", "cleo")
    script = """
        import sys
        from experiments.gallery.gallery import Gallery
        from support import FakeEmbedder
        rows = Gallery.load(sys.argv[1], embedder=FakeEmbedder()).identify(sys.argv[3:], threshold=float(sys.argv[2]))
        print(",".join(r.answer for r in rows))
    """
    procs = [_python(script, path, NAMING_THRESHOLD, query, stranger) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == ["cleo,unknown"] * 2
    assert path.read_bytes() == before


def test_concurrent_enrolls_are_serialised_and_lose_nobody(tmp_path):
    path = tmp_path / "g.npz"
    script = """
        import sys, time
        from experiments.gallery.gallery import Gallery
        from support import FakeEmbedder, photo_folder
        from pathlib import Path
        root = photo_folder(Path(sys.argv[2]), {sys.argv[3]: 3})
        Path(sys.argv[2] + ".ready").touch()
        with Gallery.edit(sys.argv[1], embedder=FakeEmbedder(), create={}) as gallery:
            gallery.enroll(root)
            time.sleep(0.5)   # hold the lock while the other writer waits for it
    """
    with write_lock(path):   # both writers start while the gallery is locked, so they must contend
        procs = [_python(script, path, tmp_path / f"batch{i}", f"person{i}") for i in range(2)]
        deadline = time.monotonic() + 600
        while not all((tmp_path / f"batch{i}.ready").exists() for i in range(2)):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "writers did not start"
            time.sleep(0.1)
        time.sleep(0.5)
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err for _, err in outputs]
    final = Gallery.load(path, embedder=FakeEmbedder())
    assert sorted(final.names.labels) == ["person0", "person1"]
    assert final.enrolled == {"person0": 3, "person1": 3}


def test_a_writer_that_cannot_get_the_lock_fails_cleanly(tmp_path, saved):
    path = saved
    before = path.read_bytes()
    with write_lock(path):
        with pytest.raises(GalleryBusyError, match="is being written by pid"):
            with Gallery.edit(path, embedder=FakeEmbedder(), timeout=0.2) as other:
                other.enroll(photo_folder(tmp_path / "x", {"eve": 2}))
        assert Gallery.load(path).names.labels == ["ada", "bob", "cleo"]   # readers never wait
    assert path.read_bytes() == before


def test_a_failed_edit_does_not_write(tmp_path, saved):
    path = saved
    before = path.read_bytes()
    with pytest.raises(ValueError, match="no usable face"):
        with Gallery.edit(path, embedder=FakeEmbedder()) as g:
            g.enroll([_photo(tmp_path, "w.jpg", "noface")], names=["dora"])
    assert path.read_bytes() == before


@pytest.mark.parametrize("argv, message", [
    (["identify", "--gallery", "{tmp}/none.npz", "x.jpg"], "none.npz does not exist"),
    (["calibrate", "--gallery", "{tmp}/none.npz"], "none.npz does not exist"),
    (["identify", "--gallery", "{tmp}/none.npz", "x.jpg", "--threshold", "3"], r"in \[-1, 1\], got 3"),
    (["identify", "--gallery", "{tmp}/none.npz", "x.jpg", "--out", "{tmp}/a.txt"], "must name a .csv"),
    (["enroll", "--gallery", "{tmp}/g.npz", "--data", "{tmp}", "--fpir", "0"], r"FPIR .*must be in \(0, 1\)"),
    (["enroll", "--gallery", "{tmp}/g.npz", "--data", "{tmp}", "--far", "0.001"], "--far is retired.*--fpir"),
    (["calibrate", "--gallery", "{tmp}/none.npz", "--far", "0.001"], "--far is retired.*--fpir"),
    (["calibrate", "--gallery", "{tmp}/none.npz", "--fpir", "1"], r"FPIR .*must be in \(0, 1\)"),
    (["enroll", "--gallery", "{tmp}/g.npz", "--data", "{tmp}", "--memory-size", "0"], "must be >= 1"),
])
def test_command_line_refuses_bad_options_before_loading_facenet(tmp_path, capsys, argv, message):
    from experiments.cli import main

    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_memory_too_small_for_everyone_says_who_was_forgotten(tmp_path, people):
    gallery = Gallery(FakeEmbedder(), memory_size=2)
    with pytest.warns(UserWarning) as caught:
        gallery.enroll(people)
    messages = [str(w.message) for w in caught]
    assert any("smaller than the number of classes" in m for m in messages)        # the memory's own warning
    assert any("hold no slot" in m and "(ada)" in m for m in messages)             # the gallery's, by name
    assert gallery.forgotten() == ["ada"]
    assert "WARNING: 1 people hold no slot" in gallery.summary() and "ada" in gallery.summary()


def test_the_threshold_is_set_at_an_fpir_for_the_gallery_size_it_records(tmp_path, people):
    gallery = Gallery(FakeEmbedder(), store_all=True, fpir=0.01)
    gallery.enroll(people)
    c = gallery.calibration
    assert (c.fpir_target, c.people, c.entries) == (0.01, 3, 12)
    assert c.verification["far_target"] == 0.001 and "tar_at_far" in c.verification   # pair numbers ride along
    gallery.save(tmp_path / "g.npz")
    with np.load(tmp_path / "g.npz") as data:
        header = json.loads(str(data["header"]))
    assert header["format_version"] == 2 and header["fpir"] == 0.01 and "far" not in header
    assert header["calibration"]["people"] == 3 and header["calibration"]["entries"] == 12
    loaded = Gallery.load(tmp_path / "g.npz")
    assert loaded.calibration == c and loaded.fpir == 0.01
    assert "at FPIR 0.01 (set for 3 people)" in loaded.summary()


def test_enrolling_more_people_recalibrates_for_the_larger_gallery(tmp_path, people):
    gallery = Gallery(FakeEmbedder(), store_all=True)
    gallery.enroll(people)
    gallery.enroll(photo_folder(tmp_path / "more", {"dora": 3, "emil": 3}))
    assert (gallery.calibration.people, gallery.calibration.entries) == (5, 18)
    assert gallery.calibrated_for_smaller() is None


def test_a_threshold_set_for_a_smaller_gallery_warns(tmp_path, people, stranger):
    import dataclasses

    gallery = Gallery(FakeEmbedder(), store_all=True)
    gallery.enroll(people)
    gallery.calibration = dataclasses.replace(gallery.calibration, people=2, entries=8)
    with pytest.warns(UserWarning, match="set for a gallery of 2 people and 8 entries, but it holds 3 and 12"):
        gallery.identify([stranger])
    gallery.identify([stranger], threshold=0.9)          # an explicit threshold: nothing to warn about
    gallery.recalibrate()
    assert gallery.calibrated_for_smaller() is None


def test_learning_new_entries_recalibrates_for_them(tmp_path, people):
    gallery = Gallery(FakeEmbedder(noise=SHARP), store_all=True)
    gallery.enroll(people)
    gallery.identify([_photo(tmp_path, "q_ada.jpg", "ada")], learn=True)
    assert gallery.calibration.entries == 13 and gallery.calibrated_for_smaller() is None


def test_a_version_1_gallery_loads_recalibrated_with_a_warning(tmp_path, saved):
    from experiments.faces import open_set

    fresh = Gallery.load(saved)
    with np.load(saved) as data:
        embeddings, labels = data["calibration_embeddings"], data["calibration_labels"]
    old = open_set.calibrate(embeddings, labels, far=0.001).to_dict()
    _rewrite_header(saved, format_version=1, far=0.001, calibration=old)
    with np.load(saved) as data:                          # a version-1 header has no fpir
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays["header"]))
    del header["fpir"]
    arrays["header"] = np.array(json.dumps(header))
    with open(saved, "wb") as handle:
        np.savez(handle, **arrays)
    with pytest.warns(UserWarning, match=r"version-1 gallery.*pairs at FAR 0.001.*run `kshot calibrate --gallery"):
        gallery = Gallery.load(saved)
    assert gallery.calibration == fresh.calibration and gallery.threshold != old["threshold"]
    gallery.save(saved)                                   # kshot calibrate stores it: version 2 from then on
    assert json.loads(str(np.load(saved)["header"]))["format_version"] == 2


def test_calibrate_command_reports_fnir_at_fpir_and_the_pair_numbers(tmp_path, saved, capsys):
    from experiments.cli import main

    assert main(["calibrate", "--gallery", str(saved), "--fpir", "0.01", "--figure", str(tmp_path / "roc")]) == 0
    out = capsys.readouterr().out
    assert "FNIR at FPIR 1e-02" in out and "FNIR at FPIR 1e-03" in out
    assert "TAR at FAR 1e-03" in out and "verification (photo against photo" in out
    assert "at FPIR 0.01 for 3 people stored" in out
    assert Gallery.load(saved).fpir == 0.01
    stored = json.loads((tmp_path / "roc.json").read_text())
    assert stored["fpir_target"] == 0.01 and stored["people"] == 3
