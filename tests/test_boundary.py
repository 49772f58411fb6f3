"""The worker boundary, read from the code: what worker modules import, where message kinds are
spelled, and that the worker's modules import each other in no circle."""
from __future__ import annotations

import ast
from pathlib import Path

from grader.isolation import PROJECT_ROOT, worker_files
from grader.protocol import KINDS

WORKER = PROJECT_ROOT / "grader" / "worker"
# of this project, what worker code may import: the shared protocol and input builder, the worker
# package itself, and the course setting (grader/__init__ is the package, and imports nothing)
SHARED = {"grader", "grader.protocol", "grader.inputs", "reference", "reference.brackets", "reference.model",
          "reference.setting", "reference.paths"}


def _is_module(name: str) -> bool:
    path = PROJECT_ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function (`from a import b` counts a.b
    where b is a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}")}
    return out


def project_imports(path: Path) -> set[str]:
    return {m for m in imports(path) if m.split(".")[0] in ("grader", "reference")}


def test_worker_code_imports_nothing_of_the_trusted_side():
    wrong = {f"{p.name}: {m}" for p in WORKER.glob("*.py") for m in project_imports(p)
             if m not in SHARED and not m.startswith("grader.worker")}
    assert not wrong, sorted(wrong)


def test_every_module_a_worker_imports_is_in_its_filesystem():
    """The worker's filesystem is an allow-list (grader.isolation.WORKER_FILES): a module worker
    code imports that is not on it would fail only inside the sandbox."""
    visible = {str(p.relative_to(PROJECT_ROOT).with_suffix("")).replace("/", ".").removesuffix(".__init__")
               for p in worker_files() if p.suffix == ".py"}
    needed = {m for p in WORKER.glob("*.py") for m in project_imports(p)}
    assert needed <= visible, sorted(needed - visible)


def test_worker_modules_import_each_other_in_no_circle():
    graph = {f"grader.worker.{p.stem}": {m for m in project_imports(p) if m.startswith("grader.worker.")}
             for p in WORKER.glob("*.py") if p.stem != "__init__"}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    circles = sorted(m for m in graph if reaches(m, m, {m}))
    assert not circles, circles


def _kind_literals(path: Path) -> list[str]:
    """Message kinds spelled as strings: sent (emit / dump_message) or compared with a message's kind."""
    found = []

    def is_kind(node) -> bool:
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value == "kind":
            return True
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == "kind")

    def literals(node) -> list[str]:
        values = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
        return [v.value for v in values if isinstance(v, ast.Constant) and v.value in KINDS]

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare) and (is_kind(node.left) or any(is_kind(c) for c in node.comparators)):
            for side in [node.left, *node.comparators]:
                found += [f"{path.name}:{node.lineno}: {v!r}" for v in literals(side)]
        if isinstance(node, ast.Call) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("emit", "dump_message"):
                found += [f"{path.name}:{node.lineno}: {v!r}" for v in literals(node.args[0])]
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "kind":
                    found += [f"{path.name}:{node.lineno}: {v!r}" for v in literals(value)]
    return found


def test_message_kinds_are_spelled_only_in_the_protocol():
    files = [p for p in (PROJECT_ROOT / "grader").rglob("*.py") if p.name != "protocol.py"]
    bare = [hit for p in files for hit in _kind_literals(p)]
    assert not bare, bare
