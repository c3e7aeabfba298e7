"""Every memory an experiment uses, built in one place from its kind and the [memory] settings.

The face runner, Omniglot's readouts and stream, and the gallery all ask this factory,
so a memory is the same object with the same options whichever experiment holds it,
and a new kind of memory_module memory is one entry here. The kinds:

    kaiser       memory_module.KaiserMemory, every [memory] option passed on (a write
                 policy is a few of them fixed: `build_memory("kaiser", d, s, eviction=...)`)
    store_all    memory_module.StoreAllNearestNeighbour: every key kept, 1-NN
    fifo         memory_module.FifoBuffer: the memory_size most recent keys, 1-NN
    reservoir    memory_module.ClassBalancedReservoir: memory_size keys, class-balanced
    class_means  memory_module.ClassMeans: one running mean per class (prototypes)
"""

from __future__ import annotations

import dataclasses

import memory_module
from experiments.core.settings import MemorySection

MEMORY_KINDS = ("kaiser", "store_all", "fifo", "reservoir", "class_means")


def build_memory(
    kind: str,
    key_dim: int,
    settings: MemorySection | None = None,
    *,
    seed: int = 0,
    capacity: int | None = None,
    classes: int | None = None,
    **policy,
):
    """The memory of `kind` for keys of `key_dim` floats.

    settings: the [memory] section (its defaults when None). The Kaiser memory takes every
        field, with `policy` overriding some; the fixed-size stores take memory_size only.
    seed: the Kaiser memory's age-noise seed (the other kinds draw nothing, or seed 0).
    capacity: store-all's initial rows (it grows past them); allocating every item a
        run can hold means it never grows.
    classes: class means' initial rows.
    """
    settings = settings or MemorySection()
    if kind == "kaiser":
        values = {**dataclasses.asdict(settings), **policy}
        if isinstance(values["memory_size"], (tuple, list)):
            raise ValueError(f"[memory] memory_size = {list(settings.sizes)} is a sweep; build one size at a time")
        return memory_module.KaiserMemory(key_dim=key_dim, seed=seed, **values)
    if policy:
        raise ValueError(f"a {kind} memory has no write policy; got {', '.join(sorted(policy))}")
    if kind == "store_all":
        extra = {} if capacity is None else {"initial_capacity": capacity}
        return memory_module.StoreAllNearestNeighbour(key_dim=key_dim, **extra)
    if kind == "fifo":
        return memory_module.FifoBuffer(settings.memory_size, key_dim)
    if kind == "reservoir":
        return memory_module.ClassBalancedReservoir(settings.memory_size, key_dim)
    if kind == "class_means":
        extra = {} if classes is None else {"initial_classes": classes}
        return memory_module.ClassMeans(key_dim, **extra)
    raise ValueError(f"unknown memory kind {kind!r}; choose one of {', '.join(MEMORY_KINDS)}")
