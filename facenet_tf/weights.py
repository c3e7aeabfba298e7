"""Load keras-facenet-style h5 weights into the Keras 3 model, strictly, with h5py.

The file is Keras 2.1.2: weights under `model_weights/<layer>/<layer>/<var>:0`,
the architecture in the `model_config` attribute (JSON). Keras 3 cannot
deserialize its Lambda layers, so the residual scales are read from that JSON and
the weights are assigned by layer and variable name. Loading fails, naming the
layer, when a model layer with weights gets none, a weight in the file is left
unused, or a shape differs; a half-loaded FaceNet is never returned.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import keras
import numpy as np

from facenet_tf.errors import WeightsError
from facenet_tf.model import (
    DEFAULT_EMBEDDING_SIZE,
    DEFAULT_INPUT_SIZE,
    build_inception_resnet_v1,
    residual_scale_names,
)
from facenet_tf.registry import DEFAULT_WEIGHTS, WEIGHTS_SOURCES, WeightsSource
from kshot_io import cache_root, sha256_of_file

# A keras-facenet-style file given by path has no registry entry; it gets the
# preprocessing of davidsandberg's models, of which such files are conversions.
DEFAULT_PREWHITEN = True


@dataclass(frozen=True)
class LoadReport:
    """What a load assigned: layer names and counts by layer type."""

    layers_loaded: tuple[str, ...]
    variables_loaded: int
    by_type: dict[str, int] = field(default_factory=dict)


def _open_h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as error:
        raise WeightsError(f"{path} is not a readable HDF5 weights file ({error}). {_unreadable_remedy(path)}") from error


def _unreadable_remedy(path: Path) -> str:
    """What to do about an unreadable weights file: deleting is only advised for the cache's own copies."""
    try:
        with open(path, "rb") as handle:
            if handle.read(4) == b"PK\x03\x04":
                return ("It is a zip/.npz archive (a kshot gallery, memory state or embeddings file?), not "
                        "weights: give --weights a registry name or a Keras h5 weights file.")
        inside_cache = Path(path).resolve().is_relative_to(cache_root().resolve())
    except OSError:
        inside_cache = False
    if inside_cache:
        return "If it is truncated, delete it: a file in the kshot cache is fetched again on the next run."
    return "If it is a truncated download, download it again; check that --weights names the weights file."


def _decode(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_residual_scales(path: str | os.PathLike) -> dict[str, float]:
    """Residual scales from the h5's model_config: {'Block35_1_ScaleSum': 0.17, ...}."""
    path = Path(path)
    with _open_h5(path) as f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise WeightsError(f"{path} has no model_config attribute; is it a Keras 2 full-model h5?")
        config = json.loads(_decode(raw))
    scales = {}
    for layer in config.get("config", {}).get("layers", []):
        arguments = (layer.get("config") or {}).get("arguments") or {}
        if layer.get("class_name") == "Lambda" and "scale" in arguments:
            scales[layer["name"]] = float(arguments["scale"])
    missing = sorted(set(residual_scale_names()) - set(scales))
    if missing:
        raise WeightsError(f"{path}: model_config has no residual scale for layers {missing[:5]}")
    return scales


def _file_weights(f: h5py.File, path: Path) -> dict[str, dict[str, np.ndarray]]:
    group = f["model_weights"] if "model_weights" in f else f
    if "layer_names" not in group.attrs:
        raise WeightsError(f"{path} has no layer_names attribute; not a Keras h5 weights file")
    weights: dict[str, dict[str, np.ndarray]] = {}
    for layer_name in map(_decode, group.attrs["layer_names"]):
        layer_group = group[layer_name]
        names = [_decode(n) for n in layer_group.attrs.get("weight_names", [])]
        if not names:
            continue
        try:
            weights[layer_name] = {n.split("/")[-1].split(":")[0]: np.asarray(layer_group[n]) for n in names}
        except (KeyError, OSError) as error:
            raise WeightsError(f"{path}: cannot read the weights of layer {layer_name}: {error}") from error
    return weights


def load_h5_weights(model: keras.Model, path: str | os.PathLike) -> LoadReport:
    """Assign every weight of `model` from the h5 at `path`; strict, by layer and variable name."""
    path = Path(path)
    with _open_h5(path) as f:
        stored = _file_weights(f, path)
    model_layers = {layer.name: layer for layer in model.layers if layer.weights}
    missing = sorted(set(model_layers) - set(stored))
    if missing:
        raise WeightsError(f"{path}: no weights for model layer {missing[0]} ({len(missing)} layers missing)")
    unused = sorted(set(stored) - set(model_layers))
    if unused:
        raise WeightsError(f"{path}: weights of layer {unused[0]} are not used by the model ({len(unused)} layers unused)")
    plan = []
    for name, layer in model_layers.items():
        file_vars = stored[name]
        model_vars = {v.name: v for v in layer.weights}
        if set(file_vars) != set(model_vars):
            raise WeightsError(
                f"{path}: layer {name} has weights {sorted(file_vars)} in the file but "
                f"{sorted(model_vars)} in the model"
            )
        for var_name, variable in model_vars.items():
            value = file_vars[var_name]
            if tuple(value.shape) != tuple(variable.shape):
                raise WeightsError(
                    f"{path}: layer {name} weight {var_name} has shape {tuple(value.shape)} in the "
                    f"file but {tuple(variable.shape)} in the model"
                )
            plan.append((variable, value))
    for variable, value in plan:   # assign only once everything matched
        variable.assign(value.astype(variable.dtype))
    by_type: dict[str, int] = {}
    for layer in model_layers.values():
        by_type[type(layer).__name__] = by_type.get(type(layer).__name__, 0) + 1
    return LoadReport(tuple(model_layers), len(plan), by_type)


def resolve_weights(weights: str | os.PathLike | None) -> tuple[Path, str, WeightsSource | None]:
    """Registry name or h5 path -> (path, sha256, registry entry or None)."""
    from facenet_tf.fetch import ensure_weights  # fetching is needed only for registry names

    if weights is None or (isinstance(weights, str) and weights in WEIGHTS_SOURCES):
        source = WEIGHTS_SOURCES[weights or DEFAULT_WEIGHTS]
        return ensure_weights(source), source.h5_sha256, source
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"FaceNet weights {weights!r} is neither a file nor a registry name "
            f"({sorted(WEIGHTS_SOURCES)})"
        )
    return path, sha256_of_file(path), None


@dataclass(frozen=True)
class PretrainedFaceNet:
    """A loaded FaceNet and its identity: the weights' hash keys the embedding cache.

    The identity travels as a value next to the model instead of an attribute set on
    it, so whatever embeds through the cache is handed the key explicitly, and a
    model built elsewhere has no key unless given one. It describes the weights as
    loaded: once `.model` is fine-tuned, embed with a plain `Embedder(model)`,
    which never caches. `prewhiten` and the model's input size come from the
    registry entry, or davidsandberg's defaults for a file given by path.
    """

    model: keras.Model
    weights_sha256: str
    prewhiten: bool
    load_report: LoadReport
    source: WeightsSource | None = None

    @property
    def input_size(self) -> int:
        return int(self.model.input_shape[1])


def load_pretrained(weights: str | os.PathLike | None = None) -> PretrainedFaceNet:
    """The pretrained FaceNet with its identity: registry name (default 20170512-110547) or a keras-facenet-style h5 path."""
    path, digest, source = resolve_weights(weights)
    scales = read_residual_scales(path)
    model = build_inception_resnet_v1(
        input_size=source.input_size if source else DEFAULT_INPUT_SIZE,
        embedding_size=source.embedding_size if source else DEFAULT_EMBEDDING_SIZE,
        residual_scales=scales,
        name="facenet",
    )
    report = load_h5_weights(model, path)
    return PretrainedFaceNet(model, digest, source.prewhiten if source else DEFAULT_PREWHITEN, report, source)


def load_facenet(weights: str | os.PathLike | None = None) -> keras.Model:
    """The pretrained network alone, for training and direct calls: `model(x, training=phase_train)`.

    It maps prewhitened float32 [B, 160, 160, 3] crops to unit-norm [B, 128]
    embeddings. To embed photos through the caches, use `load_pretrained`, which
    also returns the weights' identity the cache is keyed on.
    """
    return load_pretrained(weights).model
