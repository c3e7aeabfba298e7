"""A memory's whole state in one standalone, versioned file (.npz, written atomically).

Checkpoints (tf.train.Checkpoint) are for saving a model with its memory; this file
is for keeping or sharing a memory by itself, readable by NumPy without
TensorFlow. It holds `format_version`, the memory's kind and config (JSON) and
one array per state variable. Loading checks the version, the kind, and that
size, key_dim and dtype match the memory it is loaded into, before changing
anything.
"""

from __future__ import annotations

import json
import os

import numpy as np

from kshot_io import atomic_write

FORMAT_VERSION = 1
_SHAPE_KEYS = ("memory_size", "key_dim", "dtype", "running_mean")


def _state_of(memory) -> dict[str, np.ndarray]:
    return {name: variable.numpy() for name, variable in memory.state_variables().items()}


def save_memory(memory, path: str | os.PathLike) -> None:
    arrays = _state_of(memory)
    header = {"format_version": FORMAT_VERSION, "kind": type(memory).__name__, "config": memory.get_config()}
    with atomic_write(path, "wb") as handle:
        np.savez(handle, header=np.array(json.dumps(header, sort_keys=True)), **arrays)


def load_memory(memory, path: str | os.PathLike) -> None:
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            arrays = {name: data[name] for name in data.files if name != "header"}
    except FileNotFoundError:
        raise FileNotFoundError(f"memory state file {path} does not exist") from None
    except (OSError, ValueError, KeyError, EOFError) as error:
        raise ValueError(f"{path} is not a readable memory state file ({error}); save it again with memory.save") from error
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path} has memory state format_version {version}, this kshot-memory reads version {FORMAT_VERSION}"
        )
    kind = type(memory).__name__
    if header.get("kind") != kind:
        raise ValueError(f"{path} holds a {header.get('kind')} state and cannot be loaded into a {kind}")
    saved, mine = header["config"], memory.get_config()
    for key in _SHAPE_KEYS:
        if key in mine and saved.get(key) != mine[key]:
            raise ValueError(
                f"{path} was saved from a memory with {key}={saved.get(key)!r}, but this memory has "
                f"{key}={mine[key]!r}; build the memory with the same {key} to load it"
            )
    expected = set(_state_of(memory))
    if set(arrays) != expected:
        raise ValueError(f"{path} holds arrays {sorted(arrays)}, expected {sorted(expected)}")
    variables = memory.state_variables()
    for name, value in arrays.items():
        variables[name].assign(value)
