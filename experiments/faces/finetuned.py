"""The Kaiser memory whose loss fine-tunes FaceNet: one adapter for every fine-tuning variant.

What learns: FaceNet from the block `[finetune] trainable_from` up (see
facenet_tf.trainable_scope), plus the memory's query projection when
`[memory] query_projection` is on. Everything below that block is frozen; its
output is computed once per image (and cached on disk), so a learn step and a
re-embedding run only the top. `trainable_from = "all"` trains the whole network.

One learn step (one iteration of the protocol, one image of every class fed):
  1. the fed batch goes through the top with the train-phase switch OFF or ON
     (BatchNorm batch statistics and Dropout in the trained part only; the frozen
     part always uses its moving statistics); the memory's margin loss against the
     memory as it was before this shot; one optimizer step, skipped when the loss
     is zero (a zero hinge has a zero gradient);
  2. `steps_per_shot - 1` more steps, each over every image fed so far in this
     repeat (several passes over what has been fed; the memory is not changed);
  3. the write, by one of two rules:
     - `keys = "learn_pass"` (the blog's code): the keys are the queries of step 1's
       forward pass, so with the switch ON they come from training mode (batch
       statistics of the fed batch) while every read embeds in inference mode;
     - `keys = "rebuilt"` (consistent): the memory is emptied and every batch fed so
       far is written again, in feed order, embedded in inference mode by the
       current weights; stored keys and queries then come from the same network in
       the same mode (no stale keys from weights that no longer exist).
Evaluation embeds in inference mode. Every repeat starts from the pretrained weights
(BatchNorm moving statistics included), a fresh optimizer state, a reset memory and
dropout masks seeded by the repeat, so a repeat is the same in any process.

Forward and backward passes run as traced tf.functions with a [None, ...] signature,
traced once per adapter, not once per repeat.
"""

from __future__ import annotations

import hashlib

import keras
import numpy as np
import tensorflow as tf

from facenet_tf.trainable_scope import FrozenFeatures, split_facenet

KEY_RULES = ("learn_pass", "rebuilt")


class FinetunedMemory:
    """A fine-tuned memory variant; see the module docstring for the learn step."""

    def __init__(self, facenet, crops: np.ndarray, initial_embeddings: np.ndarray, labels: np.ndarray,
                 memory, finetune, phase_train: bool, keys: str = "learn_pass"):


        if keys not in KEY_RULES:
            raise ValueError(f"keys must be one of {', '.join(KEY_RULES)}, got {keys!r}")
        self.finetune = finetune
        self.phase_train = bool(phase_train)
        self.keys = keys
        self.initial_embeddings = np.asarray(initial_embeddings, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.memory = memory
        split = split_facenet(facenet, finetune.trainable_from)
        self.top = split.top
        self.features = FrozenFeatures(split, batch_size=finetune.batch_size).of_crops(crops)
        self.initial_top = [np.array(w, copy=True) for w in self.top.get_weights()]
        self.variables = list(self.top.trainable_variables) + list(memory.trainable_variables)
        optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
        self.optimizer = optimizers[finetune.optimizer](learning_rate=finetune.learning_rate)
        self.optimizer.build(self.variables)
        self.initial_optimizer = [np.array(v.numpy(), copy=True) for v in self.optimizer.variables]
        self.fed: list[np.ndarray] = []
        self.seed = 0
        self.weights_changed = False

        top, variables, phase = self.top, self.variables, self.phase_train
        inputs = tf.TensorSpec((None, *self.features.shape[1:]), tf.float32)
        label_spec = tf.TensorSpec((None,), tf.int64)

        @tf.function(input_signature=[inputs, label_spec])
        def gradients(x, y):
            with tf.GradientTape() as tape:
                queries = top(x, training=phase)
                loss = memory.loss(queries, y)
            grads = tape.gradient(loss, variables)
            return queries, loss, [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]

        @tf.function(input_signature=[[tf.TensorSpec(v.shape, v.dtype) for v in variables]])
        def apply(grads):
            self.optimizer.apply_gradients(zip(grads, variables))

        @tf.function(input_signature=[inputs])
        def embed(x):
            return top(x, training=False)

        # The memory's own calls, traced too: eager, each is dozens of small ops.
        keys = tf.TensorSpec((None, self.initial_embeddings.shape[1]), tf.float32)
        self._write = tf.function(lambda q, y: memory.write(q, y).labels, input_signature=[keys, label_spec])
        self._lookup = tf.function(lambda q: memory.lookup(q), input_signature=[keys])
        self.last_similarity = np.zeros(0, np.float32)  # for open-set scoring (experiments.faces.open_set)
        self._gradients, self._apply, self._embed = gradients, apply, embed

    def start_repeat(self, seed: int) -> None:
        self.top.set_weights(self.initial_top)
        # Dropout masks under phase ON come from Keras SeedGenerator states, which are not
        # weights (set_weights leaves them): set each to the repeat's seed.
        for index, variable in enumerate(v for v in self.top.variables if "seed_generator_state" in v.path):
            variable.assign(np.array([int(seed), index], dtype=variable.dtype))
        for variable, value in zip(self.optimizer.variables, self.initial_optimizer):
            variable.assign(value)
        self.seed = int(seed)
        self.memory.reset(seed=self.seed)
        self.fed = []
        self.weights_changed = False

    def _step(self, indices: np.ndarray):
        queries, loss, grads = self._gradients(self.features[indices], self.labels[indices])
        if self.phase_train:
            # A training-mode pass moves BatchNorm's moving statistics even when the loss is zero.
            self.weights_changed = True
        if float(loss) != 0.0:
            self._apply(grads)
            self.weights_changed = True
        return queries, float(loss)

    def learn(self, feed: np.ndarray) -> float:
        self.fed.append(np.asarray(feed, dtype=np.int64))
        queries, loss = self._step(feed)
        everything = np.concatenate(self.fed)
        for _ in range(self.finetune.steps_per_shot - 1):
            self._step(everything)
        if self.keys == "learn_pass":
            self._write(queries, self.labels[feed])
        else:
            self._rebuild_memory()
        return loss

    def _rebuild_memory(self) -> None:
        """Empty the memory and write every fed batch again, embedded by the current weights."""
        learned = [v.read_value() for v in self.memory.trainable_variables]
        self.memory.reset(seed=self.seed)   # same age noise as the first time round
        for variable, value in zip(self.memory.trainable_variables, learned):
            variable.assign(value)          # reset redraws the projection; keep the trained one
        everything = np.concatenate(self.fed)
        keys = self.embed(everything)
        start = 0
        for batch in self.fed:
            self._write(keys[start:start + len(batch)], self.labels[batch])
            start += len(batch)

    def embed(self, indices: np.ndarray) -> np.ndarray:
        """Inference-mode embeddings of `indices` under the current weights."""
        if not self.weights_changed:
            return self.initial_embeddings[indices]
        chunks = [self._embed(self.features[indices[i:i + self.finetune.batch_size]]).numpy()
                  for i in range(0, len(indices), self.finetune.batch_size)]   # bounds activation memory
        return np.concatenate(chunks).astype(np.float32) if chunks else np.empty((0, self.initial_embeddings.shape[1]), np.float32)

    def step(self, feed: np.ndarray, evaluate: np.ndarray) -> tuple[float, np.ndarray]:
        loss = self.learn(feed) if len(feed) else 0.0
        answer = self._lookup(self.embed(evaluate))
        self.last_similarity = answer.similarity.numpy()
        return loss, answer.labels.numpy().astype(np.int64)

    def embeddings_of(self, indices: np.ndarray) -> np.ndarray:
        """The items' embeddings as this method sees them now (open-set calibration reads them)."""
        return self.embed(indices)

    def memory_bytes(self) -> int:
        return int(self.memory.footprint_bytes()["total"])

    def slots_in_use(self) -> int:
        return int(self.memory.slots_in_use())

    def weights_digest(self) -> str:
        """A short hash of the trained FaceNet weights (tests use it to see change and reset)."""
        digest = hashlib.sha256()
        for w in self.top.get_weights():
            digest.update(np.ascontiguousarray(w).tobytes())
        return digest.hexdigest()[:16]
