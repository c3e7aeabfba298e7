"""Training an episodic embedder: three stages on one skeleton (stages.run_stage).

    stages.py     the update loop, the training clock, the held-out 1-NN check and log lines they share
    pretrain.py   a cosine-softmax classifier over the training characters
    finetune.py   episodic fine-tuning with prototypes
    train.py      the memory-loss stage of Kaiser et al., and the whole `kshot omniglot train`
"""
