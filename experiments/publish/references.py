"""Numbers published by others that the docs print beside this repository's results.

They are not measured here; they are kept in one place so that no guide types them by
hand (`make docs` renders them from this file, like a results file). The blog's
published curves live with the study that compares against them:
experiments/studies/blog_reference.py.
"""

# Kaiser, Nachum, Roy and Bengio, "Learning to Remember Rare Events", ICLR 2017, the
# Omniglot table (convolutional embedder with the memory module), test accuracy in percent
# on Omniglot's 20 evaluation alphabets; keys are (ways, shots).
KAISER_2017_OMNIGLOT = {
    (5, 1): 98.4,
    (5, 5): 99.6,
    (20, 1): 95.0,
    (20, 5): 98.6,
}
