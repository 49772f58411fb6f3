"""Run a submission's code one top-level statement at a time, as a teaching assistant reads it.

A statement that fails does not lose the statements after it, in its cell or in later ones; one
that runs past its time limit is stopped (a soft alarm here; the trusted process kills the worker
if the alarm is swallowed) and the rest goes on. Before each statement the worker tells the
trusted process which one it is starting, so that when one hangs past the hard limit or ends the
process (`os._exit`, a crash), the submission is run again in a fresh worker with that statement
skipped: a statement costs only what depends on it.
"""
from __future__ import annotations

from typing import Callable

from grader.protocol import Kind
from grader.worker.clock import alarm, describe_error
from grader.worker.lean import Statement, lean_statements, top_level


class StatementTimeout(BaseException):
    """Raised by the per-statement alarm. A BaseException, so `except Exception` cannot swallow it."""


def plan(cells: list[str], as_main: bool, lean: bool, object_names: list[str],
         functions: set[str]) -> tuple[list[Statement], int, list[dict]]:
    """The statements to run (every top-level statement, `if MAIN:` bodies flattened, or the lean
    slice), how many were left out, and the cells that do not parse."""
    if lean:
        return lean_statements(cells, as_main, object_names, functions)
    statements, errors = top_level(cells, as_main)
    return statements, 0, errors


def skipped(st: Statement, slow: bool = False) -> dict:
    """The error record of a statement not run because it stopped a worker before, or (`slow`) ran
    past its limit on less data before."""
    why = "it ran past its time limit on fewer examples before" if slow else "it stopped the worker before"
    return {"cell": st.cell, "kind": "skipped", "type": "Skipped", "traceback": "",
            "message": f"the statement at {st.where} was skipped: {why}"}


def timed_out(st: Statement, message: str, type_name: str = "StatementTimeout") -> dict:
    """The error record of a statement stopped at its time limit (its key, so that a run on more
    data can leave it out)."""
    return {"cell": st.cell, "kind": "timeout", "type": type_name, "traceback": "", "message": message, "key": st.key}


def run(statements: list[Statement], namespace: dict, emit: Callable[..., None], filename: str, seconds: float,
        skip: set[str], after: Callable[[Statement], None] | None = None, slow: frozenset[str] = frozenset()) -> list[dict]:
    """Execute each statement in `namespace`; returns the errors (the first of each cell, and every
    statement skipped or stopped). `after(statement)` runs after each one (helper stand-ins).
    Statements in `skip` (they stopped a worker) and `slow` (past their limit on less data) are
    not run."""
    errors: list[dict] = []
    failed_cells: set[int] = set()
    for st in statements:
        if st.key in skip or st.key in slow:
            errors.append(skipped(st, st.key not in skip))
            continue
        emit(Kind.STATEMENT, key=st.key, where=st.where)
        cancel = alarm(seconds, lambda: StatementTimeout(f"the statement at {st.where} ran past its limit of "
                                                         f"{seconds:g} s and was stopped"))
        try:
            exec(st.code(f"{filename}, cell {st.cell}"), namespace)  # noqa: S102 - the point
        except BaseException as e:  # a failing statement does not stop the rest
            if isinstance(e, StatementTimeout):
                failed_cells.add(st.cell)
                errors.append(timed_out(st, str(e)))
            elif st.cell not in failed_cells:
                failed_cells.add(st.cell)
                errors.append({"cell": st.cell, **describe_error(e)})
        finally:
            cancel()
        if after is not None:
            after(st)
    return errors
