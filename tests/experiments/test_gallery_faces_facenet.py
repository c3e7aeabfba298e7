"""Several faces in one photo, with the real MTCNN: the count `kshot identify` reports."""

import pytest
from PIL import Image, ImageOps

import facenet_tf
from experiments.faces.embedder import FaceEmbedder

pytestmark = pytest.mark.weights


def test_two_people_side_by_side_are_counted_as_two_faces(tmp_path, monkeypatch, facenet_pretrained, celebrities):
    monkeypatch.setattr(facenet_tf, "load_pretrained", lambda weights=None: facenet_pretrained)
    monkeypatch.setattr("experiments.faces.embedder.load_pretrained", lambda weights=None: facenet_pretrained)
    embedder = FaceEmbedder(use_cache=False)
    singles = []
    for label in sorted(set(celebrities.labels))[:2]:    # the first photo of each of two people with one face
        for path in [p for p, l in zip(celebrities.paths, celebrities.labels) if l == label][:5]:
            square = ImageOps.fit(Image.open(path).convert("RGB"), (250, 250))
            square.save(tmp_path / f"{label}.png")
            if embedder.count_faces([str(tmp_path / f"{label}.png")]) == [1]:
                singles.append(square)
                break
    assert len(singles) == 2
    pair = Image.new("RGB", (500, 250))
    pair.paste(singles[0], (0, 0))
    pair.paste(singles[1], (250, 0))
    pair.save(tmp_path / "pair.png")
    assert embedder.count_faces([str(tmp_path / "pair.png"), str(tmp_path / "missing.png")]) == [2, None]
