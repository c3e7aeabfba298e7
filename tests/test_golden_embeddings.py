"""Golden embeddings: five celebrity photos must embed as recorded, so drift in TF, Keras, mtcnn or our code fails CI.

Tolerance: cosine >= 0.999 per photo and 5e-3 per component, loose enough for
CPU-to-CPU float differences (oneDNN, AVX widths), tight enough to catch a changed
crop, preprocessing or layer. Regenerate only on purpose: tests/golden/make_golden.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.weights

GOLDEN = Path(__file__).parent / "golden" / "celebrity_golden.npz"
MIN_COSINE = 0.999
MAX_COMPONENT_GAP = 5e-3


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as data:
        return list(data["files"]), data["embeddings"], list(data["versions"])


def test_golden_photos_still_embed_as_recorded(golden, celebrities, facenet_embedder):
    import sys
    sys.path.insert(0, str(GOLDEN.parent))
    from make_golden import compute

    files, expected, versions = golden
    names, embeddings = compute(celebrities, facenet_embedder)
    assert names == files
    cosines = np.sum(embeddings * expected, axis=1)
    gap = np.abs(embeddings - expected).max()
    message = f"cosines {np.round(cosines, 5)}, max gap {gap:.2e}; golden recorded with {versions}"
    assert cosines.min() >= MIN_COSINE, message
    assert gap <= MAX_COMPONENT_GAP, message


def test_golden_distance_matrix_separates_the_five_people(golden):
    _, expected, _ = golden
    similarity = expected @ expected.T
    np.testing.assert_allclose(np.diag(similarity), 1.0, atol=1e-5)
    off_diagonal = similarity[~np.eye(5, dtype=bool)]
    assert off_diagonal.max() < 0.5
