"""Memory-size sweeps and write-policy methods: config, registry names, and a run on synthetic clusters."""


import pandas as pd
import pytest
from support import write_embeddings_npz

from experiments.core import settings as core_settings
from experiments.core.memories import build_memory
from experiments.episodic.settings import OmniglotConfig
from experiments.faces import methods
from experiments.faces import settings as cfg
from experiments.faces.adapters import build_adapter
from experiments.faces.footprint import footprint_table


def test_memory_size_takes_one_value_or_a_sweep():
    one = cfg.from_dict({"memory": {"memory_size": 16}})
    assert one.memory.sizes == (16,) and not one.memory.is_sweep
    sweep = cfg.from_dict({"memory": {"memory_size": [8, 16, 32]}})
    assert sweep.memory.sizes == (8, 16, 32) and sweep.memory.is_sweep
    assert cfg.from_dict({"memory": {"memory_size": [8]}}).memory.memory_size == 8
    assert cfg.load_config  # the resolved TOML of a sweep reads back equal
    assert cfg.from_dict(cfg.to_dict(sweep)) == sweep
    with pytest.raises(cfg.ConfigError, match=r"\[memory\] memory_size .*out of range"):
        cfg.from_dict({"memory": {"memory_size": [8, 0]}}, origin="x.toml")
    with pytest.raises(cfg.ConfigError, match="each value"):
        cfg.from_dict({"memory": {"memory_size": [8, "big"]}})
    with pytest.raises(cfg.ConfigError, match="one integer for Omniglot"):
        core_settings.from_dict({"memory": {"memory_size": [8, 16]}}, OmniglotConfig)
    with pytest.raises(ValueError, match="is a sweep"):
        build_memory("kaiser", 4, sweep.memory)


def test_policy_options_are_checked_and_agree_with_the_memory():
    from memory_module import memory

    assert cfg.EVICTIONS == memory.EVICTIONS and cfg.ON_EVICT == memory.ON_EVICT
    with pytest.raises(cfg.ConfigError, match="eviction.*one of oldest, class_balanced"):
        cfg.from_dict({"memory": {"eviction": "newest"}})
    with pytest.raises(cfg.ConfigError, match="merge_threshold"):
        cfg.from_dict({"memory": {"merge_threshold": 1.5}})
    built = build_memory("kaiser", 4, cfg.from_dict({"memory": {"eviction": "class_balanced", "merge_threshold": 0.5}}).memory)
    assert built.get_config()["eviction"] == "class_balanced" and built.merge_threshold == 0.5


def test_a_sweep_expands_bounded_methods_only():
    config = cfg.from_dict({"run": {"models": ["baseline", "memory_fold", "class_means"]}, "memory": {"memory_size": [4, 8]}})
    assert methods.run_models(config) == ["baseline", "memory_fold@4", "memory_fold@8", "class_means"]
    assert methods.split_name("memory_fold@8") == ("memory_fold", 8)
    assert config.budget("memory_fold@8") == config.budget("memory_fold")
    with pytest.raises(ValueError, match="name one size"):
        build_adapter("memory", None, config)


@pytest.mark.slow
def test_a_sweep_run_shares_shuffles_and_writes_the_footprint_table(tmp_path):
    from experiments.faces.run_data import load_embeddings_file
    from experiments.faces.runner import run_experiment

    npz = write_embeddings_npz(tmp_path / "e.npz", n_classes=4, per_class=5, spread=0.9)
    config = cfg.from_dict({
        "run": {"repeats": 3, "max_shots": 3, "models": ["baseline", "memory", "memory_fold", "fifo", "reservoir"]},
        "data": {"embeddings": str(npz)},
        "memory": {"memory_size": [4, 6]},
    })
    data = load_embeddings_file(npz, config.data)
    run_experiment(config, tmp_path / "run", data, progress=False, log=lambda _: None, make_figures=False)
    frame = pd.read_csv(tmp_path / "run" / "results.csv")
    assert set(frame["model"]) == {"baseline", "memory@4", "memory@6", "memory_fold@4", "memory_fold@6",
                                   "fifo@4", "fifo@6", "reservoir@4", "reservoir@6"}
    bytes_at_top = frame[frame["shots"] == 3].groupby("model")["memory_bytes"].first()
    assert bytes_at_top["fifo@6"] > bytes_at_top["fifo@4"]  # each model is built at its own size
    table = footprint_table(frame).set_index("model")
    assert table.loc["memory_fold@4", "vs_fifo"] == pytest.approx(
        (frame[(frame.model == "memory_fold@4") & (frame.shots == 3)]["accuracy"].to_numpy()
         - frame[(frame.model == "fifo@4") & (frame.shots == 3)]["accuracy"].to_numpy()).mean()
    )
    assert (tmp_path / "run" / "footprint.md").is_file()
