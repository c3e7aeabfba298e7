"""The celebrity shifts beyond `lowres`: each transformation does what its docstring says, always the same way.

Fast: synthetic crops and a fake aligner, no FaceNet and no celebrity photos.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.faces import shift_filters, shifts

SIZE = 160


def face_like_crop(seed: int = 0, size: int = SIZE) -> np.ndarray:
    """Smooth shading plus texture plus a few hard-edged blobs: something for every filter to change."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    shading = 60 + 120 * np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / 0.08)
    crop = shading[:, :, None] * np.array([1.0, 0.8, 0.7]) + rng.normal(0, 12, size=(size, size, 3))
    for cy, cx in ((0.38, 0.32), (0.38, 0.68), (0.72, 0.5)):   # eyes and mouth
        crop[(np.abs(y - cy) < 0.04) & (np.abs(x - cx) < 0.1)] = (30, 20, 20)
    return np.clip(crop, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [SIZE, 96])
@pytest.mark.parametrize("name", list(shifts.VARIANTS))
def test_every_variant_is_deterministic_keeps_shape_and_dtype_and_changes_the_crop(name, size):
    crop = face_like_crop(size=size)
    kept = crop.copy()
    transform = shifts.VARIANTS[name].transform
    out = transform(crop, 7)
    assert out.shape == crop.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(transform(crop, 7), out)
    np.testing.assert_array_equal(crop, kept)   # the input is not written to
    assert np.abs(out.astype(int) - crop.astype(int)).mean() > 2


@pytest.mark.parametrize("name", list(shifts.VARIANTS))
def test_every_transformation_says_in_one_docstring_line_what_it_stands_for(name):
    doc = shifts.VARIANTS[name].transform.__doc__
    assert doc and len(doc.strip().splitlines()) == 1
    assert f"- `{name}`:" in shifts.__doc__


def test_only_noise_depends_on_the_seed():
    crop = face_like_crop()
    for name, variant in shifts.VARIANTS.items():
        same = np.array_equal(variant.transform(crop, 1), variant.transform(crop, 2))
        assert same == (name != "noise"), name


def test_blur_spreads_a_point_with_the_stated_standard_deviation():
    point = np.zeros((SIZE, SIZE, 3), np.uint8)
    point[80, 80] = 255
    spread = shift_filters.blur(point, 0)[:, :, 0].astype(float)
    offsets = np.arange(SIZE) - 80
    column_profile = spread.sum(axis=0) / spread.sum()
    sigma = np.sqrt((column_profile * offsets ** 2).sum())
    assert abs(sigma - shift_filters.BLUR_SIGMA_PX) < 0.5
    flat = np.full((SIZE, SIZE, 3), 90, np.uint8)
    np.testing.assert_array_equal(shift_filters.blur(flat, 0), flat)


def test_gray_has_equal_channels_holding_the_luma():
    crop = face_like_crop()
    out = shift_filters.gray(crop, 0).astype(int)
    assert (out[:, :, 0] == out[:, :, 1]).all() and (out[:, :, 1] == out[:, :, 2]).all()
    luma = crop.astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(out[:, :, 0] - luma).max() <= 1


def test_jpeg_is_a_decoded_quality_10_jpeg_with_8_pixel_blocks():
    crop = face_like_crop()
    out = shift_filters.jpeg(crop, 0)
    assert not np.array_equal(out, crop)
    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, format="JPEG", quality=10)
    np.testing.assert_array_equal(out, np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")))
    # Blocking: steps across the 8-pixel block borders are larger than steps inside the blocks.
    steps = np.abs(np.diff(out.astype(int), axis=1)).mean(axis=(0, 2))
    borders = np.arange(7, SIZE - 1, 8)
    assert steps[borders].mean() > 1.5 * np.delete(steps, borders).mean()


def test_noise_has_the_stated_spread_and_is_clipped_not_wrapped():
    mid = np.full((SIZE, SIZE, 3), 128, np.uint8)
    added = shift_filters.noise(mid, 3).astype(float) - 128
    assert abs(added.mean()) < 0.5 and abs(added.std() - shift_filters.NOISE_SIGMA) < 0.5
    black = shift_filters.noise(np.zeros((SIZE, SIZE, 3), np.uint8), 3)
    assert black.max() < 6 * shift_filters.NOISE_SIGMA   # a wrapped -1 would be 255
    assert (black == 0).mean() > 0.45                    # about half the draws are negative
    assert not np.array_equal(shift_filters.noise(mid, 3), shift_filters.noise(mid, 4))


@pytest.mark.parametrize("size", [SIZE, 96])
def test_occlusion_fills_the_documented_rows_and_nothing_else(size):
    crop = face_like_crop(size=size)
    out = shift_filters.occlusion(crop, 0)
    rows = shift_filters.occlusion_rows(size)
    if size == SIZE:
        assert (rows.start, rows.stop) == (88, 160)
    assert (out[rows] == np.array(shift_filters.OCCLUSION_RGB, np.uint8)).all()
    np.testing.assert_array_equal(out[:rows.start], crop[:rows.start])


def test_cartoon_has_few_flat_colours_and_dark_outlines_at_steps_only():
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    disc = np.where(((x - 80) ** 2 + (y - 80) ** 2 < 40 ** 2)[:, :, None], 200, 60).astype(np.uint8).repeat(3, axis=2)
    textured = face_like_crop()
    for crop in (disc, textured):
        out = shift_filters.cartoon(crop, 0)
        assert len(np.unique(out.reshape(-1, 3), axis=0)) <= shift_filters.CARTOON_COLORS + 1   # + the black lines
    out = shift_filters.cartoon(disc, 0)
    black = (out == 0).all(axis=2)
    radius = np.hypot(x - 80, y - 80)
    directions = np.degrees(np.arctan2(y - 80, x - 80))[black]
    assert len(np.unique(np.floor(directions / 5) % 72)) == 72   # a closed outline round the disc: in every 5 degrees
    assert not black[np.abs(radius - 40) > 3].any()        # and nowhere else, not even a frame
    flat = np.full((SIZE, SIZE, 3), 120, np.uint8)
    assert not (shift_filters.cartoon(flat, 0) == 0).all(axis=2).any()


def test_photo_seeds_are_stable_and_differ_by_photo_and_variant():
    seed = shifts.photo_seed("noise", "train/madonna/a.jpg")
    assert seed == shifts.photo_seed("noise", "train/madonna/a.jpg")
    assert seed != shifts.photo_seed("noise", "train/madonna/b.jpg")
    assert seed != shifts.photo_seed("blur", "train/madonna/a.jpg")
    assert 0 <= seed < 2 ** 64


def test_unknown_variants_are_refused_in_one_line_listing_the_known_ones():
    from experiments.faces.datasets import load_image_dataset   # datasets imports shifts: keep the unit tests above light

    known = ", ".join(shifts.VARIANTS)
    assert known == "lowres, blur, gray, jpeg, noise, occlusion, cartoon"
    with pytest.raises(ValueError, match=f"unknown celebrity variant 'sepia'; built-in variants: {known}$"):
        shifts.ensure_variant("sepia")
    with pytest.raises(FileNotFoundError) as refused:
        load_image_dataset("celebrities_sepia")
    message = str(refused.value)
    assert "\n" not in message and "celebrities_sepia" in message
    assert all(f"celebrities_{name}" in message for name in shifts.VARIANTS)


def test_every_variant_is_a_builtin_dataset_and_listed_in_the_data_guide():
    from experiments.faces.datasets import BUILTIN_DATASETS   # datasets imports shifts: keep the unit tests above light

    guide = (Path(__file__).resolve().parents[2] / "data" / "README.md").read_text(encoding="utf-8")
    for name in shifts.VARIANTS:
        assert f"celebrities_{name}" in BUILTIN_DATASETS
        assert f"  - `{name}`:" in guide


class FakeCropCache:
    """Every photo's 'aligned crop' is the same flat grey square, except `noface.jpg`, which has no face."""

    def __init__(self, settings):
        pass

    def aligned(self, aligner, path, sha):
        if Path(path).name == "noface.jpg":
            return None, "no face found"
        return np.full((SIZE, SIZE, 3), 128, np.uint8), ""


@pytest.fixture
def fake_celebrities(tmp_path, monkeypatch):
    source = tmp_path / "celebrities"
    for relative in ("train/ann/a.jpg", "train/ann/b.jpg", "train/ann/noface.jpg", "val/bob/c.jpg"):
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_bytes(relative.encode())
    (source / "MANIFEST.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(shifts, "ensure_celebrities", lambda: source)
    monkeypatch.setattr(shifts, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(shifts, "CropCache", FakeCropCache)
    monkeypatch.setattr(shifts, "FaceAligner", lambda settings: None)
    monkeypatch.setattr(shifts, "AlignSettings", lambda: type("Settings", (), {"resolved": lambda self: self})())
    return source


def test_a_variant_is_built_with_each_photos_own_seed_and_rebuilt_to_the_same_pixels(fake_celebrities, tmp_path):
    root, skipped = shifts.ensure_variant("noise", progress=False)
    assert root == tmp_path / "cache" / "datasets" / "celebrities_noise" / "v1"
    assert skipped == [(str(fake_celebrities / "train/ann/noface.jpg"), "no face found")]
    pngs = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    assert pngs == ["train/ann/a.png", "train/ann/b.png", "val/bob/c.png"]
    pixels = {name: np.asarray(Image.open(root / name)) for name in pngs}
    # Same input crop, different photos: different noise, each from its own path's seed.
    assert not np.array_equal(pixels["train/ann/a.png"], pixels["train/ann/b.png"])
    expected = noise_of_flat_grey("train/ann/a.jpg")
    np.testing.assert_array_equal(pixels["train/ann/a.png"], expected)
    assert json.loads((root / "MANIFEST.json").read_text(encoding="utf-8"))["variant"] == "noise"
    # Made again from scratch, the folder holds the same pixels.
    (root / "MANIFEST.json").unlink()
    shifts.ensure_variant("noise", progress=False)
    for name, before in pixels.items():
        np.testing.assert_array_equal(np.asarray(Image.open(root / name)), before)


def noise_of_flat_grey(relative: str) -> np.ndarray:
    return shift_filters.noise(np.full((SIZE, SIZE, 3), 128, np.uint8), shifts.photo_seed("noise", relative))


def test_kshot_embed_reads_a_shifted_set_as_face_crops_without_a_second_detection(tmp_path, monkeypatch):
    import facenet_tf
    from experiments.cli import main, run
    from experiments.faces.datasets import ImageDataset

    photos = (tmp_path / "a.png", tmp_path / "b.png")
    shifted = ImageDataset("celebrities_noise", tmp_path, photos, ("ann", "bob"), ("train", "val"), aligned=True)
    asked = {}

    class FakeEmbedder:
        @classmethod
        def from_pretrained(cls, pretrained, batch_size, progress):
            return cls()

        def embed_paths(self, paths, aligned, use_cache):
            asked["aligned"] = aligned
            return facenet_tf.EmbeddedPaths(np.eye(2, 128, dtype=np.float32), list(paths), [])

    monkeypatch.setattr(run, "load_image_dataset", lambda name, skip_bad: shifted)
    monkeypatch.setattr(facenet_tf, "load_pretrained", lambda weights=None: None)
    monkeypatch.setattr(facenet_tf, "Embedder", FakeEmbedder)
    assert main(["embed", "--data", "celebrities_noise", "--out", str(tmp_path / "shifted.npz"), "--quiet"]) == 0
    assert asked["aligned"] is True   # MTCNN on the shifted crops re-cropped them and dropped faces it missed
