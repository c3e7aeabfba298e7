"""The methods a k-shot run compares, by name: what each needs and how it is built.

The run loop knows no method names: it asks this registry for a method's budget (the
config section holding its repeats and max_shots), and experiments.faces.adapters
builds the method from its entry; every adapter answers the same four calls. The
registry is plain data, so the settings can check names without building anything:
- a write policy of the Kaiser memory is one entry of kind "kaiser" whose `options`
  fix some [memory] options (eviction, on_evict, running_mean, merge_threshold, fill_first,
  keep_classes);
- a fixed-size baseline is one entry naming its memory_module memory
  (experiments.core.memories builds every kind);
- a fine-tuned method is one entry with `finetune` set: the train-phase switch and
  the key rule (experiments.faces.finetuned).

Sweeps: when [memory] memory_size is a list, every `bounded` method runs once per size,
as the model `method@size` (`run_models`), on the same shuffles as every other model.

"Needs images" is decided here and checked in one place, `check_inputs`: a method that
fine-tunes FaceNet cannot run on precomputed embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Method:
    name: str
    memory: str  # the memory it runs on: a kind of experiments.core.memories.MEMORY_KINDS
    needs_images: bool  # it re-embeds images (FaceNet crops and weights), so embeddings alone are not enough
    budget: str  # the config section ("run" or "finetune") whose repeats and max_shots it runs
    bounded: bool  # its memory has [memory] memory_size slots, so it can forget classes
    summary: str
    options: Mapping[str, Any] = field(default_factory=dict)  # the [memory] options it fixes (a write policy)
    finetune: Mapping[str, Any] | None = None  # fine-tuned methods: the train-phase switch and the key rule


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("baseline", "store_all", needs_images=False, budget="run", bounded=False,
               summary="store-all 1-NN on embeddings computed once (FaceNet alone)"),
        Method("memory", "kaiser", needs_images=False, budget="run", bounded=True,
               summary="the Kaiser memory on embeddings computed once"),
        Method("memory_running_mean", "kaiser", options=dict(running_mean=True), needs_images=False, budget="run",
               bounded=True, summary="the memory, merging by running mean"),
        Method("memory_balanced", "kaiser", options=dict(eviction="class_balanced"), needs_images=False,
               budget="run", bounded=True, summary="the memory, a miss overwrites the oldest slot of the largest class"),
        Method("memory_threshold", "kaiser", options=dict(eviction="class_balanced", merge_threshold=0.7),
               needs_images=False, budget="run", bounded=True,
               summary="class-balanced, and a hit merges only at similarity >= 0.7 (else inserted)"),
        Method("memory_fold", "kaiser", options=dict(eviction="class_balanced", on_evict="merge", running_mean=True),
               needs_images=False, budget="run", bounded=True,
               summary="class-balanced, running mean, an evicted key merged into its class's nearest slot"),
        Method("memory_ward", "kaiser", options=dict(eviction="ward", on_evict="merge", running_mean=True),
               needs_images=False, budget="run", bounded=True,
               summary="memory_fold, folding the class's cheapest count-weighted (Ward) pair, not its oldest slot"),
        Method("memory_ward_fill", "kaiser",
               options=dict(eviction="ward", on_evict="merge", running_mean=True, fill_first=True),
               needs_images=False, budget="run", bounded=True,
               summary="memory_ward, inserting hits until the memory is full (then budgeted clustering)"),
        Method("memory_fold_fill", "kaiser",
               options=dict(eviction="class_balanced", on_evict="merge", running_mean=True, fill_first=True),
               needs_images=False, budget="run", bounded=True,
               summary="memory_fold, inserting hits until the memory is full"),
        Method("memory_ward_keep", "kaiser",
               options=dict(eviction="ward", on_evict="merge", running_mean=True, fill_first=True, keep_classes=True),
               needs_images=False, budget="run", bounded=True,
               summary="memory_ward_fill; once full, a miss of a class it holds merges into that class's nearest slot"),
        Method("fifo", "fifo", needs_images=False, budget="run", bounded=True,
               summary="1-NN over the memory_size most recent embeddings"),
        Method("reservoir", "reservoir", needs_images=False, budget="run",
               bounded=True, summary="1-NN over memory_size embeddings kept by class-balanced reservoir sampling"),
        Method("class_means", "class_means", needs_images=False, budget="run", bounded=False,
               summary="nearest class mean: one running mean per class"),
        Method("memory_finetune_phase_off", "kaiser", finetune=dict(phase_train=False, keys="learn_pass"), needs_images=True,
               budget="finetune", bounded=True, summary="the memory loss fine-tunes FaceNet, train-phase switch off"),
        Method("memory_finetune_phase_on", "kaiser", finetune=dict(phase_train=True, keys="learn_pass"), needs_images=True,
               budget="finetune", bounded=True, summary="the memory loss fine-tunes FaceNet, train-phase switch on"),
        Method("memory_finetune_phase_off_consistent", "kaiser", finetune=dict(phase_train=False, keys="rebuilt"),
               needs_images=True, budget="finetune", bounded=True,
               summary="as phase off, the memory rebuilt from inference-mode keys after every learn step"),
        Method("memory_finetune_phase_on_consistent", "kaiser", finetune=dict(phase_train=True, keys="rebuilt"),
               needs_images=True, budget="finetune", bounded=True,
               summary="as phase on, the memory rebuilt from inference-mode keys after every learn step"),
    )
}


SIZE_SEPARATOR = "@"


def sweep_name(method: str, memory_size: int | None) -> str:
    """The model name of `method` at one size of a memory-size sweep (the method alone without one)."""
    return method if memory_size is None else f"{method}{SIZE_SEPARATOR}{memory_size}"


def split_name(model: str) -> tuple[str, int | None]:
    """`memory@64` -> ("memory", 64); `baseline` -> ("baseline", None)."""
    method, separator, size = model.partition(SIZE_SEPARATOR)
    if not separator:
        return model, None
    if not size.isdigit():
        raise ValueError(f"model name {model!r}: the part after {SIZE_SEPARATOR!r} must be a memory size")
    return method, int(size)


def method_of(model: str) -> str:
    return split_name(model)[0]


def run_models(config) -> list[str]:
    """The models a run computes: each listed method, once per memory size when it is bounded and swept."""
    names = []
    for method in config.run.models:
        sweep = config.memory.is_sweep and METHODS[method].bounded
        names += [sweep_name(method, size) for size in config.memory.sizes] if sweep else [method]
    return names


def needs_images(name: str) -> bool:
    return METHODS[method_of(name)].needs_images


def budget_section(name: str) -> str:
    return METHODS[name].budget


def check_inputs(names, has_images: bool) -> None:
    """Refuse methods that need images when the run has only precomputed embeddings."""
    if has_images:
        return
    blocked = [n for n in names if needs_images(n)]
    if blocked:
        usable = ",".join(n for n in METHODS if not needs_images(n))
        raise ValueError(
            f"{', '.join(blocked)} fine-tune FaceNet and need images, but this run has only precomputed "
            f"embeddings (--embeddings). Use --models {usable}, or give --data instead."
        )


def bounded(name: str) -> bool:
    return METHODS[method_of(name)].bounded
