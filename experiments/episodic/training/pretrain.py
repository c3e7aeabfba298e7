"""Stage 1 of the Omniglot recipe: pre-train the embedder as a classifier of the rotated training classes.

Episodic memory-loss training from random weights learns slowly on a CPU: every update
sees one batch of episodes and compares each drawing with a handful of classes. A
softmax over all 2,852 rotated training classes compares every drawing with every
class at once, so the same images buy far more learning; the stages that follow
(finetune.py when configured, then the memory loss in train.py) start from a good
embedding. The classifier head is a cosine softmax (normalised key against normalised
class weights, times a learned scale), because the memory and the 1-NN readout compare
keys by cosine similarity too, so what the head learns is what the readouts use. An optional additive margin
(`[pretrain] margin`, CosFace) subtracts a constant from the true class's cosine before
the softmax, so a drawing is only counted right when it is closer to its own class by
that much; the classes of the training alphabets then sit further apart, and unseen
characters land between them with more room (docs/OMNIGLOT.md has the measurement).
Augmentation (`augmented`, which finetune.py uses too): a random shift of up to
`[pretrain] shift` pixels, and optionally a small random rotation and scaling
(`rotation`, `zoom`). The learning rate follows a cosine decay to zero over
`[pretrain] steps`.

Everything lives under `<run>/pretrain/`: checkpoints (embedder, head, optimizer, step)
published by `latest.json` as in train.py, and `log.jsonl` with held-out 1-NN accuracy
and the cumulative training seconds (the learning curve of docs/OMNIGLOT.md). An
interrupted run resumes from the last checkpoint with the same batches it would have
drawn (batch s comes from step_rng(seed, s)).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from experiments.core.run_dir import latest_checkpoint
from experiments.core.run_files import LOG_FILE, PRETRAIN_DIR
from experiments.episodic.data import to_float
from experiments.episodic.episodes import step_rng
from experiments.episodic.model import build_model
from experiments.episodic.training.stages import (
    heldout_summary,
    last_logged_seconds,
    log_stage_step,
    rounded_mean,
    run_stage,
    stage_checkpoint,
)


def shifted(images: np.ndarray, rng: np.random.Generator, shift: int) -> np.ndarray:
    """uint8 [n, s, s] images, each translated by its own random offset in [-shift, shift]^2 (zeros fill)."""
    if shift == 0:
        return images
    n, size = images.shape[0], images.shape[1]
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift)))
    rows = rng.integers(0, 2 * shift + 1, n)[:, None] + np.arange(size)
    cols = rng.integers(0, 2 * shift + 1, n)[:, None] + np.arange(size)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def rotated_and_zoomed(images: np.ndarray, rng: np.random.Generator, degrees: float, zoom: float) -> np.ndarray:
    """float32 [n, s, s, 1] images, each rotated about its centre by up to `degrees` and scaled by [1-zoom, 1+zoom].

    Bilinear resampling (TensorFlow's projective transform), zeros outside the drawing.
    With degrees = zoom = 0 the images come back unchanged and no random numbers are drawn.
    """
    if degrees == 0 and zoom == 0:
        return images

    n, size = images.shape[0], images.shape[1]
    angle = np.deg2rad(rng.uniform(-degrees, degrees, n))
    scale = rng.uniform(1.0 - zoom, 1.0 + zoom, n)
    # The transform maps each output pixel to the input pixel it samples: the inverse rotation and scaling.
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    centre = (size - 1) / 2.0
    transforms = np.stack([cos, sin, centre - cos * centre - sin * centre,
                           -sin, cos, centre + sin * centre - cos * centre,
                           np.zeros(n), np.zeros(n)], axis=1).astype(np.float32)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.constant(images), transforms=tf.constant(transforms), output_shape=tf.constant([size, size]),
        fill_value=tf.constant(0.0), interpolation="BILINEAR", fill_mode="CONSTANT").numpy()


def augmented(images: np.ndarray, rng: np.random.Generator, settings) -> np.ndarray:
    """uint8 [n, s, s] drawings -> float32 [n, s, s, 1] embedder inputs with the `[pretrain]` augmentation.

    One function for both stages that augment, so they cannot drift apart. The random
    numbers are drawn in a fixed order (shift, then rotation and zoom) and a switched-off
    step draws none: a batch depends only on its generator and the settings.
    """
    images = to_float(shifted(images, rng, settings.shift))
    return rotated_and_zoomed(images, rng, settings.rotation, settings.zoom)


def make_cosine_head(key_dim: int, classes: int, scale: float, seed: int, members: int = 1):
    """Class weights [members * key_dim, classes] (one block of rows per member) and a learned
    scale, tracked by one tf.Module for checkpoints."""

    head = tf.Module(name="cosine_head")
    initial = tf.random.stateless_normal([members * key_dim, classes], seed=[seed, 17], stddev=1.0 / np.sqrt(key_dim))
    head.weights = tf.Variable(initial, name="class_weights")
    head.scale = tf.Variable(float(scale), name="scale")
    return head


def cosine_logits(keys, class_weights, scale, labels, margin: float, members: int = 1):
    """(logits, cosines), each [n, members, c], of the cosine-softmax head.

    Keys [n, members * d] and class weights [members * d, c] are split into the members'
    blocks, and member m's unit key is compared with member m's unit class weights only:
    every member is trained as its own classifier, as if it were trained alone. The
    margin is subtracted from each drawing's true-class cosine only, before the scale;
    the cosines themselves (what a readout compares) are returned unchanged.
    """

    width = class_weights.shape[0] // members
    member_keys = tf.math.l2_normalize(tf.reshape(keys, [-1, members, width]), axis=2)
    member_weights = tf.math.l2_normalize(tf.reshape(class_weights, [members, width, -1]), axis=1)
    cosines = tf.einsum("nmd,mdc->nmc", member_keys, member_weights)
    logits = scale * (cosines - margin * tf.one_hot(labels, tf.shape(class_weights)[1])[:, None, :])
    return logits, cosines


def classifier_loss(logits, labels):
    """Softmax cross-entropy of [n, members, c] logits, averaged over drawings and members."""

    members = tf.shape(logits)[1]
    repeated = tf.repeat(labels[:, None], members, axis=1)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(repeated, logits))


def pretrain(config, out_dir, data, log: Callable[[str], None] = print, progress: bool = True) -> Path | None:
    """Run (or finish) the classifier stage; returns the checkpoint prefix holding the embedder, or None.

    `data` is split.EpisodicSplit. With `[pretrain] steps = 0` nothing is done.
    """
    settings, seed, key_dim = config.pretrain, config.train.seed, config.model.key_dim
    if settings.steps == 0:
        return None

    stage_dir = Path(out_dir) / PRETRAIN_DIR
    found = stage_checkpoint(stage_dir)
    if found is not None and found[0] >= settings.steps:
        return found[1]

    keras.utils.set_random_seed(seed)
    embedder = build_model(config)
    train = data.train
    members = config.model.members
    head = make_cosine_head(key_dim, train.num_classes, settings.scale, seed, members)
    schedule = keras.optimizers.schedules.CosineDecay(settings.learning_rate, settings.steps)
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(embedder=embedder, head=head, optimizer=optimizer, step=step_var)
    if found is not None:
        optimizer.build(embedder.trainable_variables + list(head.trainable_variables))
        checkpoint.read(str(found[1])).assert_existing_objects_matched()
        log(f"resuming classifier pre-training in {stage_dir} from step {found[0]}")
    start = int(step_var.numpy())
    variables = embedder.trainable_variables + [head.weights, head.scale]
    margin = float(settings.margin)

    @tf.function
    def update(images, labels):
        with tf.GradientTape() as tape:
            logits, cosines = cosine_logits(embedder(images, training=True), head.weights, head.scale, labels,
                                            margin, members)
            loss = classifier_loss(logits, labels)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        # the members' classifier together: the class with the highest mean cosine
        hits = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(tf.reduce_mean(cosines, axis=1), axis=1), labels), tf.float32))
        return loss, hits

    log_path = stage_dir / LOG_FILE
    log(f"classifier pre-training: {train.num_classes} classes, {train.images.shape[0]} images, "
        f"{settings.steps} steps of {settings.batch_size}")

    def draw(step):
        rng = step_rng(seed, step)
        rows = rng.choice(train.images.shape[0], size=settings.batch_size, replace=False)
        images = augmented(train.images[rows], rng, settings)
        return tf.constant(images), tf.constant(train.labels[rows].astype(np.int64))

    def on_validate(done, losses, hits, seconds):
        loss, hit = rounded_mean(losses), rounded_mean(hits)
        record = log_stage_step(log_path, checkpoint, embedder, data.monitor, seed, {
            "stage": "pretrain", "step": done, "images": done * settings.batch_size,
            "train_loss": loss, "train_accuracy": hit, "seconds": seconds})
        log(f"pretrain step {done}: loss {loss:.3f}, train acc {hit:.3f}, held-out 1-NN {heldout_summary(record)}")

    run_stage("pretrain", "batch", start, settings.steps, settings.validate_every, draw, update, step_var,
              last_logged_seconds(log_path), on_validate, progress)
    return latest_checkpoint(stage_dir)[1]
