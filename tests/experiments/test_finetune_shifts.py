"""The fine-tuning-across-shifts study: its decision rule, its reading of run directories, its
results file and the block rendered from it, on scripted run directories (no FaceNet, no training)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from experiments.core.run_files import DATASET_FILE
from experiments.publish.finetune_shifts import finetune_shifts as render_block
from experiments.studies import finetune_shifts as shifts
from experiments.studies import finetune_study as study

DEFAULT, PROJ, GENTLE = (c.name for c in shifts.CANDIDATES)
REPEATS, SHOTS = 6, 3


def fake_run(out, shift, candidate, gain, repeats=REPEATS, seed=0, photos_per_class=3, max_shots=SHOTS,
             late_gain=None):
    """A run directory as run_experiment leaves it: results.csv (store-all, the fine-tuned model) and dataset.npz.

    The fine-tuned model scores store-all + `gain` + a little per-repeat noise at every shot >= 1
    (+ `late_gain` instead beyond shot SHOTS, when given)."""
    rng = np.random.default_rng(seed)
    model = next(c.model for c in shifts.CANDIDATES if c.name == candidate)
    rows = []
    for repeat in range(repeats):
        for shots in range(max_shots + 1):
            base = 0.5 + 0.05 * shots + 0.01 * rng.standard_normal()
            shift_gain = late_gain if late_gain is not None and shots > SHOTS else gain
            tuned = base + (shift_gain if shots >= 1 else 0.0) + 0.002 * rng.standard_normal()
            rows += [{"model": "baseline", "repeat": repeat, "shots": shots, "accuracy": base},
                     {"model": model, "repeat": repeat, "shots": shots, "accuracy": tuned}]
    directory = shifts.run_dir(out, shift, candidate)
    directory.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(directory / "results.csv", index=False)
    photos = 5 * photos_per_class
    np.savez(directory / DATASET_FILE, labels=np.repeat(np.arange(5), photos_per_class),
             class_names=np.array(list("abcde")), embeddings=np.zeros((photos, 2)),
             paths=np.array([str(i) for i in range(photos)]))


def choosing_runs(out, gains):
    for shift in shifts.CHOOSING:
        for candidate, gain in gains.items():
            fake_run(out, shift, candidate, gain(shift) if callable(gain) else gain)


def test_a_candidate_with_a_resolved_loss_on_one_choosing_shift_is_not_chosen(tmp_path):
    choosing_runs(tmp_path, {DEFAULT: lambda s: -0.05 if s == "celebrities_blur" else 0.10, PROJ: 0.03, GENTLE: 0.01})
    decision = shifts.choose(shifts.shift_table(tmp_path, shifts.CHOOSING, shifts.CANDIDATES, REPEATS),
                             shifts.CANDIDATES)
    assert decision["complete"]
    assert not decision["candidates"][DEFAULT]["loss_free"]
    assert decision["candidates"][DEFAULT]["per_shift"]["celebrities_blur"] == "loses"
    assert decision["chosen"] == PROJ   # the loss-free candidate with the larger mean gain
    assert decision["candidates"][PROJ]["mean_gain"] == pytest.approx(0.03, abs=0.002)


def test_nothing_is_chosen_from_an_incomplete_or_all_losing_choosing_set(tmp_path):
    fake_run(tmp_path, "celebrities_lowres", DEFAULT, 0.05)
    table = shifts.shift_table(tmp_path, shifts.CHOOSING, shifts.CANDIDATES, REPEATS)
    decision = shifts.choose(table, shifts.CANDIDATES)
    assert decision["chosen"] is None and not decision["complete"]
    with pytest.raises(SystemExit, match="not complete"):
        shifts.reporting_candidates(decision, shifts.CANDIDATES)

    losing = tmp_path / "losing"
    choosing_runs(losing, {DEFAULT: -0.02, PROJ: -0.03, GENTLE: -0.01})
    decision = shifts.choose(shifts.shift_table(losing, shifts.CHOOSING, shifts.CANDIDATES, REPEATS),
                             shifts.CANDIDATES)
    assert decision["chosen"] is None and decision["complete"]
    assert [c.name for c in shifts.reporting_candidates(decision, shifts.CANDIDATES)] == [DEFAULT, PROJ, GENTLE]


def test_a_run_with_fewer_repeats_than_asked_is_left_out(tmp_path):
    fake_run(tmp_path, "celebrities_lowres", DEFAULT, 0.05, repeats=REPEATS - 1)
    assert shifts.shift_table(tmp_path, shifts.CHOOSING, shifts.CANDIDATES, REPEATS).empty


def test_verdict_reads_the_interval_against_zero():
    rows = pd.DataFrame({"ci_low": [0.0, 0.01], "ci_high": [0.0, 0.03]})
    assert shifts.verdict(rows) == "wins"
    assert shifts.verdict(rows.assign(ci_high=[-0.01, 0.03])) == "loses"
    assert shifts.verdict(rows.assign(ci_low=[-0.01, -0.01])) == "within noise"


def test_results_file_records_regime_and_missing_shifts_and_the_block_says_so(tmp_path):
    out = tmp_path / "runs"
    choosing_runs(out, {DEFAULT: 0.08, PROJ: 0.05, GENTLE: 0.02})
    fake_run(out, "celebrities", DEFAULT, -0.02)
    fake_run(out, "celebrities_gray", DEFAULT, 0.04)
    root = tmp_path / "repo"
    decision = shifts.write_results(out, root / "docs/results/finetune_shifts", REPEATS)
    assert decision["chosen"] == DEFAULT
    assert decision["reporting"] == {DEFAULT: {"celebrities": "loses", "celebrities_gray": "wins"}}
    assert decision["missing"] == ["celebrities_noise", "celebrities_occlusion", "celebrities_cartoon"]
    table = pd.read_csv(root / "docs/results/finetune_shifts" / shifts.RESULTS_FILE)
    assert set(table[["people", "photos", "slots"]].drop_duplicates().itertuples(index=False)) == {(5, 15, 32)}
    assert set(table["repeats"]) == {REPEATS}

    block = render_block(root)
    assert "Regime: 5 people, 15 photos with a detected face, a 32-slot memory (6.4 slots per class)" in block
    assert f"Chosen by the rule: `{DEFAULT}`" in block
    assert (f"- `{DEFAULT}` on every shift it ran on: wins on `celebrities_lowres`, `celebrities_blur`, "
            "`celebrities_jpeg`, `celebrities_gray`; within noise on none; loses on `celebrities`.") in block
    assert "Not run (out of time this round): `celebrities_noise`" in block
    assert json.loads((root / "docs/results/finetune_shifts" / shifts.DECISION_FILE).read_text())["repeats"] == REPEATS


def test_config_for_runs_the_same_setting_on_another_shift_and_shot_count():
    config = study.config_for(shifts.CANDIDATES[2], 7, "celebrities_blur", max_shots=5)
    assert config.data.source == "celebrities_blur"
    assert (config.run.max_shots, config.finetune.max_shots, config.finetune.repeats) == (5, 5, 7)
    assert config.finetune.steps_per_shot == 1 and config.finetune.learning_rate == 1e-4
    assert study.config_for(shifts.CANDIDATES[0], 3).data.source == study.DATA   # the lowres study is unchanged


def test_a_shift_outside_the_steps_set_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="celebrities_gray not in the choose set"):
        shifts.main(["choose", "--out", str(tmp_path), "--shifts", "celebrities_gray"])


def test_shifts_with_different_photo_counts_are_named_in_the_regime_line(tmp_path):
    out = tmp_path / "runs"
    for shift in shifts.CHOOSING:
        fake_run(out, shift, DEFAULT, 0.05, photos_per_class=4 if shift == "celebrities_jpeg" else 3)
    root = tmp_path / "repo"
    shifts.write_results(out, root / "docs/results/finetune_shifts", REPEATS, candidates=shifts.CANDIDATES[:1])
    assert "5 people, 15 (celebrities_lowres), 15 (celebrities_blur), 20 (celebrities_jpeg) photos" in render_block(root)


def test_longer_runs_replace_the_shorter_ones_in_the_table_but_never_in_the_choice(tmp_path):
    out, longer = tmp_path / "runs", tmp_path / "longer"
    choosing_runs(out, {DEFAULT: 0.08, PROJ: 0.05, GENTLE: 0.02})
    fake_run(out, "celebrities", DEFAULT, 0.01)
    fake_run(out, "celebrities_gray", DEFAULT, 0.01)
    fake_run(longer, "celebrities", DEFAULT, 0.01, max_shots=SHOTS + 2, late_gain=-0.05)          # loses late
    fake_run(longer, "celebrities_blur", DEFAULT, 0.08, max_shots=SHOTS + 2, late_gain=-0.05)     # loses late
    root = tmp_path / "repo"
    decision = shifts.write_results(out, root / "docs/results/finetune_shifts", REPEATS, extended=longer)
    assert decision["chosen"] == DEFAULT and decision["candidates"][DEFAULT]["loss_free"]   # the choice stands
    assert decision["extended_verdicts"] == {f"celebrities / {DEFAULT}": "loses",
                                             f"celebrities_blur / {DEFAULT}": "loses"}
    assert decision["reporting"][DEFAULT] == {"celebrities": "loses", "celebrities_gray": "wins"}
    assert decision["max_shots"][f"celebrities / {DEFAULT}"] == SHOTS + 2
    assert decision["max_shots"][f"celebrities_gray / {DEFAULT}"] == SHOTS
    assert "celebrities_gray" in decision["not_extended"] and "celebrities" not in decision["not_extended"]
    table = pd.read_csv(root / "docs/results/finetune_shifts" / shifts.RESULTS_FILE)
    clean = table[(table["shift"] == "celebrities") & (table["candidate"] == DEFAULT)]
    assert sorted(clean["shots"]) == list(range(SHOTS + 3))   # the longer run only, no duplicated shots
    assert list(dict.fromkeys(table["shift"]))[:3] == list(shifts.CHOOSING)   # row order kept

    block = render_block(root)
    assert f"| `celebrities` | reporting | `{DEFAULT}` | 1-{SHOTS + 2} |" in block
    assert f"| `celebrities_gray` | reporting | `{DEFAULT}` | 1-{SHOTS} |" in block
    assert f"shots 1 to {SHOTS} or {SHOTS + 2} (the `shots` column)" in block
    assert "Not extended (out of time this round): `celebrities_gray`" in block


def test_extend_runs_the_chosen_recipe_alone_on_any_shift(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(shifts, "run_shift", lambda out, shift, candidates, repeats, max_shots:
                        calls.append((shift, [c.name for c in candidates], max_shots)))
    shifts.main(["extend", "--out", str(tmp_path), "--shifts", "celebrities_gray,celebrities_blur", "--max-shots", "10"])
    assert calls == [("celebrities_gray", [DEFAULT], 10), ("celebrities_blur", [DEFAULT], 10)]


def test_the_block_shows_the_verdict_the_study_computed_not_one_recomputed_from_the_rounded_file(tmp_path):
    out = tmp_path / "runs"
    choosing_runs(out, {DEFAULT: 0.08, PROJ: 0.05, GENTLE: 0.02})
    fake_run(out, "celebrities", DEFAULT, 0.0)
    fake_run(out / "longer", "celebrities_gray", DEFAULT, 0.0, max_shots=SHOTS + 2)
    results = tmp_path / "repo/docs/results/finetune_shifts"
    shifts.write_results(out, results, REPEATS, extended=out / "longer")
    decision = json.loads((results / shifts.DECISION_FILE).read_text())
    # an interval end of -1e-18 is "-0.000000" in the CSV: only the study's unrounded verdict is "loses"
    decision["reporting"][DEFAULT]["celebrities"] = "loses"
    decision["extended_verdicts"][f"celebrities_gray / {DEFAULT}"] = "loses"
    (results / shifts.DECISION_FILE).write_text(json.dumps(decision))
    block = render_block(tmp_path / "repo")
    assert [line.endswith("| loses |") for line in block.splitlines() if "| reporting |" in line] == [True, True]


def test_extend_runs_the_named_candidates_and_refuses_a_name_outside_the_plan(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(shifts, "run_shift", lambda out, shift, candidates, repeats, max_shots:
                        calls.append((shift, [c.name for c in candidates])))
    shifts.main(["extend", "--out", str(tmp_path), "--shifts", "celebrities_jpeg", "--recipes", f"{GENTLE},{PROJ}"])
    assert calls == [("celebrities_jpeg", [GENTLE, PROJ])]
    with pytest.raises(SystemExit, match="--recipes: B8_new not a candidate; the candidates fixed in the plan are"):
        shifts.main(["extend", "--out", str(tmp_path), "--recipes", f"{GENTLE},B8_new"])
    assert len(calls) == 1   # nothing ran


def round_two_runs(out, late_gains, shifts_run=shifts.CHOOSING + shifts.REPORTING, max_shots=SHOTS + 2):
    """Longer runs of every candidate: the round-one gain up to SHOTS, then `late_gains[candidate](shift)`."""
    for shift in shifts_run:
        for candidate, late in late_gains.items():
            fake_run(out, shift, candidate, 0.08 if candidate == DEFAULT else 0.02, max_shots=max_shots,
                     late_gain=late(shift))


def test_round_two_rechooses_from_the_longer_choosing_runs_and_keeps_round_one_readable(tmp_path):
    out, longer = tmp_path / "runs", tmp_path / "longer"
    choosing_runs(out, {DEFAULT: 0.08, PROJ: -0.05, GENTLE: 0.02})
    # late on, the default loses on jpeg (a choosing shift) and on occlusion; the gentle one loses only on gray
    round_two_runs(longer, {
        DEFAULT: lambda s: -0.05 if s in ("celebrities_jpeg", "celebrities_occlusion") else 0.08,
        PROJ: lambda s: -0.05,
        GENTLE: lambda s: -0.05 if s == "celebrities_gray" else 0.03,
    })
    root = tmp_path / "repo"
    decision = shifts.write_results(out, root / "docs/results/finetune_shifts", REPEATS, extended=[longer])
    assert decision["chosen"] == DEFAULT and decision["candidates"][DEFAULT]["loss_free"]   # round one, as it was
    assert decision["round_two"]["complete"] and decision["round_two"]["shots"] == SHOTS + 2
    assert not decision["round_two"]["candidates"][DEFAULT]["loss_free"]
    assert decision["round_two"]["chosen"] == GENTLE and decision["default"] == GENTLE
    assert decision["reporting"][GENTLE]["celebrities_gray"] == "loses"   # read, but never used to choose
    assert decision["not_run_longer"] == []
    table = pd.read_csv(root / "docs/results/finetune_shifts" / shifts.RESULTS_FILE)
    runs = list(dict.fromkeys(zip(table["shift"], table["candidate"])))
    assert runs[:3] == [("celebrities_lowres", c) for c in (DEFAULT, PROJ, GENTLE)]   # shift, then candidate order
    assert [s for s, _ in runs[::3]] == list(shifts.CHOOSING + shifts.REPORTING)

    block = render_block(root)
    assert f"- Chosen by the rule in round one: `{DEFAULT}`" in block
    assert f"- Default, chosen by the rule in round two: `{GENTLE}` (it replaces round one's `{DEFAULT}`)." in block
    assert f"on shots 1 to {SHOTS + 2} of the choosing shifts: loss-free `{GENTLE}`;" in block
    assert f"- `{GENTLE}` on every shift it ran on: wins on `celebrities_lowres`" in block
    assert "loses on `celebrities_gray`." in block
    assert "- No recipe avoids a loss on every shift" in block


def test_round_two_chooses_nothing_unless_every_candidate_has_equally_long_choosing_runs(tmp_path):
    out = tmp_path / "runs"
    choosing_runs(out, {DEFAULT: 0.08, PROJ: 0.05, GENTLE: 0.02})
    missing = tmp_path / "missing"   # the gentle one was cut on jpeg
    round_two_runs(missing, {DEFAULT: lambda s: -0.05, PROJ: lambda s: 0.01, GENTLE: lambda s: 0.03},
                   shifts_run=shifts.CHOOSING)
    (missing / "celebrities_jpeg" / GENTLE / "results.csv").unlink()
    decision = shifts.write_results(out, tmp_path / "a", REPEATS, extended=[missing])
    assert decision["round_two"]["chosen"] is None and not decision["round_two"]["complete"]
    assert decision["default"] == DEFAULT   # round one's choice stands
    assert f"celebrities_jpeg / {GENTLE}" in decision["not_run_longer"]

    uneven = tmp_path / "uneven"   # a mean over more shots must not compete with a mean over fewer
    round_two_runs(uneven, {DEFAULT: lambda s: -0.05, PROJ: lambda s: 0.01}, shifts_run=shifts.CHOOSING)
    round_two_runs(uneven, {GENTLE: lambda s: 0.03}, shifts_run=shifts.CHOOSING, max_shots=SHOTS + 1)
    root = tmp_path / "repo"
    decision = shifts.write_results(out, root / "docs/results/finetune_shifts", REPEATS, extended=[uneven])
    assert decision["round_two"]["chosen"] is None and decision["default"] == DEFAULT
    assert "Round two (every candidate on the choosing shifts to more shots) is incomplete" in render_block(root)


def test_several_extension_directories_are_merged_longest_run_first(tmp_path):
    out, first, second = tmp_path / "runs", tmp_path / "first", tmp_path / "second"
    choosing_runs(out, {DEFAULT: 0.08, PROJ: 0.05, GENTLE: 0.02})
    fake_run(first, "celebrities_blur", DEFAULT, 0.08, max_shots=SHOTS + 2)
    fake_run(second, "celebrities_blur", GENTLE, 0.02, max_shots=SHOTS + 2)
    decision = shifts.write_results(out, tmp_path / "results", REPEATS, extended=[first, second])
    assert set(decision["extended"]) == {f"celebrities_blur / {DEFAULT}", f"celebrities_blur / {GENTLE}"}
    assert decision["max_shots"][f"celebrities_blur / {GENTLE}"] == SHOTS + 2
    assert decision["max_shots"][f"celebrities_blur / {PROJ}"] == SHOTS
