"""Reading photos: every mode becomes RGB uint8, every bad file is refused by name (issues 7 and 8)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from support import cosine

from facenet_tf import ImageSkipError, UnreadableImageError, load_rgb, prepare_crops


def _gradient(h=60, w=80) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 3 % 256, y * 4 % 256, (x + y) % 256], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("mode, fmt", [
    ("L", "PNG"), ("1", "PNG"), ("LA", "PNG"), ("RGBA", "PNG"), ("P", "PNG"), ("RGB", "PNG"),
    ("L", "JPEG"), ("CMYK", "JPEG"), ("RGB", "JPEG"), ("CMYK", "TIFF"), ("RGB", "BMP"), ("P", "GIF"),
])
def test_every_mode_becomes_rgb_uint8(tmp_path, mode, fmt):
    path = tmp_path / f"img.{fmt.lower()}"
    Image.fromarray(_gradient()).convert(mode).save(path, fmt)
    pixels = load_rgb(path)
    assert pixels.shape == (60, 80, 3) and pixels.dtype == np.uint8


def test_sixteen_bit_grayscale_png_is_scaled_to_eight_bits(tmp_path):
    values = np.array([[0, 257 * 128, 65535]], dtype=np.uint16).repeat(4, axis=0)
    path = tmp_path / "depth16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    pixels = load_rgb(path)
    np.testing.assert_array_equal(pixels[0, :, 0], [0, 128, 255])
    assert (pixels[..., 0] == pixels[..., 2]).all()


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2, :, :3] = 10
    rgba[:2, :, 3] = 255        # top half opaque dark, bottom half fully transparent
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    pixels = load_rgb(path)
    assert (pixels[:2] == 10).all() and (pixels[2:] == 255).all()


def test_a_palette_image_with_transparency_is_composited(tmp_path):
    img = Image.fromarray(_gradient()).convert("P")
    path = tmp_path / "pal.png"
    img.save(path, transparency=0)
    assert load_rgb(path).shape == (60, 80, 3)


@pytest.fixture
def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_gradient(200, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("case", ["zero_byte", "truncated", "corrupt", "text_named_jpg", "missing"])
def test_bad_files_are_refused_naming_the_file(tmp_path, jpeg_bytes, case):
    path = tmp_path / f"{case}.jpg"
    content = {
        "zero_byte": b"",
        "truncated": jpeg_bytes[: len(jpeg_bytes) // 2],
        "corrupt": jpeg_bytes[:20] + bytes(range(256)) * 4,
        "text_named_jpg": b"name,label\nalice,1\n",
    }
    if case != "missing":
        path.write_bytes(content[case])
    with pytest.raises(UnreadableImageError) as info:
        load_rgb(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ImageSkipError) and isinstance(info.value, ValueError)
    assert info.value.path == str(path)


def test_a_very_large_image_is_downscaled_before_detection(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("RGB", (5000, 3000), (90, 120, 150)).save(path)
    pixels = load_rgb(path)
    assert pixels.shape == (1200, 2000, 3)


def test_a_decompression_bomb_is_refused_by_name(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (400, 400)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(UnreadableImageError, match="bomb.png.*too large"):
        load_rgb(path)


@pytest.mark.weights
def test_real_photo_embeds_alike_in_every_format(tmp_path, celebrity_photo, facenet_embedder):
    """Grayscale, RGBA, palette, CMYK, 16-bit, LA, PNG and JPEG copies of one photo all work and agree."""
    original = Image.open(celebrity_photo).convert("RGB")
    variants = {
        "png.png": original,
        "jpeg.jpg": original,
        "gray.png": original.convert("L"),
        "la.png": original.convert("LA"),
        "rgba.png": original.convert("RGBA"),
        "palette.png": original.convert("P"),
        "cmyk.jpg": original.convert("CMYK"),
        "depth16.png": Image.fromarray((np.asarray(original.convert("L"), np.uint16) * 257)),
    }
    paths = []
    for name, img in variants.items():
        paths.append(tmp_path / name)
        img.save(paths[-1])
    result = facenet_embedder.embed_paths([str(celebrity_photo), *map(str, paths)], use_cache=False)
    assert result.skipped == []
    reference = result.embeddings[0]
    for name, emb in zip(variants, result.embeddings[1:]):
        floor = 0.8 if name in ("gray.png", "la.png", "depth16.png", "palette.png") else 0.9
        assert cosine(reference, emb) > floor, name


@pytest.mark.weights
def test_prepare_crops_records_bad_files_as_skips_and_keeps_going(tmp_path, celebrity_photo, jpeg_bytes):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(celebrity_photo.read_bytes()[:3000])
    prepared = prepare_crops([str(empty), str(celebrity_photo), str(truncated)], progress=False)
    assert prepared.kept_paths == [str(celebrity_photo)]
    assert [p for p, _ in prepared.skipped] == [str(empty), str(truncated)]
    assert "0 bytes" in prepared.skipped[0][1] and "truncated" in prepared.skipped[1][1]
