"""Write policy candidates on the regime map's cells: chosen on the choosing sets, reported once.

    python -m experiments.studies.regime_map_candidates --stage choosing --out DIR --work RUNS \\
        --keys NAME=FILE.npz [--keys ...] --classes 5,20 --shots 10 --repeats 20
    python -m experiments.studies.regime_map_candidates --stage reporting --chosen memory_ward ... (same options)
    python -m experiments.studies.regime_map_candidates --report-only --out DIR
    (--round 2 for the second round: round one's choice against the one candidate added after it)

The candidates and the rule that picks one were fixed before any of their numbers
(docs/lab/2026-12-regime-map.md, "write policy candidates"): the aim is a bounded memory
within 1 point of store-all at no more than a third of its bytes, and never more than 1
point below class means, in every cell with at least one slot per class. The cells are run
by experiments.studies.regime_map (the same shuffles, class subsamples and json), with
this study's methods in place of the map's; this module adds the decision rule and the
tables, both computed from the results json alone.

Round two (declared in the same lab note after round one's numbers were read) adds one
candidate and runs it against round one's choice under the same rule, so the new candidate
is chosen only if it beats that choice; a second round is counted, not hidden.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.studies import regime_map as rm
from kshot_io import write_text_atomic

CANDIDATES = ("memory_ward", "memory_ward_fill", "memory_fold_fill")  # round one
ROUND_TWO = ("memory_ward_fill", "memory_ward_keep")  # round one's choice, then the candidate added after it
ROUNDS = {1: CANDIDATES, 2: ROUND_TWO}
PAIRING = ("baseline", "class_means", "memory_fold")
CHOOSING_METHODS = PAIRING + CANDIDATES
DECIDING_SLOTS = (1.0, 2.0, 4.0)  # below one slot per class no policy can hold every class
TOLERANCE = 0.01  # the aim's 1 point
BYTES_SHARE = 1 / 3  # the store-all comparison applies at no more than a third of its bytes
TIE = 0.001  # worst gaps within 0.1 point tie; the mean gap decides
TABLE_MD = "candidates.md"


def reporting_methods(chosen: str, candidates: tuple[str, ...] = CANDIDATES) -> tuple[str, ...]:
    if chosen not in candidates:
        raise ValueError(f"--chosen {chosen!r} is not a candidate; choose one of {', '.join(candidates)}")
    return PAIRING + (chosen,)


def gaps(cell: dict, method: str) -> dict[str, float]:
    """The cell's margins of `method` over the aim, in accuracy (>= 0: it holds that part).

    vs_class_means: (method - class means) + 1 point; vs_store_all: (method - store-all) + 1
    point, only where the method's mean bytes are at most a third of store-all's.
    """
    entry = cell["methods"][method]
    out = {"vs_class_means": entry["accuracy"] - cell["methods"]["class_means"]["accuracy"] + TOLERANCE}
    if entry["bytes_ratio"] <= BYTES_SHARE:
        out["vs_store_all"] = entry["vs_store_all"] + TOLERANCE
    return out


def deciding_cells(results: dict) -> list[dict]:
    return [c for c in results["cells"] if c["slots_per_class"] in DECIDING_SLOTS]


def scores(results: dict, methods: tuple[str, ...]) -> dict[str, dict]:
    """Per method: the worst and the mean gap over the deciding cells, and the cell of the worst."""
    out = {}
    for method in methods:
        every = [(value, cell, part) for cell in deciding_cells(results) for part, value in gaps(cell, method).items()]
        if not every:
            raise ValueError("no deciding cells (slots per class 1, 2 or 4) in the results")
        worst, cell, part = min(every, key=lambda item: item[0])
        out[method] = {"worst": worst, "mean": sum(v for v, _, _ in every) / len(every), "gaps": len(every),
                       "worst_at": f"{cell['key_set']} {cell['classes']} classes {cell['slots_per_class']:g} "
                                   f"slots/class ({part})"}
    return out


def choose(results: dict, candidates: tuple[str, ...] = CANDIDATES) -> str:
    """The candidate of the largest worst gap; within TIE of it, the larger mean gap (the first on an exact tie)."""
    score = scores(results, candidates)
    best = max(score[m]["worst"] for m in candidates)
    close = [m for m in candidates if score[m]["worst"] >= best - TIE]
    return max(close, key=lambda m: score[m]["mean"])


def points(value: float) -> str:
    """A difference in accuracy (a fraction) as signed points, one decimal."""
    return f"{100 * value:+.1f}"


def interval(entry: dict, versus: str) -> str:
    """An entry's paired difference `versus` a reference, with its interval, in points."""
    return f"{points(entry[versus])} [{points(entry[versus + '_low'])}, {points(entry[versus + '_high'])}]"


def holds(cell: dict, method: str) -> bool:
    return all(value >= 0 for value in gaps(cell, method).values())


def candidates_markdown(results: dict, candidates: tuple[str, ...] = CANDIDATES) -> str:
    """The decision (when every candidate ran) and, per cell, each bounded method against store-all and class means."""
    cells = results["cells"]
    if not cells:
        return "No cells yet.\n"
    methods = [m for m in results["methods"] if m not in ("baseline", "class_means")]
    lines = []
    if all(m in results["methods"] for m in candidates):
        lines += ["Decision over the cells of 1, 2 and 4 slots per class (points; gap = difference + 1, to class "
                  "means everywhere and to store-all where the method holds at most a third of its bytes; the "
                  "aim holds where every gap is >= 0):", "",
                  "| method | worst gap | where | mean gap | gaps |", "|---|---:|---|---:|---:|"]
        for method, score in scores(results, tuple(methods)).items():
            lines.append(f"| {method} | {points(score['worst'])} | {score['worst_at']} | {points(score['mean'])} | "
                         f"{score['gaps']} |")
        among = "" if candidates == CANDIDATES else f" among {', '.join(candidates)}"  # round one's text unchanged
        lines += ["", f"Chosen by the rule fixed beforehand{among}: **{choose(results, candidates)}** "
                      "(memory_fold is not a candidate).", ""]
    lines += [
        "Per cell at the top shot: store-all and class means in %, each bounded method as its difference to "
        "store-all and to class means in points with 95% paired intervals (same shuffles); x = its bytes over "
        "store-all's; holds = within 1 point of class means and, at <= 1/3 of the bytes, of store-all "
        "(cells of 0.5 slots per class decide nothing: -).",
        "",
        "| key set | classes | slots/class | repeats | store-all % | class means % | method | x | vs store-all | "
        "vs class means | holds |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for cell in cells:
        m = cell["methods"]
        for method in methods:
            verdict = ("yes" if holds(cell, method) else "no") if cell["slots_per_class"] in DECIDING_SLOTS else "-"
            lines.append(
                f"| {cell['key_set']} | {cell['classes']} | {cell['slots_per_class']:g} | {cell['repeats']} | "
                f"{100 * m['baseline']['accuracy']:.1f} | {100 * m['class_means']['accuracy']:.1f} | {method} | "
                f"{m[method]['bytes_ratio']:.2f} | {interval(m[method], 'vs_store_all')} | "
                f"{interval(m[method], 'vs_class_means')} | {verdict} |")
    return "\n".join(lines) + "\n"


def write_report(out: Path, candidates: tuple[str, ...] = CANDIDATES) -> Path:
    results = json.loads((out / rm.RESULTS_JSON).read_text(encoding="utf-8"))
    path = out / TABLE_MD
    write_text_atomic(path, candidates_markdown(results, candidates))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=("choosing", "reporting"))
    parser.add_argument("--chosen", help="the candidate the choosing stage picked (reporting only)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--keys", type=rm.parse_key_set, action="append", default=[])
    parser.add_argument("--classes", type=rm._integers, default=[])
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--round", type=int, choices=sorted(ROUNDS), default=1,
                        help="1: round one's three candidates; 2: round one's choice against the candidate added after it")
    args = parser.parse_args(argv)
    if not args.report_only:
        if args.stage is None or not args.keys or not args.classes or args.work is None:
            parser.error("give --stage, --keys, --classes and --work (or --report-only)")
        if args.stage == "reporting" and args.chosen is None:
            parser.error("--stage reporting needs --chosen (the candidate the choosing stage picked)")
        candidates = ROUNDS[args.round]
        methods = PAIRING + candidates if args.stage == "choosing" else reporting_methods(args.chosen, candidates)
        rm.run_map(args.keys, args.classes, args.out, args.work, args.shots, args.repeats, methods=methods)
    print(write_report(args.out, ROUNDS[args.round]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
