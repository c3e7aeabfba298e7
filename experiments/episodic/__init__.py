"""The episodic experiment (`kshot omniglot`): N-way k-shot characters, trained and evaluated.

    settings.py     [data], [model], [memory], [train], [pretrain], [finetune], the presets, readout names
    data.py         EpisodicData: what every dataset loads into (images, classes, alphabets)
    datasets.py     the registry of episodic datasets; a new dataset is one module and one entry
    omniglot.py     Omniglot: reading the zips or folders, decoding, the drawing cache
    split.py        train / validation / test by alphabet; Omniglot's fixed split
    episodes.py     drawing classes and tasks from alphabets
    model.py        the convolutional embedder, its inference pass, and the episodic memory
    checkpoints.py  restoring a run or the shipped checkpoint; exporting one
    training/       the three stages (classifier, episodic fine-tuning, memory loss)
    evaluation/     N-way k-shot tasks, checkpoints compared, Lake's runs, the stream, the official benchmark
    views.py        tables and figures the notebook shows
"""
