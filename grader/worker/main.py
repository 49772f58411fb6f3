"""Worker entry point: `python -m grader.worker.main` with the job as JSON on stdin.

Runs in the sandboxed child the trusted process started. It builds the course environment in its
scratch folder, executes the submission (by default only the statements grading needs, see
grader.worker.lean; or every cell, here or in a real Jupyter kernel), then calls each item and writes one JSON line per result to the message pipe. It never
learns the expected answers, the report paths, or anything else of the trusted side.
"""
from __future__ import annotations

import ast
import json
import os
import sys
import time
from pathlib import Path

from grader.protocol import Kind, dump_message


class Channel:
    """The message pipe to the trusted process (a file descriptor it passed us)."""

    def __init__(self, fd: int):
        self._fd = fd

    def emit(self, kind: str, **fields) -> None:
        data = dump_message(kind, **fields)
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]


def wants_main(source: str, object_names: list[str]) -> bool:
    """Run a module as __main__ only when an object item is assigned under an `if MAIN:` guard;
    otherwise import it (MAIN false), so its demo code does not run."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ("MAIN" in ast.unparse(node.test) or "__main__" in ast.unparse(node.test)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store) and sub.id in object_names:
                    return True
    return False


def run_module(job: dict, cells: list[str], channel: Channel, as_main: bool = False, lean: bool = False) -> None:
    import types

    from grader.inputs import factory_for
    from grader.worker import imported, statements
    from grader.worker.harvest import note_assignments, run_item

    factory = factory_for(job["weights"], job["data"], job["device"])  # prepared in the warm worker
    prepared = sum(factory.spare().values())
    path = Path(job["submission"])
    object_names = [n for item in job["items"] for n in item["names"]]
    name = "__main__" if as_main or wants_main("\n".join(cells), object_names) else "submission"
    module = types.ModuleType(name)
    module.__file__ = job.get("file") or str(path)
    sys.modules[name] = module
    namespace = module.__dict__
    questions = _questions(job, channel)
    imported.connect(questions, factory, set(job.get("functions") or ()), namespace)
    started = time.monotonic()
    functions = {item["id"] for item in job["items"] if not item["is_object"]}
    todo, dropped, errors = statements.plan(cells, name == "__main__", lean, object_names, functions)
    stand_ins = _ModuleHelpers(namespace, job.get("module_helpers") or [], questions, factory)

    def after(statement) -> None:
        stand_ins.wrap()
        note_assignments(namespace, object_names, statement.cell)

    errors += statements.run(todo, namespace, channel.emit, path.name, job["statement_seconds"],
                             set(job.get("skip") or ()), after, frozenset(job.get("slow") or ()))
    stand_ins.restore()  # function items are graded on the student's own helpers (or their own stand-ins)
    channel.emit(Kind.READY, cells=len(cells), cell_errors=errors[:50], mode=name, dropped=dropped,
                 prepared_models=prepared, seconds=round(time.monotonic() - started, 3))
    for item in job["items"]:
        channel.emit(Kind.START, item=item["id"])
        begun = time.monotonic()
        if item.get("reference_helpers") and questions is not None:
            from grader.worker.helpers import ReferenceHelpers

            with ReferenceHelpers(namespace, item["reference_helpers"], questions, factory):
                run_item(namespace, item, factory, job["case_seconds"], channel.emit)
        else:
            run_item(namespace, item, factory, job["case_seconds"], channel.emit)
        channel.emit(Kind.END, item=item["id"], seconds=round(time.monotonic() - begun, 3))


def _questions(job: dict, channel: Channel):
    """The channel to ask the trusted process for reference answers (None without a reply pipe)."""
    if job.get("reply_fd") is None:
        return None
    from grader.worker.asking import Asker

    return Asker(channel.emit, job["reply_fd"], files=job["scratch"])


class _ModuleHelpers:
    """Object items graded "given a correct <helper>": while the submission's own code runs, each
    helper in `names` is the reference's stand-in (wrapping the student's own, which it calls where
    the trusted process cannot rebuild the arguments); a later `def` of it is wrapped again.
    `restore` puts the student's own functions back before any item is graded."""

    def __init__(self, namespace: dict, names: list[str], questions, factory):
        self.namespace, self.factory, self.questions = namespace, factory, questions
        self.names = names if questions is not None else []
        self.stand_ins: dict[str, object] = {}
        self.own: dict[str, object] = {}
        self.wrap()

    def wrap(self) -> None:
        from grader.worker.helpers import proxy

        for helper in self.names:
            current = self.namespace.get(helper)
            if current is None or current is not self.stand_ins.get(helper):
                self.own[helper] = current
                own = current if callable(current) else None
                self.stand_ins[helper] = self.namespace[helper] = proxy(helper, own, self.questions, self.factory,
                                                                        namespace=self.namespace)

    def restore(self) -> None:
        for helper, own in self.own.items():
            if own is None:
                self.namespace.pop(helper, None)
            else:
                self.namespace[helper] = own


def enter_pid_namespace() -> None:
    """When the sandbox made a PID namespace, our children are in it, not us: fork, and let the
    child (PID 1 there) do the work. When it ends, the kernel kills every process left in the
    namespace, detached ones included; we exit with its status."""
    if os.environ.get("BRACKET_GRADER_PIDNS") != "1" or os.getpid() == 1:
        return
    pid = os.fork()
    if pid == 0:
        return
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) % 256 if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def main() -> None:
    job = json.loads(sys.stdin.read())
    sys.stdin.close()
    run(job)


def run(job: dict) -> None:
    """Everything after the job is known: also the entry of a warm pool's fresh fork."""
    enter_pid_namespace()
    channel = Channel(job["msg_fd"])
    scratch = Path(job["scratch"])
    from grader.worker import course_env
    from grader.worker.source import read_cells

    try:
        cells = read_cells(Path(job["submission"]))
    except (ValueError, UnicodeError, KeyError, TypeError) as e:
        channel.emit(Kind.CRASH, detail=f"the submission could not be read as a {Path(job['submission']).suffix} file: "
                                     f"{type(e).__name__}: {str(e)[:200]}")
        return
    workdir, shims = course_env.build(scratch, job["weights_pt"], job["notebook_data"], "\n".join(cells))
    os.chdir(workdir)
    sys.path.insert(0, str(shims))
    course_env.install_fallbacks(scratch, workdir, shims)
    job["file"] = str(workdir / Path(job.get("name") or job["submission"]).name)  # where the course keeps its files
    sys.argv = [job["file"]]
    started = time.monotonic()
    notebook = job["submission"].endswith(".ipynb")
    mode = job.get("notebook_mode", "lean")
    if notebook and mode == "kernel":
        from grader.worker.kernel import run_notebook

        run_notebook(job, cells, channel, workdir, shims)
    else:  # in this (warm) process: every cell ("fast"), or only what grading needs ("lean")
        run_module(job, cells, channel, as_main=notebook, lean=mode == "lean")
    import resource

    channel.emit(Kind.DONE, seconds=round(time.monotonic() - started, 3),
                 max_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # Linux: KiB


if __name__ == "__main__":
    main()
