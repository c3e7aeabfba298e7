"""Every file name inside a run directory, for every experiment, in one place.

A run directory is read by other code than the code that wrote it: `kshot report`
redraws a face run from its files, evaluation reads a training run's split and logs,
a sweep assembles its cells' summaries, the notebooks open any of them. Naming each
file once here keeps writers and readers from drifting apart, and lets a reader of this
module see a run directory's whole layout.
"""

# ---------------------------------------------------------------- every run
CONFIG_FILE = "config.toml"  # the resolved configuration that produced the run
NOTES_FILE = "notes.txt"  # warnings and notes of the run, one per line

# ---------------------------------------------------------------- a face k-shot run (`kshot run`)
REPEATS_DIR = "repeats"  # repeats/<model>/<repeat>.npz, one finished repeat each, written atomically
RESULTS_FILE = "results.csv"  # tidy: one row per model x repeat x shots
TIMINGS_FILE = "timings.csv"  # seconds per repeat, apart so results.csv is byte-identical between runs
OPEN_SET_FILE = "open_set.csv"  # open-set rows (known accuracy, strangers rejected) per repeat
CONFUSION_FILE = "confusion.npz"  # confusion matrices, one array per model
DATASET_FILE = "dataset.npz"  # embeddings, labels and class names, for the figures
SUMMARY_CSV = "summary.csv"  # mean and 95% interval per model and shots
SUMMARY_MD = "summary.md"
PAIRED_FILE = "paired.csv"  # each model against the reference, paired over the same shuffles
OPEN_SET_SUMMARY_FILE = "open_set_summary.csv"
FOOTPRINT_CSV = "footprint.csv"  # accuracy against the memory's bytes
FOOTPRINT_MD = "footprint.md"
SKIPPED_FILE = "skipped.txt"  # images that were not used, with the reason
FIGURES_DIR = "figures"

# ---------------------------------------------------------------- an Omniglot training run (`kshot omniglot train`)
SPLIT_FILE = "split.json"  # the train and held-out alphabets, read again by evaluation
LATEST_FILE = "latest.json"  # points at the newest complete checkpoint; written last
CHECKPOINT_DIR = "checkpoints"  # checkpoints/step-NNNNNNN/
LOG_FILE = "log.jsonl"  # one JSON record per logged step of the memory-loss stage
MEMORY_FILE = "memory.npz"  # the memory's state at the last checkpoint
PRETRAIN_DIR = "pretrain"  # the classifier stage's own run directory, inside the run
FINETUNE_DIR = "finetune"  # the episodic fine-tuning stage's own run directory

# ---------------------------------------------------------------- a sweep (`kshot sweep`)
CELLS_DIR = "cells"  # cells/<cell>/: one face run directory per cell
STATUS_DIR = "status"  # status/<cell>.json: how each cell ended
PLAN_FILE = "plan.csv"  # every cell and its status
SWEEP_CSV = "sweep.csv"  # every cell's summary rows, side by side
SWEEP_MD = "sweep.md"
