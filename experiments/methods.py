"""The methods a k-shot run compares, by name: what each needs and how it is built.

The run loop knows no method names: it asks this registry for a method's budget (the
config section holding its repeats and max_shots) and for an adapter, and every
adapter answers the same four calls (see experiments.models). Adding a method is one
`Method` entry below plus its builder.

"Needs images" is decided here and checked in one place, `check_inputs`: a method that
fine-tunes FaceNet cannot run on precomputed embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from experiments import models


@dataclass(frozen=True)
class Method:
    name: str
    build: Callable  # (PreparedData, RunConfig) -> adapter with start_repeat/step/memory_bytes/slots_in_use
    needs_images: bool  # it re-embeds images (FaceNet crops and weights), so embeddings alone are not enough
    budget: str  # the config section ("run" or "finetune") whose repeats and max_shots it runs
    bounded: bool  # its memory has [memory] memory_size slots, so it can forget classes
    summary: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("baseline", models.build_store_all, needs_images=False, budget="run", bounded=False,
               summary="store-all 1-NN on embeddings computed once (FaceNet alone)"),
        Method("memory", models.build_frozen_memory, needs_images=False, budget="run", bounded=True,
               summary="the Kaiser memory on embeddings computed once"),
        Method("memory_finetune_phase_off", models.finetuned(phase_train=False), needs_images=True,
               budget="finetune", bounded=True, summary="the memory loss fine-tunes FaceNet, train-phase switch off"),
        Method("memory_finetune_phase_on", models.finetuned(phase_train=True), needs_images=True,
               budget="finetune", bounded=True, summary="the memory loss fine-tunes FaceNet, train-phase switch on"),
        Method("memory_finetune_phase_off_consistent", models.finetuned(phase_train=False, keys="rebuilt"),
               needs_images=True, budget="finetune", bounded=True,
               summary="as phase off, the memory rebuilt from inference-mode keys after every learn step"),
        Method("memory_finetune_phase_on_consistent", models.finetuned(phase_train=True, keys="rebuilt"),
               needs_images=True, budget="finetune", bounded=True,
               summary="as phase on, the memory rebuilt from inference-mode keys after every learn step"),
    )
}


def needs_images(name: str) -> bool:
    return METHODS[name].needs_images


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
    return METHODS[name].bounded


def build(name: str, data, config):
    return METHODS[name].build(data, config)
