"""FaceNet (Inception-ResNet-v1, davidsandberg 20170512-110547) in TensorFlow 2 / Keras 3.

    model = load_facenet()                      # fetched once into the cache, hash-checked
    emb = model(crops, training=phase_train)    # the train-phase switch (BatchNorm + Dropout)
    pretrained = load_pretrained()              # the same network plus its weights' identity
    embedder = Embedder.from_pretrained(pretrained, batch_size=32)
    result = embedder.embed_paths(paths, keep_crops=True)   # one pass: crops and embeddings, both cached
    embedder.embed_crops(crops)                 # prewhitened [n,160,160,3] -> unit [n,128]
    prepared = prepare_crops(paths)             # cached MTCNN alignment + prewhitening only

Fine-tuning only the top of the network: `facenet_tf.trainable_scope.split_facenet(model,
"Block8")` and `FrozenFeatures` (the frozen part's output, computed once and cached).

`phase_train` only switches BatchNorm (batch statistics + moving-average updates)
and Dropout; gradients flow in both phases, so fine-tuning with the phase off
(moving statistics) is possible. `forward(model, x, phase_train)` is the same call
under a name that says so.
"""

import importlib

# Names and the submodule that defines them. They are imported on first use (PEP 562),
# so that `import facenet_tf.images` or a dataset scan does not start TensorFlow: the
# command line checks a user's data and settings before paying TensorFlow's start-up.
_SUBMODULE_OF = {
    **dict.fromkeys(("AlignSettings", "FaceAligner", "crop_with_margin", "prewhiten"), "align"),
    **dict.fromkeys(("EmbeddedPaths", "Embedder", "PreparedCrops", "prepare_crops"), "embedder"),
    **dict.fromkeys(("FaceTooSmallError", "ImageSkipError", "NoFaceError", "UnreadableImageError", "WeightsError"),
                    "errors"),
    **dict.fromkeys(("ensure_celebrities", "ensure_sdist", "ensure_weights"), "fetch"),
    **dict.fromkeys(("IMAGE_EXTENSIONS", "MAX_IMAGE_SIDE", "load_rgb"), "images"),
    "build_inception_resnet_v1": "model",
    **dict.fromkeys(("DEFAULT_WEIGHTS", "WEIGHTS_SOURCES", "WeightsSource"), "registry"),
    **dict.fromkeys(("LoadReport", "PretrainedFaceNet", "load_facenet", "load_h5_weights", "load_pretrained",
                     "read_residual_scales"), "weights"),
}


def __getattr__(name: str):
    submodule = _SUBMODULE_OF.get(name)
    if submodule is None:
        raise AttributeError(f"module 'facenet_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"facenet_tf.{submodule}"), name)
    globals()[name] = value
    return value


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
