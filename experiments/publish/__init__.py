"""Every published number, rendered by code from a committed results file (`make docs`).

README.md and docs/ hold blocks between markers that only this package writes; a
test fails when a committed block differs from what the generator writes now.
"""
