"""`kshot omniglot embed --split validation`: the validation alphabets' keys, for choosing settings on them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from experiments.cli import main
from experiments.episodic.evaluation import export


def test_embed_validation_reads_the_validation_part_and_writes_its_keys(tmp_path, monkeypatch, capsys):
    asked = []
    part = SimpleNamespace(images=np.zeros((4, 2, 2)), labels=np.array([0, 0, 1, 1]), drawers=["d1", "d2", "d1", "d2"],
                           characters=["N_Ko/character01", "Futurama/character02"], num_classes=2)

    def fake_restore(run_dir, sources, split):
        asked.append(split)
        return None, "embedder", 200, part, ("N_Ko", "Futurama"), {}

    monkeypatch.setattr(export, "restore_held_out", fake_restore)
    monkeypatch.setattr(export, "embed_images", lambda trained, images: np.eye(len(images), 3, dtype=np.float32))
    out = tmp_path / "validation.npz"
    assert main(["omniglot", "embed", "--checkpoint", str(tmp_path), "--split", "validation", "--out", str(out)]) == 0
    assert asked == ["validation"]
    assert "4 drawings of 2 characters (validation split, step 200, 3-d keys)" in capsys.readouterr().out
    with np.load(out) as data:
        assert list(data["labels"]) == ["N_Ko/character01"] * 2 + ["Futurama/character02"] * 2
        assert data["embeddings"].shape == (4, 3)
