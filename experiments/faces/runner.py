"""Run the k-shot protocol for every configured model and repeat, resumably.

Randomness: every random choice comes from numpy generators derived from the run's
seed with SeedSequence, never from global state:
- the shuffle of repeat r comes from SeedSequence([seed, r]), shared by all models,
  so models are compared on the same shuffles (a paired design);
- everything else in (model, repeat) comes from SeedSequence([seed, r, crc32(model)]):
  the memory's age-noise seed, the fine-tuning seed, and the guesses below.
A repeat's result therefore depends only on (config, data, model, repeat), not on
what ran before it in the process, which is what lets a killed run resume and still
write a byte-identical results.csv.

"Unknown" answers: an empty memory answers memory_module.UNKNOWN_LABEL. The runner
replaces each such answer with a uniform random guess among the classes, drawn from
the (model, repeat) generator, so 0-shot accuracy sits at chance (1 / classes) and no
single column of the confusion matrix takes everything. A guess counts as right only
when it happens to hit the true class.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
import warnings
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from experiments.core.heap import settled_heap
from experiments.core.run_dir import GROWABLE, config_digest, open_run_dir
from experiments.core.run_files import SKIPPED_FILE
from experiments.core.settings import to_toml
from experiments.faces import chunks, methods, open_set, protocol, report, scoring
from experiments.faces import settings as cfg
from experiments.faces.adapters import build_adapter
from experiments.faces.repeats import finished_repeats, save_repeat
from experiments.faces.results import RepeatResult, save_dataset, write_tables
from experiments.faces.run_data import PreparedData
from experiments.faces.settings import RunConfig, config_repeats_note
from kshot_io import flush_to_disk, write_text_atomic


def model_key(model: str) -> int:
    return zlib.crc32(model.encode("utf-8"))


def shuffle_generator(seed: int, repeat: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, repeat]))


def model_generator(seed: int, repeat: int, model: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, repeat, model_key(model)]))


def open_set_generator(seed: int, repeat: int) -> np.random.Generator:
    """Which identities repeat r holds out: shared by every model (paired), apart from the shuffle."""
    return np.random.default_rng(np.random.SeedSequence([seed, repeat, zlib.crc32(b"open_set")]))


def held_out_classes(config: RunConfig, n_classes: int, repeat: int) -> np.ndarray:
    """The class ids repeat `repeat` never feeds ([open_set] strangers; empty for a closed-set run)."""
    if not config.open_set.strangers:
        return np.empty(0, np.int64)
    return open_set.hold_out_identities(n_classes, config.open_set.strangers, open_set_generator(config.run.seed, repeat))


def repeat_iterations(labels: np.ndarray, n_classes: int, config: RunConfig, model: str, repeat: int):
    """The schedule of repeat `repeat`: per-class shuffles, then feed orders, from the repeat's generator.

    Every model of a run draws the same schedule for the same repeat (the paired design);
    only its budget (how many shots, how many images evaluated) can cut it shorter. In an
    open-set run the held-out classes are left out of the schedule and all their images
    are added to every evaluation.
    """
    budget = config.budget(model)
    strangers = tuple(held_out_classes(config, n_classes, repeat).tolist())
    return _schedule(np.asarray(labels).tobytes(), str(np.asarray(labels).dtype), n_classes, config.run.order,
                     config.run.seed, budget.max_shots, budget.eval_images_per_class, strangers, repeat)


@functools.lru_cache(maxsize=256)  # a run's repeats for every model; bounded for large item sets
def _schedule(labels: bytes, dtype: str, n_classes: int, order: str, seed: int, max_shots: int,
              eval_images_per_class: int, strangers: tuple, repeat: int) -> tuple:
    """repeat_iterations, remembered: every model of a run draws the same schedule for a repeat,
    and drawing it is most of a frozen repeat's Python time once the memory runs batched.
    Callers never change the arrays of a schedule."""
    members = _class_members(labels, dtype, n_classes)
    if order == "sorted":
        # The blog's fixed order: dataset order is sorted file names within a class; feeds in class order.
        rng, shuffled = None, members
    else:
        rng = shuffle_generator(seed, repeat)
        shuffled = protocol.shuffle_classes(members, rng)
    if eval_images_per_class > 0:
        keep = max_shots + eval_images_per_class
        shuffled = [s[:keep] for s in shuffled]
    if not strangers:
        iterations = protocol.schedule(shuffled, max_shots, feed_rng=rng)
    else:
        known = [s for c, s in enumerate(shuffled) if c not in set(strangers)]
        stranger_items = np.concatenate([shuffled[c] for c in sorted(strangers)])
        iterations = [
            dataclasses.replace(it, evaluate=np.sort(np.concatenate([it.evaluate, stranger_items])).astype(np.int64))
            for it in protocol.schedule(known, max_shots, feed_rng=rng)
        ]
    for it in iterations:  # shared by every caller: a write would change another model's schedule
        it.feed.flags.writeable = False
        it.evaluate.flags.writeable = False
    return tuple(iterations)


@functools.lru_cache(maxsize=8)
def _class_members(labels: bytes, dtype: str, n_classes: int) -> tuple:
    """protocol.class_members of a run's labels, once per run instead of once per repeat (read-only)."""
    members = protocol.class_members(np.frombuffer(labels, dtype=dtype), n_classes)
    for indices in members:
        indices.flags.writeable = False
    return tuple(members)


def forget_schedules() -> None:
    """Empty the schedule memory (a benchmark timing two paths gives each the same start)."""
    _schedule.cache_clear()
    _class_members.cache_clear()


def run_repeat(adapter, model: str, repeat: int, data: PreparedData, config: RunConfig,
               iterations: list | None = None) -> RepeatResult:
    """One repeat of the protocol for one model; see experiments.faces.protocol.

    `iterations`: the repeat's schedule when the caller has already drawn it (it is the
    same list repeat_iterations draws).

    In an open-set run ([open_set] strangers > 0) n_eval and n_correct count known items
    only, and each iteration is also scored by experiments.faces.open_set: the threshold a
    gallery of the items fed so far would use, the known items named right at it, the
    strangers rejected.
    """
    n_classes = len(data.class_names)
    if iterations is None:
        iterations = repeat_iterations(data.labels, n_classes, config, model, repeat)
    strangers = held_out_classes(config, n_classes, repeat)
    known = np.setdiff1d(np.arange(n_classes), strangers)

    rng = model_generator(config.run.seed, repeat, model)
    adapter.start_repeat(int(rng.integers(0, 2**31 - 1)))
    count = len(iterations)
    out = {k: np.zeros(count, dtype=np.int64) for k in ("shots", "n_eval", "n_correct", "memory_bytes", "slots_in_use")}
    memory_loss = np.zeros(count, dtype=np.float64)
    seconds = np.zeros(count, dtype=np.float64)
    confusion = np.zeros((count, n_classes, n_classes), dtype=np.int64)
    feed = np.full((count, n_classes), -1, dtype=np.int64)  # what was fed before each evaluation, in order
    opened = {name: np.zeros(count, np.int64) for name in ("n_known_accepted", "n_stranger", "n_stranger_rejected")}
    threshold = np.zeros(count, np.float64)
    for i, it in enumerate(iterations):
        feed[i, : it.feed.size] = it.feed
        start = time.perf_counter()
        memory_loss[i], answered = adapter.step(it.feed, it.evaluate)
        answered = np.array(answered, dtype=np.int64)
        # A guess is one of the classes the run can name: every class, or the known ones in an open set.
        predicted = scoring.guess_unknown(answered, rng, known if strangers.size else n_classes)
        truth = data.labels[it.evaluate]
        confusion[i] = scoring.confusions(truth[None], predicted[None], n_classes)[0]
        is_stranger = np.isin(truth, strangers)
        if strangers.size:
            fed = feed[: i + 1][feed[: i + 1] >= 0]
            threshold[i] = open_set.fed_threshold(adapter.embeddings_of(fed), data.labels[fed], adapter.memory,
                                                  config.open_set.fpir)
            counts = open_set.open_set_counts(truth, answered, adapter.last_similarity, is_stranger, threshold[i])
            opened["n_known_accepted"][i] = counts["n_known_correct"]
            opened["n_stranger"][i] = counts["n_stranger"]
            opened["n_stranger_rejected"][i] = counts["n_stranger_rejected"]
        seconds[i] = time.perf_counter() - start
        out["shots"][i] = it.shots
        out["n_eval"][i] = int((~is_stranger).sum())
        out["n_correct"][i] = int(np.sum((truth == predicted) & ~is_stranger))
        out["memory_bytes"][i] = adapter.memory_bytes()
        out["slots_in_use"][i] = adapter.slots_in_use()
    extra = {"threshold": threshold, **opened} if strangers.size else {}
    return RepeatResult(
        model=model,
        repeat=repeat,
        memory_loss=memory_loss,
        seconds=seconds,
        confusion=confusion,
        feed=feed,
        **out,
        **extra,
    )


def chunk_of(adapter, data: PreparedData, config: RunConfig, chunk_size: int) -> int:
    """Repeats per batched call for this method (`chunk_size`, or fewer to fit chunks.CALL_BUDGET_BYTES);
    0 when it runs one repeat at a time: chunk size 1, not batchable, or too large a memory
    for a chunk of chunks.MIN_CHUNK repeats."""
    chunks.check_chunk_size(chunk_size)
    fitted = chunks.fitting_chunk(chunk_size, len(data.labels), getattr(adapter.memory, "memory_size", 0))
    if chunk_size == 1 or not chunks.batchable(adapter, config) or fitted < min(chunk_size, chunks.MIN_CHUNK):
        return 0
    return fitted


def compute_repeats(adapter, model: str, todo: list[int], data: PreparedData, config: RunConfig,
                    chunk_size: int = chunks.DEFAULT_CHUNK_SIZE):
    """Yield the RepeatResult of every repeat in `todo`, in order.

    A frozen method runs in chunks of `chunk_size` repeats through one batched memory
    (experiments.faces.chunks); each result is yielded once its whole chunk is computed,
    so a killed run loses at most one chunk. Other methods, chunk size 1, and memories too
    large for a chunk of chunks.MIN_CHUNK repeats run one repeat at a time.
    The results are the same either way. The loop runs in experiments.core.heap's settled
    heap: the collector leaves TensorFlow's long-lived objects alone meanwhile.
    """
    with settled_heap():
        chunk_size = chunk_of(adapter, data, config, chunk_size)
        if not chunk_size:
            for r in todo:
                yield run_repeat(adapter, model, r, data, config)
            return
        n_classes = len(data.class_names)
        batched = None
        for first in range(0, len(todo), chunk_size):
            chunk = todo[first : first + chunk_size]
            schedules = [repeat_iterations(data.labels, n_classes, config, model, r) for r in chunk]
            if not chunks.same_shapes(schedules):
                for r, schedule in zip(chunk, schedules):
                    yield run_repeat(adapter, model, r, data, config, iterations=schedule)
                continue
            if batched is None:
                batched = chunks.batched_frozen(adapter, min(chunk_size, len(todo)))
            rngs = [model_generator(config.run.seed, r, model) for r in chunk]
            seeds = [int(rng.integers(0, 2**31 - 1)) for rng in rngs]  # as run_repeat draws the memory seed
            answers = batched.run(seeds, schedules)
            yield from chunks.chunk_results(model, chunk, rngs, schedules, answers, data.labels, n_classes)


def repeat_digest(config: RunConfig, data: PreparedData) -> str:
    """What a stored repeat must have been computed under to be reused: settings and data.

    Repeat counts are left out: a run asked for more repeats keeps and reuses the ones it
    has (repeat r's shuffle depends only on the seed and r).
    """
    return config_digest(to_toml(cfg.with_repeats(config, 1)) + data.fingerprint())


def check_data(data: PreparedData, config: RunConfig, log: Callable[[str], None]) -> None:
    """Refuse data the protocol cannot use; warn about settings that run but limit the result."""
    methods.check_inputs(config.run.models, has_images=data.crops is not None and data.facenet is not None)
    protocol.check_classes(data.labels, data.class_names)
    if config.open_set.strangers:
        open_set.check_strangers(len(data.class_names), config.open_set.strangers)   # before the run dir is made
    sizes = np.bincount(data.labels, minlength=len(data.class_names))
    for model in config.run.models:
        wanted = config.budget(model).max_shots
        available = protocol.max_iterations(sizes, wanted)
        if available < wanted:
            smallest = data.class_names[int(np.argmin(sizes))]
            log(
                f"note: {model}: {wanted} shots requested, but class {smallest!r} has only "
                f"{sizes.min()} images, so the run stops at {available} shots (one image per class "
                "must stay to evaluate)."
            )
    bounded = [m for m in config.run.models if methods.bounded(m)]
    if bounded:
        check_memory_fits(max(config.memory.sizes), data.embeddings.shape[1])
        top_shots = max(protocol.max_iterations(sizes, config.budget(m).max_shots) for m in bounded)
        store_all_keys = len(data.class_names) * top_shots
        if min(config.memory.sizes) < store_all_keys:
            message = (
                f"memory_size {min(config.memory.sizes)} is smaller than the {store_all_keys} keys store-all holds "
                f"at {top_shots} shots ({len(data.class_names)} classes x {top_shots}): the memory must merge or "
                "evict, and may trail the baseline for that reason alone."
            )
            warnings.warn(message, stacklevel=2)  # the CLI prints it once, as "kshot: warning: ..."


def check_memory_fits(memory_size: int, key_dim: int) -> None:
    """Refuse a memory that cannot be allocated on this machine, before TensorFlow tries."""

    needed = memory_size * (key_dim * 4 + 16)  # keys (float32), value and last-written (int64) per slot
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > 0.8 * physical:
        raise ValueError(
            f"[memory] memory_size = {memory_size} needs about {needed / 2**30:.1f} GiB for {key_dim}-d keys, more than "
            f"this machine's {physical / 2**30:.1f} GiB allows; choose a smaller memory_size"
        )


def run_experiment(
    config: RunConfig,
    out_dir: str | Path,
    data: PreparedData,
    progress: bool = True,
    log: Callable[[str], None] = print,
    make_figures: bool = True,
    chunk_size: int | None = None,
) -> dict:
    """Run (or resume) every model x repeat into `out_dir`, then write tables, summary and figures.

    chunk_size: repeats a frozen method runs per batched call (experiments.faces.chunks; 1:
    one repeat at a time); default the config's [run] chunk_size. It changes the speed,
    never the results.

    Returns {"timing": {model: {"repeats", "computed", "seconds_per_repeat", "shots"}}, "summary": DataFrame}.
    """

    out_dir = Path(out_dir)
    chunk_size = chunks.check_chunk_size(config.run.chunk_size if chunk_size is None else chunk_size)
    check_data(data, config, log)
    open_run_dir(out_dir, config, may_change=GROWABLE)
    digest = repeat_digest(config, data)
    save_dataset(out_dir, data.embeddings, data.labels, data.class_names, data.paths)
    if data.skipped:
        write_text_atomic(out_dir / SKIPPED_FILE, "\n".join(data.skipped) + "\n")

    all_results: list[RepeatResult] = []
    timing: dict[str, dict] = {}
    models = methods.run_models(config)
    for model in models:
        repeats = config.budget(model).repeats
        done = finished_repeats(out_dir, model, repeats, digest)
        done_ids = {r.repeat for r in done}
        computed: list[RepeatResult] = []
        if len(done_ids) < repeats:
            bar = tqdm(total=repeats - len(done_ids), desc=model, unit="repeat", disable=not progress,
                       file=sys.stderr, leave=True)
            if done:
                bar.write(f"{model}: resuming, {len(done)} of {repeats} repeats already on disk")
            adapter = build_adapter(model, data, config)
            todo = [r for r in range(repeats) if r not in done_ids]
            # Chunked repeats take milliseconds each: one disk barrier per chunk, not an fsync per file.
            chunk = chunk_of(adapter, data, config, chunk_size)
            for result in compute_repeats(adapter, model, todo, data, config, chunk_size):
                save_repeat(out_dir, result, digest, durable=not chunk)
                computed.append(result)
                if chunk and (len(computed) % chunk == 0 or len(computed) == len(todo)):
                    flush_to_disk()
                bar.update(1)
            bar.close()
        results = sorted(done + computed, key=lambda r: r.repeat)
        all_results.extend(results)
        per_repeat = [float(r.seconds.sum()) for r in computed] or [float(r.seconds.sum()) for r in done]
        timing[model] = {
            "repeats": repeats,
            "computed": len(computed),
            "seconds_per_repeat": float(np.mean(per_repeat)) if per_repeat else float("nan"),
            "shots": int(max(len(r.shots) for r in results) - 1),
        }

    write_tables(out_dir, all_results, models, data.class_names)

    built = report.write_report(out_dir, make_figures=make_figures, timing=timing, notes=run_notes(config, data))
    return {"timing": timing, "summary": built["summary"], "paired": built["paired"], "open_set": built["open_set"]}


def run_notes(config: RunConfig, data: PreparedData) -> list[str]:
    """Sentences the summary states about how this run was made."""
    notes = [
        f"Data: {data.description or config.data.source}: {len(data.labels)} images, "
        f"{len(data.class_names)} classes ({', '.join(data.class_names)}).",
        config_repeats_note(config),
        "An empty memory answers 'unknown'; the runner replaces each unknown answer with a uniform "
        "random guess among the classes (seeded per model and repeat), so 0-shot accuracy is at chance.",
    ]
    if data.skipped:
        notes.append(f"{len(data.skipped)} image(s) skipped (see skipped.txt).")
    if any(methods.METHODS[methods.split_name(m)[0]].finetune for m in config.run.models):
        notes.append(finetune_recipe_note(config))
    return notes + list(data.notes)


def finetune_recipe_note(config: RunConfig) -> str:
    """Which fine-tuning recipe this run used, beside the one docs/FINETUNING.md found to hold across shifts.

    The defaults are the blog demo's (one gentle step per shot); the recipe chosen on the
    face shifts is different, so a reader of the summary must see which one made its numbers.
    """
    f = config.finetune
    used = (f"Fine-tuning recipe of this run: FaceNet from {f.trainable_from} up, {f.optimizer} at learning rate "
            f"{f.learning_rate:g}, {f.steps_per_shot} optimizer step(s) per shot; each fine-tuned model's name says its "
            "phase switch and key rule.")
    chosen = (f.trainable_from, f.optimizer, f.learning_rate, f.steps_per_shot) == ("Block8", "adam", 1e-4, 3)
    if chosen:
        return used + (" It is the recipe docs/FINETUNING.md chose on face shifts (with consistent keys: "
                       "memory_finetune_phase_off_consistent; 5 people; the shifts where it loses are named there).")
    return used + (" docs/FINETUNING.md chose another on face shifts (5 people; the shifts where it loses are named there): "
                   "--set finetune.learning_rate=1e-4 --set finetune.steps_per_shot=3 with memory_finetune_phase_off_consistent.")
