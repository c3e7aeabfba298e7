"""Which fine-tuning recipe holds across face shifts? Choose on three shifts, report on five.

    python -m experiments.studies.finetune_shifts choose [--out DIR] [--repeats 50] [--max-shots 10]
    python -m experiments.studies.finetune_shifts report [--out DIR] [--repeats 50] [--max-shots 10]
    python -m experiments.studies.finetune_shifts extend [--out DIR] [--shifts a,b] [--recipes a,b] [--max-shots 10]
    python -m experiments.studies.finetune_shifts results [--out DIR] [--extended DIR ...] --results docs/results/finetune_shifts

The plan (sets, candidates, protocol, decision rule) was written in
docs/lab/2026-12-finetune-shifts.md before any accuracy on these shifts was read; this
module is that plan as code. `choose` runs every candidate on the choosing shifts;
`report` applies the decision rule to what is on disk and then runs the reporting shifts
ONCE for the chosen recipe (for every candidate if none was loss-free); `extend` runs the
named candidates (round one's choice by default) to more shots on any shift (each
extension declared in the lab notes first); `results` writes the committed results file,
with round one's choice and, when every candidate has longer choosing runs, round two's
re-choice from them. Every run directory
resumes like `kshot run`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.core.run_files import DATASET_FILE
from experiments.studies import finetune_study as study
from kshot_io import write_text_atomic

CHOOSING = ("celebrities_lowres", "celebrities_blur", "celebrities_jpeg")
REPORTING = ("celebrities", "celebrities_gray", "celebrities_noise", "celebrities_occlusion", "celebrities_cartoon")
_BY_NAME = {s.name: s for s in study.SETTINGS}
CANDIDATES = (
    _BY_NAME["B8_offcons_adam1e-4_s3"],        # the lowres study's choice, today's documented recipe
    _BY_NAME["B8_offcons_adam1e-4_s3_proj"],   # the other lowres winner
    study.make_setting("B8_offcons_adam1e-4_s1", study.OFF + "_consistent", "Block8", "adam", 1e-4, 1),  # the gentler hedge
)
CURRENT_DEFAULT = CANDIDATES[0].name
# the extension to 10 shots, declared in the lab notes: reporting shifts first, then blur and jpeg
# (lowres has its 10 shots in the committed lowres study, docs/results/finetune_lowres)
EXTENDED_SHIFTS = REPORTING + ("celebrities_blur", "celebrities_jpeg")
CONFIDENCE = 0.95
RESULTS_FILE = "paired_differences.csv"
DECISION_FILE = "decision.json"


def run_dir(out: Path, shift: str, candidate: str) -> Path:
    return out / shift / candidate


def run_shift(out: Path, shift: str, candidates, repeats: int, max_shots: int) -> None:
    """Run every candidate (next to store-all) on one shift; the data is prepared once per shift."""
    from experiments.faces.run_data import prepare_data  # deferred: loads TensorFlow and FaceNet
    from experiments.faces.runner import run_experiment  # deferred: loads TensorFlow

    data = prepare_data(study.config_for(candidates[0], repeats, shift, max_shots).data, need_crops=True)
    for candidate in candidates:
        print(f"== {shift} / {candidate.name}", flush=True)
        outcome = run_experiment(study.config_for(candidate, repeats, shift, max_shots),
                                 run_dir(out, shift, candidate.name), data, make_figures=False, progress=False)
        for model, timing in outcome["timing"].items():
            print(f"{model}: {timing['seconds_per_repeat']:.2f} s per repeat", flush=True)


def _regime(directory: Path) -> dict:
    with np.load(directory / DATASET_FILE) as dataset:
        return {"people": int(len(dataset["class_names"])), "photos": int(len(dataset["labels"]))}


def shift_table(out: Path, shifts, candidates, repeats: int) -> pd.DataFrame:
    """One row per (shift, candidate, shots) whose run has every repeat on disk; partial runs are left out."""
    frames = []
    for shift in shifts:
        for candidate in candidates:
            directory = run_dir(out, shift, candidate.name)
            if not (directory / "results.csv").is_file():
                continue
            results = pd.read_csv(directory / "results.csv")
            table = study.paired_differences(results, candidate.model, confidence=CONFIDENCE)
            if table.empty or int(table["repeats"].min()) < repeats:
                continue
            regime = _regime(directory)
            table.insert(0, "candidate", candidate.name)
            table.insert(0, "shift", shift)
            table["people"], table["photos"] = regime["people"], regime["photos"]
            table["slots"] = int(study.config_for(candidate, repeats, shift).memory.sizes[0])
            frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def prefer_longest(*tables: pd.DataFrame) -> pd.DataFrame:
    """One run per (shift, candidate): the one that reached the most shots (the first given on a tie).

    A 10-shot run cannot resume a 5-shot one (the shot count is part of a run's identity), so
    an extension lives in its own directory; this keeps its rows and drops the shorter run's."""
    runs: dict[tuple[str, str], pd.DataFrame] = {}   # first-seen order, so the table keeps its row order
    for frame in tables:
        if not len(frame):
            continue
        for key, rows in frame.groupby(["shift", "candidate"], sort=False):
            if key not in runs or rows["shots"].max() > runs[key]["shots"].max():
                runs[key] = rows
    return pd.concat(runs.values(), ignore_index=True) if runs else pd.DataFrame()


def verdict(rows: pd.DataFrame) -> str:
    """One shift and candidate: "loses" if at some shot the interval is entirely below 0,
    else "wins" if at some shot it is entirely above 0, else "within noise"."""
    if (rows["ci_high"] < 0).any():
        return "loses"
    return "wins" if (rows["ci_low"] > 0).any() else "within noise"


def choose(table: pd.DataFrame, candidates, shifts=CHOOSING) -> dict:
    """The decision rule on the choosing shifts: the loss-free candidate with the largest mean gain.

    Every candidate must have every choosing shift on disk, or nothing is chosen (an
    incomplete set must not pick a recipe). Returns {"chosen": name or None, "candidates":
    {name: {"loss_free", "mean_gain", "per_shift": {shift: verdict}}}, "complete": bool}.
    """
    summary, complete = {}, True
    for candidate in candidates:
        mine = table[(table["candidate"] == candidate.name) & table["shift"].isin(shifts)] if len(table) else table
        present = set(mine["shift"]) if len(mine) else set()
        complete &= present == set(shifts)
        scored = mine[mine["shots"] >= 1] if len(mine) else mine
        summary[candidate.name] = {
            "loss_free": bool(len(mine) and not (mine["ci_high"] < 0).any()),
            "mean_gain": float(scored["mean_difference"].mean()) if len(scored) else float("nan"),
            "per_shift": {s: verdict(mine[mine["shift"] == s]) for s in shifts if s in present},
        }
    free = [name for name, s in summary.items() if s["loss_free"]]
    chosen = max(free, key=lambda name: summary[name]["mean_gain"]) if complete and free else None
    return {"chosen": chosen, "complete": complete, "candidates": summary}


def named_candidates(names: str):
    """The candidates named in a comma-separated list, in the list's order; only the fixed three exist."""
    by_name = {c.name: c for c in CANDIDATES}
    wanted = [name for name in names.split(",") if name]
    unknown = [name for name in wanted if name not in by_name]
    if unknown or not wanted:
        raise SystemExit(f"--recipes: {', '.join(unknown) or 'none given'} not a candidate; "
                         f"the candidates fixed in the plan are {', '.join(by_name)}")
    return [by_name[name] for name in wanted]


def reporting_candidates(decision: dict, candidates):
    """Who is read on the reporting shifts: the chosen recipe, or every candidate if none was loss-free."""
    if not decision["complete"]:
        raise SystemExit("report: the choosing shifts are not complete for every candidate; run `choose` first")
    return [c for c in candidates if c.name == decision["chosen"]] if decision["chosen"] else list(candidates)


def rechoose(longer: pd.DataFrame, candidates) -> dict:
    """Round two's re-choice: round one's rule on the longer CHOOSING runs, only when every candidate
    has one on every choosing shift and all reach the same shot count (a mean over 1..5 shots
    must not compete with a mean over 1..10). Otherwise nothing is chosen and `complete` is False."""
    mine = longer[longer["shift"].isin(CHOOSING)] if len(longer) else longer
    decision = choose(mine, candidates)
    lengths = set(mine.groupby(["shift", "candidate"])["shots"].max()) if len(mine) else set()
    if len(lengths) != 1:
        decision.update(chosen=None, complete=False)
    decision["shots"] = max(lengths) if lengths else 0
    return decision


def _as_dirs(extended) -> list[Path]:
    return [extended] if isinstance(extended, Path) else list(extended or [])


def write_results(out: Path, results_dir: Path, repeats: int, candidates=CANDIDATES, extended=None) -> dict:
    """The committed results: every complete (shift, candidate) run's paired differences and the decision.

    Round one's choice is computed from the runs under `out` only (the 5-shot choosing runs); the
    runs under `extended` (one directory or several: the longer runs of the extension and of round
    two) replace the shorter run of the same shift and recipe in the table and in the verdicts.
    Round two re-chooses from the longer choosing runs when every candidate has them (`rechoose`);
    the default is round two's choice then, round one's otherwise. Reporting shifts never choose."""
    chosen_from = shift_table(out, CHOOSING + REPORTING, candidates, repeats)
    if chosen_from.empty:
        raise SystemExit(f"results: no complete run of {repeats} repeats under {out}")
    decision = choose(chosen_from, candidates)
    decision["default"] = decision["chosen"]
    table = chosen_from
    dirs = _as_dirs(extended)
    if dirs:
        longer = prefer_longest(*(shift_table(d, CHOOSING + REPORTING, candidates, repeats) for d in dirs))
        table = prefer_longest(chosen_from, longer)
        pairs = set(zip(longer["shift"], longer["candidate"])) if len(longer) else set()
        decision["extended"] = sorted(f"{s} / {c}" for s, c in pairs)
        decision["extended_verdicts"] = {
            f"{s} / {c}": verdict(rows) for (s, c), rows in longer.groupby(["shift", "candidate"])
        } if len(longer) else {}
        decision["not_extended"] = [s for s in EXTENDED_SHIFTS if f"{s} / {decision['chosen']}" not in decision["extended"]]
        decision["round_two"] = rechoose(longer, candidates)
        if decision["round_two"]["complete"] and decision["round_two"]["chosen"]:
            decision["default"] = decision["round_two"]["chosen"]
        decision["not_run_longer"] = [f"{s} / {c.name}" for s in CHOOSING + REPORTING for c in candidates
                                      if (s, c.name) not in pairs]
    order = {name: i for i, name in enumerate(CHOOSING + REPORTING)}
    ranks = {c.name: i for i, c in enumerate(candidates)}
    table = table.sort_values(["shift", "candidate", "shots"], kind="stable",
                              key=lambda col: col.map(order) if col.name == "shift"
                              else col.map(ranks) if col.name == "candidate" else col).reset_index(drop=True)
    decision["max_shots"] = {f"{s} / {c}": int(rows["shots"].max())
                             for (s, c), rows in table.groupby(["shift", "candidate"], sort=False)}
    reported = table[table["shift"].isin(REPORTING)]
    decision["reporting"] = {
        name: {s: verdict(reported[(reported["candidate"] == name) & (reported["shift"] == s)])
               for s in REPORTING if ((reported["candidate"] == name) & (reported["shift"] == s)).any()}
        for name in dict.fromkeys(reported["candidate"])}
    decision["missing"] = [f"{s} / {c.name}" for s in CHOOSING for c in candidates
                           if not ((table["shift"] == s) & (table["candidate"] == c.name)).any()]
    decision["missing"] += [s for s in REPORTING if s not in set(reported["shift"])]
    decision.update({"repeats": repeats, "confidence": CONFIDENCE, "choosing": list(CHOOSING),
                     "reporting_shifts": list(REPORTING), "current_default": CURRENT_DEFAULT})
    results_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(results_dir / RESULTS_FILE, table.to_csv(index=False, float_format="%.6f"))
    write_text_atomic(results_dir / DECISION_FILE, json.dumps(decision, indent=2, sort_keys=True) + "\n")
    return decision


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("choose", "report", "extend", "results"))
    parser.add_argument("--out", type=Path, default=Path("runs/finetune_shifts"))
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--max-shots", type=int, default=study.MAX_SHOTS)
    parser.add_argument("--shifts", default="", help="comma-separated shifts of this step (default: all of the step's set)")
    parser.add_argument("--results", type=Path, default=Path("docs/results/finetune_shifts"))
    parser.add_argument("--recipes", default=CURRENT_DEFAULT,
                        help="extend: comma-separated candidates to run (default: round one's choice alone)")
    parser.add_argument("--extended", type=Path, action="append", default=None,
                        help="results: run directories of `extend` (repeatable); their longer runs replace the shorter ones")
    args = parser.parse_args(argv)

    allowed = {"choose": CHOOSING, "extend": CHOOSING + REPORTING}.get(args.step, REPORTING)
    shifts = [s for s in args.shifts.split(",") if s] or list(allowed)
    wrong = [s for s in shifts if s not in allowed]
    if wrong and args.step != "results":
        raise SystemExit(f"--shifts: {', '.join(wrong)} not in the {args.step} set; it holds {', '.join(allowed)}")
    if args.step == "choose":
        for shift in shifts:
            run_shift(args.out, shift, CANDIDATES, args.repeats, args.max_shots)
    elif args.step == "report":
        decision = choose(shift_table(args.out, CHOOSING, CANDIDATES, args.repeats), CANDIDATES)
        chosen = reporting_candidates(decision, CANDIDATES)
        print(f"chosen on {', '.join(CHOOSING)}: {decision['chosen'] or 'none loss-free; reading every candidate'}")
        for shift in shifts:
            run_shift(args.out, shift, chosen, args.repeats, args.max_shots)
    elif args.step == "extend":
        for shift in shifts:
            run_shift(args.out, shift, named_candidates(args.recipes), args.repeats, args.max_shots)
    else:
        decision = write_results(args.out, args.results, args.repeats, extended=args.extended)
        print(json.dumps(decision, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
