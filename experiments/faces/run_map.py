"""The map of a k-shot run: its data, and one model's memory after the last shot of repeat 0.

A run stores what each repeat answered, not the memory it ended with. The memory is
recomputed instead: repeat 0 of the model is run again through the runner's own code
(`runner.run_repeat` on the run's configuration and its dataset.npz), which is
deterministic (the shuffle, the feed orders and the memory's noise all come from the
run's seed). The replay is checked against the stored repeat 0: its confusion matrices
must be equal, and the caption says whether they were.

Only memories on frozen embeddings can be replayed this way; a fine-tuned model would
need FaceNet and its training again, so it is refused with the models that can be drawn.
Thumbnails are the aligned crops of the run's images (experiments.faces.thumbnails)
when the run was made from images; a run on an embeddings file is drawn as dots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.core.figures import save_figure
from experiments.core.run_dir import read_run_config
from experiments.core.run_files import FIGURES_DIR
from experiments.faces import methods, runner
from experiments.faces.adapters import build_adapter
from experiments.faces.datasets import BUILTIN_DATASETS, load_image_dataset
from experiments.faces.embedding_map import embedding_map_figure
from experiments.faces.repeats import load_repeat
from experiments.faces.results import load_dataset
from experiments.faces.run_data import PreparedData
from experiments.faces.settings import RunConfig
from experiments.faces.thumbnails import MAX_THUMBNAILS, face_thumbnails

MAP_REPEAT = 0
DRAWABLE_MEMORIES = ("kaiser", "store_all", "fifo", "reservoir")   # memories with keys and values to draw


def drawable_models(config: RunConfig) -> list[str]:
    """The run's models whose memory can be replayed and drawn: frozen embeddings, keys and values."""
    return [m for m in methods.run_models(config)
            if methods.METHODS[methods.method_of(m)].finetune is None
            and methods.METHODS[methods.method_of(m)].memory in DRAWABLE_MEMORIES]


def chosen_model(config: RunConfig, model: str | None) -> str:
    """`model`, checked; by default the first Kaiser-memory model of the run."""
    drawable = drawable_models(config)
    if model is None:
        memories = [m for m in drawable if methods.METHODS[methods.method_of(m)].memory == "kaiser"]
        if not memories:
            raise ValueError(f"this run has no Kaiser-memory model on frozen embeddings to draw; name one with "
                             f"--map-model ({', '.join(drawable) or 'none can be drawn'})")
        return memories[0]
    if model not in methods.run_models(config):
        raise ValueError(f"--map-model {model!r} is not a model of this run; its models are "
                         f"{', '.join(methods.run_models(config))}")
    if model not in drawable:
        raise ValueError(f"--map-model {model!r} cannot be replayed without fine-tuning FaceNet again (or holds no "
                         f"keys to draw); choose one of {', '.join(drawable) or 'none'}")
    return model


def run_data(run_dir: Path) -> PreparedData:
    dataset = load_dataset(run_dir)
    if dataset is None:
        raise FileNotFoundError(f"{run_dir / 'dataset.npz'} is missing; the run did not get as far as its first "
                                "repeat, so there is nothing to draw")
    return PreparedData(embeddings=dataset["embeddings"].astype(np.float32), labels=dataset["labels"].astype(np.int64),
                        class_names=[str(n) for n in dataset["class_names"]],
                        paths=[str(p) for p in dataset["paths"]])


def replay(run_dir: Path, config: RunConfig, data: PreparedData, model: str):
    """(slot keys, slot label ids, shots, sentence on the check) of `model` after repeat 0, replayed."""
    adapter = build_adapter(model, data, config)
    result = runner.run_repeat(adapter, model, MAP_REPEAT, data, config)
    keys, values = np.asarray(adapter.memory.keys.numpy()), np.asarray(adapter.memory.values.numpy())
    filled = values >= 0
    stored = load_repeat(run_dir, model, MAP_REPEAT, runner.repeat_digest(config, data))
    if stored is None:
        check = "no stored repeat 0 of this configuration to check the replay against"
    elif np.array_equal(stored.confusion, result.confusion):
        check = "its answers equal the stored repeat 0"
    else:
        check = "WARNING: its answers differ from the stored repeat 0 (the code changed since the run?)"
    return keys[filled], values[filled], int(result.shots[-1]), check


def run_thumbnails(config: RunConfig, paths: list[str]) -> tuple[list | None, str]:
    """Thumbnails of the run's images (None when it ran on an embeddings file, or has too many), and why not."""
    if config.data.embeddings:
        return None, " Dots: the run was made from an embeddings file, without images."
    if len(paths) > MAX_THUMBNAILS:
        return None, f" Dots, not thumbnails: more than {MAX_THUMBNAILS} photos."
    # the weights registry (and, for an h5 file, FaceNet) only when thumbnails are drawn
    from facenet_tf import DEFAULT_WEIGHTS, WEIGHTS_SOURCES, load_pretrained

    weights = config.data.weights or DEFAULT_WEIGHTS
    source = WEIGHTS_SOURCES.get(weights)
    input_size = source.input_size if source else load_pretrained(weights).input_size
    builtin_aligned = config.data.source in BUILTIN_DATASETS and load_image_dataset(config.data.source).aligned
    return face_thumbnails(paths, config.data.aligned or builtin_aligned, input_size), ""


def run_map_figure(run_dir: str | Path, model: str | None = None, seed: int = 0):
    """(the Figure, the model drawn): the run's photos and `model`'s slots after repeat 0."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir, RunConfig, "a `kshot run`", "give a directory written by `kshot run`")
    model = chosen_model(config, model)
    data = run_data(run_dir)
    keys, values, shots, check = replay(run_dir, config, data, model)
    thumbnails, note = run_thumbnails(config, data.paths)
    names = [data.class_names[i] for i in data.labels]
    strangers = runner.held_out_classes(config, len(data.class_names), MAP_REPEAT)
    held = (f" The {len(strangers)} identities held out as strangers in repeat 0 "
            f"({', '.join(data.class_names[i] for i in strangers)}) were never fed." if len(strangers) else "")
    caption = (f"Stars: the {len(values)} filled slots of {model} after the last shot ({shots}) of repeat "
               f"{MAP_REPEAT}, recomputed by replaying that repeat with the runner's code; {check}. Each of the "
               f"run's {len(names)} photos is joined to the slot that answers it.{held}{note}")
    slot_names = [data.class_names[i] for i in values]
    figure = embedding_map_figure(data.embeddings, names, keys, slot_names, thumbnails, seed=seed, caption=caption)
    return figure, model


def write_run_map(run_dir: str | Path, model: str | None = None, seed: int = 0) -> list[Path]:
    """Draw the map into RUN_DIR/figures/map_<model>.png and .svg."""
    figure, model = run_map_figure(run_dir, model, seed)
    return save_figure(figure, Path(run_dir) / FIGURES_DIR / f"map_{model}")
