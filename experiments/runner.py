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

import sys
import time
import warnings
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from experiments import methods, protocol
from experiments.config import RunConfig, config_repeats_note, to_toml
from experiments.results import RepeatResult, save_dataset, write_tables
from experiments.run_data import PreparedData
from experiments.run_dir import config_digest, load_repeat, open_run_dir, save_repeat
from kshot_io import write_text_atomic


def model_key(model: str) -> int:
    return zlib.crc32(model.encode("utf-8"))


def shuffle_generator(seed: int, repeat: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, repeat]))


def model_generator(seed: int, repeat: int, model: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, repeat, model_key(model)]))


def run_repeat(adapter, model: str, repeat: int, data: PreparedData, config: RunConfig) -> RepeatResult:
    """One repeat of the protocol for one model; see experiments.protocol."""
    n_classes = len(data.class_names)
    members = protocol.class_members(data.labels, n_classes)
    shuffled = protocol.shuffle_classes(members, shuffle_generator(config.run.seed, repeat))
    budget = config.budget(model)
    if budget.eval_images_per_class > 0:
        keep = budget.max_shots + budget.eval_images_per_class
        shuffled = [s[:keep] for s in shuffled]
    iterations = protocol.schedule(shuffled, budget.max_shots)

    rng = model_generator(config.run.seed, repeat, model)
    adapter.start_repeat(int(rng.integers(0, 2**31 - 1)))
    count = len(iterations)
    out = {k: np.zeros(count, dtype=np.int64) for k in ("shots", "n_eval", "n_correct", "memory_bytes", "slots_in_use")}
    memory_loss = np.zeros(count, dtype=np.float64)
    seconds = np.zeros(count, dtype=np.float64)
    confusion = np.zeros((count, n_classes, n_classes), dtype=np.int64)
    for i, it in enumerate(iterations):
        start = time.perf_counter()
        memory_loss[i], predicted = adapter.step(it.feed, it.evaluate)
        predicted = np.array(predicted, dtype=np.int64)
        unknown = predicted < 0
        if unknown.any():
            predicted[unknown] = rng.integers(0, n_classes, size=int(unknown.sum()))
        truth = data.labels[it.evaluate]
        np.add.at(confusion[i], (truth, predicted), 1)
        seconds[i] = time.perf_counter() - start
        out["shots"][i] = it.shots
        out["n_eval"][i] = it.evaluate.size
        out["n_correct"][i] = int(np.sum(truth == predicted))
        out["memory_bytes"][i] = adapter.memory_bytes()
        out["slots_in_use"][i] = adapter.slots_in_use()
    return RepeatResult(
        model=model,
        repeat=repeat,
        memory_loss=memory_loss,
        seconds=seconds,
        confusion=confusion,
        **out,
    )


def check_data(data: PreparedData, config: RunConfig, log: Callable[[str], None]) -> None:
    """Refuse data the protocol cannot use; warn about settings that run but limit the result."""
    methods.check_inputs(config.run.models, has_images=data.crops is not None and data.facenet is not None)
    protocol.check_classes(data.labels, data.class_names)
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
    if any(methods.bounded(m) for m in config.run.models) and min(config.memory.sizes) < len(data.class_names):
        message = (
            f"memory_size {min(config.memory.sizes)} is smaller than the {len(data.class_names)} classes: "
            "the memory will evict some classes and cannot be right about all of them at once."
        )
        warnings.warn(message, stacklevel=2)
        log(f"warning: {message}")


def run_experiment(
    config: RunConfig,
    out_dir: str | Path,
    data: PreparedData,
    progress: bool = True,
    log: Callable[[str], None] = print,
    make_figures: bool = True,
) -> dict:
    """Run (or resume) every model x repeat into `out_dir`, then write tables, summary and figures.

    Returns {"timing": {model: {"repeats", "computed", "seconds_per_repeat", "shots"}}, "summary": DataFrame}.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    check_data(data, config, log)
    open_run_dir(out_dir, config)
    digest = config_digest(to_toml(config) + data.fingerprint())
    save_dataset(out_dir, data.embeddings, data.labels, data.class_names, data.paths)
    if data.skipped:
        write_text_atomic(out_dir / "skipped.txt", "\n".join(data.skipped) + "\n")

    all_results: list[RepeatResult] = []
    timing: dict[str, dict] = {}
    models = methods.run_models(config)
    for model in models:
        repeats = config.budget(model).repeats
        done, todo = [], []
        for r in range(repeats):
            stored = load_repeat(out_dir, model, r, digest)
            (done if stored is not None else todo).append(stored if stored is not None else r)
        computed: list[RepeatResult] = []
        if todo:
            adapter = methods.build(model, data, config)
            bar = tqdm(todo, desc=f"{model}", unit="repeat", disable=not progress, file=sys.stderr, leave=True)
            if done:
                bar.write(f"{model}: resuming, {len(done)} of {repeats} repeats already on disk")
            for r in bar:
                result = run_repeat(adapter, model, r, data, config)
                save_repeat(out_dir, result, digest)
                computed.append(result)
        results = done + computed
        all_results.extend(results)
        per_repeat = [float(r.seconds.sum()) for r in computed] or [float(r.seconds.sum()) for r in done]
        timing[model] = {
            "repeats": repeats,
            "computed": len(computed),
            "seconds_per_repeat": float(np.mean(per_repeat)) if per_repeat else float("nan"),
            "shots": int(max(len(r.shots) for r in results) - 1),
        }

    write_tables(out_dir, all_results, models, data.class_names)
    from experiments import report

    built = report.write_report(out_dir, make_figures=make_figures, timing=timing, notes=run_notes(config, data))
    return {"timing": timing, "summary": built["summary"]}


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
    return notes
