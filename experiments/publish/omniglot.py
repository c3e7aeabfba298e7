"""Renderers of the Omniglot results: the JSON that `kshot omniglot eval | compare | lake |
stream --json` wrote into docs/results, and the shipped checkpoint's manifest and logs."""

from __future__ import annotations

from pathlib import Path

from scipy.stats import binom

from experiments.core.metrics import interval_verdict
from experiments.episodic.views import rivals_table

from experiments.publish.tables import (
    markdown_table,
    pct,
    pct_ci,
    points_ci,
    read_json,
    read_jsonl,
    read_module,
)

RESULTS = "docs/results"
EVAL = f"{RESULTS}/omniglot_eval.json"
EVAL_RUNNING_MEAN = f"{RESULTS}/omniglot_eval_running_mean.json"
EVAL_WITHIN = f"{RESULTS}/omniglot_eval_within_alphabet.json"
EVAL_WITHIN_VALIDATION = f"{RESULTS}/omniglot_eval_within_alphabet_validation.json"
LAKE = f"{RESULTS}/omniglot_lake_synthetic.json"
STREAM = f"{RESULTS}/omniglot_stream.json"
COMPARE_PREVIOUS = f"{RESULTS}/omniglot_compare_previous.json"
COMPARE_PREVIOUS_WITHIN = f"{RESULTS}/omniglot_compare_previous_within_alphabet.json"
COMPARE_FINETUNE = f"{RESULTS}/omniglot_compare_finetune.json"
COMPARE_FINETUNE_WITHIN = f"{RESULTS}/omniglot_compare_finetune_within_alphabet.json"
SHIPPED = "experiments/episodic/shipped"
MANIFEST = f"{SHIPPED}/manifest.json"
LOGS = (f"{SHIPPED}/pretrain_log.jsonl", f"{SHIPPED}/finetune_log.jsonl", f"{SHIPPED}/log.jsonl")
REFERENCES = "experiments/publish/references.py"

CELLS = ((5, 1), (5, 5), (20, 1), (20, 5))
CELL_HEADER = tuple(f"{n}-way {k}-shot" for n, k in CELLS)
TEST_READOUTS = {"memory": "Kaiser memory", "1-NN": "store-all 1-NN", "prototype": "prototype"}
WITHIN_READOUTS = {"memory": "memory", "1-NN": "store-all 1-NN", "prototype": "prototype"}


def alphabet_name(name: str) -> str:
    return {"N_Ko": "N'Ko"}.get(name, name.replace("_", " "))


def _nway(results: dict, embedder: str = "trained") -> dict[tuple, dict]:
    return {(r["readout"], r["ways"], r["shots"]): r for r in results["nway"] if r["embedder"] == embedder}


def _cells(rows: dict[tuple, dict], readout: str, interval: bool = True) -> list[str]:
    found = [rows[(readout, n, k)] for n, k in CELLS]
    if interval:
        return [pct_ci(r["mean"], r["ci_low"], r["ci_high"]) for r in found]
    return [pct(r["mean"]) for r in found]


def _paper(root: Path) -> dict[tuple[int, int], float]:
    return read_module(root, REFERENCES)["KAISER_2017_OMNIGLOT"]


def _regime(results: dict) -> str:
    split = results["split"]
    return (f"{results['episodes']:,} tasks per cell, {results['queries']} query per class, on the "
            f"{len(split['test_alphabets'])} held-out test alphabets ({split['test_characters']} characters); "
            "% with the 95% Wilson interval of the pooled answers")


# ---------------------------------------------------------------- the split


def omniglot_split(root: Path) -> str:
    split = read_json(root, EVAL)["split"]
    names = lambda key: ", ".join(alphabet_name(a) for a in split[key])  # noqa: E731
    return "\n".join([
        f"- **test**: {names('test_alphabets')}: **{split['test_characters']} characters**, "
        f"{split['test_images']:,} drawings. Every development table of this guide is on these.",
        f"- **validation**: {names('validation_alphabets')}: **{split['validation_characters']} characters**. "
        "Every choice of the recipe was made on these; the training logs report them.",
        f"- **train**: the other {len(split['train_alphabets'])} alphabets, **{split['train_characters']} "
        f"characters**, {split['train_classes']:,} classes with the 90/180/270-degree rotations "
        f"({split['train_images']:,} drawings).",
    ])


# ---------------------------------------------------------------- the shipped checkpoint on the test alphabets


def omniglot_dev(root: Path) -> str:
    """README: the DEVELOPMENT table."""
    results = read_json(root, EVAL)
    rows = _nway(results)
    body = [("recipe (shipped)", label, *_cells(rows, readout)) for readout, label in TEST_READOUTS.items()]
    return "\n".join([
        f"DEVELOPMENT table: held-out background alphabets, not the official evaluation set. {_regime(results)}:",
        "",
        markdown_table(("embedder", "readout", *CELL_HEADER), body, "llllll"),
    ])


def omniglot_test_readouts(root: Path) -> str:
    results = read_json(root, EVAL)
    rows, untrained = _nway(results), _nway(results, "untrained")
    paper = _paper(root)
    body = [("trained (recipe, shipped)", label, *_cells(rows, readout)) for readout, label in TEST_READOUTS.items()]
    body += [("untrained (same architecture)", label, *_cells(untrained, readout, interval=False))
             for readout, label in TEST_READOUTS.items() if (readout, 5, 1) in untrained]
    for path, label in ((COMPARE_PREVIOUS, "previous checkpoint (20-way fine-tuning episodes)"),
                        (COMPARE_FINETUNE, "the one before (three members, no fine-tuning)")):
        compared = {(c["ways"], c["shots"]): c for c in read_json(root, path)["cells"]}
        body.append((label, "Kaiser memory", *(pct(compared[c]["reference"]["mean"]) for c in CELLS)))
    body.append(("Kaiser et al. 2017 (20 evaluation alphabets)", "memory", *(f"{paper[c]:.1f}" for c in CELLS)))
    return "\n".join([f"{_regime(results)}:", "", markdown_table(("embedder", "readout", *CELL_HEADER), body, "llllll")])


def omniglot_stage_gains(root: Path) -> str:
    columns = ((COMPARE_PREVIOUS, "40-way minus 20-way episodes, mixed tasks"),
               (COMPARE_PREVIOUS_WITHIN, "the same, one alphabet per task"),
               (COMPARE_FINETUNE, "20-way fine-tuning minus none, mixed tasks"),
               (COMPARE_FINETUNE_WITHIN, "the same, one alphabet per task"))
    found = []
    for path, _ in columns:
        data = read_json(root, path)
        if data["evaluated"] != "test":
            raise ValueError(f"{path} was measured on {data['evaluated']}, not on the test alphabets")
        found.append({(c["ways"], c["shots"]): c for c in data["cells"]})
    body = [(f"{n}-way {k}-shot", *(points_ci(f[(n, k)]["difference"], f[(n, k)]["ci_low"], f[(n, k)]["ci_high"])
                                    for f in found)) for n, k in CELLS]
    episodes = {c["episodes"] for f in found for c in f.values()}
    return "\n".join([
        f"Memory readout, {', '.join(f'{e:,}' for e in sorted(episodes))} paired tasks per cell on the test "
        "alphabets, difference in points [95% percentile bootstrap over the tasks]:",
        "",
        markdown_table(("cell", *(label for _, label in columns)), body, "lllll"),
    ])


def omniglot_running_mean(root: Path) -> str:
    plain, mean = _nway(read_json(root, EVAL)), _nway(read_json(root, EVAL_RUNNING_MEAN))
    paper = _paper(root)
    body = [("the paper's merge, normalise(K + q) (shipped)", *_cells(plain, "memory")),
            ("`running_mean = true`, count-weighted merges", *_cells(mean, "memory")),
            ("Kaiser et al. 2017 (20 evaluation alphabets)", *(f"{paper[c]:.1f}" for c in CELLS))]
    return markdown_table(("memory readout, test alphabets", *CELL_HEADER), body, "lllll")


def omniglot_by_alphabet(root: Path, ways: int = 20, shots: int = 1) -> str:
    rows = [r for r in read_json(root, EVAL)["by_alphabet"]
            if (r["readout"], r["ways"], r["shots"]) == ("memory", ways, shots)]
    body = [(alphabet_name(r["alphabet"]), r["characters"], f"{r['answers']:,}", pct_ci(r["mean"], r["ci_low"], r["ci_high"]),
             f"{100 * r['errors_within_alphabet']:.0f}%") for r in rows]
    worst = min(rows, key=lambda r: r["mean"])
    others = [r for r in rows if r is not worst]
    rest = sum(r["mean"] * r["answers"] for r in others) / sum(r["answers"] for r in others)
    return "\n".join([
        f"{ways}-way {shots}-shot, memory readout, the same tasks split by the query's alphabet:",
        "",
        markdown_table(("alphabet", "characters", "answers", "accuracy % [95% CI]", "wrong answers naming the same alphabet"),
                       body, "lrrlr"),
        "",
        f"Without {alphabet_name(worst['alphabet'])} the other {len(others)} alphabets together score {pct(rest)}%.",
    ])


def _rivals(root: Path, shots: int):
    found = rivals_table(read_json(root, EVAL), ways=20, shots=shots)
    if found is None:
        raise ValueError(f"{EVAL} has no breakdown by rivals; write it with `kshot omniglot eval --by-alphabet`")
    return found


def omniglot_rivals(root: Path, pooled_from: int = 7, ways: int = 20, p_same: float = 1 / 20) -> str:
    """Answers by the query's same-alphabet rivals, pooled over alphabets; counts from `pooled_from` on in one row."""
    rows = [r for r in read_json(root, EVAL)["by_rivals"] if (r["readout"], r["ways"], r["shots"]) == ("memory", ways, 1)]
    counts: dict[int, list[int]] = {}
    for r in rows:
        right, answers = counts.setdefault(r["rivals"], [0, 0])
        counts[r["rivals"]] = [right + r["right"], answers + r["answers"]]
    total = sum(answers for _, answers in counts.values())
    weights = {k: binom.pmf(k, ways - 1, p_same) for k in counts}
    weight_total = sum(weights.values())
    groups = [([k], str(k)) for k in sorted(counts) if k < pooled_from]
    tail = [k for k in sorted(counts) if k >= pooled_from]
    if tail:
        groups.append((tail, f"{tail[0]} to {tail[-1]}" if len(tail) > 1 else str(tail[0])))
    body = []
    for members, label in groups:
        right = sum(counts[k][0] for k in members)
        answers = sum(counts[k][1] for k in members)
        body.append((label, f"{answers:,}", pct(right / answers), pct(answers / total),
                     pct(sum(weights[k] for k in members) / weight_total)))
    return "\n".join([
        f"{ways}-way 1-shot, memory readout, pooled over the test alphabets, by the number of other characters "
        "of the query's own alphabet in its task:",
        "",
        markdown_table(("rivals", "answers", "accuracy %", "share of answers here %", f"share at p = {p_same:g} %"), body),
    ])


def omniglot_rivals_estimate(root: Path) -> str:
    _, one = _rivals(root, 1)
    _, five = _rivals(root, 5)
    quoted = [f"{pct(e['estimate'])}% [{pct(e['ci_low'])}, {pct(e['ci_high'])}]" for e in (one, five)]
    return ("Reweighted to the rival mix of Omniglot's 20 evaluation alphabets (in a 20-way task another "
            "character of the query's alphabet appears with probability about 1/20 there, far more often "
            f"among these few test alphabets), these test answers *estimate* {quoted[0]} at 20-way 1-shot and "
            f"{quoted[1]} at 20-way 5-shot: an estimate of another benchmark, not a result against the paper's "
            "numbers.")


def omniglot_within_alphabet(root: Path) -> str:
    body = []
    for path, readouts in ((EVAL_WITHIN_VALIDATION, ("memory", "prototype")), (EVAL_WITHIN, ("memory", "1-NN", "prototype"))):
        results = read_json(root, path)
        if not results["within_alphabet"]:
            raise ValueError(f"{path} is not a --within-alphabet evaluation")
        rows = _nway(results)
        body += [(f"{results['evaluated']}, one per task", WITHIN_READOUTS[r], *_cells(rows, r)) for r in readouts]
    mixed = _nway(read_json(root, EVAL))
    body.append(("test, mixed (the table above)", "memory", *_cells(mixed, "memory", interval=False)))
    return markdown_table(("alphabets", "readout", *CELL_HEADER), body, "llllll")


# ---------------------------------------------------------------- training: logs and manifest


def _logs(root: Path) -> list[dict]:
    return [record for name in LOGS for record in read_jsonl(root, name)]


def stage_minutes(records: list[dict]) -> dict[str, float]:
    """Logged training minutes of each stage (the logs' clock is cumulative, measurements excluded)."""
    ends: dict[str, float] = {}
    for r in records:
        ends[r.get("stage", "memory")] = r["seconds"]
    minutes, before = {}, 0.0
    for stage, end in ends.items():
        minutes[stage] = (end - before) / 60
        before = end
    return minutes


def omniglot_learning_curve(root: Path) -> str:
    records = _logs(root)
    stages = [r.get("stage", "memory") for r in records]
    # the first and last record of each stage (the figure beside the table has every record)
    shown = [r for i, r in enumerate(records)
             if i == 0 or i == len(records) - 1 or stages[i] != stages[i - 1] or stages[i] != stages[i + 1]]
    body = []
    for r in shown:
        per_shot = r.get("heldout_per_shot")
        memory = pct(per_shot[1]) if per_shot and len(per_shot) > 1 and per_shot[1] is not None else ""
        body.append((r.get("stage", "memory"), r["step"], f"{r['seconds'] / 60:.1f}", pct(r["heldout_1nn_5w1s"]),
                     pct(r["heldout_1nn_20w1s"]), memory))
    minutes = stage_minutes(records)
    names = {"pretrain": "classifier", "finetune": "episodic fine-tuning", "memory": "memory loss"}
    return "\n".join([
        markdown_table(("stage", "step", "training minutes", "1-NN 5-way 1-shot %", "1-NN 20-way 1-shot %",
                        "memory 1-shot % (5-way episodes)"), body, "lrrrrr"),
        "",
        "Logged training time: " + ", ".join(f"{names.get(s, s)} {m:.1f} min" for s, m in minutes.items())
        + f"; {sum(minutes.values()):.1f} min in all.",
    ])


def omniglot_shipped(root: Path) -> str:
    manifest = read_json(root, MANIFEST)
    return (f"`weights.npz`: every embedder variable by Keras path, {manifest['dtype']}, "
            f"{manifest['weights_bytes'] / 1e6:.1f} MB, step {manifest['step']}, sha256 "
            f"`{manifest['weights_sha256']}` (checked on every load).")


# ---------------------------------------------------------------- Lake's runs and the stream


def omniglot_lake(root: Path) -> str:
    results = read_json(root, LAKE)
    body = [(readout, pct(r["mean_accuracy"]), f"[{pct(r['ci_low'])}, {pct(r['ci_high'])}]", pct(r["error_rate"]))
            for readout, r in results["readouts"].items()]
    runs = results["runs"]
    return "\n".join([
        f"{runs} synthetic runs (each 20 characters of one test alphabet, 20-way 1-shot), "
        f"{20 * runs} answers; % with the 95% Wilson interval:",
        "",
        markdown_table(("readout", "mean accuracy", "95% CI", "error rate"), body, "lrlr"),
    ])


STREAM_SHOTS = (1, 2, 5, 10)


def stream_table(results: dict, labels: dict[str, str] | None = None, per_character: str = "g",
                 first_items: bool = False) -> str:
    """A `kshot omniglot stream` JSON's rows as a Markdown table: slots, accuracy with its interval, accuracy
    by earlier drawings of the character (STREAM_SHOTS), and on the stream's last (and first) items.

    labels: readout name -> label shown (the name itself when absent); per_character: the format of
    slots per character; first_items: a column for the stream's first items too.
    """
    labels = labels or {}
    classes = results["classes"]
    body = []
    for row in results["rows"]:
        shots = {s["shot"]: s for s in row["by_shot"]}
        positions = row["by_position"]
        ends = (positions[0], positions[-1]) if first_items else (positions[-1],)
        acc = row["accuracy"]
        body.append((labels.get(row["readout"], row["readout"]), f"{row['size']:,}",
                     format(row["size"] / classes, per_character), pct_ci(acc["mean"], acc["ci_low"], acc["ci_high"]),
                     *(pct(shots[k]["mean"]) for k in STREAM_SHOTS), *(pct(end["mean"]) for end in ends)))
    ends_header = ("first items", "last items") if first_items else ("last items",)
    return markdown_table(("readout", "slots", "per character", "accuracy", *(f"{k}-shot" for k in STREAM_SHOTS),
                           *ends_header), body, "lrrl" + "r" * (len(STREAM_SHOTS) + len(ends_header)))


def omniglot_stream(root: Path) -> str:
    results = read_json(root, STREAM)
    last = results["rows"][0]["by_position"][-1]
    return "\n".join([
        f"{results['items']:,} drawings of {results['classes']} test characters, one seeded order; accuracy in % on "
        "drawings whose character was seen before (95% Wilson interval), by earlier drawings of that character, and on "
        f"the stream's last items ({last['from']:,} to {last['to']:,}):",
        "",
        stream_table(results),
    ])


# ---------------------------------------------------------------- paired comparisons (the lab notebook)


def compare_table(root: Path, path: str, checkpoint: str, reference: str) -> str:
    """Any `kshot omniglot compare --json` file: both accuracies and the paired difference per cell."""
    data = read_json(root, path)
    body = []
    for c in data["cells"]:
        body.append((c["ways"], c["shots"], f"{c['episodes']:,}", pct(c["checkpoint"]["mean"]), pct(c["reference"]["mean"]),
                     points_ci(c["difference"], c["ci_low"], c["ci_high"]),
                     interval_verdict(c["ci_low"], c["ci_high"], c["difference"], f"{checkpoint} better", f"{reference} better")))
    where = f"{data['evaluated']} alphabets" + (", one alphabet per task" if data.get("within_alphabet") else ", mixed tasks")
    return "\n".join([
        f"`{path}`: {data['readout']} readout, {where}:",
        "",
        markdown_table(("ways", "shots", "tasks", f"{checkpoint} %", f"{reference} %", "difference, points [95% CI]",
                        "verdict"), body, "rrrrrll"),
    ])
