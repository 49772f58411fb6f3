"""Worker entry point: `python -m grader.worker.main` with the job as JSON on stdin.

Runs in the sandboxed child the trusted process started. It builds the course environment in its
scratch folder, executes the submission (a module here, cell by cell; a notebook in a real Jupyter
kernel), then calls each item and writes one JSON line per result to the message pipe. It never
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


def run_module(job: dict, cells: list[str], channel: Channel, as_main: bool = False) -> None:
    import types

    from grader.inputs import InputFactory
    from grader.worker.harvest import describe_error, run_item

    factory = InputFactory(job["weights"], job["data"], job["device"])
    path = Path(job["submission"])
    object_names = [n for item in job["items"] for n in item["names"]]
    name = "__main__" if as_main or wants_main("\n".join(cells), object_names) else "submission"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    namespace = module.__dict__
    errors = []
    for i, code in enumerate(cells):
        try:
            exec(compile(code, f"{path.name}, cell {i + 1}", "exec"), namespace)  # noqa: S102 - the point
        except BaseException as e:  # a failing cell does not stop the rest
            errors.append({"cell": i + 1, **describe_error(e)})
    channel.emit("ready", cells=len(cells), cell_errors=errors[:50], mode=name)
    for item in job["items"]:
        channel.emit("start", item=item["id"])
        run_item(namespace, item, factory, job["case_seconds"], channel.emit)
        channel.emit("end", item=item["id"])


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
    if job["submission"].endswith(".ipynb") and job.get("notebook_mode") == "fast":
        run_module(job, cells, channel, as_main=True)  # the notebook's cells, in this (warm) process
    elif job["submission"].endswith(".ipynb"):
        from grader.worker.kernel import run_notebook

        run_notebook(job, cells, channel, workdir, shims)
    else:
        run_module(job, cells, channel)
    channel.emit("done", seconds=round(time.monotonic() - started, 3))


if __name__ == "__main__":
    main()
