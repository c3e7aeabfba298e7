"""Golden embeddings: five celebrity photos must still align and embed as recorded.

A dependency upgrade or a code change that moves the output fails CI instead of
drifting silently. Two checks, so a failure says where the drift is:
- the model: crops cut with the *recorded* boxes must embed within cosine 0.9999
  and 2e-3 per component (room for CPU float differences: oneDNN, AVX widths);
- the aligner: MTCNN's boxes must stay within 2 px of the recorded ones, and the
  whole pipeline (fresh detection, no cache) within cosine 0.995.
Regenerate only on purpose: tests/facenet_tf/golden/make_golden.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from golden.make_golden import detect_boxes, embed_with_boxes, golden_files

pytestmark = pytest.mark.weights

GOLDEN_DIR = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def golden(celebrities):
    with np.load(GOLDEN_DIR / "celebrity_golden.npz") as data:
        recorded = {k: data[k] for k in data.files}
    paths = golden_files(celebrities)
    assert [p.relative_to(celebrities.root).as_posix() for p in paths] == list(recorded["files"])
    return paths, recorded


def _describe(cosines, gap, recorded):
    return f"cosines {np.round(cosines, 5)}, max gap {gap:.2e}; golden recorded with {list(recorded['versions'])}"


def test_the_model_embeds_the_recorded_crops_as_recorded(golden, facenet_embedder):
    paths, recorded = golden
    embeddings = embed_with_boxes(paths, recorded["boxes"], facenet_embedder)
    cosines = np.sum(embeddings * recorded["embeddings"], axis=1)
    gap = float(np.abs(embeddings - recorded["embeddings"]).max())
    assert cosines.min() >= 0.9999 and gap <= 2e-3, _describe(cosines, gap, recorded)


def test_the_aligner_finds_the_recorded_faces_and_the_pipeline_agrees(golden, facenet_embedder):
    from facenet_tf import prepare_crops

    paths, recorded = golden
    boxes = detect_boxes(paths)
    assert np.abs(boxes - recorded["boxes"]).max() <= 2.0, f"boxes moved: {boxes} vs {recorded['boxes']}"
    prepared = prepare_crops([str(p) for p in paths], use_cache=False, progress=False)
    embeddings = facenet_embedder.embed_crops(prepared.crops)
    cosines = np.sum(embeddings * recorded["embeddings"], axis=1)
    assert cosines.min() >= 0.995, _describe(cosines, float(np.abs(embeddings - recorded["embeddings"]).max()), recorded)


def test_the_golden_distance_matrix_separates_the_five_people(golden):
    _, recorded = golden
    similarity = recorded["embeddings"] @ recorded["embeddings"].T
    np.testing.assert_allclose(np.diag(similarity), 1.0, atol=1e-5)
    assert similarity[~np.eye(5, dtype=bool)].max() < 0.5
