"""The domain-shifted celebrity variants: the documented transformation, and the built-in dataset."""

import numpy as np
import pytest

from experiments.faces import shifts as domain_shift


def test_lowres_keeps_only_a_coarse_image():
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, size=(160, 160, 3), dtype=np.uint8)
    out = domain_shift.VARIANTS["lowres"].transform(crop, 0)
    assert out.shape == crop.shape and out.dtype == np.uint8
    # Fine detail is gone: neighbouring pixels differ far less than in the noise it came from.
    assert np.abs(np.diff(out.astype(int), axis=1)).mean() < 0.1 * np.abs(np.diff(crop.astype(int), axis=1)).mean()
    # A flat image stays flat (no shift in brightness).
    flat = np.full((160, 160, 3), 77, np.uint8)
    np.testing.assert_array_equal(domain_shift.VARIANTS["lowres"].transform(flat, 0), flat)


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown celebrity variant 'blurry'; built-in variants: lowres, blur, gray, jpeg, noise, occlusion, cartoon$"):
        domain_shift.ensure_variant("blurry")


@pytest.mark.weights
def test_celebrities_lowres_is_a_builtin_aligned_dataset(celebrities):
    from experiments.faces.datasets import load_image_dataset

    variant = load_image_dataset("celebrities_lowres")
    assert variant.aligned and variant.name == "celebrities_lowres"
    assert set(variant.labels) == set(celebrities.labels)
    assert len(variant) + len([s for s in variant.skipped]) == len(celebrities)
    again = load_image_dataset("celebrities_lowres")   # made once, then reused
    assert again.paths == variant.paths
