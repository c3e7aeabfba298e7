"""`--set SECTION.KEY=VALUE`: any key of a command's configuration, held to the rules of the same key in a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from support import write_embeddings_npz

from experiments.cli import build_parser, main
from experiments.cli.omniglot import eval_running_mean, resolve_train_config
from experiments.cli.run import resolve_run_config
from experiments.core.settings import ConfigError, from_dict, parse_assignments, to_toml, with_assignments
from experiments.episodic.settings import OmniglotConfig
from experiments.faces.settings import RunConfig

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- the parser


@pytest.mark.parametrize(("text", "expected"), [
    ("memory.memory_size=64", {"memory__memory_size": 64}),
    ("memory.alpha=0.2", {"memory__alpha": 0.2}),
    ("finetune.learning_rate=1e-4", {"finetune__learning_rate": 1e-4}),
    ("memory.running_mean=true", {"memory__running_mean": True}),
    ('data.source="celebrities"', {"data__source": "celebrities"}),
    ("data.source=celebrities", {"data__source": "celebrities"}),  # a bare word is the string it spells
    ("data.source=./my faces", {"data__source": "./my faces"}),
    ("data.weights=", {"data__weights": ""}),
    ("data.source=a=b", {"data__source": "a=b"}),  # only the first = separates the name
    ('run.models=["baseline", "memory"]', {"run__models": ["baseline", "memory"]}),
    ("memory.memory_size=[16, 32]", {"memory__memory_size": [16, 32]}),
    (" memory . alpha = 0.5 ", {"memory__alpha": 0.5}),
])
def test_values_are_read_as_toml_or_as_a_bare_word(text, expected):
    assert parse_assignments([text]) == expected


def test_the_later_of_two_assignments_to_one_key_wins():
    assert parse_assignments(["run.seed=1", "memory.alpha=0.3", "run.seed=2"]) == {"run__seed": 2, "memory__alpha": 0.3}
    assert parse_assignments([]) == {}


@pytest.mark.parametrize("text", [
    "memory_size=64", "memory.alpha", ".alpha=1", "memory.=1", "=1", "a.b.c=1", "me__mory.alpha=1", "",
])
def test_a_malformed_assignment_is_named_with_the_expected_form(text):
    with pytest.raises(ConfigError) as error:
        parse_assignments(["run.seed=1", text])
    assert str(error.value) == f"--set {text}: expected SECTION.KEY=VALUE, e.g. memory.memory_size=64"


@pytest.mark.parametrize("text", ["run.models=[baseline,memory]", 'data.source="open', "memory.alpha={x"])
def test_broken_toml_is_refused_rather_than_read_as_a_string(text):
    with pytest.raises(ConfigError, match=r"^--set .*: the value is not valid TOML; quote every string in a list"):
        parse_assignments([text])


def test_a_value_must_be_one_line():
    with pytest.raises(ConfigError, match="must be on one line"):
        parse_assignments(["memory.alpha=0.2\nrun.seed = 3"])


# ---------------------------------------------------------------- checked by the schema, as in a file


def test_an_assignment_builds_the_config_the_same_key_in_a_file_builds():
    texts = ["memory.memory_size=64", "memory.alpha=1", 'run.models=["baseline","memory"]', "data.source=people",
             "open_set.strangers=2"]
    from_file = from_dict(tomllib.loads(
        '[memory]\nmemory_size = 64\nalpha = 1\n[run]\nmodels = ["baseline", "memory"]\n'
        '[data]\nsource = "people"\n[open_set]\nstrangers = 2\n'), RunConfig)
    assert with_assignments(RunConfig(), texts) == from_file
    assert with_assignments(RunConfig(), ["memory.alpha=1"]).memory.alpha == 1.0  # an int where a float goes, as in TOML
    assert with_assignments(RunConfig(), ["memory.memory_size=[8, 16]"]).memory.sizes == (8, 16)
    assert with_assignments(OmniglotConfig(), ["train.steps=5"]).train.steps == 5


@pytest.mark.parametrize(("text", "message"), [
    ("memory.memroy_size=64", "--set: unknown key 'memroy_size' in [memory]; allowed keys: age_noise, alpha, "),
    ("memroy.memory_size=64", "--set: unknown section [memroy]; allowed sections: run, data, memory, finetune, open_set"),
    ("memory.memory_size=big", "--set: [memory] memory_size must be an integer, got 'big'"),
    ("memory.memory_size=0", "--set: [memory] memory_size = 0 is out of range; allowed: >= 1"),
    ("memory.running_mean=yes", "--set: [memory] running_mean must be true or false, got 'yes'"),
    ("data.source=true", "--set: [data] source must be a string, got True"),
    ("run.models=[]", "--set: [run] models is empty"),
])
def test_wrong_keys_types_and_ranges_get_the_loader_messages(text, message):
    with pytest.raises(ConfigError) as error:
        with_assignments(RunConfig(), [text])
    assert str(error.value).startswith(message)


# ---------------------------------------------------------------- kshot run


def run_args(*argv):
    return build_parser().parse_args(["run", *argv])


def test_run_applies_the_file_then_set_then_the_explicit_options():
    config, _ = resolve_run_config(run_args("--set", "memory.alpha=0.2", "--set", "finetune.repeats=3",
                                            "--set", "open_set.strangers=1"))
    assert (config.memory.alpha, config.finetune.repeats, config.open_set.strangers) == (0.2, 3, 1)
    for argv in (["--seed", "5", "--set", "run.seed=9"], ["--set", "run.seed=9", "--seed", "5"]):
        config, _ = resolve_run_config(run_args(*argv))
        assert config.run.seed == 5  # the explicit option wins, wherever it stands
    config, _ = resolve_run_config(run_args("--memory-sizes", "8,16", "--set", "memory.memory_size=64",
                                            "--models", "baseline", "--set", 'run.models=["memory"]'))
    assert (config.memory.sizes, config.run.models) == ((8, 16), ("baseline",))
    config, _ = resolve_run_config(run_args("--set", "run.seed=1", "--set", "run.seed=2"))
    assert config.run.seed == 2


def test_run_with_embeddings_keeps_the_set_models_that_need_no_images(tmp_path):
    args = run_args("--embeddings", str(tmp_path / "e.npz"),
                    "--set", 'run.models=["baseline", "memory_finetune_phase_on", "memory"]')
    config, _ = resolve_run_config(args)
    assert config.run.models == ("baseline", "memory")


@pytest.mark.parametrize(("argv", "message"), [
    (["--set", "memory.memroy_size=64"], "with --set: unknown key 'memroy_size' in [memory]; allowed keys: "),
    (["--set", "memroy.alpha=1"], "with --set: unknown section [memroy]; allowed sections: run, data,"),
    (["--set", "memory_size=64"], "--set memory_size=64: expected SECTION.KEY=VALUE, e.g. memory.memory_size=64"),
    (["--set", "memory.alpha=-1"], "with --set: [memory] alpha = -1.0 is out of range; allowed: >= 0"),
])
def test_a_bad_set_is_one_line_and_status_2(tmp_path, capsys, argv, message):
    assert main(["run", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kshot run: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_retired_flags_are_gone_and_their_keys_are_set_instead(capsys):
    for retired in (["run", "--strangers", "2"], ["run", "--finetune-repeats", "2"],
                    ["omniglot", "eval", "--running-mean"]):
        with pytest.raises(SystemExit) as stop:
            build_parser().parse_args(retired)
        assert stop.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_set_reaches_the_run_directory_and_the_results_equal_a_config_file(tmp_path):
    npz = write_embeddings_npz(tmp_path / "emb.npz", n_classes=4, per_class=6, dim=8, spread=1.0)
    common = ["run", "--embeddings", str(npz), "--repeats", "2", "--no-figures", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "set"), "--set", 'run.models=["baseline","memory"]',
                 "--set", "memory.memory_size=16", "--set", "run.max_shots=3"]) == 0
    config = tmp_path / "file.toml"
    config.write_text('[run]\nmodels = ["baseline", "memory"]\nmax_shots = 3\n[memory]\nmemory_size = 16\n')
    assert main([*common, "--out", str(tmp_path / "file"), "--config", str(config)]) == 0
    saved = tomllib.loads((tmp_path / "set" / "config.toml").read_text())
    assert (saved["memory"]["memory_size"], saved["run"]["max_shots"]) == (16, 3)
    for same in ("config.toml", "results.csv"):
        assert (tmp_path / "set" / same).read_bytes() == (tmp_path / "file" / same).read_bytes()


def test_help_names_set_and_its_precedence_without_starting_tensorflow():
    code = (
        "import sys\n"
        "from experiments.cli import main\n"
        "for argv in (['run', '--help'], ['omniglot', 'train', '--help'], ['omniglot', 'eval', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    helps = " ".join(done.stdout.split())
    assert helps.count("--set SECTION.KEY=VALUE") >= 3
    assert "sections: run, data, memory, finetune, open_set" in helps
    assert "an explicit option for the same key (e.g. --seed) wins over --set, wherever it stands" in helps
    assert "only memory.running_mean may change" in helps


# ---------------------------------------------------------------- kshot omniglot train and eval


def train_args(*argv):
    return build_parser().parse_args(["omniglot", "train", "--out", "unused", *argv])


def test_omniglot_train_sets_any_key_of_the_preset_and_steps_and_seed_win():
    config = resolve_train_config(train_args("--preset", "fast", "--set", "memory.memory_size=64",
                                             "--set", "train.steps=9", "--steps", "3", "--set", "model.batch_norm=true"))
    assert (config.memory.memory_size, config.train.steps, config.model.batch_norm) == (64, 3, True)
    with pytest.raises(ConfigError, match=r"^preset fast with --set: \[memory\] memory_size must be one integer"):
        resolve_train_config(train_args("--preset", "fast", "--set", "memory.memory_size=[8, 16]"))


def test_omniglot_train_refuses_an_unknown_key_before_training(tmp_path, capsys):
    assert main(["omniglot", "train", "--out", str(tmp_path / "run"), "--set", "train.stepz=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kshot omniglot: error: preset full with --set: unknown key 'stepz' in [train]; allowed keys:")
    assert not (tmp_path / "run").exists()


@pytest.fixture()
def checkpoint(tmp_path):
    """A directory holding only an Omniglot run's config.toml: what eval --set reads before TensorFlow."""
    def make(**memory):
        run = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        run.mkdir()
        (run / "config.toml").write_text(to_toml(with_assignments(
            OmniglotConfig(), [f"memory.{k}={str(v).lower()}" for k, v in memory.items()])))
        return str(run)
    return make


def test_eval_set_turns_on_running_mean_and_nothing_else(checkpoint):
    paper, merged = checkpoint(), checkpoint(running_mean=True)
    assert eval_running_mean(paper, []) is False  # evaluate_run keeps the checkpoint's setting
    assert eval_running_mean(paper, ["memory.running_mean=true"]) is True
    assert eval_running_mean(paper, ["memory.running_mean=false", "model.key_dim=128"]) is False  # unchanged values pass
    assert eval_running_mean(merged, ["memory.running_mean=true"]) is True
    with pytest.raises(ValueError, match=r"eval can change only memory.running_mean .*--set changed \[model\] key_dim: "
                                         r"saved 128, now 64"):
        eval_running_mean(paper, ["model.key_dim=64", "memory.running_mean=true"])
    with pytest.raises(ValueError, match="was trained with \\[memory\\] running_mean = true; eval can turn it on, not off"):
        eval_running_mean(merged, ["memory.running_mean=false"])
    with pytest.raises(ConfigError, match=r"with --set: unknown key 'runing_mean' in \[memory\]"):
        eval_running_mean(paper, ["memory.runing_mean=true"])


def test_eval_refuses_a_bad_set_before_loading_anything(checkpoint, capsys):
    assert main(["omniglot", "eval", "--checkpoint", checkpoint(), "--set", "model.key_dim=64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kshot omniglot: error: eval can change only memory.running_mean") and err.count("\n") == 1
