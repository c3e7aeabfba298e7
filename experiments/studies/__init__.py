"""Studies: fixed experiments built from the face runner, each reproducing one documented result.

    finetune_study.py   fine-tuning recipes compared on a shifted celebrity set
    blog_reference.py   the blog post's published curves, beside a run in its setting
    regime_map.py       every write policy against store-all over classes, slots per class and embedders
    regime_map_report.py  the map's table and figure, from its results json
    regime_map_keys.py  the map's key sets: an untrained Omniglot checkpoint, a key set's spread
"""
