"""Quiet stand-ins for what a course notebook imports but a grader must not run: plotting
(`plotly_utils`, `circuitsvis`) and the course's `tests` module, whose calls are recorded so that
object items can be read from the arguments students passed to them."""
from __future__ import annotations

RECORDED: dict[str, tuple] = {}


class Quiet:
    """Accepts any call or attribute and does nothing, so plotting code runs without output."""

    def __call__(self, *args, **kwargs):
        return self

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self

    def __iter__(self):
        return iter(())

    def __repr__(self) -> str:
        return "<quiet stand-in>"


def quiet_getattr(name: str):
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(name)
    return Quiet()


def tests_getattr(name: str):
    """The course's tests module: each `test_*` records its arguments and reports nothing."""
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(name)

    def record(*args, **kwargs):
        RECORDED[name] = (args, kwargs)

    return record
