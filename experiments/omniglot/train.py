"""Train the Omniglot embedder end to end with the Kaiser memory loss on episodes.

One optimizer update per batch of B episodes (as the paper's train.py samples them):
all L*B images are embedded in one forward pass, then the memory consumes the episode
step by step - at step t the B queries are looked up (the prediction), scored with the
memory loss, and written - and the summed loss of the L steps is differentiated into the
embedder. The B episodes of a batch share the memory with disjoint labels (episode b
uses labels b*W .. b*W+W-1), as in the paper's code. The memory is cleared before
every batch (`lifelong = false`, the paper's train.py) or kept across batches
(`lifelong = true`, then labels are the dataset's class ids so that an old slot of a
class still answers for it).

Differences from the TF1 code: it made one update per time step with keys from the
current parameters; here one update covers the whole episode, so every image is
embedded once per update (L times fewer forward passes, the same loss terms).

A run directory holds `config.toml` (the resolved settings; resuming with other
settings is refused), `split.json` (train and held-out alphabets), checkpoints written
with tf.train.Checkpoint and published by an atomically written `latest.json`, the
memory state in life-long mode, and `log.jsonl` (one line per validation: per-shot
accuracy on held-out episodes, as the paper's train.py logs them).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from experiments.omniglot.data import (
    OmniglotData,
    add_rotations,
    choose_test_alphabets,
    load_omniglot,
    to_float,
)
from experiments.omniglot.split import split_three_ways
from experiments.omniglot.episodes import accuracy_by_shot, sample_episodes, shots_seen, step_rng
from experiments.omniglot.presets import OmniglotConfig, config_from_mapping
from experiments.omniglot.pretrain import PRETRAIN_DIR, last_logged_seconds, monitor_accuracy, pretrain
from kshot_io import write_text_atomic

CONFIG_FILE = "config.toml"
SPLIT_FILE = "split.json"
LATEST_FILE = "latest.json"
LOG_FILE = "log.jsonl"
MEMORY_FILE = "memory.npz"
CHECKPOINT_DIR = "checkpoints"
KEEP_CHECKPOINTS = 2


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class PreparedData:
    """The train and held-out splits as the trainer uses them."""

    train: OmniglotData  # rotations added if configured
    test: OmniglotData
    train_alphabets: tuple[str, ...]
    test_alphabets: tuple[str, ...]
    characters_in_train: int  # before rotations
    validation: OmniglotData | None = None  # None when the config names no validation alphabets
    validation_alphabets: tuple[str, ...] = ()

    @property
    def monitor(self) -> OmniglotData:
        """The split that training logs report on: validation if there is one, else test."""
        return self.validation if self.validation is not None else self.test

    def describe(self) -> dict:
        described = {
            "train_alphabets": list(self.train_alphabets),
            "test_alphabets": list(self.test_alphabets),
            "train_characters": self.characters_in_train,
            "train_classes_with_rotations": self.train.num_classes,
            "train_images": int(self.train.images.shape[0]),
            "test_characters": self.test.num_classes,
            "test_images": int(self.test.images.shape[0]),
        }
        if self.validation is not None:
            described["validation_alphabets"] = list(self.validation_alphabets)
            described["validation_characters"] = self.validation.num_classes
        return described


def prepare_data(config: OmniglotConfig, sources=None) -> PreparedData:
    data, sets = load_omniglot(sources, image_size=config.image_size)
    test_alphabets = list(config.test_alphabets) or choose_test_alphabets(data, sets, config.test_fraction)
    train, validation, test = split_three_ways(data, test_alphabets, config.validation_alphabets)
    characters = train.num_classes
    if config.rotations:
        train = add_rotations(train)
    return PreparedData(
        train=train,
        test=test,
        train_alphabets=tuple(train.alphabet_names()),
        test_alphabets=tuple(sorted(test_alphabets)),
        characters_in_train=characters,
        validation=validation,
        validation_alphabets=tuple(sorted(config.validation_alphabets)),
    )


# ---------------------------------------------------------------- model pieces


def build_memory(config: OmniglotConfig, seed_offset: int = 0):
    from memory_module import KaiserMemory

    return KaiserMemory(
        memory_size=config.memory_size,
        key_dim=config.key_dim,
        choose_k=config.choose_k,
        alpha=config.alpha,
        age_noise=config.age_noise,
        seed=config.seed + seed_offset,
    )


def build_model(config: OmniglotConfig):
    from experiments.omniglot.model import build_embedder

    return build_embedder(
        key_dim=config.key_dim,
        channels=tuple(config.channels),
        key_dropout=config.key_dropout,
        image_size=config.image_size,
        seed=config.seed,
        batch_norm=config.batch_norm,
    )


def memory_labels(labels: np.ndarray, classes: np.ndarray, width: int, lifelong: bool) -> np.ndarray:
    """The ids the memory stores for an [L, B] episode batch.

    Episodic: episode b's local label l becomes b*width + l, so the B episodes sharing
    one memory never answer with each other's labels. Life-long: the class id itself.
    """
    if lifelong:
        return classes.astype(np.int64)
    return (labels + width * np.arange(labels.shape[1])[None, :]).astype(np.int64)


def format_per_shot(accuracies: Sequence[float | None]) -> str:
    return ", ".join(f"{k}-shot: {a:.3f}" for k, a in enumerate(accuracies) if a is not None)


def make_episode_runner(embedder, memory, optimizer=None):
    """A tf.function over one batch of episodes: embed, then look up / score / write step by step.

    images [L*B, s, s, 1] float32 (time-major), labels [L, B] int64 memory ids.
    Returns (mean loss over the L steps, predictions [L, B]). With an optimizer it also
    applies one update (training: dropout on); without, it only predicts (dropout off).
    """
    import tensorflow as tf

    training = optimizer is not None

    @tf.function(reduce_retracing=True)
    def run(images, labels):
        length = labels.shape[0]
        batch = labels.shape[1]
        with tf.GradientTape() as tape:
            keys = embedder(images, training=training)
            keys = tf.reshape(keys, [length, batch, -1])
            total = tf.constant(0.0)
            predictions = []
            for t in range(length):  # unrolled: L is fixed per configuration
                out = memory(keys[t], labels=labels[t], update=True)
                total += out["loss"]
                predictions.append(out["labels"])
            loss = total / length
        if training:
            variables = embedder.trainable_variables
            gradients = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(gradients, variables))
        return loss, tf.stack(predictions)

    return run


# ---------------------------------------------------------------- run directory


def _read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def check_or_write_config(out_dir: Path, config: OmniglotConfig) -> bool:
    """Write config.toml for a new run; for an existing one refuse different settings (steps may change).

    Returns True when the directory already held a run.
    """
    path = out_dir / CONFIG_FILE
    if path.exists():
        from experiments.omniglot.presets import load_config

        saved = load_config(path)
        if saved.replace(steps=config.steps) != config:
            differing = [
                f"{name}: saved {getattr(saved, name)!r}, now {getattr(config, name)!r}"
                for name in config.__dataclass_fields__
                if name != "steps" and getattr(saved, name) != getattr(config, name)
            ]
            raise ValueError(
                f"{out_dir} holds a run with other settings ({'; '.join(differing)}); "
                "use a new --out directory or the same settings to resume"
            )
        return True
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, config.to_toml())
    return False


def load_run_config(run_dir: str | os.PathLike) -> OmniglotConfig:
    from experiments.omniglot.presets import load_config

    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not an Omniglot run directory (no {CONFIG_FILE}); train one with kshot omniglot train")
    return load_config(path)


def latest_checkpoint(run_dir: str | os.PathLike) -> tuple[int, Path] | None:
    """(step, checkpoint prefix) published by latest.json, or None for a fresh directory."""
    path = Path(run_dir) / LATEST_FILE
    if not path.exists():
        return None
    record = _read_json(path)
    return int(record["step"]), Path(run_dir) / record["prefix"]


def _save(run_dir: Path, checkpoint, step: int, memory, lifelong: bool) -> None:
    prefix = f"{CHECKPOINT_DIR}/step-{step:07d}/ckpt"
    target = run_dir / prefix
    if target.parent.exists():
        shutil.rmtree(target.parent)  # a half-written attempt at this step from a killed run
    checkpoint.write(str(target))
    if lifelong:
        memory.save(target.parent / MEMORY_FILE)
    # Publishing the pointer last makes the save atomic: a crash before this line leaves
    # the previous checkpoint in charge.
    write_text_atomic(run_dir / LATEST_FILE, json.dumps({"step": step, "prefix": prefix}) + "\n")
    steps_on_disk = sorted((run_dir / CHECKPOINT_DIR).glob("step-*"))
    for old in steps_on_disk[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)


def restore_embedder(run_dir: str | os.PathLike):
    """(config, embedder with the latest trained weights, step) of a run directory or a shipped checkpoint."""
    import tensorflow as tf

    from experiments.omniglot.shipped import is_shipped_layout, load_shipped

    if is_shipped_layout(run_dir):
        return load_shipped(run_dir)

    config = load_run_config(run_dir)
    found = latest_checkpoint(run_dir)
    if found is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint yet ({LATEST_FILE} missing); train first")
    step, prefix = found
    embedder = build_model(config)
    tf.train.Checkpoint(embedder=embedder).read(str(prefix)).expect_partial()
    return config, embedder, step


# ---------------------------------------------------------------- validation


def validate(embedder, memory, data: OmniglotData, config: OmniglotConfig, episodes: int, seed: int,
             run=None) -> dict:
    """Per-shot accuracy of the memory readout on `episodes` held-out episodes, one at a time.

    Each episode has the training width and length and its own cleared memory; the
    memory is written as it answers, as in the paper's validation. Pass the `run` of an
    earlier call (make_episode_runner(embedder, memory)) to avoid tracing it again.
    """
    import tensorflow as tf

    run = run or make_episode_runner(embedder, memory)
    by_class = data.indices_by_class()
    rng = np.random.default_rng([seed, 1_000_003])
    correct, shots = [], []
    for _ in range(episodes):
        batch = sample_episodes(by_class, rng, config.episode_width, config.episode_length, 1)
        images = to_float(data.images[batch.indices.reshape(-1)])
        memory.reset()
        _, predictions = run(tf.constant(images), tf.constant(batch.labels))
        correct.append(predictions.numpy() == batch.labels)
        shots.append(shots_seen(batch.labels))
    correct = np.concatenate(correct, axis=1)
    shots = np.concatenate(shots, axis=1)
    max_shot = int(shots.max())
    return {"accuracy": float(correct.mean()), "per_shot": accuracy_by_shot(correct, shots, max_shot)}


# ---------------------------------------------------------------- training


def train(
    config: OmniglotConfig,
    out_dir: str | os.PathLike,
    sources=None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Train (or resume) up to `config.steps` updates; returns a summary dict.

    Resuming continues from the step in latest.json with the same episodes an
    uninterrupted run would have seen (episode batch s is drawn from step_rng(seed, s)).
    """
    import keras
    import tensorflow as tf
    from tqdm import tqdm

    out_dir = Path(out_dir)
    resuming = check_or_write_config(out_dir, config)
    if resuming:  # the saved file may hold an older `steps`; keep it current
        write_text_atomic(out_dir / CONFIG_FILE, config.to_toml())
    data = prepare_data(config, sources)
    split = {**data.describe(), "sources": [str(s) for s in (sources or [])] or "default"}
    write_text_atomic(out_dir / SPLIT_FILE, json.dumps(split, indent=2) + "\n")
    for name, count, need in (("train", data.train.num_classes, config.episode_width),
                              ("held-out", data.monitor.num_classes, config.episode_width)):
        if count < need:
            raise ValueError(f"the {name} split has {count} classes, fewer than episode_width={need}")
    pretrained = pretrain(config, out_dir, data, log=log, progress=progress)

    keras.utils.set_random_seed(config.seed)
    embedder = build_model(config)
    memory = build_memory(config)
    optimizer = keras.optimizers.Adam(
        learning_rate=config.learning_rate, epsilon=config.adam_epsilon, global_clipnorm=config.grad_clip_norm
    )
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    # Keras keeps dropout's seed-generator state outside what tf.train.Checkpoint tracks for a
    # model; saving it explicitly makes a resumed run draw the same dropout masks.
    seed_states = {
        f"dropout_seed_{i}": v.value
        for i, v in enumerate(embedder.non_trainable_variables)
        if "seed_generator" in v.path
    }
    checkpoint = tf.train.Checkpoint(embedder=embedder, optimizer=optimizer, step=step_var, **seed_states)
    found = latest_checkpoint(out_dir)
    if found is not None:
        step, prefix = found
        # Build the optimizer's slots before restoring so that they load, not defer.
        optimizer.build(embedder.trainable_variables)
        checkpoint.read(str(prefix)).assert_existing_objects_matched()
        if config.lifelong and (prefix.parent / MEMORY_FILE).exists():
            memory.load(prefix.parent / MEMORY_FILE)
        log(f"resuming {out_dir} from step {step}")
    elif pretrained is not None:
        tf.train.Checkpoint(embedder=embedder).read(str(pretrained)).expect_partial()
        log(f"memory-loss training starts from the pre-trained embedder {pretrained}")
    start = int(step_var.numpy())
    # One clock for the learning curve: classifier stage, then this stage, across resumes.
    clock_offset = last_logged_seconds(out_dir / LOG_FILE) or last_logged_seconds(out_dir / PRETRAIN_DIR / LOG_FILE)

    log(
        f"train: {data.characters_in_train} characters of {', '.join(data.train_alphabets)} "
        f"({data.train.num_classes} classes with rotations); held out: {data.test.num_classes} characters "
        f"of {', '.join(data.test_alphabets)}"
    )
    run = make_episode_runner(embedder, memory, optimizer)
    by_class = data.train.indices_by_class()
    eval_memory = build_memory(config, seed_offset=1)
    validation_run = make_episode_runner(embedder, eval_memory)  # traced once, reused
    history = []
    recent_loss, recent_correct, recent_shots = [], [], []
    started = time.time()
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, disable=not progress,
               desc="omniglot train", unit="batch", dynamic_ncols=True)
    for step in bar:
        batch = sample_episodes(by_class, step_rng(config.seed, step), config.episode_width,
                                config.episode_length, config.batch_size)
        ids = memory_labels(batch.labels, batch.classes, config.episode_width, config.lifelong)
        images = to_float(data.train.images[batch.indices.reshape(-1)])
        if not config.lifelong:
            memory.reset()
        loss, predictions = run(tf.constant(images), tf.constant(ids))
        step_var.assign(step + 1)
        recent_loss.append(float(loss))
        recent_correct.append(predictions.numpy() == ids)
        recent_shots.append(shots_seen(batch.labels))
        done = step + 1
        if progress:
            bar.set_postfix(loss=f"{np.mean(recent_loss[-20:]):.4f}")
        if done % config.validate_every == 0 or done == config.steps:
            correct = np.concatenate(recent_correct, axis=1)
            shots = np.concatenate(recent_shots, axis=1)
            max_shot = int(shots.max())
            seconds = clock_offset + time.time() - started  # training time; measurements excluded
            valid = validate(embedder, eval_memory, data.monitor, config, config.validation_episodes, config.seed,
                             run=validation_run)
            record = {
                "stage": "memory",
                "step": done,
                "train_loss": float(np.mean(recent_loss)),
                "train_per_shot": accuracy_by_shot(correct, shots, max_shot),
                "heldout_accuracy": valid["accuracy"],
                "heldout_per_shot": valid["per_shot"],
                "seconds": round(seconds, 1),
                **{f"heldout_1nn_{k}": v for k, v in monitor_accuracy(embedder, data.monitor, config.key_dim,
                                                                    config.seed).items()},
            }
            history.append(record)
            with open(out_dir / LOG_FILE, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            log(
                f"step {done}: train loss {record['train_loss']:.4f}; train {format_per_shot(record['train_per_shot'])}"
                f"\n  held-out ({config.validation_episodes} episodes) {format_per_shot(valid['per_shot'])}"
            )
            recent_loss, recent_correct, recent_shots = [], [], []
            clock_offset, started = seconds, time.time()
        if done % config.checkpoint_every == 0 or done == config.steps:
            _save(out_dir, checkpoint, done, memory, config.lifelong)
    bar.close()
    return {"steps": int(step_var.numpy()), "started_at": start, "history": history, "split": data.describe(),
            "seconds": round(clock_offset + time.time() - started, 1)}


def config_with_overrides(base: OmniglotConfig, **overrides) -> OmniglotConfig:
    """`base` with the non-None overrides applied (validated like a config file)."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    return config_from_mapping(changes, origin="command line", base=base) if changes else base
