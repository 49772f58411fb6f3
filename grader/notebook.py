"""`grader.check()` in a running notebook: grade the student's work as it stands in that kernel.

Nothing is judged in the student's kernel, so nothing there can forge a pass: the code the kernel
has run (its cell history, in order) is written to a notebook file and graded by the same engine
as the command line, in a sandboxed worker like any submission; object items are computed by that
code in the worker. The grader stays warm in the kernel between calls (its worker already has
torch imported and the grading inputs built), so a later check of one item takes about as long as
that item's own calls; the first call prepares, and says so.

Which model? The one the notebook uses: the grader looks for the weights file whose parameters are
those of the kernel's `model` (next to the notebook in the course's folders, where the course's
setup cell put them, or ours), and grades with it and the data file beside it.
"""
from __future__ import annotations

import html
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable

from grader.catalogue import IDS

_GRADERS: dict[tuple, object] = {}  # (weights, data) -> a warm Grader, kept for this kernel's later calls
_SCRIPT_ITEMS: set[str] = set()  # what a script's check() calls asked for (graded at exit)
_SCRIPT_TIMEOUT: list[float] = []
WEIGHTS_NAME, DATA_NAME = "brackets_model_state_dict.pt", "brackets_data.json"
MARKS = {"passed": ("PASS", "#1a7f37"), "partial": ("PART", "#9a6700"), "failed": ("FAIL", "#cf222e"),
         "error": ("ERR", "#cf222e"), "timeout": ("TIME", "#cf222e"), "missing": ("MISS", "#6e7781"),
         "not_attempted": ("TODO", "#6e7781"), "provided": ("GIVN", "#6e7781"), "not_autograded": ("----", "#6e7781")}


def check(items: str | Iterable[str] | None = None, *, timeout: float | None = None):
    """Grade the work in this notebook: every item, one (`check("get_ln_fit")`) or a list. Shows
    the table (HTML in a notebook, text elsewhere) and returns the result."""
    if os.environ.get("BRACKET_GRADER_CHECK", "").lower() in ("0", "off", "no"):
        return None  # turned off (offline, or a quick run of the template's cells)
    only = _selected(items)
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is None or not hasattr(shell, "history_manager"):
        return _check_script_at_exit(only, timeout)
    weights, data = find_model_files(shell.user_ns)
    grader = _grader(weights, data, timeout)
    from dataclasses import replace

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bracket-check-") as folder:
        path = Path(folder) / _name(shell)
        path.write_text(history_notebook(shell))
        result = grader.grade(path, only=only)
    result = replace(result, path=_name(shell), seconds=time.monotonic() - started)
    _show(result, only)
    return result


def _check_script_at_exit(only: tuple[str, ...], timeout: float | None) -> None:
    """`python exercises.py`: the script's checks add up, and its file is graded once, at exit,
    for every item asked for (the same engine and worker as `bracket-grade`)."""
    import __main__

    path = getattr(__main__, "__file__", None)
    if not path or not str(path).endswith(".py"):
        raise RuntimeError("grader.check() grades the notebook or the script it runs in; for a file, use "
                           "`bracket-grade FILE`")
    if not _SCRIPT_ITEMS:
        import atexit

        atexit.register(_grade_script, __main__, Path(path).resolve())
    _SCRIPT_ITEMS.update(only or IDS)
    _SCRIPT_TIMEOUT.append(timeout or 0)


def _grade_script(main, path: Path) -> None:
    """At exit: the file graded once, by the command line in a process of its own (this one is
    shutting down and may start no threads), with the script's `model` as it ended (found by its
    weights) and the largest timeout asked."""
    import subprocess

    weights, data = find_model_files(vars(main))
    argv = [sys.executable, "-m", "grader.cli", str(path), "--only", ",".join(i for i in IDS if i in _SCRIPT_ITEMS)]
    argv += ["--weights", weights] if weights else []
    argv += ["--data", data] if data else []
    timeout = max(_SCRIPT_TIMEOUT, default=0)
    argv += ["--timeout", str(timeout)] if timeout else []
    sys.stdout.flush()
    subprocess.run(argv, check=False)


def _text(table: str, only: tuple[str, ...]) -> str:
    lines = table.splitlines()
    if only and len(only) < len(IDS):
        lines = lines[:1] + [ln for ln in lines[1:] if any(f" {i} " in ln for i in only) or ln.startswith("  note:")]
    return "\n".join(lines)


def _selected(items) -> tuple[str, ...]:
    if items is None:
        return ()
    chosen = (items,) if isinstance(items, str) else tuple(items)
    unknown = [i for i in chosen if i not in IDS]
    if unknown:
        raise ValueError(f"unknown item(s): {', '.join(unknown)}; the items are: {', '.join(IDS)}")
    return chosen


def _name(shell) -> str:
    """The notebook's own name where the kernel knows it (VS Code, Jupyter set it), else a neutral one."""
    name = shell.user_ns.get("__vsc_ipynb_file__") or os.environ.get("JPY_SESSION_NAME") or "notebook.ipynb"
    return Path(str(name)).name if str(name).endswith(".ipynb") else "notebook.ipynb"


def history_notebook(shell) -> str:
    """The cells this kernel has run, in order, as a notebook, the calling cell included (a
    template cell defines a function and checks it; check() does nothing inside the worker)."""
    import nbformat

    cells = [c for c in list(shell.history_manager.input_hist_raw)[1:] if c.strip()]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    return nbformat.writes(nb)


def find_model_files(namespace: dict) -> tuple[str | None, str | None]:
    """The weights file the notebook's `model` was loaded from (by the hash of its parameters), and
    the data file beside it; (None, None) for our own model, or when none matches."""
    model = namespace.get("model")
    if model is None or not hasattr(model, "named_parameters"):
        return None, None
    from reference.model import parameter_hash, read_state_dict

    target = parameter_hash(model)
    folders = [Path(str(namespace[k])) for k in ("section_dir", "exercises_dir") if k in namespace]
    folders += [Path.cwd(), *Path.cwd().parents[:3]]
    seen: set[Path] = set()
    for folder in (f for f in folders if len(f.parts) > 1):  # never the file system's root (/proc, /sys)
        for candidate in [folder / WEIGHTS_NAME, *sorted(folder.glob(f"*/{WEIGHTS_NAME}"))[:20],
                          *sorted(folder.glob(f"*/*/{WEIGHTS_NAME}"))[:20],
                          *sorted(folder.glob(f"*/*/*/{WEIGHTS_NAME}"))[:20]]:
            if candidate in seen or not candidate.is_file():
                continue
            seen.add(candidate)
            try:
                if parameter_hash(read_state_dict(candidate)) == target:
                    data = candidate.with_name(DATA_NAME)
                    return str(candidate), str(data) if data.is_file() else None
            except Exception:
                continue
    return None, None


def _grader(weights: str | None, data: str | None, timeout: float | None):
    from grader.config import configured
    from grader.engine import Grader

    key = (weights, data, timeout)
    if key not in _GRADERS:
        grader = Grader(configured(weights=weights, data=data, timeout=timeout), at_once=1)  # one notebook at a time
        _prepare(grader)
        _GRADERS[key] = grader
    return _GRADERS[key]


def _prepare(grader) -> None:
    """The first call on a machine computes the reference answers (cached on disk after that) and
    starts the grader's warm worker: say so, with a progress bar."""
    from grader.catalogue import EXERCISES
    from grader.isolation import warning

    if warning():
        _say(f"<p style='color:#9a6700'>{html.escape(warning())}</p>", warning())
    grader.start(1)
    todo = [ex for ex in EXERCISES if ex.kind == "function"]
    bar = _Progress(len(todo), "preparing the grader (the first time on this machine only)")
    for n, ex in enumerate(todo, 1):
        grader.reference.for_exercise(ex)
        bar.update(n)
    bar.done()


class _Progress:
    """A bar in the notebook (text elsewhere), shown only when the work takes a while."""

    def __init__(self, total: int, what: str):
        self.total, self.what, self.handle = total, what, None
        self.started = time.monotonic()

    def _bundle(self, n: int) -> dict:
        pct = int(100 * n / self.total)
        return {"text/plain": f"{self.what}: {n}/{self.total}",
                "text/html": f"<div>{html.escape(self.what)}: {n}/{self.total}</div><div style='width:300px;border:"
                             f"1px solid #888'><div style='width:{pct}%;background:#1a7f37;height:8px'></div></div>"}

    def update(self, n: int) -> None:
        if self.handle is None and (n == self.total or time.monotonic() - self.started < 1.0):
            return  # a warm cache: no bar for what takes no time
        if not _in_ipython():
            self.handle = True
            print(f"\r{self._bundle(n)['text/plain']}", end="", file=sys.stderr, flush=True)
        elif self.handle is None:
            from IPython.display import display

            self.handle = display(self._bundle(n), raw=True, display_id=True)
        else:
            self.handle.update(self._bundle(n), raw=True)

    def done(self) -> None:
        if self.handle is True:
            print("\ngrader ready", file=sys.stderr)
        elif self.handle is not None:
            self.handle.update({"text/plain": "grader ready", "text/html": "<div>grader ready</div>"}, raw=True)


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def _say(markup: str, text: str) -> None:
    if not _in_ipython():
        print(text, file=sys.stderr)
        return
    from IPython.display import display

    display({"text/plain": text, "text/html": markup}, raw=True)


def table_html(result, only: tuple[str, ...] = ()) -> str:
    """Status, points, the likely cause and the failing case per item, the full feedback under a
    click, and a one-line summary. Every string a student controls is escaped."""
    from grader.feedback import all_notes, feedback, headline
    from grader.inert import inert

    rows = []
    for e in result.exercises:
        if only and e.id not in only:
            continue
        mark, colour = MARKS[e.status]
        gist = headline(e, 110)
        details = (f"<details><summary>{html.escape(gist)}</summary><pre style='white-space:pre-wrap'>"
                   f"{html.escape(inert(feedback(e)))}</pre></details>") if gist else ""
        rows.append(f"<tr><td style='color:{colour};font-weight:bold'>{mark}</td><td><code>{html.escape(e.id)}</code></td>"
                    f"<td>{e.score:.3g}/{e.max_score:g}</td><td style='text-align:left'>{details}</td></tr>")
    notes = "".join(f"<li>{html.escape(inert(n))}</li>" for n in all_notes(result))
    return ("<table><thead><tr><th></th><th>item</th><th>points</th><th style='text-align:left'>what differs</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>" + (f"<ul>{notes}</ul>" if notes else "")
            + f"<p><b>{html.escape(summary(result, only))}</b></p>")


def summary(result, only: tuple[str, ...] = ()) -> str:
    if result.not_gradable:
        from grader.feedback import not_gradable_text

        return not_gradable_text(result.not_gradable)
    graded = [e for e in result.exercises if not only or e.id in only]
    passed = sum(e.status == "passed" for e in graded)
    given = sum(e.status == "provided" for e in graded)
    todo = sum(e.status == "not_attempted" for e in graded)
    extra = "".join(f"; {n} {what}" for n, what in ((todo, "not attempted yet"), (given, "provided by the starter")) if n)
    return (f"{sum(e.score for e in graded):.4g} / {sum(e.max_score for e in graded):g} points; {passed} of {len(graded)} "
            f"items passed{extra} ({result.seconds:.1f} s)")


def _show(result, only: tuple[str, ...]) -> None:
    """An HTML table where the front end shows HTML (Jupyter, Colab, VS Code), text elsewhere."""
    from IPython.display import display

    from grader.reports import terminal_table

    display({"text/plain": _text(terminal_table(result), only) + "\n" + summary(result, only),
             "text/html": table_html(result, only)}, raw=True)
