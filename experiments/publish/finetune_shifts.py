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
    lines += _choice_lines(decision)
    lines += _per_recipe_lines(decision, list(runs))
    if "extended" in decision and not decision.get("round_two", {}).get("complete"):
        lines.append(f"- Extended after the choice (the chosen recipe alone, more shots; its rows replace the shorter "
                     f"runs above and its verdicts were not used in the choice): {_names(decision['extended'])}.")
        if decision["not_extended"]:
            lines.append(f"- Not extended (out of time this round): {_names(decision['not_extended'])}.")
    if decision.get("not_run_longer"):
        lines.append(f"- Not run to the longer shot count (cut at the declared time; the shorter run's row stays "
                     f"where there is one): {_names(decision['not_run_longer'])}.")
    if decision["missing"]:
        lines.append(f"- Not run (out of time this round): {_names(decision['missing'])}.")
    return "\n".join(lines)


def _rule_line(label: str, summary: dict) -> str:
    free = [name for name, s in summary.items() if s["loss_free"]]
    gains = "; ".join(f"`{name}` {100 * s['mean_gain']:+.1f}" for name, s in summary.items())
    return f"- {label}: loss-free {_names(free)}; mean gain over shifts and shots, points: {gains}."


def _choice_lines(decision: dict) -> list[str]:
    """Round one's choice (5-shot choosing runs) and, when it was made, round two's re-choice."""
    choosing = ", ".join(f"`{s}`" for s in decision["choosing"])
    round_two = decision.get("round_two")
    first = "Round one, choosing shifts" if round_two else "Choosing shifts"
    lines = [_rule_line(f"{first} ({choosing})", decision["candidates"])]
    if decision["chosen"]:
        same = decision["chosen"] == decision["current_default"]
        lines.append(f"- Chosen by the rule{' in round one' if round_two else ''}: `{decision['chosen']}`"
                     + (" (unchanged: the lowres study's choice)." if same else
                        f" (it replaces the lowres study's `{decision['current_default']}`)."))
    else:
        lines.append("- No candidate was loss-free on the choosing shifts, so every candidate was read on the "
                     "reporting shifts.")
    if not round_two:
        return lines
    if not round_two["complete"]:
        lines.append("- Round two (every candidate on the choosing shifts to more shots) is incomplete, so it chose "
                     f"nothing; the default stays `{decision['default']}`.")
        return lines
    lines.append(_rule_line(f"Round two, the same rule on shots 1 to {round_two['shots']} of the choosing shifts",
                            round_two["candidates"]))
    if round_two["chosen"]:
        kept = round_two["chosen"] == decision["chosen"]
        lines.append(f"- Default, chosen by the rule in round two: `{round_two['chosen']}`"
                     + (" (round one's choice, kept)." if kept else f" (it replaces round one's `{decision['chosen']}`)."))
    else:
        lines.append(f"- No candidate was loss-free in round two; the default stays `{decision['default']}`.")
    return lines


def _per_recipe_lines(decision: dict, runs: list[tuple[str, str]]) -> list[str]:
    """Per recipe, on which shifts it wins, is within noise or loses, and whether any recipe never loses."""
    by_recipe: dict[str, dict[str, list[str]]] = {}
    for shift, candidate in runs:
        got = _decided(decision, shift, candidate)
        by_recipe.setdefault(candidate, {"wins": [], "within noise": [], "loses": []})[got].append(shift)
    lines = [f"- `{name}` on every shift it ran on: wins on {_names(by['wins'])}; within noise on "
             f"{_names(by['within noise'])}; loses on {_names(by['loses'])}." for name, by in by_recipe.items()]
    holding = [name for name, by in by_recipe.items() if not by["loses"]]
    lines.append(f"- Never loses on any shift it ran on: {_names(holding)}." if holding else
                 "- No recipe avoids a loss on every shift: each loses on some shift (above).")
    return lines
