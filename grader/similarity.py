"""Copied work: how much of the code each student wrote two students share (trusted side).

Evidence for a person to weigh, never a verdict or a penalty: nothing here changes a score.

Each submission's own code is its items' code (grader.starters.item_code) less what a starter gives
unchanged. An item's code becomes a token stream of its syntax tree (formatting, comments and
docstrings gone; every name the code binds or reads renamed by first appearance, so a renamed copy
is the same stream; attributes and calls of libraries kept) and then a set of fingerprints: hashes
of every run of K tokens. Items are compared with the same item of the other submission, so
reordered cells change nothing.

Correct solutions of short items look alike, so a fingerprint counts by how rare it is: one in the
reference's own solutions or in a base file (the course's published solutions: `--similar-base`,
as MOSS's base files) counts nothing, nor one that more than a fifth of the class (and more than
COMMON_AT submissions) holds; one shared by d submissions counts 1/(d - 1). An item is shared when both students' code is mostly
shared (SHARE) and the shared fingerprints weigh enough to be evidence (EVIDENCE); a pair is
reported (flagged) when at least ITEMS items are shared, or its shared weight in all is large.
"""
from __future__ import annotations

import ast
import hashlib
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from grader import starters as starters_mod

K = 12  # tokens per fingerprint: about one short line of code
SHARE = 0.6  # of each student's weighted fingerprints of an item, shared
EVIDENCE = 6.0  # weighted fingerprints an item's sharing must reach to count (a rare line or two is not copying)
ITEMS = 2  # shared items that flag a pair
STRONG = 40.0  # or shared weight in all (one long item copied whole)
COMMON_AT, COMMON_SHARE = 5, 0.2  # a fingerprint more than this many (and this share of the class) hold is common
CONTEXTS = (ast.Load, ast.Store, ast.Del)


@dataclass(frozen=True)
class ItemCode:
    item: str
    text: str  # the item's code as the grader reads it (ast.unparse: formatting normalised)
    prints: frozenset[int]


@dataclass(frozen=True)
class SharedItem:
    item: str
    share_a: float  # of a's weighted fingerprints of the item, shared with b
    share_b: float
    evidence: float  # the shared fingerprints' weight
    text_a: str
    text_b: str


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    items: tuple[SharedItem, ...]  # the items shared, most evidence first
    evidence: float  # shared weight, all items
    share_a: float  # of a's own code (weighted), shared with b
    share_b: float
    flagged: bool


def tokens(nodes: list[ast.AST]) -> list[str]:
    """The code as a token stream: node kinds, names by first appearance, attributes, constants."""
    names: dict[str, str] = {}
    out: list[str] = []

    def name(n: str) -> str:
        return names.setdefault(n, f"${len(names)}")

    def visit(node) -> None:
        if isinstance(node, list):
            for n in node:
                visit(n)
            return
        if not isinstance(node, ast.AST) or isinstance(node, CONTEXTS):
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = starters_mod._body(node)  # its docstring does not count
            out.append("def")
            visit(node.args)
            visit(body)
            return
        out.append(type(node).__name__)
        if isinstance(node, ast.Name):
            out.append(name(node.id))
        elif isinstance(node, ast.arg):
            out.append(name(node.arg))
        elif isinstance(node, ast.Attribute):
            out.append("." + node.attr)
        elif isinstance(node, ast.Constant):
            value = node.value
            out.append(" ".join(value.split()) if isinstance(value, str) else repr(value))
        elif isinstance(node, ast.keyword):
            out.append(f"{node.arg}=")
        for field_name, value in ast.iter_fields(node):
            if field_name not in ("ctx", "type_comment", "id", "arg", "attr", "value") or isinstance(value, ast.AST) \
                    or isinstance(value, list):
                visit(value)

    visit(nodes)
    return out


def fingerprints(stream: list[str]) -> frozenset[int]:
    grams = [stream[i:i + K] for i in range(max(1, len(stream) - K + 1))] if stream else []
    return frozenset(int.from_bytes(hashlib.blake2b("\x1f".join(g).encode(), digest_size=8).digest(), "big")
                     for g in grams)


def prints_of(nodes: list[ast.AST]) -> frozenset[int]:
    """An item's fingerprints, statement by statement, names numbered within each statement: which
    cell a statement sits in, and what stands next to it, changes nothing."""
    return frozenset().union(*(fingerprints(tokens([node])) for node in nodes))


def own_code(source: bytes | str, suffix: str, starters: tuple) -> dict[str, ItemCode]:
    """A submission's items as the student wrote them (a starter's unchanged items left out)."""
    cells = starters_mod.cells_of(source, suffix)
    if sum(len(c) for c in cells) > starters_mod.MAX_CODE:
        return {}
    code = starters_mod.item_code(cells)
    given = starters_mod.unchanged(starters_mod.prints_of_code(code), starters) if starters else {}
    out = {}
    for item, nodes in code.items():
        if item in given:
            continue
        try:
            text = "\n".join(ast.unparse(n) for n in nodes)
        except (ValueError, RecursionError):
            text = ""
        out[item] = ItemCode(item, text, prints_of(nodes))
    return out


def background() -> frozenset[int]:
    """How the reference solves the items: fingerprints that count nothing."""
    path = Path(__file__).resolve().parent.parent / "reference" / "solutions.py"  # read, never imported here
    if not path.is_file():
        return frozenset()
    return frozenset().union(*(prints_of(ast.parse(cell).body) for cell in starters_mod.cells_of(path.read_text(), ".py")))


def compare(subs: dict[str, dict[str, ItemCode]], common: frozenset[int] | None = None) -> list[Pair]:
    """Every pair of submissions that shares an item, most evidence first (`subs`: path -> own code)."""
    common = background() if common is None else common
    seen: dict[str, Counter] = defaultdict(Counter)  # item -> fingerprint -> submissions that have it
    for code in subs.values():
        for item, c in code.items():
            seen[item].update(c.prints)
    everyone = max(COMMON_AT, COMMON_SHARE * len(subs))  # held by more: how the class solves it, counts nothing
    weights = {item: {h: 0.0 if h in common or n > everyone else 1.0 / max(1, n - 1) for h, n in counts.items()}
               for item, counts in seen.items()}
    totals = {p: {i: sum(weights[i][h] for h in c.prints) for i, c in code.items()} for p, code in subs.items()}
    holders: dict[tuple[str, int], list[str]] = defaultdict(list)
    for p in sorted(subs):
        for item, c in subs[p].items():
            for h in c.prints:
                if weights[item][h] and seen[item][h] > 1:
                    holders[(item, h)].append(p)
    shared: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (item, h), held in holders.items():
        for a, b in itertools.combinations(held, 2):
            shared[(a, b)][item] += weights[item][h]
    pairs = []
    for (a, b), by_item in shared.items():
        items = []
        for item, w in sorted(by_item.items()):
            share_a = w / totals[a][item] if totals[a][item] else 0.0
            share_b = w / totals[b][item] if totals[b][item] else 0.0
            if w >= EVIDENCE and min(share_a, share_b) >= SHARE:
                items.append(SharedItem(item, round(share_a, 3), round(share_b, 3), round(w, 2),
                                        subs[a][item].text, subs[b][item].text))
        if not items:
            continue
        own_a, own_b = sum(totals[a].values()), sum(totals[b].values())
        weight = sum(s.evidence for s in items)
        pairs.append(Pair(a, b, tuple(sorted(items, key=lambda s: -s.evidence)), round(sum(by_item.values()), 2),
                          round(weight / own_a, 3) if own_a else 0.0, round(weight / own_b, 3) if own_b else 0.0,
                          len(items) >= ITEMS or weight >= STRONG))
    return sorted(pairs, key=lambda p: (-p.flagged, -sum(s.evidence for s in p.items), p.a, p.b))


def base_code(files: list[str | Path]) -> frozenset[int]:
    """Fingerprints of code the class may share without copying (as MOSS's base files): the
    course's published solutions, a worked example given in class; with the reference's own. In
    any item of a base file, they count nothing in every item (a one-cell notebook mixes items)."""
    common = set(background())
    for f in map(Path, files):
        for cell in starters_mod.cells_of(f.read_bytes(), f.suffix):  # every statement of it, an item's or not
            try:
                common |= prints_of(ast.parse(cell).body)
            except (SyntaxError, ValueError, RecursionError):
                continue
    return frozenset(common)


def of_class(paths: list[str], starters: tuple, bases: list[str | Path] = ()) -> list[Pair] | None:
    """The class's pairs, read from the submissions' files; None (not computed, which is not
    "nothing shared") where fewer than two of them can still be read (reports merged elsewhere).
    A file is read without following a link, and one too large to fingerprint is left out."""
    from grader.attempts import read_submission

    subs = {}
    for p in paths:
        path = Path(p)
        try:
            if path.is_file() and path.stat().st_size <= starters_mod.MAX_FILE:
                subs[p] = own_code(read_submission(path), path.suffix, starters)
        except (OSError, ValueError, RecursionError, MemoryError):
            continue
    return compare(subs, base_code(list(bases))) if len(subs) >= 2 else None


def pair_json(p: Pair) -> dict:
    return {"a": p.a, "b": p.b, "flagged": p.flagged, "evidence": p.evidence, "share_a": p.share_a,
            "share_b": p.share_b, "items": [{"id": s.item, "share_a": s.share_a, "share_b": s.share_b,
                                             "evidence": s.evidence, "code_a": s.text_a, "code_b": s.text_b}
                                            for s in p.items]}
