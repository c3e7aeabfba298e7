"""Grids of face runs (`kshot sweep`) on a local process pool or a Ray cluster.

    spec.py      the sweep file: cells, swept keys, resources, where each cell lives
    task.py      one cell (or a slice of its repeats) as a task a worker runs
    execute.py   the driver: what is left to run, resume, the cells' warnings, Ctrl-C
    executors.py where tasks run (local pool, Ray), retries, and stopping workers at once
    report.py    the sweep's table and figures from its cells' summaries
"""
