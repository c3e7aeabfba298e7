"""Crop and embedding caches: keyed by content, settings, aligner version and weights; never stale, never trusted when damaged."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import facenet_tf.embedder as embedder_module
from facenet_tf import (
    AlignSettings,
    Embedder,
    FaceAligner,
    LoadReport,
    PretrainedFaceNet,
    prepare_crops,
)
from facenet_tf.caches import CropCache, EmbeddingCache
from kshot_io import sha256_of_file


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class CountingAligner(FaceAligner):
    """A real aligner that counts how often it had to align a file."""

    def __init__(self, settings=None):
        super().__init__(settings)
        self.calls = 0

    def align(self, path):
        self.calls += 1
        return super().align(path)


def _write_crop_image(path, seed):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_a_second_run_reads_crops_from_the_cache(private_cache, tmp_path):
    paths = [_write_crop_image(tmp_path / f"{i}.png", i) for i in range(3)]
    first = CountingAligner(AlignSettings(aligned=True))
    a = prepare_crops(paths, aligned=True, aligner=first, progress=False)
    second = CountingAligner(AlignSettings(aligned=True))
    b = prepare_crops(paths, aligned=True, aligner=second, progress=False)
    assert (first.calls, second.calls) == (3, 0)
    np.testing.assert_array_equal(a.crops, b.crops)


def test_changing_a_setting_or_the_aligner_version_misses_the_cache(private_cache, tmp_path):
    paths = [_write_crop_image(tmp_path / "a.png", 0)]
    prepare_crops(paths, aligned=True, progress=False)
    for settings in (AlignSettings(aligned=True, image_size=96), AlignSettings(aligned=True, margin=10),
                     AlignSettings(aligned=True, aligner_version="9.9.9")):
        counting = CountingAligner(settings)
        out = prepare_crops(paths, aligned=True, settings=settings, aligner=counting, progress=False)
        assert counting.calls == 1
        assert out.crops.shape[1] == settings.image_size


def test_editing_a_file_in_place_never_serves_its_old_crop(private_cache, tmp_path):
    path = _write_crop_image(tmp_path / "same_name.png", 0)
    old = prepare_crops([path], aligned=True, progress=False).crops[0]
    _write_crop_image(tmp_path / "same_name.png", 1)
    new = prepare_crops([path], aligned=True, progress=False).crops[0]
    expected = prepare_crops([path], aligned=True, use_cache=False, progress=False).crops[0]
    assert not np.allclose(old, new)
    np.testing.assert_array_equal(new, expected)


def test_a_damaged_cache_entry_is_recomputed(private_cache, tmp_path):
    path = _write_crop_image(tmp_path / "a.png", 0)
    good = prepare_crops([path], aligned=True, progress=False).crops
    cache = CropCache(AlignSettings(aligned=True))
    entry = cache._entry(sha256_of_file(path))
    entry.write_bytes(entry.read_bytes()[:50])          # a half-written file from a crash
    assert cache.get(sha256_of_file(path)) is None
    again = prepare_crops([path], aligned=True, progress=False).crops
    np.testing.assert_array_equal(good, again)
    assert cache.get(sha256_of_file(path))[0] == "crop"


def test_a_no_face_outcome_is_cached_with_its_reason(private_cache, tmp_path):
    path = tmp_path / "wall.png"
    Image.new("RGB", (200, 200), (120, 110, 100)).save(path)
    first = CountingAligner()
    a = prepare_crops([str(path)], aligner=first, progress=False)
    second = CountingAligner()
    b = prepare_crops([str(path)], aligner=second, progress=False)
    assert (first.calls, second.calls) == (1, 0)
    assert a.skipped == b.skipped and "no face" in b.skipped[0][1]


def test_an_unwritable_cache_is_named(tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    monkeypatch.setenv("KSHOT_CACHE", str(blocker))
    path = _write_crop_image(tmp_path / "a.png", 0)
    with pytest.raises(OSError, match=r"not_a_folder.*KSHOT_CACHE"):
        prepare_crops([path], aligned=True, progress=False)


def _tiny_facenet(seed: int, weights_sha: str, input_size: int = 160, prewhiten: bool = True):
    """A small stand-in for FaceNet with the same input and output contract, and its identity."""
    import keras
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((input_size, input_size, 3))
    x = keras.layers.Conv2D(4, 8, strides=8)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(128)(x)
    outputs = keras.layers.UnitNormalization()(x)
    model = keras.Model(inputs, outputs)
    return PretrainedFaceNet(model, weights_sha, prewhiten=prewhiten, load_report=LoadReport((), 0))


def test_embeddings_are_cached_per_weights_and_follow_the_dataset(private_cache, tmp_path, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = [_write_crop_image(folder / f"{i}.png", i) for i in range(3)]
    model_a = _tiny_facenet(0, "a" * 64)
    first = Embedder.from_pretrained(model_a, batch_size=2, progress=False).embed_paths(paths, aligned=True)
    # a second run is served from the cache: the network is not called
    embedder = Embedder.from_pretrained(model_a, batch_size=2, progress=False)
    monkeypatch.setattr(embedder, "embed_crops", lambda crops: pytest.fail("cache was not used"))
    np.testing.assert_array_equal(embedder.embed_paths(paths, aligned=True).embeddings, first.embeddings)
    monkeypatch.undo()
    monkeypatch.setenv("KSHOT_CACHE", str(private_cache))
    # other weights: a different key, fresh embeddings
    model_b = _tiny_facenet(1, "b" * 64)
    other = Embedder.from_pretrained(model_b, batch_size=2, progress=False).embed_paths(paths, aligned=True)
    assert not np.allclose(other.embeddings, first.embeddings)
    np.testing.assert_allclose(other.embeddings,
                               Embedder.from_pretrained(model_b, batch_size=2, progress=False).embed_crops(
                                   prepare_crops(paths, aligned=True, progress=False).crops), atol=1e-6)
    # adding and removing files: exactly the current files are embedded
    added = _write_crop_image(folder / "3.png", 3)
    now = Embedder.from_pretrained(model_a, batch_size=2, progress=False).embed_paths([paths[0], paths[2], added], aligned=True)
    assert now.kept_paths == [paths[0], paths[2], added]
    np.testing.assert_array_equal(now.embeddings[:2], first.embeddings[[0, 2]])
    # settings are part of the embedding key too
    assert EmbeddingCache("a" * 64, AlignSettings(aligned=True), 32).folder != \
        EmbeddingCache("a" * 64, AlignSettings(aligned=True, margin=0), 32).folder
    # and so is the batch size, which changes an embedding's last bits
    assert EmbeddingCache("a" * 64, AlignSettings(aligned=True), 32).folder != \
        EmbeddingCache("a" * 64, AlignSettings(aligned=True), 16).folder


def test_a_model_without_a_weights_hash_is_never_cached(private_cache, tmp_path):
    paths = [_write_crop_image(tmp_path / "a.png", 0)]
    model = _tiny_facenet(0, "")
    Embedder.from_pretrained(model, progress=False).embed_paths(paths, aligned=True)
    assert not (private_cache / "embeddings").exists()


def test_embed_crops_in_chunks_matches_one_call(private_cache):
    model = _tiny_facenet(0, "c" * 64)
    crops = np.random.default_rng(0).normal(size=(5, 160, 160, 3)).astype(np.float32)
    in_batches_of_2 = Embedder.from_pretrained(model, batch_size=2, progress=False).embed_crops(crops)
    in_one_batch = model.model.predict(crops, verbose=0)
    np.testing.assert_allclose(in_batches_of_2, in_one_batch, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[n, 160, 160, 3\]"):
        Embedder.from_pretrained(model, progress=False).embed_crops(crops[:, :100])
    assert embedder_module.DEFAULT_JIT_COMPILE in (True, False)


def test_the_aligned_flag_overrides_settings_for_both_cache_keys():
    from facenet_tf.embedder import effective_settings
    resolved = effective_settings(AlignSettings(aligned=False, margin=10), aligned=True)
    assert resolved.aligned and resolved.margin == 10
    assert resolved.key() == AlignSettings(aligned=True, margin=10).key()
    assert resolved.key() != effective_settings(AlignSettings(margin=10), aligned=False).key()


def test_long_path_lists_are_embedded_in_chunks_with_the_same_result(private_cache, tmp_path, monkeypatch):
    paths = [_write_crop_image(tmp_path / f"{i}.png", i) for i in range(5)]
    (tmp_path / "bad.png").write_bytes(b"")
    paths.insert(2, str(tmp_path / "bad.png"))
    model = _tiny_facenet(0, "")
    whole = Embedder.from_pretrained(model, batch_size=4, progress=False).embed_paths(paths, aligned=True)
    monkeypatch.setattr(embedder_module, "PATHS_PER_CHUNK", 2)
    chunked = Embedder.from_pretrained(model, batch_size=4, progress=False).embed_paths(paths, aligned=True)
    assert chunked.kept_paths == whole.kept_paths and chunked.skipped == whole.skipped
    np.testing.assert_allclose(chunked.embeddings, whole.embeddings, atol=1e-6)


def test_one_pass_returns_the_crops_its_embeddings_came_from(private_cache, tmp_path, monkeypatch):
    paths = [_write_crop_image(tmp_path / f"{i}.png", i) for i in range(5)]
    (tmp_path / "bad.png").write_bytes(b"")
    paths.insert(1, str(tmp_path / "bad.png"))
    embedder = Embedder.from_pretrained(_tiny_facenet(0, "d" * 64), batch_size=2, progress=False)
    result = embedder.embed_paths(paths, aligned=True, keep_crops=True)
    np.testing.assert_array_equal(result.crops, prepare_crops(paths, aligned=True, progress=False).crops)
    np.testing.assert_allclose(embedder.embed_crops(result.crops), result.embeddings, atol=1e-6)
    assert embedder.embed_paths(paths, aligned=True).crops is None
    monkeypatch.setattr(embedder_module, "PATHS_PER_CHUNK", 2)
    chunked = embedder.embed_paths(paths, aligned=True, keep_crops=True)
    np.testing.assert_array_equal(chunked.crops, result.crops)
    assert chunked.kept_paths == result.kept_paths and chunked.skipped == result.skipped


def test_the_weights_preprocessing_decides_crop_size_prewhitening_and_cache_key(private_cache, tmp_path):
    paths = [_write_crop_image(tmp_path / f"{i}.png", i) for i in range(2)]
    small = Embedder.from_pretrained(_tiny_facenet(0, "e" * 64, input_size=96), progress=False)
    assert small.embed_paths(paths, aligned=True, keep_crops=True).crops.shape == (2, 96, 96, 3)
    with pytest.raises(ValueError, match=r"image_size is 160 .* 96 px"):
        small.embed_paths(paths, aligned=True, settings=AlignSettings(aligned=True))
    raw = Embedder.from_pretrained(_tiny_facenet(0, "e" * 64, prewhiten=False), progress=False)
    crops = raw.embed_paths(paths, aligned=True, keep_crops=True).crops
    np.testing.assert_array_equal(crops, prepare_crops(paths, aligned=True, progress=False,
                                                       prewhitened=False).crops)
    assert crops.max() > 1.0    # pixel values, not standardised
    settings = AlignSettings(aligned=True)
    assert EmbeddingCache("e" * 64, settings, 32, prewhitened=False).folder != \
        EmbeddingCache("e" * 64, settings, 32).folder


@pytest.mark.weights
def test_an_image_embeds_to_the_same_bits_whatever_it_is_cached_with(facenet_pretrained, celebrity_photo, tmp_path, monkeypatch):
    """Cached embeddings must not depend on which other images were missing from the cache.

    oneDNN rounds differently for different batch sizes, so the Embedder pads every chunk
    it caches to exactly batch_size; one photo embedded alone and the same photo embedded
    among 33 others (a full batch and a short one) must give identical bits.
    """
    import shutil
    from pathlib import Path

    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "alone"))
    alone = Embedder.from_pretrained(facenet_pretrained, progress=False).embed_paths([celebrity_photo], aligned=True).embeddings[0]
    crowd_dir = tmp_path / "crowd"
    crowd_dir.mkdir()
    others = sorted(Path(celebrity_photo).parent.parent.glob("*/*.jpg"))[:33]
    paths = [str(shutil.copy(p, crowd_dir / f"{i:02d}_{Path(p).name}")) for i, p in enumerate(others)]
    paths.insert(32, str(celebrity_photo))  # first in the short second chunk
    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "crowd_cache"))
    crowd = Embedder.from_pretrained(facenet_pretrained, progress=False).embed_paths(paths, aligned=True)
    np.testing.assert_array_equal(crowd.embeddings[crowd.kept_paths.index(str(celebrity_photo))], alone)
