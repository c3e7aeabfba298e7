"""The fine-tuned adapter's learn step on a random-weights FaceNet: step counts and the two key rules."""

import numpy as np
import pytest

from experiments.core.memories import build_memory
from experiments.faces import settings as cfg
from experiments.faces.finetuned import FinetunedMemory
from facenet_tf import build_inception_resnet_v1


@pytest.fixture(scope="module")
def facenet_and_data():
    model = build_inception_resnet_v1()
    rng = np.random.default_rng(0)
    crops = rng.normal(size=(6, 160, 160, 3)).astype(np.float32)
    embeddings = model(crops, training=False).numpy()
    return model, crops, embeddings, np.array([0, 1, 2, 0, 1, 2])


def adapter(facenet_and_data, keys, phase_train, steps, tmp_path, monkeypatch):
    monkeypatch.setenv("KSHOT_CACHE", str(tmp_path))
    model, crops, embeddings, labels = facenet_and_data
    memory_settings = cfg.MemorySection(alpha=2.0, memory_size=8)   # alpha 2: every fed item has a loss
    finetune = cfg.FinetuneSection(trainable_from="bottleneck", steps_per_shot=steps, learning_rate=1e-2, batch_size=4)
    memory = build_memory("kaiser", embeddings.shape[1], memory_settings, seed=0)
    return FinetunedMemory(model, crops, embeddings, labels, memory, finetune, phase_train, keys)


@pytest.mark.parametrize("steps", [1, 3])
def test_steps_per_shot_passes_over_everything_fed(facenet_and_data, tmp_path, monkeypatch, steps):
    tuned = adapter(facenet_and_data, "learn_pass", False, steps, tmp_path, monkeypatch)
    batches = []
    original = tuned._step
    monkeypatch.setattr(tuned, "_step", lambda idx: (batches.append(list(idx)), original(idx))[1])
    tuned.start_repeat(7)
    tuned.step(np.array([0, 1, 2]), np.array([3, 4, 5]))
    tuned.step(np.array([3, 4, 5]), np.array([]))
    everything_first, everything = [0, 1, 2], [0, 1, 2, 3, 4, 5]
    assert batches == ([[0, 1, 2]] + [everything_first] * (steps - 1) + [[3, 4, 5]] + [everything] * (steps - 1))


def test_rebuilt_keys_are_the_current_inference_embeddings_of_everything_fed(facenet_and_data, tmp_path, monkeypatch):
    tuned = adapter(facenet_and_data, "rebuilt", True, 2, tmp_path, monkeypatch)
    tuned.start_repeat(11)
    tuned.step(np.array([0, 1, 2]), np.array([3, 4, 5]))
    tuned.step(np.array([3, 4, 5]), np.array([0]))
    assert tuned.weights_changed
    # the same memory, rebuilt by hand from the adapter's current inference embeddings
    fresh = build_memory("kaiser", 128, cfg.MemorySection(alpha=2.0, memory_size=8), seed=11)
    fresh.write(tuned.embed(np.array([0, 1, 2])), np.array([0, 1, 2]))
    fresh.write(tuned.embed(np.array([3, 4, 5])), np.array([0, 1, 2]))
    np.testing.assert_allclose(tuned.memory.keys.numpy(), fresh.keys.numpy(), atol=1e-6)
    np.testing.assert_array_equal(tuned.memory.values.numpy(), fresh.values.numpy())


def test_learn_pass_with_phase_on_writes_training_mode_keys(facenet_and_data, tmp_path, monkeypatch):
    tuned = adapter(facenet_and_data, "learn_pass", True, 1, tmp_path, monkeypatch)
    tuned.start_repeat(3)
    training_mode = tuned.top(tuned.features[[0, 1, 2]], training=True).numpy()   # moves BN statistics: reset after
    tuned.start_repeat(3)
    tuned.step(np.array([0, 1, 2]), np.array([3]))   # empty memory: zero loss, no optimizer step
    stored = tuned.memory.keys.numpy()[tuned.memory.values.numpy() >= 0]
    np.testing.assert_allclose(np.sort(stored, axis=0), np.sort(training_mode, axis=0), atol=1e-5)
    inference = tuned.initial_embeddings[[0, 1, 2]]
    assert not np.allclose(np.sort(stored, axis=0), np.sort(inference, axis=0), atol=1e-3)
