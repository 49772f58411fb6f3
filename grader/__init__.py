"""bracket-grader: grades ARENA [1.5.1] Balanced Bracket Classifier submissions.

Trusted side: catalogue, compare, scoring, engine, reports, cli, plugin. Worker side (runs the
student's code): `grader.worker`, which imports only `grader.protocol` and `grader.inputs` of this
package. Importing this package itself loads nothing heavy.
"""
__version__ = "0.1.0"


def check(items=None, **options):
    """Grade the notebook this runs in (see grader.notebook.check): `grader.check()`,
    `grader.check("get_ln_fit")` or a list of item ids."""
    from grader.notebook import check as run

    return run(items, **options)
