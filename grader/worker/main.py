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

from grader.protocol import dump_message


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
    from grader.worker.harvest import describe_error, run_item

    factory = factory_for(job["weights"], job["data"], job["device"])  # prepared in the warm process
    prepared = sum(factory.spare().values())
    path = Path(job["submission"])
    object_names = [n for item in job["items"] for n in item["names"]]
    name = "__main__" if as_main or wants_main("\n".join(cells), object_names) else "submission"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    namespace = module.__dict__
    errors: list[dict] = []
    dropped = 0
    started = time.monotonic()
    if lean:  # only what grading needs (grader.worker.lean); each statement on its own
        from grader.worker.lean import lean_statements

        functions = {item["id"] for item in job["items"] if item["kind"] == "function"}
        statements, dropped, errors = lean_statements(cells, name == "__main__", object_names, functions)
        failed_cells: set[int] = set()
        for st in statements:
            try:
                exec(st.code(f"{path.name}, cell {st.cell}"), namespace)  # noqa: S102 - the point
            except BaseException as e:  # a failing statement does not stop the rest
                if st.cell not in failed_cells:
                    failed_cells.add(st.cell)
                    errors.append({"cell": st.cell, **describe_error(e)})
    else:
        for i, code in enumerate(cells):
            try:
                exec(compile(code, f"{path.name}, cell {i + 1}", "exec"), namespace)  # noqa: S102 - the point
            except BaseException as e:  # a failing cell does not stop the rest
                errors.append({"cell": i + 1, **describe_error(e)})
    channel.emit("ready", cells=len(cells), cell_errors=errors[:50], mode=name, dropped=dropped,
                 prepared_models=prepared, seconds=round(time.monotonic() - started, 3))
    questions = None
    for item in job["items"]:
        channel.emit("start", item=item["id"])
        begun = time.monotonic()
        if item.get("reference_helpers") and job.get("reply_fd") is not None:
            from grader.worker.helpers import Questions, ReferenceHelpers

            questions = questions or Questions(channel.emit, job["reply_fd"])
            with ReferenceHelpers(namespace, item["reference_helpers"], questions, factory):
                run_item(namespace, item, factory, job["case_seconds"], channel.emit)
        else:
            run_item(namespace, item, factory, job["case_seconds"], channel.emit)
        channel.emit("end", item=item["id"], seconds=round(time.monotonic() - begun, 3))


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
        channel.emit("crash", detail=f"the submission could not be read as a {Path(job['submission']).suffix} file: "
                                     f"{type(e).__name__}: {str(e)[:200]}")
        return
    workdir, shims = course_env.build(scratch, job["weights_pt"], job["notebook_data"], "\n".join(cells))
    os.chdir(workdir)
    sys.path.insert(0, str(shims))
    sys.argv = [job["submission"]]
    started = time.monotonic()
    notebook = job["submission"].endswith(".ipynb")
    mode = job.get("notebook_mode", "lean")
    if notebook and mode == "kernel":
        from grader.worker.kernel import run_notebook

        run_notebook(job, cells, channel, workdir, shims)
    else:  # in this (warm) process: every cell ("fast"), or only what grading needs ("lean")
        run_module(job, cells, channel, as_main=notebook, lean=mode == "lean")
    import resource

    channel.emit("done", seconds=round(time.monotonic() - started, 3),
                 max_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # Linux: KiB


if __name__ == "__main__":
    main()
