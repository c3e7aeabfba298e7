"""FaceNet (Inception-ResNet-v1, davidsandberg 20170512-110547) in TensorFlow 2 / Keras 3.

    model = load_facenet()                      # fetched once into the cache, hash-checked
    emb = model(crops, training=phase_train)    # the train-phase switch (BatchNorm + Dropout)
    pretrained = load_pretrained()              # the same network plus its weights' identity
    embedder = Embedder.from_pretrained(pretrained, batch_size=32)
    result = embedder.embed_paths(paths, keep_crops=True)   # one pass: crops and embeddings, both cached
    embedder.embed_crops(crops)                 # prewhitened [n,160,160,3] -> unit [n,128]
    prepared = prepare_crops(paths)             # cached MTCNN alignment + prewhitening only

`phase_train` only switches BatchNorm (batch statistics + moving-average updates)
and Dropout; gradients flow in both phases, so fine-tuning with the phase off
(moving statistics) is possible. `forward(model, x, phase_train)` is the same call
under a name that says so.
"""

from facenet_tf.align import AlignSettings, FaceAligner, crop_with_margin, prewhiten
from facenet_tf.embedder import EmbeddedPaths, Embedder, PreparedCrops, prepare_crops
from facenet_tf.errors import (FaceTooSmallError, ImageSkipError, NoFaceError,
                               UnreadableImageError, WeightsError)
from facenet_tf.fetch import ensure_celebrities, ensure_sdist, ensure_weights
from facenet_tf.images import IMAGE_EXTENSIONS, MAX_IMAGE_SIDE, load_rgb
from facenet_tf.model import build_inception_resnet_v1
from facenet_tf.registry import DEFAULT_WEIGHTS, WEIGHTS_SOURCES, WeightsSource
from facenet_tf.weights import (LoadReport, PretrainedFaceNet, load_facenet, load_h5_weights, load_pretrained,
                                read_residual_scales)


def forward(model, crops, phase_train: bool):
    """Embeddings with the train-phase switch: BatchNorm/Dropout in training mode iff `phase_train`."""
    return model(crops, training=bool(phase_train))


__all__ = [
    "AlignSettings", "DEFAULT_WEIGHTS", "EmbeddedPaths", "Embedder", "FaceAligner",
    "FaceTooSmallError", "IMAGE_EXTENSIONS", "ImageSkipError", "LoadReport", "MAX_IMAGE_SIDE",
    "NoFaceError", "PreparedCrops", "PretrainedFaceNet", "UnreadableImageError", "WEIGHTS_SOURCES", "WeightsError",
    "WeightsSource", "build_inception_resnet_v1", "crop_with_margin", "ensure_celebrities",
    "ensure_sdist", "ensure_weights", "forward", "load_facenet", "load_h5_weights", "load_pretrained", "load_rgb",
    "prepare_crops", "prewhiten", "read_residual_scales",
]
