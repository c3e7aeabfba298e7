"""Studies: fixed experiments built from the face runner, each reproducing one documented result.

    finetune_study.py   fine-tuning recipes compared on a shifted celebrity set
    blog_reference.py   the blog post's published curves, beside a run in its setting
"""
