"""Does fine-tuning through the memory beat store-all 1-NN under a domain shift? A fixed protocol.

    python -m experiments.studies.finetune_study [--out runs/finetune_study] [--repeats 50] [--only NAME,...]

The protocol is stated here, before any result, and not changed after seeing one:
- data: `celebrities_lowres` (experiments.faces.shifts), every kept image;
- every setting in SETTINGS runs in its own run directory next to the store-all
  baseline, with the same seed, so both see the same shuffles (a paired design):
  `repeats` repeats (>= 50) of up to 10 shots, every image not yet fed evaluated;
- the comparison: for each setting and shots k, the per-repeat difference
  (setting - baseline) of accuracy, with experiments.core.metrics.paired_difference
  (percentile bootstrap interval over repeats, inside [-1, 1], and the Wilcoxon
  signed-rank test); at 95% per comparison, and at 1 - 0.05 / len(SETTINGS)
  (Bonferroni over the settings) so that trying several settings cannot
  manufacture a win;
- a setting "beats store-all from 3 shots on" when, at every k from 3 to 10, its
  Bonferroni-level difference is resolved (interval above zero and p below the level);
- every setting is reported, losers included; no setting is added, dropped or
  changed after seeing results on these images. The settings were chosen from
  what the issue reported (one Adam step at 1e-5 changes nothing; phase ON with
  keys from the training pass collapses), not from runs on these images; the only
  look at these images before fixing the list was a 2-repeat smoke test of two
  consistent-key settings (with 5 steps per shot) that checked the code runs, and
  the list was then cut to 3 steps per shot to fit the CPU time available.

Each run directory resumes like `kshot run`; the report is rewritten from what is on disk.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from experiments.core.metrics import paired_difference
from experiments.faces import settings as cfg
from experiments.faces.run_data import prepare_data
from experiments.faces.runner import run_experiment
from kshot_io import write_text_atomic

DATA = "celebrities_lowres"
FIRST_SHOT_CLAIMED = 3
MAX_SHOTS = 10


@dataclass(frozen=True)
class Setting:
    name: str
    model: str   # which fine-tuned variant (phase, key rule)
    finetune: dict = field(default_factory=dict)
    memory: dict = field(default_factory=dict)


def make_setting(name: str, model: str, scope: str, optimizer: str, rate: float, steps: int, **memory) -> Setting:
    return Setting(name, model, {"trainable_from": scope, "optimizer": optimizer, "learning_rate": rate,
                                 "steps_per_shot": steps}, memory)


OFF, ON = "memory_finetune_phase_off", "memory_finetune_phase_on"
SETTINGS = (
    make_setting("B8_off_adam1e-5_s1", OFF, "Block8", "adam", 1e-5, 1),   # today's defaults, Block8 scope
    make_setting("B8_off_adam1e-4_s1", OFF, "Block8", "adam", 1e-4, 1),
    make_setting("B8_off_adam1e-4_s3", OFF, "Block8", "adam", 1e-4, 3),
    make_setting("B8_on_adam1e-4_s3", ON, "Block8", "adam", 1e-4, 3),     # the blog's phase ON keys
    make_setting("B8_oncons_adam1e-4_s3", ON + "_consistent", "Block8", "adam", 1e-4, 3),
    make_setting("B8_offcons_adam1e-4_s3", OFF + "_consistent", "Block8", "adam", 1e-4, 3),
    make_setting("B8_offcons_adam1e-4_s3_proj", OFF + "_consistent", "Block8", "adam", 1e-4, 3, query_projection=True),
    make_setting("bneck_offcons_adam1e-3_s3", OFF + "_consistent", "bottleneck", "adam", 1e-3, 3),
)


def config_for(setting: Setting, repeats: int, data: str = DATA, max_shots: int = MAX_SHOTS):
    """The run config of one setting next to store-all; `data` and `max_shots` let
    experiments.studies.finetune_shifts run the same protocol on other shifts."""
    return cfg.from_dict({
        "run": {"repeats": repeats, "max_shots": max_shots, "models": ["baseline", "memory", setting.model]},
        "data": {"source": data},
        "memory": dict(setting.memory),
        "finetune": {"repeats": repeats, "max_shots": max_shots, "eval_images_per_class": 0, **setting.finetune},
    })


def paired_differences(results: pd.DataFrame, model: str, reference: str = "baseline",
                       confidence: float = 0.95) -> pd.DataFrame:
    """Per shots: experiments.core.metrics.paired_difference of `model` against `reference`, repeat by repeat."""

    wide = results[results["model"].isin([model, reference])].pivot_table(
        index=["repeat", "shots"], columns="model", values="accuracy").dropna()
    rows = []
    for shots, group in wide.groupby(level="shots"):
        compared = paired_difference(group[model].to_numpy(), group[reference].to_numpy(), confidence)
        rows.append({"shots": int(shots), "repeats": compared.repeats, "mean_difference": compared.mean,
                     "ci_low": compared.low, "ci_high": compared.high, "p_value": compared.p_value,
                     "resolved": compared.resolved, "model_accuracy": float(group[model].mean()),
                     "reference_accuracy": float(group[reference].mean())})
    return pd.DataFrame(rows)


def study_table(out: Path, settings=SETTINGS) -> tuple[pd.DataFrame, str]:
    """One row per setting and shots from the run directories on disk, and the Markdown report."""
    family = 1 - 0.05 / len(settings)
    rows, lines = [], []
    for setting in settings:
        csv = out / setting.name / "results.csv"
        if not csv.is_file():
            lines.append(f"| {setting.name} | not run | | | |")
            continue
        results = pd.read_csv(csv)
        plain = paired_differences(results, setting.model)
        strict = paired_differences(results, setting.model, confidence=family)
        merged = plain.merge(strict[["shots", "ci_low", "ci_high", "resolved"]], on="shots", suffixes=("", "_bonferroni"))
        merged.insert(0, "setting", setting.name)
        rows.append(merged)
        claimed = merged[merged["shots"] >= FIRST_SHOT_CLAIMED]
        wins = bool(len(claimed) == MAX_SHOTS - FIRST_SHOT_CLAIMED + 1
                    and (claimed["ci_low_bonferroni"] > 0).all() and claimed["resolved_bonferroni"].all())
        cells = " ".join(f"{100 * d:+.1f}" for d in merged["mean_difference"])
        at3 = merged[merged["shots"] == FIRST_SHOT_CLAIMED].iloc[0]
        lines.append(
            f"| {setting.name} | {int(merged['repeats'].min())} | {cells} | "
            f"{100 * at3.mean_difference:+.1f} [{100 * at3.ci_low_bonferroni:+.1f}, {100 * at3.ci_high_bonferroni:+.1f}] | "
            f"{'yes' if wins else 'no'} |"
        )
    reference = next((out / s.name / "results.csv" for s in settings if (out / s.name / "results.csv").is_file()), None)
    if reference is not None:   # the frozen memory, for reference (not a setting of the family)
        frozen = paired_differences(pd.read_csv(reference), "memory")
        cells = " ".join(f"{100 * d:+.1f}" for d in frozen["mean_difference"])
        at3 = frozen[frozen["shots"] == FIRST_SHOT_CLAIMED].iloc[0]
        lines.append(f"| memory (frozen FaceNet, reference) | {int(frozen['repeats'].min())} | {cells} | "
                     f"{100 * at3.mean_difference:+.1f} [{100 * at3.ci_low:+.1f}, {100 * at3.ci_high:+.1f}] (95%) | - |")
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    header = [
        f"| setting | repeats | mean difference vs store-all, points, shots 0..{MAX_SHOTS} | "
        f"at {FIRST_SHOT_CLAIMED} shots, {100 * family:.2f}% interval | beats store-all at every shot >= {FIRST_SHOT_CLAIMED} |",
        "|---|---:|---|---|---|",
    ]
    return table, "\n".join(header + lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/finetune_study"))
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--only", default="", help="comma-separated setting names (default: all, in order)")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from the run directories")
    args = parser.parse_args(argv)

    by_name = {s.name: s for s in SETTINGS}
    unknown = [n for n in args.only.split(",") if n and n not in by_name]
    if unknown:
        raise SystemExit(f"--only: unknown setting(s) {', '.join(unknown)}; settings: {', '.join(by_name)}")
    chosen = [by_name[n] for n in args.only.split(",") if n] if args.only else list(SETTINGS)
    if not args.report_only:

        data = prepare_data(config_for(chosen[0], args.repeats).data, need_crops=True)
        for setting in chosen:
            print(f"== {setting.name}", flush=True)
            outcome = run_experiment(config_for(setting, args.repeats), args.out / setting.name, data,
                                     make_figures=False, progress=False)
            for model, timing in outcome["timing"].items():
                print(f"{model}: {timing['seconds_per_repeat']:.2f} s per repeat", flush=True)
    table, markdown = study_table(args.out)
    if len(table):
        table.to_csv(args.out / "paired_differences.csv", index=False, float_format="%.6f")
    write_text_atomic(args.out / "study.md", markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
