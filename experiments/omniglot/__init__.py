"""Omniglot: Kaiser-style episodic training and per-shot evaluation of the memory.

`data` loads the dataset's zip layout (zip or extracted folder, any number of sources),
`episodes` samples seeded episodes, `model` is the small convolutional embedder,
`train` trains it end to end with the memory loss, `evaluate` measures N-way k-shot
accuracy with confidence intervals, and `compare` pairs two checkpoints on the same
tasks. The settings (experiments.config), the run directory (experiments.run_dir), the
k-shot metrics (experiments.metrics) and the `kshot omniglot` commands
(experiments.cli) are shared with the face runner.
Submodules import TensorFlow only where they need it.
"""
