"""`kshot enroll / identify / calibrate` with the real FaceNet and MTCNN, on a few celebrity photos."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import facenet_tf
from experiments.cli import main
from experiments.gallery.gallery import UNKNOWN, Gallery

pytestmark = pytest.mark.weights

# Folder names with a space and non-Latin letters, as users name people.
ENROLLED = {"ben_afflek": "Ben Affleck", "jerry_seinfeld": "Джерри Сайнфелд"}


@pytest.fixture
def shared_facenet(monkeypatch, facenet_pretrained):
    """Every command gets the session's FaceNet instead of loading the weights again (15 s each)."""
    monkeypatch.setattr(facenet_tf, "load_pretrained", lambda weights=None: facenet_pretrained)


def _photos(celebrities, split, label, count):
    return [p for p, s, l in zip(celebrities.paths, celebrities.split, celebrities.labels)
            if s == split and l == label][:count]


@pytest.fixture
def enroll_folder(tmp_path, celebrities):
    root = tmp_path / "enroll"
    for label, name in ENROLLED.items():
        (root / name).mkdir(parents=True)
        # Five photos each: with three, a 2-person gallery's threshold at FPIR 0.001 rests on six
        # searches and sits above some of Ben's own photos (docs/GALLERY.md, "Too few searches").
        for path in _photos(celebrities, "train", label, 5):
            shutil.copy(path, root / name / path.name)
    Image.new("RGB", (200, 200), (90, 90, 90)).save(root / "Ben Affleck" / "blank_wall.png")
    return root


@pytest.fixture
def queries(tmp_path, celebrities):
    root = tmp_path / "queries"
    root.mkdir()
    chosen = {"ben": _photos(celebrities, "val", "ben_afflek", 1)[0],
              "jerry": _photos(celebrities, "val", "jerry_seinfeld", 1)[0],
              "madonna": _photos(celebrities, "val", "madonna", 1)[0]}
    for key, path in chosen.items():
        shutil.copy(path, root / f"{key}{path.suffix}")
    Image.new("RGB", (200, 200), (90, 90, 90)).save(root / "wall.png")
    return root


def test_enroll_identify_calibrate_from_the_command_line(tmp_path, shared_facenet, enroll_folder, queries, capsys):
    gallery_path = tmp_path / "team.npz"
    assert main(["enroll", "--data", str(enroll_folder), "--gallery", str(gallery_path)]) == 0
    err = capsys.readouterr().err
    assert "blank_wall.png" in err and "no face" in err

    # Two people cannot show FPIR 0.001 (the gallery's own threshold is 1 and names no one:
    # docs/GALLERY.md, "Too few searches"), so the flow runs at the photo-pair threshold at FAR 0.001.
    calibration = Gallery.load(gallery_path).calibration
    assert calibration.threshold == 1.0
    pair_threshold = str(calibration.verification["threshold_at_far"]["0.001"])
    out_csv = tmp_path / "answers.csv"
    before_identify = gallery_path.read_bytes()
    assert main(["identify", "--gallery", str(gallery_path), str(queries), "--out", str(out_csv),
                 "--threshold", pair_threshold]) == 0
    table = pd.read_csv(out_csv, encoding="utf-8", keep_default_na=False).set_index("path")
    answer = {p.split("/")[-1].split(".")[0]: a for p, a in table["answer"].items()}
    assert answer == {"ben": "Ben Affleck", "jerry": "Джерри Сайнфелд", "madonna": UNKNOWN, "wall": ""}
    assert "no face" in table.loc[str(queries / "wall.png"), "skipped_reason"]
    assert "Джерри Сайнфелд" in capsys.readouterr().out
    assert gallery_path.read_bytes() == before_identify   # identify without --learn never writes

    clock = int(Gallery.load(gallery_path).memory.clock)
    assert main(["identify", "--gallery", str(gallery_path), str(queries), "--learn", "--threshold", pair_threshold]) == 0
    assert int(Gallery.load(gallery_path).memory.clock) == clock + 2   # the two named photos, not the stranger
    capsys.readouterr()

    assert main(["calibrate", "--gallery", str(gallery_path), "--fpir", "0.01"]) == 0
    report = capsys.readouterr().out
    assert "TAR at FAR 1e-02" in report and "EER" in report and "FNIR at FPIR 1e-02" in report
    assert (tmp_path / "team_roc.png").is_file()
    saved = json.loads((tmp_path / "team_roc.json").read_text())
    assert Gallery.load(gallery_path).threshold == pytest.approx(saved["threshold"])
    pairs = saved["verification"]
    assert pairs["genuine_pairs"] == 2 * 10 and pairs["impostor_pairs"] == 5 * 5


def test_enrolling_again_adds_a_person_and_refuses_another_embedder(tmp_path, shared_facenet, enroll_folder,
                                                                    celebrities, capsys):
    gallery_path = tmp_path / "team.npz"
    assert main(["enroll", "--data", str(enroll_folder), "--gallery", str(gallery_path), "--store-all"]) == 0
    more = tmp_path / "more" / "Madonna"
    more.mkdir(parents=True)
    for path in _photos(celebrities, "train", "madonna", 2):
        shutil.copy(path, more / path.name)
    assert main(["enroll", "--data", str(more.parent), "--gallery", str(gallery_path)]) == 0
    gallery = Gallery.load(gallery_path)
    assert gallery.names.labels == ["Ben Affleck", "Джерри Сайнфелд", "Madonna"]
    assert gallery.memory.slots_in_use() == 5 + 5 + 2

    assert main(["enroll", "--data", str(more.parent), "--gallery", str(gallery_path), "--memory-size", "8"]) == 2
    assert "only apply to a new gallery" in capsys.readouterr().err

    # The same gallery, claimed to come from other weights: enrolling is refused, the file untouched.
    with np.load(gallery_path) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays["header"]))
    header["identity"]["weights_sha256"] = "f" * 64
    arrays["header"] = np.array(json.dumps(header))
    with open(gallery_path, "wb") as handle:
        np.savez(handle, **arrays)
    before = gallery_path.read_bytes()
    assert main(["enroll", "--data", str(more.parent), "--gallery", str(gallery_path)]) == 2
    assert "weights_sha256" in capsys.readouterr().err
    assert gallery_path.read_bytes() == before


def test_folder_without_images_is_a_clear_error(tmp_path, shared_facenet, enroll_folder, capsys):
    gallery_path = tmp_path / "team.npz"
    assert main(["enroll", "--data", str(enroll_folder), "--gallery", str(gallery_path)]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no photos here")
    assert main(["identify", "--gallery", str(gallery_path), str(empty)]) == 2
    assert "holds no images" in capsys.readouterr().err
    assert main(["enroll", "--data", str(empty), "--gallery", str(gallery_path)]) == 2
    assert "empty holds no images" in capsys.readouterr().err   # names the folder (datasets.load_folder)
