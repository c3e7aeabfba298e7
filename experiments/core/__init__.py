"""What every experiment shares, and nothing experiment-specific.

    settings.py   the strict TOML loader and `--set` overrides; the [memory] section
    memories.py   the one factory that builds every memory_module memory
    run_files.py  every file name inside a run directory
    run_dir.py    open, check and resume a run directory; training checkpoints
    metrics.py    intervals (Wilson, bootstrap), paired differences, k-shot accuracy
    figures.py    saving figures and the font and layout rules they share
    paths.py      the repository's own folders
    heap.py       garbage collection kept off the long-lived heap during tight loops

Nothing here imports the experiments (tests/test_architecture.py checks it). The one
reader of this project's npz files (kind and version checked) is kshot_io.npz, below
every package.
"""
