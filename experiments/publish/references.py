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

# The published Omniglot results the official table prints beside the shipped checkpoint:
# (who, where in the paper, the split it was measured on, {(ways, shots): accuracy in %}).
# Kaiser et al.'s TF1 code trains on images_background and tests on images_evaluation,
# the split measured here; the other four use Vinyals et al.'s split (1,200 training
# characters of either set, 423 test characters, rotations as extra classes).
OMNIGLOT_PUBLISHED = (
    ("Kaiser et al. 2017 (memory)", "Learning to Remember Rare Events, Omniglot table",
     "background / evaluation", KAISER_2017_OMNIGLOT),
    ("Matching Networks (Vinyals et al. 2016)", "Table 1, no fine-tuning",
     "Vinyals et al.'s 1,200 / 423 characters", {(5, 1): 98.1, (5, 5): 98.9, (20, 1): 93.8, (20, 5): 98.5}),
    ("Prototypical Networks (Snell et al. 2017)", "Table 1",
     "Vinyals et al.'s 1,200 / 423 characters", {(5, 1): 98.8, (5, 5): 99.7, (20, 1): 96.0, (20, 5): 98.9}),
    ("MAML (Finn et al. 2017)", "Table 1",
     "Vinyals et al.'s 1,200 / 423 characters", {(5, 1): 98.7, (5, 5): 99.9, (20, 1): 95.8, (20, 5): 98.9}),
    ("Relation Networks (Sung et al. 2018)", "Table 1",
     "Vinyals et al.'s 1,200 / 423 characters", {(5, 1): 99.6, (5, 5): 99.8, (20, 1): 97.6, (20, 5): 99.1}),
)

# Error rates in % on Lake et al.'s 20 within-alphabet one-shot runs: (who, source, error).
LAKE_RUNS_PUBLISHED = (
    ("people", "Lake, Salakhutdinov and Tenenbaum 2015, Science", 4.5),
    ("Bayesian Program Learning", "Lake, Salakhutdinov and Tenenbaum 2015, Science", 3.3),
    ("siamese network (Koch et al.)", "Koch, Zemel and Salakhutdinov 2015", 8.0),
)
