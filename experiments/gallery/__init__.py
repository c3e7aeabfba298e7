"""The face gallery (`kshot enroll | identify | calibrate`): a product on top of the face experiment.

    gallery.py   enroll people, identify photos or answer "unknown", calibrate the threshold
    storage.py   the gallery file: its format, locking and atomic rewrites
    demo.py      the documented example (three celebrities enrolled, five identified)
"""
