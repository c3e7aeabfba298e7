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

A run directory (opened by experiments.core.run_dir) holds `config.toml` (the resolved
settings; resuming with other settings is refused, except `[train] steps`),
`split.json` (train and held-out alphabets), checkpoints written with
tf.train.Checkpoint and published by an atomically written `latest.json`, the memory
state in life-long mode, and `log.jsonl` (one line per validation: per-shot accuracy on
held-out episodes, as the paper's train.py logs them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from experiments.core.metrics import accuracy_by_shot, shots_seen
from experiments.core.run_dir import latest_checkpoint, open_run_dir, save_checkpoint
from experiments.core.run_files import (
    FINETUNE_DIR,
    LOG_FILE,
    MEMORY_FILE,
    PRETRAIN_DIR,
    SPLIT_FILE,
)
from experiments.episodic.data import EpisodicData, to_float
from experiments.episodic.episodes import sample_episodes, step_rng
from experiments.episodic.model import build_model, episodic_memory
from experiments.episodic.settings import OmniglotConfig
from experiments.episodic.split import prepare_split
from experiments.episodic.training.finetune import finetune
from experiments.episodic.training.pretrain import pretrain
from experiments.episodic.training.stages import (
    last_logged_seconds,
    monitor_accuracy,
    run_stage,
)
from kshot_io import write_text_atomic


def memory_labels(labels: np.ndarray, classes: np.ndarray, width: int, lifelong: bool) -> np.ndarray:
    """The ids the memory stores for an [L, B] episode batch.

    Episodic: episode b's local label l becomes b*width + l, so the B episodes sharing
    one memory never answer with each other's labels. Life-long: the class id itself.
    """
    if lifelong:
        return classes.astype(np.int64)
    return (labels + width * np.arange(labels.shape[1])[None, :]).astype(np.int64)


def format_per_shot(accuracies) -> str:
    return ", ".join(f"{k}-shot: {a:.3f}" for k, a in enumerate(accuracies) if a is not None)


def make_episode_runner(embedder, memory, optimizer=None):
    """A tf.function over one batch of episodes: embed, then look up / score / write step by step.

    images [L*B, s, s, 1] float32 (time-major), labels [L, B] int64 memory ids.
    Returns (mean loss over the L steps, predictions [L, B]). With an optimizer it also
    applies one update (training: dropout on); without, it only predicts (dropout off).
    """

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


# ---------------------------------------------------------------- validation


def validate(embedder, memory, data: EpisodicData, config: OmniglotConfig, episodes: int, seed: int,
             run=None) -> dict:
    """Per-shot accuracy of the memory readout on `episodes` held-out episodes, one at a time.

    Each episode has the training width and length and its own cleared memory; the
    memory is written as it answers, as in the paper's validation. Pass the `run` of an
    earlier call (make_episode_runner(embedder, memory)) to avoid tracing it again.
    """

    run = run or make_episode_runner(embedder, memory)
    by_class = data.indices_by_class()
    rng = np.random.default_rng([seed, 1_000_003])
    correct, shots = [], []
    for _ in range(episodes):
        batch = sample_episodes(by_class, rng, config.train.episode_width, config.train.episode_length, 1)
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
    """Train (or resume) up to `[train] steps` updates; returns a summary dict.

    Resuming continues from the step in latest.json with the same episodes an
    uninterrupted run would have seen (episode batch s is drawn from step_rng(seed, s)).
    """

    out_dir = Path(out_dir)
    open_run_dir(out_dir, config, may_change=("train.steps",))
    train_settings = config.train
    data = prepare_split(config.data, sources)
    split = {**data.describe(), "sources": [str(s) for s in (sources or [])] or "default"}
    write_text_atomic(out_dir / SPLIT_FILE, json.dumps(split, indent=2) + "\n")
    for name, count, need in (("train", data.train.num_classes, train_settings.episode_width),
                              ("held-out", data.monitor.num_classes, train_settings.episode_width)):
        if count < need:
            raise ValueError(f"the {name} split has {count} classes, fewer than episode_width={need}")
    pretrained = pretrain(config, out_dir, data, log=log, progress=progress)
    tuned = finetune(config, out_dir, data, start_from=pretrained, log=log, progress=progress)
    starting_point = tuned or pretrained

    keras.utils.set_random_seed(train_settings.seed)
    embedder = build_model(config)
    memory = episodic_memory(config)
    optimizer = keras.optimizers.Adam(
        learning_rate=train_settings.learning_rate, epsilon=train_settings.adam_epsilon,
        global_clipnorm=train_settings.grad_clip_norm,
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
        if train_settings.lifelong and (prefix.parent / MEMORY_FILE).exists():
            memory.load(prefix.parent / MEMORY_FILE)
        log(f"resuming {out_dir} from step {step}")
    elif starting_point is not None:
        tf.train.Checkpoint(embedder=embedder).read(str(starting_point)).expect_partial()
        log(f"memory-loss training starts from the {'fine-tuned' if tuned else 'pre-trained'} embedder {starting_point}")
    start = int(step_var.numpy())
    # One clock for the learning curve: the earlier stages, then this one, across resumes.
    clock_offset = last_logged_seconds(out_dir / LOG_FILE, out_dir / FINETUNE_DIR / LOG_FILE,
                                       out_dir / PRETRAIN_DIR / LOG_FILE)

    log(
        f"train: {data.characters_in_train} characters of {', '.join(data.train_alphabets)} "
        f"({data.train.num_classes} classes with rotations); held out: {data.test.num_classes} characters "
        f"of {', '.join(data.test_alphabets)}"
    )
    run = make_episode_runner(embedder, memory, optimizer)
    by_class = data.train.indices_by_class()
    eval_memory = episodic_memory(config, seed_offset=1)
    validation_run = make_episode_runner(embedder, eval_memory)  # traced once, reused
    history = []

    def draw(step):
        batch = sample_episodes(by_class, step_rng(train_settings.seed, step), train_settings.episode_width,
                                train_settings.episode_length, train_settings.batch_size)
        ids = memory_labels(batch.labels, batch.classes, train_settings.episode_width, train_settings.lifelong)
        return to_float(data.train.images[batch.indices.reshape(-1)]), ids, batch.labels

    def update(images, ids, episode_labels):
        if not train_settings.lifelong:
            memory.reset()
        loss, predictions = run(tf.constant(images), tf.constant(ids))
        return loss, (predictions.numpy() == ids, shots_seen(episode_labels))

    def on_validate(done, losses, outcomes, seconds):
        correct = np.concatenate([hits for hits, _ in outcomes], axis=1)
        shots = np.concatenate([seen for _, seen in outcomes], axis=1)
        valid = validate(embedder, eval_memory, data.monitor, config, train_settings.validation_episodes,
                         train_settings.seed, run=validation_run)
        record = {
            "stage": "memory",
            "step": done,
            "train_loss": float(np.mean(losses)),
            "train_per_shot": accuracy_by_shot(correct, shots, int(shots.max())),
            "heldout_accuracy": valid["accuracy"],
            "heldout_per_shot": valid["per_shot"],
            "seconds": seconds,
            **{f"heldout_1nn_{k}": v for k, v in monitor_accuracy(embedder, data.monitor, train_settings.seed).items()},
        }
        history.append(record)
        with open(out_dir / LOG_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        log(
            f"step {done}: train loss {record['train_loss']:.4f}; train {format_per_shot(record['train_per_shot'])}"
            f"\n  held-out ({train_settings.validation_episodes} episodes) {format_per_shot(valid['per_shot'])}"
        )

    def on_checkpoint(done):
        save_checkpoint(out_dir, done, lambda prefix: _write_checkpoint(prefix, checkpoint, memory, train_settings.lifelong))

    seconds = run_stage("train", "batch", start, train_settings.steps, train_settings.validate_every, draw, update,
                        step_var, clock_offset, on_validate, progress, checkpoint_every=train_settings.checkpoint_every,
                        on_checkpoint=on_checkpoint, loss_format=".4f")
    return {"steps": int(step_var.numpy()), "started_at": start, "history": history, "split": data.describe(),
            "seconds": round(seconds, 1)}


def _write_checkpoint(prefix: Path, checkpoint, memory, lifelong: bool) -> None:
    checkpoint.write(str(prefix))
    if lifelong:
        memory.save(prefix.parent / MEMORY_FILE)
