"""Renderers of the gallery's results (experiments.gallery.demo) and the open-set k-shot run.

Each takes the repository root and returns a block body; each reads only the files its
registry entry names. Every rate is shown with its count and 95% interval, because the
celebrity set has five people and the counts are small.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from experiments.publish.tables import markdown_table, pct_ci, read_csv, read_json, read_text

GALLERY_RESULTS = "docs/results/gallery/results.json"
MANY_CLASSES = "docs/results/gallery/many_classes_omniglot.json"
RULE_CHOICE = "docs/results/gallery/rule_choice.json"
OPEN_SET_DIR = "docs/results/open_set_celebrities"
OPEN_SET_SUMMARY = f"{OPEN_SET_DIR}/open_set_summary.csv"
OPEN_SET_CONFIG = f"{OPEN_SET_DIR}/config.toml"

MEMORY_LABELS = {"kaiser": "Kaiser memory (default)", "store_all": "store-all (`--store-all`)"}
SET_LABELS = {"celebrities": "celebrities", "celebrities_lowres": "celebrities_lowres (12 x 12 px faces)"}


def _rate(r: dict) -> str:
    """'2 of 275 = 0.7% [0.1, 2.6]' (Clopper-Pearson 95%)."""
    return f"{r['count']} of {r['total']} = {pct_ci(r['rate'], r['ci_low'], r['ci_high'])}%"


def _regime(results: dict) -> str:
    return (f"Regime: celebrity set, {len(results['people'])} people; every split into 2-4 enrolled and the rest "
            f"strangers ({results['splits']} splits), each a gallery enrolled from the enrolled people's train photos "
            f"({results['memory_size']}-slot Kaiser memory, or store-all), threshold at FPIR {results['fpir']:g} "
            f"(rule `{results['rule']}`, chosen on train photos and Omniglot validation keys); every val photo identified. Counts pool the "
            f"splits (the same photos recur), with Clopper-Pearson 95% intervals in %.")


def gallery_summary(root: Path) -> str:
    """README: the celebrity set's val photos at the default operating point."""
    results = read_json(root, GALLERY_RESULTS)
    report = results["report"]["celebrities"]
    rows = [(MEMORY_LABELS[kind], _rate(r["named_right"]), _rate(r["strangers_accepted"]))
            for kind, r in report.items()]
    return "\n".join([_regime(results), "",
                      markdown_table(("gallery", "known photos named right", "strangers accepted"), rows, "lll")])


def gallery_results(root: Path) -> str:
    """docs/GALLERY.md: the reporting tables, by gallery size, and `kshot calibrate` on all five (choosing: rule_choice)."""
    results = read_json(root, GALLERY_RESULTS)
    reporting = [(SET_LABELS[name], MEMORY_LABELS[kind], _rate(r["named_right"]), r["misnamed"],
                  _rate(r["strangers_accepted"]), f"{r['median_threshold']:.3f}")
                 for name, kinds in results["report"].items() for kind, r in kinds.items()]
    by_size = [(MEMORY_LABELS[kind], size, _rate(s["named_right"]), _rate(s["strangers_accepted"]))
               for kind, r in results["report"]["celebrities"].items() for size, s in r["by_gallery_size"].items()]
    cal = results["calibration_all5_train"]
    pairs = cal["verification"]
    lines = [
        _regime(results), "",
        f"Choosing (train photos only): every rule tried ({len(results['rules_tried'])}, in the order tried) is in "
        "`docs/results/gallery/summary.md`; the current candidates are in the choosing tables above.", "",
        "Reporting (val photos only, the chosen rule), and the low-resolution shift with the same rule:", "",
        markdown_table(("set", "gallery", "known photos named right", "misnamed", "strangers accepted",
                        "median threshold"), reporting, "lllrlr"),
        "", "The celebrity val photos by gallery size (people enrolled):", "",
        markdown_table(("gallery", "people", "known photos named right", "strangers accepted"), by_size, "lrll"),
        "", f"`kshot calibrate` on the train photos of all five (store-all, at most "
            f"{results['calibration_per_name']} photos per person):", "",
        f"- identification: {cal['nonmated_searches']} non-mated and {cal['mated_searches']} mated leave-one-out "
        f"searches, gallery of {cal['people']} people / {cal['entries']} entries; one accepted search is an FPIR of "
        f"{cal['fpir_resolvable']:.1e}, and none accepted guarantees only FPIR <= {cal['fpir_bound']:.1e} (95%)",
    ]
    for rate, value in cal["fnir_at_fpir"].items():
        lines.append(f"- FNIR at FPIR {float(rate):.0e}: {value:.4f} (threshold {cal['threshold_at_fpir'][rate]:.4f})")
    lines.append(f"- verification, photo against photo: {pairs['genuine_pairs']} genuine and "
                 f"{pairs['impostor_pairs']} impostor pairs; true-accept rate at FAR 1e-03 "
                 f"{pairs['tar_at_far']['0.001']:.4f} (threshold {pairs['threshold_at_far']['0.001']:.4f}); "
                 f"equal error rate {pairs['eer']:.4f}")
    return "\n".join(lines)


OPEN_SET_SHOTS = (1, 2, 5, 10)


def open_set(root: Path) -> str:
    config = tomllib.loads(read_text(root, OPEN_SET_CONFIG))
    rows = {(r["model"], int(r["shots"])): r for r in read_csv(root, OPEN_SET_SUMMARY)}
    models = list(dict.fromkeys(model for model, _ in rows))
    body = []
    for model in models:
        for shots in OPEN_SET_SHOTS:
            r = rows[(model, shots)]
            body.append((f"`{model}`", shots, pct_ci(r["fnir"], r["fnir_ci_low"], r["fnir_ci_high"]),
                         pct_ci(r["fpir"], r["fpir_ci_low"], r["fpir_ci_high"]),
                         f"{float(r['median_threshold']):.3f}"))
    return "\n".join([
        f"Regime: celebrity set, {config['open_set']['strangers']} of the 5 people held out per repeat as strangers, "
        f"{config['run']['repeats']} repeats, {config['memory']['memory_size']}-slot memory, threshold at FPIR "
        f"{config['open_set']['fpir']:g} over the items fed so far (leave one identity out). In %, mean [95% CI]:",
        "",
        markdown_table(("model", "shots", "FNIR (known not named right)", "FPIR (strangers accepted)",
                        "median threshold"), body, "lrllr"),
    ])


def _pooled(tally: dict, count: str, total: str) -> str:
    low, high = tally[count + "_ci"]
    return f"{tally[count]} of {tally[total]} = {pct_ci(tally[count] / tally[total], low, high)}%"


def many_classes(root: Path) -> str:
    """docs/GALLERY.md: the report-only probe with many look-alike identities (experiments.gallery.many_classes)."""
    result = read_json(root, MANY_CLASSES)
    layout = result["layout"]
    rows = [(MEMORY_LABELS[kind], _pooled(result[kind], "named_right", "known"), result[kind]["misnamed"],
             _pooled(result[kind], "strangers_accepted", "strangers")) for kind in ("kaiser", "store_all")]
    return "\n".join([
        f"Regime: Omniglot characters as identities (the shipped checkpoint's keys, `{result['source']}`, of the "
        f"development split's test alphabets; report only, nothing chosen on them); {layout['splits']} splits, each "
        f"{layout['enrolled']} characters enrolled with {layout['photos']} drawings, their other drawings searched as "
        f"known, all drawings of {layout['strangers']} other characters as strangers; the gallery's default rule at "
        f"FPIR {result['fpir']:g}. Counts pool the splits, Clopper-Pearson 95% in %.", "",
        markdown_table(("gallery", "known named right", "misnamed", "strangers accepted"), rows, "llrl"),
    ])


def rule_choice(root: Path) -> str:
    """docs/GALLERY.md: the threshold rule's choosing tables on both choosing sets (experiments.gallery.choose_rule)."""
    result = read_json(root, RULE_CHOICE)
    cells = list(result["cells"])
    heads = ("rule", *(cell.replace("celebrities_train", "celebrity train").replace("omniglot_validation", "Omniglot "
                       "validation").replace("/kaiser", ", Kaiser").replace("/store_all", ", store-all") for cell in cells))
    tables = []
    for measure in ("strangers_accepted", "known_named_right"):
        rows = [(f"`{rule}`", *(_rate(result["cells"][cell][rule][measure]) for cell in cells))
                for rule in result["candidates"]]
        tables += [f"{measure.replace('_', ' ').capitalize()}:", "", markdown_table(heads, rows, "l" * len(heads)), ""]
    layout = result["omniglot_layout"]
    return "\n".join([
        f"Choosing sets only: celebrity train photos (25 splits; known = the leave-one-out searches) and Omniglot "
        f"validation-alphabet keys (`{result['omniglot_source']}`, {layout['splits']} splits of {layout['enrolled']} "
        f"enrolled x {layout['photos']} drawings, {layout['strangers']} strangers); every candidate with the photo-pair "
        f"floor, at FPIR {result['fpir']:g}.", "", *tables,
        f"Chosen: `{result['decision']['chosen']}`, {result['decision']['why']}.",
    ])
