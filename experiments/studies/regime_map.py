"""A regime map of write policies: which fixed-size memory holds against store-all, and where.

    python -m experiments.studies.regime_map --out DIR --work RUNS \\
        --keys NAME=FILE.npz [--keys ...] --classes 5,20,50 --shots 10 --repeats 20

A policy chosen on 5 identities can fail on 40; this study measures every method of
the face registry (METHODS) over the axes that decide it: how many classes, how many
slots per class, and how spread out the embedder's keys are (several key sets). A cell
is (key set, classes, slots per class). For each (key set, classes) the study
subsamples the classes (seeded, and the same classes for every key set with the same
class names, so embedders are compared on the same characters), then runs the frozen
k-shot protocol of experiments.faces.runner with one memory size per slots-per-class
value (memory size = max(1, round(slots x classes))), every method on the same shuffles.

Each cell reports, at the top shot count, every method's accuracy (with its interval),
its footprint (bytes, experiments.faces.footprint) and its paired difference to
store-all with a 95% interval over the same shuffles. The results json is rewritten
atomically after every (key set, classes) run; a rerun skips the cells it holds, and
the run directories under --work resume repeat by repeat. The plan (which sets choose,
which only report) is docs/lab/2026-12-regime-map.md; the figure and table are
experiments.studies.regime_map_report.
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.core.metrics import accuracy_interval, paired_difference
from experiments.core.run_files import RESULTS_FILE
from experiments.faces import settings as cfg
from experiments.faces.footprint import footprint_table
from experiments.faces.methods import METHODS, sweep_name
from experiments.faces.run_data import PreparedData, dense_labels, load_embeddings_file
from experiments.faces.runner import run_experiment
from experiments.studies.regime_map_keys import key_spread
from kshot_io import write_text_atomic

SCHEMA = 1
RESULTS_JSON = "regime_map.json"
STORE_ALL = "baseline"
UNBOUNDED = ("baseline", "class_means")
BOUNDED = ("fifo", "reservoir", "memory", "memory_running_mean", "memory_balanced", "memory_threshold", "memory_fold")
MAP_METHODS = UNBOUNDED + BOUNDED
SLOTS_PER_CLASS = (0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class KeySet:
    name: str
    path: Path


def memory_size(slots_per_class: float, classes: int) -> int:
    """Slots of a cell's memory: slots per class x classes, rounded, at least one."""
    if slots_per_class <= 0 or classes < 1:
        raise ValueError(f"slots per class must be > 0 and classes >= 1, got {slots_per_class} and {classes}")
    return max(1, int(round(slots_per_class * classes)))


def cell_key(key_set: str, classes: int, slots_per_class: float) -> tuple[str, int, float]:
    return (key_set, int(classes), float(slots_per_class))


def subsample_classes(class_names: list[str], classes: int, seed: int) -> list[str]:
    """`classes` of the names, drawn by SeedSequence([seed, classes]) from the sorted names (all of them when equal)."""
    names = sorted(class_names)
    if classes > len(names) or classes < 2:
        raise ValueError(f"cannot draw {classes} classes from a key set of {len(names)}; choose 2..{len(names)}")
    if classes == len(names):
        return names
    rng = np.random.default_rng(np.random.SeedSequence([seed, classes]))
    return sorted(names[i] for i in rng.choice(len(names), size=classes, replace=False))


def restrict(data: PreparedData, names: list[str]) -> PreparedData:
    """The rows of `data` whose class is in `names`, labels re-numbered densely."""
    wanted = set(names)
    keep = np.array([i for i, label in enumerate(data.labels) if data.class_names[label] in wanted], dtype=np.int64)
    dense, class_names = dense_labels([data.class_names[data.labels[i]] for i in keep])
    return PreparedData(embeddings=data.embeddings[keep], labels=dense, class_names=class_names,
                        paths=[data.paths[i] for i in keep], description=f"{data.description}, {len(names)} classes")


def cell_config(sizes: list[int], shots: int, repeats: int, seed: int, source: str,
                methods: tuple[str, ...] = MAP_METHODS):
    """The face-run config of one (key set, classes) run: every map method, one memory size per slots value."""
    return cfg.from_dict({
        "run": {"seed": seed, "repeats": repeats, "max_shots": shots, "models": list(methods)},
        "data": {"embeddings": source},
        "memory": {"memory_size": sorted(set(sizes))},
    })


def _model(method: str, size: int, swept: bool = True) -> str:
    """The run's model name: `method@size` in a sweep; one size alone is no sweep (the settings keep a plain size)."""
    return sweep_name(method, size) if METHODS[method].bounded and swept else method


def _per_repeat(at: pd.DataFrame, model: str) -> np.ndarray:
    mine = at[at["model"] == model].sort_values("repeat")
    return mine["accuracy"].to_numpy()


def cell_rows(frame: pd.DataFrame, key_set: str, classes: int, slots: tuple[float, ...],
              methods: tuple[str, ...] = MAP_METHODS) -> list[dict]:
    """One cell per slots-per-class value, from a run's results.csv frame.

    When class means ran, every other method also gets its paired difference to class
    means (vs_class_means, with its 95% interval over the same shuffles)."""
    table = footprint_table(frame).set_index("model")
    swept = len({memory_size(value, classes) for value in slots}) > 1
    shots = int(table["shots"].iloc[0])
    at = frame[frame["shots"] == shots]
    cells = []
    for value in slots:
        size = memory_size(value, classes)
        entry = {"key_set": key_set, "classes": int(classes), "slots_per_class": float(value),
                 "memory_size": size, "shots": shots, "repeats": int(table.loc[STORE_ALL, "repeats"]), "methods": {}}
        for method in methods:
            model = _model(method, size, swept)
            row = table.loc[model]
            mine = at[at["model"] == model].sort_values("repeat")
            accuracy = accuracy_interval(mine["n_correct"].to_numpy(), mine["n_eval"].to_numpy())
            entry["methods"][method] = {
                "accuracy": float(row["accuracy"]), "accuracy_low": accuracy.low, "accuracy_high": accuracy.high,
                "bytes": float(row["mean_bytes"]), "bytes_ratio": float(row["bytes_ratio"]),
                "vs_store_all": None if method == STORE_ALL else float(row["vs_store_all"]),
                "vs_store_all_low": None if method == STORE_ALL else float(row["vs_store_all_low"]),
                "vs_store_all_high": None if method == STORE_ALL else float(row["vs_store_all_high"]),
            }
            if "class_means" in methods and method != "class_means":
                versus = paired_difference(_per_repeat(at, model), _per_repeat(at, "class_means"))
                entry["methods"][method].update(vs_class_means=versus.mean, vs_class_means_low=versus.low,
                                                vs_class_means_high=versus.high)
        cells.append(entry)
    return cells


def read_results(path: Path, methods: tuple[str, ...] = MAP_METHODS) -> dict:
    """The results json at `path`, or an empty one; a file of another study, schema or method list is refused."""
    if not path.is_file():
        return {"study": "regime_map", "schema": SCHEMA, "slots_per_class": list(SLOTS_PER_CLASS),
                "methods": list(methods), "key_sets": {}, "cells": []}
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); move it away to start the map afresh") from error
    if results.get("study") != "regime_map" or results.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a regime map of schema {SCHEMA}; give another --out or move the file away")
    if results.get("methods") != list(methods):
        raise ValueError(f"{path} holds methods {results.get('methods')}, not {list(methods)}; give another --out")
    return results


def done_cells(results: dict) -> set[tuple[str, int, float]]:
    return {cell_key(c["key_set"], c["classes"], c["slots_per_class"]) for c in results["cells"]}


def write_results(path: Path, results: dict) -> None:
    results["cells"].sort(key=lambda c: (c["key_set"], c["classes"], c["slots_per_class"]))
    write_text_atomic(path, json.dumps(results, indent=1, sort_keys=True) + "\n")


def run_map(key_sets: list[KeySet], classes: list[int], out: Path, work: Path, shots: int, repeats: int,
            seed: int = 0, slots: tuple[float, ...] = SLOTS_PER_CLASS, log=print,
            methods: tuple[str, ...] = MAP_METHODS) -> dict:
    """Run every missing cell of key_sets x classes x slots into out/regime_map.json; returns the results.

    methods: the map's methods by default; a study of other policies names its own (with
    baseline, the store-all every difference is taken to)."""
    if STORE_ALL not in methods or any(m not in METHODS for m in methods):
        raise ValueError(f"methods {list(methods)}: each must be a face-registry method, baseline among them")
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS_JSON
    results = read_results(path, methods)
    for key_set in key_sets:
        data = load_embeddings_file(key_set.path, cfg.DataSection())
        known = results["key_sets"].get(key_set.name)
        if known is not None and known["fingerprint"] != data.fingerprint():
            raise ValueError(f"key set {key_set.name!r}: {key_set.path} is not the file the map in {path} was made "
                             "from; give it another name or start another --out")
        results["key_sets"][key_set.name] = {"file": str(key_set.path), "fingerprint": data.fingerprint(),
                                             "classes": len(data.class_names), "items": int(len(data.labels)),
                                             "key_dim": int(data.embeddings.shape[1]),
                                             "spread": key_spread(data.embeddings, data.labels)}
        for count in classes:
            missing = [s for s in slots if cell_key(key_set.name, count, s) not in done_cells(results)]
            if not missing:
                log(f"{key_set.name} {count} classes: done, skipped")
                continue
            names = subsample_classes(data.class_names, count, seed)
            config = cell_config([memory_size(s, count) for s in slots], shots, repeats, seed, str(key_set.path),
                                 methods)
            run_dir = work / key_set.name / f"{count}c"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)   # "smaller than store-all's keys" is the point here
                run_experiment(config, run_dir, restrict(data, names), progress=False, make_figures=False, log=log)
            frame = pd.read_csv(run_dir / RESULTS_FILE)
            new = cell_rows(frame, key_set.name, count, slots, methods)
            results["cells"] += [c for c in new if c["slots_per_class"] in missing]
            write_results(path, results)
            log(f"{key_set.name} {count} classes: {len(missing)} cell(s) written")
    write_results(path, results)
    return results


def parse_key_set(text: str) -> KeySet:
    name, separator, file = text.partition("=")
    if not separator or not name or not file:
        raise argparse.ArgumentTypeError(f"--keys wants NAME=FILE.npz, got {text!r}")
    if not Path(file).is_file():
        raise argparse.ArgumentTypeError(f"--keys {name}: {file} does not exist; make it with kshot embed or "
                                         "kshot omniglot embed")
    return KeySet(name, Path(file))


def _integers(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"want comma-separated integers, got {text!r}") from None


def main(argv=None) -> int:
    # Deferred: matplotlib and the report load only for the CLI.
    from experiments.studies.regime_map_report import write_report

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where regime_map.json, .md and the figure go")
    parser.add_argument("--work", type=Path, help="run directories (large; never committed); not needed with --report-only")
    parser.add_argument("--keys", type=parse_key_set, action="append", default=[], help="NAME=FILE.npz, repeatable")
    parser.add_argument("--classes", type=_integers, default=[], help="class counts, e.g. 5,20,50")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report-only", action="store_true", help="only redraw the table and figure")
    args = parser.parse_args(argv)
    if not args.report_only:
        if not args.keys or not args.classes or args.work is None:
            parser.error("give --keys, --classes and --work (or --report-only)")
        run_map(args.keys, args.classes, args.out, args.work, args.shots, args.repeats, args.seed)
    for path in write_report(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
