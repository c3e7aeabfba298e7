"""Renderers of the official Omniglot benchmark: what `kshot omniglot benchmark` wrote into docs/results
(the 20 evaluation alphabets, Lake et al.'s runs, the life-long stream), beside the published numbers
of experiments/publish/references.py."""

from __future__ import annotations

from pathlib import Path

from experiments.publish.omniglot import (
    CELL_HEADER,
    CELLS,
    REFERENCES,
    RESULTS,
    TEST_READOUTS,
    _cells,
    _nway,
    stream_table,
)
from experiments.publish.tables import markdown_table, pct, read_json, read_module

OFFICIAL = f"{RESULTS}/omniglot_official.json"
LAKE_OFFICIAL = f"{RESULTS}/omniglot_lake_official.json"
STREAM_OFFICIAL = f"{RESULTS}/omniglot_stream_official.json"
STREAM_FIGURE = f"{RESULTS}/omniglot_stream_official"  # .png and .svg
STREAM_LABELS = {"store-all": "store-all 1-NN", "memory": "Kaiser memory", "fifo": "FIFO",
                 "reservoir": "class-balanced reservoir", "prototype": "class means"}


def _official(root: Path) -> dict:
    results = read_json(root, OFFICIAL)
    if results["evaluated"] != "unseen" or results["split"]["unseen_characters"] != 659:
        raise ValueError(f"{OFFICIAL} is not an evaluation of the 659 characters of the evaluation set")
    return results


def omniglot_official(root: Path) -> str:
    """README and docs/OMNIGLOT.md: the shipped checkpoint on the evaluation set beside the published numbers."""
    results = _official(root)
    rows, untrained = _nway(results), _nway(results, "untrained")
    body = [("shipped checkpoint", label, *_cells(rows, readout)) for readout, label in TEST_READOUTS.items()]
    body.append(("untrained network (floor)", "Kaiser memory", *_cells(untrained, "memory", interval=False)))
    published = read_module(root, REFERENCES)["OMNIGLOT_PUBLISHED"]
    body += [(f"{who}, {where}", "published", *(f"{numbers[c]:.1f}" for c in CELLS))
             for who, where, _, numbers in published]
    split = results["split"]
    return "\n".join([
        f"OFFICIAL benchmark: Omniglot's {len(split['unseen_alphabets'])} evaluation alphabets "
        f"({split['unseen_characters']} characters, never seen in training; the checkpoint trained on "
        f"{split['train_characters']} background characters), {results['episodes']:,} tasks per cell, "
        f"{results['queries']} query per class; % with the 95% Wilson interval of the pooled answers. Kaiser et al.'s "
        "released code also trains on the background set and tests on the evaluation set; the other four papers use "
        "Vinyals et al.'s split (1,200 training characters from both sets, with rotations; 423 test characters), "
        "other test characters, so the comparison with them is indicative:",
        "",
        markdown_table(("model", "readout", *CELL_HEADER), body, "llllll"),
        "",
        omniglot_official_verdict(root),
    ])


def omniglot_official_targets(root: Path) -> str:
    """The earlier targets, Kaiser et al.'s four numbers, against the memory readout on the evaluation set."""
    rows = _nway(_official(root))
    paper = read_module(root, REFERENCES)["KAISER_2017_OMNIGLOT"]
    body, met = [], []
    for ways, shots in CELLS:
        r = rows[("memory", ways, shots)]
        target = paper[(ways, shots)] / 100
        where = ("entirely above it" if r["ci_low"] > target else
                 "entirely below it" if r["ci_high"] < target else "holds it")
        ok = r["mean"] >= target
        met.append(ok)
        body.append((f"{ways}-way {shots}-shot", f"{100 * target:.1f}", pct(r["mean"], 2),
                     f"[{pct(r['ci_low'])}, {pct(r['ci_high'])}]", "met" if ok else "not met",
                     f"{100 * (r['mean'] - target):+.2f}", where))
    verdict = ("The memory readout meets all four of Kaiser et al.'s numbers on the official benchmark"
               if all(met) else f"The memory readout meets {sum(met)} of Kaiser et al.'s four numbers")
    return "\n".join([
        markdown_table(("cell", "Kaiser et al. 2017", "memory (shipped)", "95% interval", "target",
                        "minus the paper, points", "the interval"), body, "lrrllrl"),
        "",
        f"{verdict} (met: the point estimate at or above the paper's number).",
    ])


def omniglot_lake_official(root: Path) -> str:
    """Lake et al.'s 20 runs as error rates, beside people, BPL and the siamese network."""
    results = read_json(root, LAKE_OFFICIAL)
    body = [(f"shipped checkpoint, {readout} readout", pct(r["error_rate"]),
             f"[{pct(1 - r['ci_high'])}, {pct(1 - r['ci_low'])}]", "this repository")
            for readout, r in results["readouts"].items()]
    body += [(who, f"{error:.1f}", "", source) for who, source, error in read_module(root, REFERENCES)["LAKE_RUNS_PUBLISHED"]]
    runs = results["runs"]
    return "\n".join([
        f"Lake et al.'s {runs} one-shot runs (`all_runs.zip`: each 20 characters of one evaluation alphabet, "
        f"20-way 1-shot, {20 * runs} answers); error rate in % (lower is better), with the 95% Wilson interval "
        "of the pooled answers:",
        "",
        markdown_table(("who", "error %", "95% interval", "source"), body, "lrll"),
    ])


def omniglot_stream_official(root: Path) -> str:
    results = read_json(root, STREAM_OFFICIAL)
    first, last = results["rows"][0]["by_position"][0], results["rows"][0]["by_position"][-1]
    return "\n".join([
        f"{results['items']:,} drawings of the {results['classes']} evaluation characters, one seeded order, each "
        "answered before it is written; accuracy in % on drawings whose character was seen before (95% Wilson "
        f"interval), by earlier drawings of that character, and on the stream's first ({first['from']:,} to "
        f"{first['to']:,}) and last ({last['from']:,} to {last['to']:,}) items:",
        "",
        stream_table(results, STREAM_LABELS, per_character=".2f", first_items=True),
    ])


def omniglot_official_verdict(root: Path) -> str:
    """One paragraph: Kaiser et al.'s four numbers met or not, and Lake's runs as an error rate beside the published."""
    rows = _nway(_official(root))
    references = read_module(root, REFERENCES)
    paper = references["KAISER_2017_OMNIGLOT"]
    met = [f"{n}-way {k}-shot" for n, k in CELLS if rows[("memory", n, k)]["mean"] >= paper[(n, k)] / 100]
    missed = [f"{n}-way {k}-shot" for n, k in CELLS if f"{n}-way {k}-shot" not in met]
    if not missed:
        targets = "Kaiser et al.'s four numbers, the earlier targets, are met on the official benchmark"
    else:
        targets = (f"Of Kaiser et al.'s four numbers, the earlier targets, the memory readout meets {', '.join(met) or 'none'} "
                   f"and misses {', '.join(missed)} on the official benchmark")
    held = [f"{n}-way {k}-shot" for n, k in CELLS if rows[("memory", n, k)]["ci_low"] <= paper[(n, k)] / 100]
    if held:
        targets += f"; at {', '.join(held)} the 95% interval still holds the paper's number"
    lake = read_json(root, LAKE_OFFICIAL)["readouts"]["memory"]
    published = "; ".join(f"{who} {error:.1f}%" for who, _, error in references["LAKE_RUNS_PUBLISHED"])
    return (f"{targets} (met: the point estimate at or above the paper's number). On Lake et al.'s 20 one-shot runs the memory readout's error is {pct(lake['error_rate'])}% "
            f"[{pct(1 - lake['ci_high'])}, {pct(1 - lake['ci_low'])}] (published: {published}).")
