"""The one map from a generated block's name to the files it is rendered from and the code that renders it.

A block `<!-- generated:NAME -->` in README.md or docs/**/*.md has exactly one entry
here: `sources` are the committed files it reads (paths from the repository root;
results files under docs/results, the shipped checkpoint's manifest and logs, and the
two modules that hold numbers published by others), `render(root)` returns its body,
and `docs` are the files that must show it. A new published number is a new entry (or a
new line in a renderer), never a number typed into a guide.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from experiments.publish import faces, finetune_shifts, gallery, omniglot, omniglot_official, readme

README = "README.md"
BLOG = "docs/BLOG_SETTING.md"
FINETUNING = "docs/FINETUNING.md"
POLICIES = "docs/MEMORY_POLICIES.md"
OMNIGLOT = "docs/OMNIGLOT.md"
OMNIGLOT_DEV = "docs/OMNIGLOT_DEVELOPMENT.md"
GALLERY = "docs/GALLERY.md"
OMNIGLOT_LAB = "docs/lab/2026-11-omniglot-rounds.md"


@dataclass(frozen=True)
class Block:
    sources: tuple[str, ...]
    render: Callable[[Path], str]
    docs: tuple[str, ...]


def _compare(path: str, checkpoint: str, reference: str) -> Block:
    return Block((path,), partial(omniglot.compare_table, path=path, checkpoint=checkpoint, reference=reference),
                 (OMNIGLOT_LAB,))


_R = omniglot.RESULTS

BLOCKS: dict[str, Block] = {
    # ---- the celebrity demo (docs/results/celebrities, copied from a run by experiments.publish.readme)
    "celebrity-demo": Block(readme.SOURCES, readme.celebrity_demo, (README,)),
    "celebrity-finetuned": Block(readme.SOURCES[:3], readme.celebrity_finetuned, (BLOG, FINETUNING)),
    # ---- the blog's setting and fine-tuning
    "blog-published": Block((faces.BLOG_REFERENCE,), faces.blog_published, (README, BLOG)),
    "finetune-shift": Block((faces.STUDY_PAIRED,), faces.finetune_shift, (README, BLOG)),
    "finetune-study": Block((faces.STUDY_TABLE, faces.STUDY_PAIRED), faces.finetune_study, (FINETUNING,)),
    "lowres-drop": Block((faces.STUDY_PAIRED, faces.CELEBRITY_SUMMARY), faces.lowres_drop, (FINETUNING,)),
    "finetune-shifts": Block((finetune_shifts.PAIRED, finetune_shifts.DECISION), finetune_shifts.finetune_shifts,
                             (FINETUNING,)),
    # ---- accuracy against footprint
    "footprint-summary": Block(faces.FOOTPRINT_FILES, faces.footprint_summary, (README,)),
    "footprint-faces": Block(faces.FOOTPRINT_FILES[:2], faces.footprint_faces, (POLICIES,)),
    "footprint-omniglot": Block(faces.FOOTPRINT_FILES[2:], faces.footprint_omniglot, (POLICIES,)),
    "footprint-goal": Block(faces.FOOTPRINT_FILES, faces.footprint_goal, (POLICIES,)),
    # ---- the gallery and the open set
    "gallery-summary": Block((gallery.GALLERY_RESULTS,), gallery.gallery_summary, (README,)),
    "gallery-results": Block((gallery.GALLERY_RESULTS,), gallery.gallery_results, (GALLERY,)),
    "gallery-many-classes": Block((gallery.MANY_CLASSES,), gallery.many_classes, (GALLERY,)),
    "gallery-rule-choice": Block((gallery.RULE_CHOICE,), gallery.rule_choice, (GALLERY,)),
    "open-set": Block((gallery.OPEN_SET_SUMMARY, gallery.OPEN_SET_CONFIG), gallery.open_set, (GALLERY,)),
    # ---- Omniglot: the official benchmark (kshot omniglot benchmark)
    "omniglot-official": Block((omniglot_official.OFFICIAL, omniglot_official.LAKE_OFFICIAL, omniglot.REFERENCES),
                               omniglot_official.omniglot_official, (README, OMNIGLOT)),
    "omniglot-official-targets": Block((omniglot_official.OFFICIAL, omniglot.REFERENCES),
                                       omniglot_official.omniglot_official_targets, (OMNIGLOT,)),
    "omniglot-lake-official": Block((omniglot_official.LAKE_OFFICIAL, omniglot.REFERENCES),
                                    omniglot_official.omniglot_lake_official, (OMNIGLOT,)),
    "omniglot-stream-official": Block((omniglot_official.STREAM_OFFICIAL,), omniglot_official.omniglot_stream_official,
                                      (OMNIGLOT,)),
    # ---- Omniglot: the shipped checkpoint on the held-out background alphabets (the development tables)
    "omniglot-dev": Block((omniglot.EVAL,), omniglot.omniglot_dev, (OMNIGLOT,)),
    "omniglot-split": Block((omniglot.EVAL,), omniglot.omniglot_split, (OMNIGLOT,)),
    "omniglot-test-readouts": Block((omniglot.EVAL, omniglot.COMPARE_PREVIOUS, omniglot.COMPARE_FINETUNE, omniglot.REFERENCES),
                                    omniglot.omniglot_test_readouts, (OMNIGLOT_DEV,)),
    "omniglot-stage-gains": Block((omniglot.COMPARE_PREVIOUS, omniglot.COMPARE_PREVIOUS_WITHIN, omniglot.COMPARE_FINETUNE,
                                   omniglot.COMPARE_FINETUNE_WITHIN), omniglot.omniglot_stage_gains, (OMNIGLOT_DEV,)),
    "omniglot-running-mean": Block((omniglot.EVAL, omniglot.EVAL_RUNNING_MEAN, omniglot.REFERENCES),
                                   omniglot.omniglot_running_mean, (OMNIGLOT_DEV,)),
    "omniglot-by-alphabet": Block((omniglot.EVAL,), omniglot.omniglot_by_alphabet, (OMNIGLOT_DEV,)),
    "omniglot-rivals": Block((omniglot.EVAL,), omniglot.omniglot_rivals, (OMNIGLOT_DEV,)),
    "omniglot-rivals-estimate": Block((omniglot.EVAL,), omniglot.omniglot_rivals_estimate, (OMNIGLOT_DEV,)),
    "omniglot-within-alphabet": Block((omniglot.EVAL, omniglot.EVAL_WITHIN, omniglot.EVAL_WITHIN_VALIDATION),
                                      omniglot.omniglot_within_alphabet, (OMNIGLOT_DEV,)),
    "omniglot-learning-curve": Block(omniglot.LOGS, omniglot.omniglot_learning_curve, (OMNIGLOT,)),
    "omniglot-shipped": Block((omniglot.MANIFEST,), omniglot.omniglot_shipped, (OMNIGLOT,)),
    "omniglot-lake": Block((omniglot.LAKE,), omniglot.omniglot_lake, (OMNIGLOT_DEV,)),
    "omniglot-stream": Block((omniglot.STREAM,), omniglot.omniglot_stream, (OMNIGLOT_DEV,)),
    # ---- Omniglot: how the recipe was chosen (the lab notebook), every comparison that has a file
    "lab-members": _compare(f"{_R}/omniglot_compare_members_validation.json", "three members", "one network"),
    "lab-mirrors-margin": _compare(f"{_R}/omniglot_compare_mirrors_margin_validation.json", "mirrors + margin 0.25",
                                   "three members"),
    "lab-40px": _compare(f"{_R}/omniglot_compare_40px_validation.json", "40x40 drawings", "three members"),
    "lab-finetune": _compare(f"{_R}/omniglot_compare_finetune_validation.json", "with fine-tuning", "without"),
    "lab-finetune-within": _compare(f"{_R}/omniglot_compare_finetune_within_alphabet_validation.json",
                                    "with fine-tuning", "without"),
    "lab-40px-within": _compare(f"{_R}/omniglot_compare_40px_within_alphabet_validation.json", "40x40 drawings",
                                "three members"),
    "lab-mirrors-margin-within": _compare(f"{_R}/omniglot_compare_mirrors_margin_within_alphabet_validation.json",
                                          "mirrors + margin 0.25", "three members"),
    "lab-ways40": _compare(f"{_R}/omniglot_compare_ways40_validation.json", "40-way episodes", "20-way episodes"),
    "lab-ways40-within": _compare(f"{_R}/omniglot_compare_ways40_within_alphabet_validation.json", "40-way episodes",
                                  "20-way episodes"),
    "lab-previous-test": _compare(omniglot.COMPARE_PREVIOUS, "40-way episodes", "20-way episodes"),
    "lab-diagnostic": _compare(f"{_R}/omniglot_compare_diagnostic_all_nontest_five_members.json",
                               "all non-test characters, five members", "shipped"),
}
