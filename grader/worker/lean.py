"""Lean execution: run only the statements grading needs, not a submission's demo code.

A student's notebook spends most of its time on demonstrations: plots, the course's tests, bare
expressions that display a result, loops that print. Grading needs far less: the imports, every
function and class, and the statements that build what those functions read (a global `device`,
`tokenizer`, the hooked `model`) or what an object item is (`v_L`, `out_by_component_in_unbalanced_dir`
and what they are computed from). This module slices a submission's top-level statements down to
that, by names: a statement is kept when it writes a needed name, or calls a method on one
(`model.load_state_dict(...)`), or passes one to a function the student defined (`add_hooks(model)`),
or is global set-up (`t.set_grad_enabled(False)`, `sys.path.append`); the names a kept statement
reads are needed in turn, until nothing changes. `if MAIN:` blocks are read as their bodies when
the submission runs as `__main__`, and skipped otherwise.

The slice can only drop work, never add any; when an item does not pass in a lean run the engine
grades it again with every cell run (grader.engine), so a statement wrongly dropped costs time,
not a verdict.
"""
from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass

# calls on imported modules that change global state a function may depend on
SETUP_CALLS = {"set_grad_enabled", "manual_seed", "seed", "filterwarnings", "simplefilter", "set_default_dtype",
               "set_default_device", "set_printoptions", "use_deterministic_algorithms", "set_num_threads",
               "append", "insert", "extend", "chdir", "makedirs", "mkdir", "setdefault", "update", "putenv"}
SETUP_ROOTS = {"sys", "os"}


@dataclass(frozen=True)
class Statement:
    cell: int  # 1-based cell number, for error messages
    node: ast.stmt
    source: str = ""  # the cell's text, for `text`

    @property
    def key(self) -> str:
        """Names this statement the same way in every run of the same file (lean or not)."""
        return f"{self.cell}:{self.node.lineno}:{self.node.col_offset}"

    @property
    def where(self) -> str:
        return f"cell {self.cell}, line {self.node.lineno}"

    def code(self, filename: str):
        return compile(ast.Module(body=[self.node], type_ignores=[]), filename, "exec")

    def text(self) -> str:
        """Its source on its own (a statement of an `if MAIN:` body dedented), to run in a kernel."""
        segment = ast.get_source_segment(self.source, self.node, padded=True) if self.source else None
        if segment is not None:
            segment = textwrap.dedent(segment)
            try:
                compile(segment, "<statement>", "exec")
                return segment
            except SyntaxError:
                pass
        return ast.unparse(self.node)


def is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = ast.unparse(node.test)
    return test.strip() in ("MAIN", "__name__ == '__main__'", '__name__ == "__main__"')


def top_level(cells: list[str], as_main: bool) -> tuple[list[Statement], list[dict]]:
    """Every statement the submission runs at top level, `if MAIN:` bodies flattened (as_main) or
    dropped; cells that do not parse are reported as errors, like a full run would."""
    out: list[Statement] = []
    errors: list[dict] = []

    def add(cell: int, nodes: list[ast.stmt], code: str) -> None:
        for node in nodes:
            if is_main_guard(node):
                add(cell, node.body if as_main else node.orelse, code)
            else:
                out.append(Statement(cell, node, code))

    for i, code in enumerate(cells, start=1):
        try:
            add(i, ast.parse(code).body, code)
        except SyntaxError as e:
            errors.append({"cell": i, "kind": "exception", "type": "SyntaxError", "message": str(e)[:500], "traceback": ""})
    return out, errors


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


class _Facts(ast.NodeVisitor):
    """What one top-level statement writes, reads and calls when it runs. A function or class body
    is a scope of its own: what it reads from the module (its free names) counts as read, since it
    reads them when called; its locals do not; names it declares `global` are `global_writes`."""

    def __init__(self) -> None:
        self.writes: set[str] = set()
        self.modifies: set[str] = set()  # x.attr = ..., x[i] = ..., del x[i]
        self.reads: set[str] = set()
        self.calls: list[ast.Call] = []  # calls that are whole statements (made for their effects)
        self.global_writes: set[str] = set()
        self.declared_global: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.reads.add(node.id)
        else:
            self.writes.add(node.id)

    def _store_target(self, node: ast.Attribute | ast.Subscript) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            root = _root(node)
            if root:
                self.modifies.add(root)
        self.generic_visit(node)

    visit_Attribute = _store_target
    visit_Subscript = _store_target

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Call):  # a call made for its effect: `model.eval()`, `print(x)`
            self.calls.append(node.value)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self.declared_global.update(node.names)

    visit_Nonlocal = visit_Global

    def _inner(self, body: list[ast.AST], params: set[str], runs_now: bool) -> None:
        inner = _Facts()
        for child in body:
            inner.visit(child)
        local = (inner.writes | params) - inner.declared_global
        self.reads |= inner.reads - local
        self.global_writes |= (inner.writes & inner.declared_global) | inner.global_writes
        self.modifies |= inner.modifies - local
        if runs_now:  # a comprehension runs where it stands; its calls are this statement's
            self.calls += inner.calls
            self.writes |= inner.writes - local

    def _function(self, node) -> None:
        if not isinstance(node, ast.Lambda):
            self.writes.add(node.name)
            for d in node.decorator_list:
                self.visit(d)
        for d in [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]:
            self.visit(d)
        a = node.args
        params = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, [a.vararg, a.kwarg])]}
        self._inner(node.body if isinstance(node.body, list) else [node.body], params, runs_now=False)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.writes.add(node.name)
        for d in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(d)
        self._inner(node.body, set(), runs_now=False)

    def _comprehension(self, node) -> None:
        parts: list[ast.AST] = []
        for gen in node.generators:
            parts += [gen.target, gen.iter, *gen.ifs]
        parts += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        targets = {n.id for gen in node.generators for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
        self._inner(parts, targets, runs_now=True)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension


def _facts(node: ast.stmt) -> _Facts:
    f = _Facts()
    f.visit(node)
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            f.writes.add((alias.asname or alias.name).split(".")[0])
    return f


def plan(statements: list[Statement], needed_objects: list[str], item_functions: set[str]) -> list[bool]:
    """Which statements to run (a flag per statement)."""
    facts = [_facts(s.node) for s in statements]
    imported = {n for s, f in zip(statements, facts) if isinstance(s.node, (ast.Import, ast.ImportFrom)) for n in f.writes}
    defined = {s.node.name for s in statements if isinstance(s.node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    globals_writers = {s.node.name for s, f in zip(statements, facts)
                       if isinstance(s.node, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.global_writes}
    needed = set(needed_objects)
    keep = [False] * len(statements)
    changed = True
    while changed:
        changed = False
        for i, (s, f) in enumerate(zip(statements, facts)):
            if keep[i] or not _wanted(s.node, f, needed, imported, defined, globals_writers, item_functions):
                continue
            keep[i] = True
            changed = True
            needed |= f.reads - imported
    return keep


def _wanted(node, f: _Facts, needed, imported, defined, globals_writers, item_functions) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Global)):
        return True
    if (f.writes | f.modifies) & needed:
        return True
    for call in f.calls:
        root = _root(call.func)
        name = call.func.attr if isinstance(call.func, ast.Attribute) else None
        if root in needed and isinstance(call.func, ast.Attribute):
            return True  # model.load_state_dict(...), data.to(...)
        if root in imported and (root in SETUP_ROOTS or name in SETUP_CALLS):
            return True  # t.set_grad_enabled(False), sys.path.append(...)
        if isinstance(call.func, ast.Name) and call.func.id in globals_writers:
            return True  # a function that assigns globals
        if (isinstance(call.func, ast.Name) and call.func.id in defined and call.func.id not in item_functions
                and any(isinstance(a, ast.Name) and a.id in needed for a in [*call.args, *(k.value for k in call.keywords)])):
            return True  # add_hooks(model): a helper of the student's that may change what it is given
    return False


def lean_statements(cells: list[str], as_main: bool, needed_objects: list[str],
                    item_functions: set[str]) -> tuple[list[Statement], int, list[dict]]:
    """The statements to run, how many were dropped, and the parse errors."""
    statements, errors = top_level(cells, as_main)
    keep = plan(statements, needed_objects, item_functions)
    kept = [s for s, k in zip(statements, keep) if k]
    return kept, len(statements) - len(kept), errors
