"""Stage 2 of the Omniglot recipe (optional): episodic fine-tuning at high way, between the classifier and the memory.

The classifier stage (pretrain.py) teaches the embedder to tell 2,852 training classes
apart through one weight vector per class; a few-shot task instead asks it to tell
apart drawings by their distance to one other drawing of each class. This stage trains
exactly that, from the classifier's weights: N-way episodes of `[finetune] ways`
training classes, one support drawing per class (`shots`) and `queries` more, and a
softmax over the cosines between each query and the class prototypes (the support
keys' mean; Snell et al.'s prototypical loss on cosines), times a fixed `scale`. With
20-way episodes every query is pulled away from 19 rivals, where the memory-loss
stage's 5-way episodes compare it with 4. `within_alphabet` draws the N classes of an
episode from one training alphabet (look-alikes, as in Lake et al.'s runs), which makes
every episode a hard one. Drawings get the classifier stage's augmentation.

The memory-loss stage (train.py) still follows and starts from this stage's weights,
so the memory loss remains part of the final training. docs/OMNIGLOT.md has the
measurements behind the preset's settings.

Everything lives under `<run>/finetune/`, as for pretrain.py: checkpoints (embedder,
optimizer, step) published by `latest.json`, and `log.jsonl` with validation 1-NN
accuracy and training seconds on the run's one clock. An interrupted run resumes from
the last checkpoint with the episodes it would have drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from experiments.core.run_dir import latest_checkpoint
from experiments.core.run_files import FINETUNE_DIR, LOG_FILE, PRETRAIN_DIR
from experiments.episodic.episodes import alphabet_pools, episode_classes
from experiments.episodic.model import build_model
from experiments.episodic.training.pretrain import augmented
from experiments.episodic.training.stages import (
    heldout_summary,
    last_logged_seconds,
    log_stage_step,
    rounded_mean,
    run_stage,
    stage_checkpoint,
)

_STREAM = 1  # episode s comes from default_rng([seed, s, _STREAM]), apart from the classifier stage's batches


def episode_rows(by_class: list[np.ndarray], classes: np.ndarray, rng: np.random.Generator, per_class: int) -> np.ndarray:
    """[ways, per_class] drawing indices: column 0.. shots-1 the support, the rest the queries."""
    return np.stack([rng.choice(by_class[c], per_class, replace=False) for c in classes])


def prototype_loss(keys, ways: int, shots: int, scale: float):
    """Softmax cross-entropy of each query's cosines to the N class prototypes.

    keys [ways * (shots + queries), d], class-major (class c's drawings are rows
    c*(shots+queries) ..., support first). The prototype is the mean of the unit support keys."""

    keys = tf.math.l2_normalize(keys, axis=1)
    keys = tf.reshape(keys, (ways, -1, keys.shape[-1]))
    prototypes = tf.math.l2_normalize(tf.reduce_mean(keys[:, :shots], axis=1), axis=1)
    queries = tf.reshape(keys[:, shots:], (-1, keys.shape[-1]))
    logits = scale * tf.matmul(queries, prototypes, transpose_b=True)
    labels = tf.repeat(tf.range(ways), tf.shape(keys)[1] - shots)
    hits = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels), tf.float32))
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)), hits


def finetune(config, out_dir, data, start_from: Path | None, log: Callable[[str], None] = print,
             progress: bool = True) -> Path | None:
    """Run (or finish) the episodic stage from the checkpoint prefix `start_from`; returns its
    checkpoint prefix, or None with `[finetune] steps = 0`. `data` is split.EpisodicSplit."""
    settings, seed = config.finetune, config.train.seed
    if settings.steps == 0:
        return None

    train = data.train
    if settings.ways > train.num_classes:
        raise ValueError(f"[finetune] ways = {settings.ways} but the training split has {train.num_classes} classes")
    per_class = settings.shots + settings.queries
    by_class = train.indices_by_class()
    smallest = min(len(rows) for rows in by_class)
    if per_class > smallest:
        raise ValueError(f"[finetune] shots + queries = {per_class} drawings per class, but a training class has only "
                         f"{smallest}; lower [finetune] queries")
    try:
        pools = alphabet_pools(train, settings.ways) if settings.within_alphabet else None
    except ValueError as error:
        raise ValueError(f"[finetune] within_alphabet, training alphabets: {error}") from None
    stage_dir = Path(out_dir) / FINETUNE_DIR
    found = stage_checkpoint(stage_dir)
    if found is not None and found[0] >= settings.steps:
        return found[1]

    keras.utils.set_random_seed(seed)
    embedder = build_model(config)
    optimizer = keras.optimizers.Adam(learning_rate=settings.learning_rate)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(embedder=embedder, optimizer=optimizer, step=step_var)
    if found is not None:
        optimizer.build(embedder.trainable_variables)
        checkpoint.read(str(found[1])).assert_existing_objects_matched()
        log(f"resuming episodic fine-tuning in {stage_dir} from step {found[0]}")
    elif start_from is not None:
        tf.train.Checkpoint(embedder=embedder).read(str(start_from)).expect_partial()
        log(f"episodic fine-tuning starts from {start_from}")
    start = int(step_var.numpy())
    scale = float(settings.scale)

    @tf.function
    def update(images):
        with tf.GradientTape() as tape:
            loss, hits = prototype_loss(embedder(images, training=True), settings.ways, settings.shots, scale)
        variables = embedder.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, hits

    log_path = stage_dir / LOG_FILE
    log(f"episodic fine-tuning: {settings.steps} episodes of {settings.ways} ways, {settings.shots} shot(s) and "
        f"{settings.queries} queries per class" + (", classes of one alphabet" if settings.within_alphabet else ""))
    augment = config.pretrain

    def draw(step):
        rng = np.random.default_rng([int(seed), int(step), _STREAM])
        classes = episode_classes(train.num_classes, pools, rng, settings.ways)
        rows = episode_rows(by_class, classes, rng, per_class).reshape(-1)
        return (tf.constant(augmented(train.images[rows], rng, augment)),)

    def on_validate(done, losses, hits, seconds):
        loss, hit = rounded_mean(losses), rounded_mean(hits)
        record = log_stage_step(log_path, checkpoint, embedder, data.monitor, seed, {
            "stage": "finetune", "step": done, "train_loss": loss, "train_accuracy": hit, "seconds": seconds})
        log(f"finetune step {done}: loss {loss:.3f}, query acc {hit:.3f}, held-out 1-NN {heldout_summary(record)}")

    clock_offset = last_logged_seconds(log_path, Path(out_dir) / PRETRAIN_DIR / LOG_FILE)
    run_stage("finetune", "episode", start, settings.steps, settings.validate_every, draw, update, step_var,
              clock_offset, on_validate, progress)
    return latest_checkpoint(stage_dir)[1]
