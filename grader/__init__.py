"""bracket-grader: grades ARENA [1.5.1] Balanced Bracket Classifier submissions.

Trusted side: everything in this package but `grader.worker`; worker side (runs the student's
code): `grader.worker`, which imports only `grader.protocol` and `grader.inputs` of this package
(CONTRIBUTING.md has the map). Importing this package itself loads nothing heavy.
"""
import os

__version__ = "0.1.0"


def check(items=None, **options):
    """Grade the notebook this runs in (see grader.notebook.check): `grader.check()`,
    `grader.check("get_ln_fit")` or a list of item ids."""
    if os.environ.get("BRACKET_GRADER_WORKER"):
        return None  # a check() call in the history, run again inside a worker: nothing to do there
    from grader.notebook import check as run

    return run(items, **options)
