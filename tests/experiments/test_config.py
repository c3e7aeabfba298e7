"""The run configuration: strict keys, ranges, overrides, and a round trip through TOML."""

from pathlib import Path

import pytest
import tomllib

from experiments.core import settings as core_settings
from experiments.core.memories import build_memory
from experiments.episodic.model import episodic_memory
from experiments.episodic.settings import OmniglotConfig
from experiments.faces import settings as cfg
from experiments.faces.methods import METHODS
from experiments.faces.settings import RunConfig

CONFIG_DIR = Path(__file__).resolve().parents[2] / "experiments" / "configs"


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIG_DIR.glob("*.toml")))
def test_every_shipped_config_loads_and_round_trips(name, tmp_path):
    schema = OmniglotConfig if name.startswith("omniglot") else RunConfig
    loaded = core_settings.load_config(CONFIG_DIR / f"{name}.toml", schema)
    path = tmp_path / "resolved.toml"
    path.write_text(cfg.to_toml(loaded))
    assert core_settings.load_config(path, schema) == loaded


def test_demo_defaults_match_the_blog_and_paper():
    demo = cfg.load_config(CONFIG_DIR / "celebrities.toml")
    assert demo.memory.memory_size == 32 and demo.memory.alpha == 0.1 and demo.memory.choose_k == 256
    assert {"baseline", "memory", "memory_finetune_phase_off", "memory_finetune_phase_on",
            "memory_finetune_phase_on_consistent"} == set(demo.run.models) < set(METHODS)
    # every fine-tuned model as many shots as the frozen ones, and enough repeats for an interval
    assert demo.finetune.max_shots == demo.run.max_shots == 10 and demo.finetune.repeats >= 50
    assert demo.finetune.trainable_from == "Block8"
    blog = cfg.load_config(CONFIG_DIR / "blog_like.toml")
    assert (blog.data.max_classes, blog.data.images_per_class, blog.run.max_shots) == (12, 8, 7)
    assert {"memory_finetune_phase_off", "memory_finetune_phase_on"} <= set(blog.run.models)


def test_blog_exact_is_the_blog_code_setting():
    exact = cfg.load_config(CONFIG_DIR / "blog_exact.toml")
    assert (exact.run.order, exact.run.compare_with) == ("sorted", "blog")
    assert exact.memory.query_projection and exact.memory.memory_size == 32
    assert (exact.finetune.optimizer, exact.finetune.learning_rate, exact.finetune.trainable_from) == ("sgd", 1e-3, "all")
    assert {"memory_finetune_phase_off", "memory_finetune_phase_on"} <= set(exact.run.models)


def test_trainable_from_must_name_a_facenet_block():
    with pytest.raises(cfg.ConfigError, match=r"\[finetune\] trainable_from = 'Block9' is out of range; allowed: a FaceNet block"):
        cfg.from_dict({"finetune": {"trainable_from": "Block9"}})
    assert cfg.from_dict({"finetune": {"trainable_from": "Mixed_7a", "steps_per_shot": 4}}).finetune.steps_per_shot == 4


def write(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_unknown_key_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, "[memory]\nmemroy_size = 64\n")
    with pytest.raises(cfg.ConfigError, match=r"c\.toml.*unknown key 'memroy_size' in \[memory\]"):
        cfg.load_config(path)


def test_unknown_section_is_refused(tmp_path):
    with pytest.raises(cfg.ConfigError, match=r"unknown section \[memroy\]"):
        cfg.load_config(write(tmp_path, "[memroy]\nmemory_size = 64\n"))


FACE, OMNIGLOT = RunConfig, OmniglotConfig


@pytest.mark.parametrize(
    "schema, text, needle",
    [
        (FACE, "[memory]\nmemory_size = 0\n", r"\[memory\] memory_size = 0 is out of range; allowed: >= 1"),
        (FACE, "[memory]\nalpha = -0.5\n", r"\[memory\] alpha = -0.5 is out of range; allowed: >= 0"),
        (FACE, "[run]\nrepeats = 0\n", r"\[run\] repeats = 0 is out of range; allowed: >= 1"),
        (FACE, "[finetune]\nlearning_rate = 0\n", r"learning_rate = 0.0 is out of range; allowed: > 0"),
        (FACE, "[finetune]\noptimizer = 'rmsprop'\n", r"optimizer = 'rmsprop' is out of range; allowed: one of adam, sgd"),
        (FACE, "[data]\nmax_classes = 1\n", r"max_classes = 1 is out of range"),
        (OMNIGLOT, "[memroy]\nmemory_size = 64\n", r"unknown section \[memroy\]; allowed sections: data, model, memory, train"),
        (OMNIGLOT, "[train]\nmemory_size = 64\n", r"unknown key 'memory_size' in \[train\]"),
        (OMNIGLOT, "memory_size = 64\n", r"memory_size = 64 is outside any section; put it under one of \[data\], \[model\]"),
        (OMNIGLOT, "[model]\nchannels = [8, 8, 8, 8, 8]\n",
         r"\[model\] channels = \[8, 8, 8, 8, 8\] is out of range; allowed: one to four integers >= 1"),
        (OMNIGLOT, "[model]\nmembers = 0\n", r"\[model\] members = 0 is out of range; allowed: an integer from 1 to 8"),
        (OMNIGLOT, "[train]\nepisode_width = 6\nepisode_length = 5\n", r"episode_length \(5\) must be >= episode_width \(6\)"),
    ],
)
def test_bad_values_sections_and_keys_of_either_experiment_are_named(tmp_path, schema, text, needle):
    with pytest.raises(cfg.ConfigError, match=needle):
        core_settings.load_config(write(tmp_path, text), schema)


def test_wrong_types_and_unknown_models(tmp_path):
    with pytest.raises(cfg.ConfigError, match=r"memory_size must be an integer, got '32'"):
        cfg.load_config(write(tmp_path, "[memory]\nmemory_size = '32'\n"))
    with pytest.raises(cfg.ConfigError, match=r"unknown model 'memry'"):
        cfg.load_config(write(tmp_path, "[run]\nmodels = ['memry']\n"))
    with pytest.raises(cfg.ConfigError, match="not valid TOML"):
        cfg.load_config(write(tmp_path, "[run\n"))
    with pytest.raises(FileNotFoundError, match="nope.toml does not exist"):
        cfg.load_config(tmp_path / "nope.toml")


def test_overrides_are_validated_too():
    base = RunConfig()
    changed = cfg.with_overrides(base, run__repeats=5, run__models=("baseline",), run__seed=None)
    assert changed.run.repeats == 5 and changed.run.models == ("baseline",) and changed.run.seed == base.run.seed
    with pytest.raises(cfg.ConfigError, match=r"command line: \[run\] repeats = 0 is out of range"):
        cfg.with_overrides(base, run__repeats=0)


def test_resolved_toml_is_plain_toml_with_every_section():
    parsed = tomllib.loads(cfg.to_toml(RunConfig()))
    assert set(parsed) == {"run", "data", "memory", "finetune", "open_set"}


def test_every_memory_option_reaches_the_memory_of_both_experiments():
    memory = {"memory_size": 20, "choose_k": 7, "alpha": 0.3, "age_noise": 0.0, "vote_k": 3, "running_mean": True}
    face = cfg.from_dict({"memory": memory})
    omniglot = core_settings.from_dict({"memory": memory, "model": {"key_dim": 6}}, OmniglotConfig)
    for built in (build_memory("kaiser", 6, face.memory, seed=1), episodic_memory(omniglot)):
        config = built.get_config()
        assert {key: config[key] for key in memory} == memory
