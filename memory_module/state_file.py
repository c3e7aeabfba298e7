"""A memory's whole state in one standalone, versioned file (.npz, written atomically).

Checkpoints (tf.train.Checkpoint) are for saving a model with its memory; this file
is for keeping or sharing a memory by itself, readable by NumPy without
TensorFlow. It holds `format_version`, the memory's kind and config (JSON header,
kshot_io.npz) and one array per state variable. Loading checks the version, the kind, and that
size, key_dim and dtype match the memory it is loaded into, before changing
anything.
"""

from __future__ import annotations

import os

import numpy as np

from kshot_io.npz import read_headed_npz, write_headed_npz

FORMAT_VERSION = 1
_SHAPE_KEYS = ("memory_size", "key_dim", "dtype", "running_mean")


def _state_of(memory) -> dict[str, np.ndarray]:
    return {name: variable.numpy() for name, variable in memory.state_variables().items()}


def save_memory(memory, path: str | os.PathLike) -> None:
    write_headed_npz(path, type(memory).__name__, FORMAT_VERSION, {"config": memory.get_config()}, _state_of(memory))


def load_memory(memory, path: str | os.PathLike) -> None:
    kind = type(memory).__name__
    header, arrays = read_headed_npz(path, kind, FORMAT_VERSION, what=f"{kind} state file",
                                     remedy="save it again with memory.save")
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
