"""The face gallery (`kshot enroll | identify | calibrate | forget`): a product on top of the face experiment.

    gallery.py   the Gallery: enroll people, identify photos or answer "unknown", calibrate the threshold
    answers.py   what it answers (a name or UNKNOWN) and the table of answers
    photos.py    the photos a command is given: files and folders, embedded with their names
    storage.py   the gallery file: its format, locking and atomic rewrites
    validation.py  the values a gallery may hold, checked on every load and save
    forgetting.py  removing people without a trace; free slots written before occupied ones
    demo.py      the documented example (three celebrities enrolled, five identified)
"""
