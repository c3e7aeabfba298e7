"""The episodic experiment (`kshot omniglot`): N-way k-shot characters, trained and evaluated.

    settings.py     [data], [model], [memory], [train], [pretrain], [finetune] and the presets
    datasets.py     the registry of episodic datasets; a new dataset is one module and one entry
    omniglot.py     Omniglot: reading the zips or folders, decoding, the drawing cache
    split.py        the fixed split of the background alphabets (train, validation, test)
    episodes.py     drawing classes and tasks from alphabets
    model.py        the convolutional embedder and the episodic memory
    checkpoints.py  restoring a run or the shipped checkpoint; exporting one
    training/       the three stages (classifier, episodic fine-tuning, memory loss)
    evaluation/     N-way k-shot tasks, checkpoints compared, Lake's runs, the stream
    views.py        tables and figures the notebook shows
"""
