"""What the starter gave the student, so that only the student's own code earns marks (trusted side).

A starter is the file students begin from: our template (stubs only), the course's exercises
notebook (some functions given complete, one object cell pre-filled, stubs elsewhere), or an
instructor's own version (`--starter FILE`). It is known here as fingerprints, one per item: a hash
of the item's code with its syntax tree normalised (formatting, comments and docstrings do not
count), and whether the starter gives that item complete (`provides`) or leaves a stub.

An item of a submission whose code is its starter's, unchanged, is not the student's work: it is
`provided` where the starter gives it complete (worth no points by default, and out of the
maximum), and `not_attempted` where the starter has a stub (0 points of its maximum).

An item's code is the last top-level statement that binds a function item's name (its `def`), and
for an object item the statements of the cell that binds its names last, in order. The
submission's text is parsed here, never run; a file that does not parse has no fingerprints (its
items are then judged as they are).
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from grader.catalogue import BY_ID, EXERCISES, Exercise
from grader.results import ExerciseResult
from grader.worker.source import MAGIC_LINE, neutralise, notebook_cells, py_cells

HERE = Path(__file__).resolve().parent
BUILT_IN = HERE / "starter_prints"  # fingerprints of published starters (JSON; made by `python -m grader.starters`)
# our template's are kept there too, so that an installed grader (a wheel, Gradescope's zip), which
# has no student_template/, knows it (tests/test_starters.py holds them to the template)
TEMPLATE, TEMPLATE_NAME = HERE.parent / "student_template" / "exercises.py", "bracket-grader template"
MAX_FILE = 64 << 20  # a notebook's file, outputs included: larger ones are judged without fingerprints
MAX_CODE = 1 << 20  # its code (a starter's is ~100 KB): parsing costs the trusted process ~500x this in memory


@dataclass(frozen=True)
class Print:
    """One item's code as a starter (or a submission) has it."""

    digest: str
    provides: bool  # the starter gives it complete (else it is a stub to fill in)


@dataclass(frozen=True)
class Starter:
    name: str
    items: dict[str, Print]


def cells_of(source: bytes | str, suffix: str) -> list[str]:
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    try:
        cells = notebook_cells(text) if suffix == ".ipynb" else py_cells(text)
    except (ValueError, TypeError, AttributeError, RecursionError):  # not a notebook after all
        return []
    return [neutralise(c) for c in cells]


def _body(node: ast.AST) -> list[ast.stmt]:
    body = list(getattr(node, "body", []))
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring: what the exercise says, not the code
    return body


SKIPPED_FIELDS = ("type_params", "type_comment", "kind")  # added by later Pythons, or never written by students


def _canonical(node) -> str:
    """A syntax tree as text that every supported Python gives alike (ast.dump does not: 3.13 leaves
    out empty fields, 3.12 added type parameters): node types, then fields that hold something."""
    if isinstance(node, ast.AST):
        parts = [f"{name}={_canonical(value)}" for name, value in ast.iter_fields(node)
                 if name not in SKIPPED_FIELDS and value is not None and value != []]
        return f"{type(node).__name__}({','.join(parts)})"
    if isinstance(node, list):
        return "[" + ",".join(_canonical(v) for v in node) + "]"
    return f"{type(node).__name__}:{node!r}"


def _digest(nodes: list[ast.AST]) -> str:
    def text(n: ast.AST) -> str:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):  # its docstring does not count
            n = ast.FunctionDef(n.name, n.args, _body(n), n.decorator_list, n.returns, None)
        return _canonical(n)

    return hashlib.sha256("\n".join(text(n) for n in nodes).encode()).hexdigest()[:24]


COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.With, ast.AsyncWith)


def _bound(node: ast.stmt, touched: bool = False) -> set[str]:
    """Names a top-level statement binds, inside its blocks too (`if MAIN:`, `for`, `try`, `with`;
    not inside a function or class); with `touched`, also the names whose elements or attributes
    it sets (`x[0] = ...`)."""
    names = _bound_here(node, touched)
    if isinstance(node, COMPOUND):
        for block in ("body", "orelse", "finalbody"):
            for inner in getattr(node, block, []):
                names |= _bound(inner, touched)
        for handler in getattr(node, "handlers", []):
            for inner in handler.body:
                names |= _bound(inner, touched)
    return names


def _bound_here(node: ast.stmt, touched: bool = False) -> set[str]:
    """Names the statement itself binds (definitions, assignments, imports, loop targets)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    targets = node.targets if isinstance(node, ast.Assign) else \
        [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)) else \
        [i.optional_vars for i in node.items if i.optional_vars] if isinstance(node, (ast.With, ast.AsyncWith)) else []
    if touched:
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return {n.id for t in targets for n in ([t] + (list(t.elts) if isinstance(t, (ast.Tuple, ast.List)) else []))
            if isinstance(n, ast.Name)}


def _is_stub(ex: Exercise, nodes: list[ast.stmt]) -> bool:
    """A function whose body only raises NotImplementedError, passes or returns nothing; an object
    set to a literal (None, [], a placeholder list)."""
    if ex.kind == "function":
        body = _body(nodes[-1]) if nodes else []
        return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
                   or (isinstance(s, ast.Return) and (s.value is None or isinstance(s.value, ast.Constant)))
                   or (isinstance(s, ast.Raise) and "NotImplementedError" in _canonical(s)) for s in body)
    names = set(ex.names or (ex.id,))
    setting = [n for n in nodes if _bound(n, touched=True) & names]
    if not all(isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)) for n in setting):
        return False  # set inside a block or a loop: computed, not a placeholder
    try:
        for n in setting:
            ast.literal_eval(n.value)
        return True
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return False


# CPython 3.11 keeps one depth counter for building syntax trees, shared by every thread, and a
# batch grades submissions on several threads: two parses at once can fail with "AST constructor
# recursion depth mismatch" (python/cpython#106905). Parses here take turns, and a parse that
# fails so (another thread's, outside this module) is tried once more.
_PARSING = threading.Lock()


def parse_cell(cell: str) -> ast.Module:
    with _PARSING:
        try:
            return ast.parse(cell)
        except SystemError:
            return ast.parse(cell)


def item_code(cells: list[str]) -> dict[str, list[ast.stmt]]:
    """Each item's code in a submission (see the module's docstring); items it never binds are absent."""
    trees = []
    for cell in cells:
        try:
            trees.append(parse_cell(cell))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            trees.append(ast.Module(body=[], type_ignores=[]))
    last: dict[str, tuple[int, ast.stmt]] = {}  # name -> (cell, the last statement binding it)
    for c, tree in enumerate(trees):
        for node in tree.body:
            for name in _bound(node):
                last[name] = (c, node)
    out: dict[str, list[ast.stmt]] = {}
    for ex in EXERCISES:
        names = ex.names or (ex.id,)
        if not all(n in last for n in names):
            continue
        if ex.kind == "function":
            out[ex.id] = [last[ex.id][1]]
            continue
        # the cell that sets them last: every statement of it that names them; later, any that
        # changes them in place (`adversarial_examples.append(...)`, `v_L[0] = ...`)
        cell = max(last[n][0] for n in names)
        out[ex.id] = [node for node in trees[cell].body if _mentioned(node) & set(names)] + \
            [node for tree in trees[cell + 1:] for node in tree.body if _changed(node) & set(names)]
    return out


def _mentioned(node: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _changed(node: ast.stmt) -> set[str]:
    """Names a statement sets or calls a method of (`x.append(...)`, in a loop too)."""
    names = _bound(node, touched=True)
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
        if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
            names.add(call.func.value.id)
    return names


def fingerprints(source: bytes | str, suffix: str) -> dict[str, Print]:
    """Each item's fingerprint in a submission; {} for one too large to parse here."""
    if len(source) > MAX_FILE:
        return {}
    cells = cells_of(source, suffix)
    if sum(len(c) for c in cells) > MAX_CODE:
        return {}
    return prints_of_code(item_code(cells))


def prints_of_code(code: dict[str, list[ast.stmt]]) -> dict[str, Print]:
    """Each item's fingerprint from its code (`item_code`)."""
    return {i: Print(_digest(nodes), not _is_stub(BY_ID[i], nodes)) for i, nodes in code.items()}


def starter_from_file(path: str | Path, name: str | None = None) -> Starter:
    path = Path(path)
    return Starter(name or path.name, fingerprints(path.read_bytes(), path.suffix))


def starter_from_json(path: Path) -> Starter:
    data = json.loads(path.read_text())
    return Starter(data["name"], {i: Print(p["digest"], bool(p["provides"])) for i, p in data["items"].items()})


def starter_json(starter: Starter) -> dict:
    return {"name": starter.name, "items": {i: {"digest": p.digest, "provides": p.provides}
                                            for i, p in starter.items.items()}}


def built_in() -> tuple[Starter, ...]:
    """Our template, then the published starters: the fingerprints kept in grader/starter_prints/."""
    kept = [starter_from_json(p) for p in sorted(BUILT_IN.glob("*.json"))]
    return tuple(sorted(kept, key=lambda s: s.name != TEMPLATE_NAME))


def unchanged(submission: dict[str, Print], starters: tuple[Starter, ...]) -> dict[str, tuple[str, Print]]:
    """The items whose code is a starter's, unchanged: that starter's name and what it gives."""
    out = {}
    for item, mine in submission.items():
        for starter in starters:
            theirs = starter.items.get(item)
            if theirs is not None and theirs.digest == mine.digest:
                out[item] = (starter.name, theirs)
                break
    return out


def unwritten(results: list[ExerciseResult], starter_code: dict[str, tuple[str, Print]]) -> list[ExerciseResult]:
    """Results with each starter's stub that scored nothing settled as `not_attempted`, before any
    second look (grader.second_looks looks again at failures, never at these); code the starter
    gives complete keeps its verdict until `own_work`, since other items' second looks ask
    whether it passed."""
    return [ExerciseResult(r.id, "not_attempted", 0.0, r.max_score, starter=starter_code[r.id][0])
            if r.id in starter_code and not starter_code[r.id][1].provides and r.score == 0
            and r.status != "not_autograded" else r for r in results]


def beyond_a_second_look(exercises: list[Exercise], source: str, starter_code: dict[str, tuple[str, Print]],
                         provided_points: float, suffix: str = ".py") -> set[str]:
    """Items no second look can make the student's work, so none is spent on them: code a starter
    gives complete, unchanged, where that earns nothing; and objects one of whose names no
    statement of the submission, skipped or failed, could set (`settable_names`; where the code
    cannot be read so, one its text never mentions at all)."""
    settled = {i for i, (_, p) in starter_code.items() if p.provides and provided_points == 0}
    try:
        settable = settable_names(source, suffix)
    except (SystemError, MemoryError):  # a parse that failed twice (see parse_cell): the text rule
        settable = None
    if settable is None:
        settable = set(WORD.findall(source))
    settled |= {e.id for e in exercises if e.kind == "object" and not set(e.names or (e.id,)) <= settable}
    return settled


WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def settable_names(source: str, suffix: str) -> set[str] | None:
    """Every global name some statement of the submission could set, wherever it stands (in a
    block, a function with `global`, a comprehension, a walrus, an import, an `except ... as`, a
    `match` capture, an attribute of the module, a keyword argument or a parameter), with every
    word of its strings (`globals()["v_L"]`, `exec("v_L = ...")`) and of its shell and magic
    lines (`%run` in a kernel). A name only read (the course's cells that use an object the
    student is left to write) is not among them. None where that cannot be told: a cell that
    does not parse, a `from ... import *`, code too large to parse here."""
    if len(source) > MAX_FILE:
        return None
    try:
        cells = notebook_cells(source) if suffix == ".ipynb" else py_cells(source)
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None
    if sum(len(c) for c in cells) > MAX_CODE:
        return None
    names: set[str] = set()
    for cell in cells:
        names |= {w for line in cell.splitlines() if MAGIC_LINE.match(line) for w in WORD.findall(line)}
        try:
            tree = parse_cell(neutralise(cell))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
                names.add(node.attr)  # `sys.modules[__name__].v_L = ...`
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                if any(a.name == "*" for a in node.names):
                    return None
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                names |= set(node.names)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.add(node.name)
            elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
                names.add(node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                names.add(node.rest)
            elif isinstance(node, (ast.keyword, ast.arg)) and node.arg:
                names.add(node.arg)  # `globals().update(v_L=...)`, `def f(v_L): globals().update(locals())`
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names |= set(WORD.findall(node.value))
    return names


def own_work(results: list[ExerciseResult], starter_code: dict[str, tuple[str, Print]],
             provided_points: float = 0.0) -> list[ExerciseResult]:
    """Results with the starter's unchanged items marked: a stub `not_attempted` (0 of its points),
    code given complete `provided` (worth `provided_points`, out of the maximum when that is 0; the
    graded fraction of it where it has value)."""
    out = []
    for r in results:
        if r.id not in starter_code or r.status == "not_autograded":
            out.append(r)
            continue
        name, p = starter_code[r.id]
        if not p.provides and r.score > 0:  # a stub cannot score: what scored was written elsewhere
            out.append(r)
        elif not p.provides:
            out.append(ExerciseResult(r.id, "not_attempted", 0.0, r.max_score, starter=name))
        else:
            share = r.score / r.max_score if r.max_score else 0.0
            out.append(replace(r, status="provided", score=round(provided_points * share, 4),
                               max_score=provided_points, starter=name))
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m grader.starters FILE NAME`: print a starter's fingerprints as JSON (to keep one in
    grader/starter_prints/, where every grading run recognises it)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(main.__doc__, file=sys.stderr)
        return 2
    print(json.dumps(starter_json(starter_from_file(args[0], args[1])), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
