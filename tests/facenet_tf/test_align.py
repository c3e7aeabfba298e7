"""MTCNN alignment: davidsandberg's crop and prewhitening, EXIF orientation, no/several/tiny faces, huge photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support import cosine

from facenet_tf import (
    AlignSettings,
    FaceAligner,
    FaceTooSmallError,
    ImageSkipError,
    NoFaceError,
    crop_with_margin,
    load_rgb,
    prepare_crops,
    prewhiten,
)


def test_prewhiten_standardises_each_image_and_floors_the_std():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(2, 8, 8, 3)).astype(np.float32)
    y = prewhiten(x)
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(1, 2, 3)), 1, atol=1e-4)
    np.testing.assert_allclose(prewhiten(x[1]), y[1], atol=1e-6)
    flat = prewhiten(np.full((8, 8, 3), 7.0))
    assert np.all(np.isfinite(flat)) and np.all(flat == 0)
    # the floor is 1/sqrt(n): a tiny spread is amplified at most by sqrt(n)
    tiny = np.zeros((4, 4, 3), np.float32)
    tiny[0, 0, 0] = 1e-3
    assert np.abs(prewhiten(tiny)).max() <= 1e-3 * np.sqrt(48) + 1e-6


def test_crop_grows_the_box_by_half_the_margin_per_side_clipped_to_the_image():
    image = np.arange(100 * 120 * 3, dtype=np.uint32).reshape(100, 120, 3).astype(np.uint8)
    crop = crop_with_margin(image, (10, 20, 50, 60), margin=32, size=160)
    expected = Image.fromarray(image[4:76, 0:66]).resize((160, 160), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(crop, np.asarray(expected))
    edge = crop_with_margin(image, (100, 70, 120, 100), margin=32, size=40)
    assert edge.shape == (40, 40, 3)


def test_align_settings_key_changes_with_every_setting():
    base = AlignSettings()
    keys = {base.key(), AlignSettings(margin=44).key(), AlignSettings(image_size=182).key(),
            AlignSettings(aligned=True).key(), AlignSettings(aligner_version="0.1.0").key(),
            AlignSettings(min_face_px=40).key(), AlignSettings(max_image_side=1000).key()}
    assert len(keys) == 7
    assert base.resolved().aligner_version   # the installed mtcnn version is part of the key


def test_an_image_without_a_face_is_refused_by_name(tmp_path):
    y, x = np.mgrid[0:240, 0:320]
    scenery = np.stack([x % 256, y % 256, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    path = tmp_path / "landscape.png"
    Image.fromarray(scenery).save(path)
    with pytest.raises(NoFaceError, match="landscape.png.*no face"):
        FaceAligner().align(path)
    prepared = prepare_crops([str(path)], use_cache=False, progress=False)
    assert prepared.kept_paths == [] and prepared.skipped[0][0] == str(path)
    assert prepared.crops.shape == (0, 160, 160, 3)


def test_already_aligned_images_skip_detection(tmp_path):
    path = tmp_path / "crop.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 70, 3), dtype=np.uint8)).save(path)
    prepared = prepare_crops([str(path)], aligned=True, use_cache=False, progress=False)
    assert prepared.kept_paths == [str(path)] and prepared.crops.shape == (1, 160, 160, 3)


def _embed(embedder, paths):
    result = embedder.embed_paths([str(p) for p in paths], use_cache=False)
    assert result.skipped == [], result.skipped
    return result.embeddings


@pytest.mark.weights
def test_an_exif_rotated_photo_embeds_like_the_upright_one(tmp_path, celebrity_photo, facenet_embedder):
    upright = Image.open(celebrity_photo).convert("RGB")
    sideways = upright.rotate(90, expand=True)    # stored on its side, as a phone does
    exif = Image.Exif()
    exif[0x0112] = 6                             # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    sideways.save(path, exif=exif, quality=95)
    assert load_rgb(path).shape[:2] == (upright.height, upright.width)
    reference, rotated = _embed(facenet_embedder, [celebrity_photo, path])
    assert cosine(reference, rotated) > 0.9


@pytest.mark.weights
def test_several_faces_give_the_most_confident_one(tmp_path, celebrities, celebrity_embeddings, facenet_embedder):
    people = {}
    for p, label, split in zip(celebrities.paths, celebrities.labels, celebrities.split):
        if split == "val" and label in ("madonna", "jerry_seinfeld") and label not in people:
            people[label] = Image.open(p).convert("RGB")
    left, right = people["madonna"], people["jerry_seinfeld"]
    height = max(left.height, right.height)
    pair = Image.new("RGB", (left.width + right.width, height), (128, 128, 128))
    pair.paste(left, (0, 0))
    pair.paste(right, (left.width, 0))
    path = tmp_path / "two_people.jpg"
    pair.save(path, quality=95)
    aligner = FaceAligner()
    faces = aligner.detect(load_rgb(path))
    assert len(faces) >= 2
    confidences = [f["confidence"] for f in faces]
    assert confidences == sorted(confidences, reverse=True)
    chosen_label = "madonna" if faces[0]["box"][0] < left.width else "jerry_seinfeld"
    (pair_embedding,) = _embed(facenet_embedder, [path])
    e = celebrity_embeddings
    mean_similarity = {label: float((e.embeddings[e.labels == label] @ pair_embedding).mean())
                       for label in ("madonna", "jerry_seinfeld")}
    assert max(mean_similarity, key=mean_similarity.get) == chosen_label


@pytest.mark.weights
def test_a_tiny_face_is_refused_by_name(tmp_path, celebrity_photo):
    photo = Image.open(celebrity_photo).convert("RGB")
    small = photo.resize((max(1, photo.width // 12), max(1, photo.height // 12)), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (300, 300), (200, 200, 200))
    canvas.paste(small, (140, 140))
    path = tmp_path / "tiny_face.png"
    canvas.save(path)
    with pytest.raises((NoFaceError, FaceTooSmallError), match="tiny_face.png"):
        FaceAligner().align(path)
    # a face that is found but is below the minimum gets its own error
    with pytest.raises(FaceTooSmallError, match=r"px, below the 1000 px minimum"):
        FaceAligner(AlignSettings(min_face_px=1000)).align(celebrity_photo)


@pytest.mark.weights
def test_a_huge_photo_is_downscaled_and_still_embeds_like_the_original(tmp_path, celebrity_photo, facenet_embedder):
    photo = Image.open(celebrity_photo).convert("RGB")
    scale = 4200 / max(photo.size)
    huge = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.BICUBIC)
    path = tmp_path / "huge.jpg"
    huge.save(path, quality=92)
    assert max(load_rgb(path).shape[:2]) <= 2000
    reference, from_huge = _embed(facenet_embedder, [celebrity_photo, path])
    assert cosine(reference, from_huge) > 0.9


@pytest.mark.weights
def test_no_face_photo_in_the_celebrity_set_is_reported(celebrity_embeddings):
    for path, reason in celebrity_embeddings.skipped:
        assert path.endswith(".jpg") and "face" in reason
    assert all(isinstance(r, str) for _, r in celebrity_embeddings.skipped)
    assert issubclass(NoFaceError, ImageSkipError)
