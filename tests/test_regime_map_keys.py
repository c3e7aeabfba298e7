"""The untrained Omniglot checkpoint of the regime map: the seeded initial network, readable as a shipped one."""

import json

import numpy as np
import pytest

from experiments.episodic.checkpoints import SHIPPED_DIR, load_shipped
from experiments.episodic.model import build_model
from experiments.studies.regime_map_keys import write_untrained_checkpoint


def test_the_untrained_checkpoint_loads_as_the_seeded_initial_network(tmp_path):
    manifest = write_untrained_checkpoint(SHIPPED_DIR, tmp_path / "untrained")
    assert manifest["step"] == 0 and "never trained" in manifest["command"]
    assert (tmp_path / "untrained" / "split.json").read_text() == (SHIPPED_DIR / "split.json").read_text()
    config, loaded, step = load_shipped(tmp_path / "untrained")
    assert step == 0
    fresh = build_model(config)   # the same [train] seed: the same initial weights
    for a, b in zip(loaded.weights, fresh.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    _, trained, _ = load_shipped(SHIPPED_DIR)
    assert not np.array_equal(trained.weights[0].numpy(), loaded.weights[0].numpy())
    assert json.loads((tmp_path / "untrained" / "manifest.json").read_text()) == manifest


def test_a_folder_without_a_config_is_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no config.toml"):
        write_untrained_checkpoint(tmp_path, tmp_path / "out")
