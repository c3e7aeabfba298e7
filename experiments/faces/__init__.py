"""The face k-shot experiment (`kshot run`): a memory against store-all 1-NN over many shuffles.

Data in: datasets.py (folders and the built-in sets), shifts.py + shift_filters.py (degraded copies),
embedder.py (FaceNet with caches), run_data.py (what a run learns from),
embeddings_file.py (an `--embeddings` npz, checked row by row).
Methods: methods.py (the registry, plain data), adapters.py (how a method takes part
in the protocol), finetuned.py (the memory loss training FaceNet).
The protocol: protocol.py (which items are fed and evaluated when), runner.py
(every model and repeat, resumably), repeats.py (one file per finished repeat).
Results out: results.py (tables), report.py and plots.py (summary and figures),
footprint.py (accuracy against bytes), open_set.py (strangers, photo-pair verification
numbers), identification.py (open-set thresholds at an FPIR: leave one person out),
analysis.py (sentences from paired differences).

A new write policy or fixed-size baseline is one entry in methods.py.
"""
