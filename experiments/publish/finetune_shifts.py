"""Renderer of the fine-tuning-across-shifts study (experiments.studies.finetune_shifts): one table of
paired differences per shift and recipe, and the decision the study's rule took, both read from
the committed results files, so that the regime (people, photos, slots, shift) sits beside every number."""

from __future__ import annotations

from pathlib import Path

from experiments.publish.tables import markdown_table, pct, points, points_ci, read_csv, read_json

RESULTS_DIR = "docs/results/finetune_shifts"
PAIRED = f"{RESULTS_DIR}/paired_differences.csv"
DECISION = f"{RESULTS_DIR}/decision.json"


def _runs(root: Path) -> dict[tuple[str, str], dict[int, dict]]:
    runs: dict[tuple[str, str], dict[int, dict]] = {}
    for row in read_csv(root, PAIRED):
        runs.setdefault((row["shift"], row["candidate"]), {})[int(row["shots"])] = row
    return runs


def _decided(decision: dict, shift: str, candidate: str) -> str:
    """The verdict the study wrote, computed from unrounded intervals: an end a few 1e-18 below 0
    is "-0.000000" in the CSV, so recomputing from the file could disagree with decision.json."""
    extended = decision.get("extended_verdicts", {})
    if f"{shift} / {candidate}" in extended:
        return extended[f"{shift} / {candidate}"]
    if shift in decision["reporting"].get(candidate, {}):
        return decision["reporting"][candidate][shift]
    return decision["candidates"][candidate]["per_shift"][shift]


def _names(items) -> str:
    return ", ".join(f"`{item}`" for item in items) or "none"


def finetune_shifts(root: Path) -> str:
    """FINETUNING: per shift and recipe, candidate minus store-all at every shot, and the decision."""
    runs = _runs(root)
    decision = read_json(root, DECISION)
    first = next(iter(runs.values()))
    any_row = first[min(k for k in first if k >= 1)]
    choosing = decision["choosing"]
    reach = {key: sorted(k for k in data if k >= 1) for key, data in runs.items()}
    lengths = sorted({shots[-1] for shots in reach.values()})
    rows = []
    for (shift, candidate), data in runs.items():
        shots = reach[(shift, candidate)]
        last = data[shots[-1]]
        rows.append((f"`{shift}`", "choosing" if shift in choosing else "reporting", f"`{candidate}`",
                     f"{shots[0]}-{shots[-1]}",
                     f"{pct(data[shots[0]]['reference_accuracy'])} / {pct(last['reference_accuracy'])}",
                     " ".join(points(data[k]["mean_difference"], 1) for k in shots),
                     points_ci(last["mean_difference"], last["ci_low"], last["ci_high"], 1),
                     _decided(decision, shift, candidate)))
    shots = reach[next(iter(runs))]
    span = (f"shots {shots[0]} to {lengths[0]}" if len(lengths) == 1 else
            f"shots {shots[0]} to {' or '.join(str(n) for n in lengths)} (the `shots` column)")
    people, slots = int(any_row["people"]), int(any_row["slots"])
    counts = {shift: int(data[shots[0]]["photos"]) for (shift, _), data in runs.items()}
    photos = (str(next(iter(counts.values()))) if len(set(counts.values())) == 1
              else ", ".join(f"{n} ({shift})" for shift, n in counts.items()))
    if {(int(d[shots[0]]["people"]), int(d[shots[0]]["slots"])) for d in runs.values()} != {(people, slots)}:
        raise ValueError(f"{PAIRED}: the runs differ in people or slots; one regime line cannot describe them")
    lines = [
        f"Regime: {people} people, {photos} photos with a detected face, a {slots}-slot memory "
        f"({slots / people:.1f} slots per class), FaceNet fine-tuned from Block8 up, {decision['repeats']} paired "
        f"repeats (seed 0) per shift and recipe, {span}, "
        f"{100 * decision['confidence']:.0f}% paired intervals per comparison. A recipe \"loses\" on a shift when "
        "at some shot its interval lies entirely below 0, \"wins\" when at some shot it lies entirely above 0 "
        "and it never loses.",
        "",
        markdown_table(("shift", "set", "recipe", "shots", "store-all % at first / last shot",
                        "recipe minus store-all, points, per shot", "at the last shot [95% CI]", "verdict"),
                       rows, "llllrlll"),
        "",
    ]
    summary = decision["candidates"]
    free = [name for name, s in summary.items() if s["loss_free"]]
    gains = "; ".join(f"`{name}` {100 * s['mean_gain']:+.1f}" for name, s in summary.items())
    lines.append(f"- Choosing shifts ({', '.join(f'`{s}`' for s in choosing)}): loss-free {_names(free)}; "
                 f"mean gain over shifts and shots, points: {gains}.")
    if decision["chosen"]:
        same = decision["chosen"] == decision["current_default"]
        lines.append(f"- Chosen by the rule: `{decision['chosen']}`"
                     + (" (unchanged: the lowres study's choice)." if same else
                        f" (it replaces the lowres study's `{decision['current_default']}`)."))
    else:
        lines.append("- No candidate was loss-free on the choosing shifts, so every candidate was read on the "
                     "reporting shifts.")
    for name, verdicts in decision["reporting"].items():
        by = {v: [s for s, got in verdicts.items() if got == v] for v in ("wins", "within noise", "loses")}
        lines.append(f"- `{name}` on the reporting shifts: wins on {_names(by['wins'])}; within noise on "
                     f"{_names(by['within noise'])}; loses on {_names(by['loses'])}.")
    if "extended" in decision:
        lines.append(f"- Extended after the choice (the chosen recipe alone, more shots; its rows replace the shorter "
                     f"runs above and its verdicts were not used in the choice): {_names(decision['extended'])}.")
        if decision["not_extended"]:
            lines.append(f"- Not extended (out of time this round): {_names(decision['not_extended'])}.")
    if decision["missing"]:
        lines.append(f"- Not run (out of time this round): {_names(decision['missing'])}.")
    return "\n".join(lines)
