"""Shared test settings.

TF32 is switched off so that a near-tie in cosine similarity cannot flip between
a CPU and a GPU run. Tests that need the real FaceNet weights are marked
`weights`; they fetch the weights once per machine into the user's cache (never
deleted by a test).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

tf.config.experimental.enable_tensor_float_32_execution(False)

# FaceNet session fixtures (model, celebrity set and embeddings), built once per session.
from facenet_fixtures import (  # noqa: E402,F401
    celebrities,
    celebrity_embeddings,
    celebrity_photo,
    facenet_embedder,
    facenet_model,
    facenet_pretrained,
    messy_folder,
)
