"""Copied work (grader.similarity): on the corpus, whose submissions are written independently of
one another but for the snippets it reuses on purpose, no pair is flagged; each planted copy of a
student's distinctive work is, with the items copied. Then the report as an instructor gets it:
the JSON report and the class page (no worker: `--from` a report whose files are there)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from grader import similarity, starters
from grader.cli import main
from tests.corpus.field import ALL
from tests.corpus.submissions import BASES, build, notebook_of, source_of

VICTIM = "14_written_differently.ipynb"  # einsum, hook-name lists, float64, attention from q and k: five items
WRITTEN = ("get_WOV", "LN_hook_names", "get_post_final_ln_dir", "cos_sim_with_MLP_weights", "get_attn_probs")
HALF = ("LN_hook_names", "cos_sim_with_MLP_weights", "get_attn_probs")


class Rename(ast.NodeTransformer):
    """Every argument and local name of each function renamed, as a student hiding a copy would."""

    def visit_FunctionDef(self, node):
        local = {a.arg for a in node.args.args} | {n.id for n in ast.walk(node)
                                                   if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        new = {name: f"my_{i}_{name[::-1]}" for i, name in enumerate(sorted(local))}
        for n in ast.walk(node):
            if isinstance(n, ast.arg) and n.arg in new:
                n.arg = new[n.arg]
            elif isinstance(n, ast.Name) and n.id in new:
                n.id = new[n.id]
        return node


def cells(text: str) -> list[str]:
    out, current = [], []
    for line in text.splitlines():
        if line.startswith("# %%") and current:
            out.append("\n".join(current))
            current = []
        current.append(line)
    return out + ["\n".join(current)]


def plant_copies(folder: Path, victim_source: str, base_source: str) -> dict[str, tuple[str, ...]]:
    """Three copies of the victim's work; what each copied."""
    renamed = "\n".join(ast.unparse(Rename().visit(ast.parse(c))) if "def " in c else c for c in cells(victim_source))
    (folder / "zz_renamed.py").write_text(renamed)
    parts = cells(victim_source)
    header, rest = parts[:3], parts[3:]
    shuffled = header + rest[::2][::-1] + rest[1::2]  # the cells in another order, a comment in each
    (folder / "zz_reordered.ipynb").write_text(notebook_of("\n".join(
        c.replace("\n", "\n# my own approach, after the lecture\n", 1) if "def " in c else c for c in shuffled)))
    victim_defs = {n.name: ast.get_source_segment(victim_source, n) for n in ast.parse(victim_source).body
                   if isinstance(n, ast.FunctionDef)}
    half = base_source
    for name in HALF:
        node = next(n for n in ast.parse(half).body if isinstance(n, ast.FunctionDef) and n.name == name)
        lines = half.splitlines()
        half = "\n".join(lines[:node.lineno - 1] + victim_defs[name].splitlines() + lines[node.end_lineno:]) + "\n"
    (folder / "zz_half.py").write_text(half)
    return {"zz_renamed.py": WRITTEN, "zz_reordered.ipynb": WRITTEN, "zz_half.py": HALF}


@pytest.fixture(scope="module")
def corpus_pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    paths = build(folder, list(ALL))
    bases = []
    for name, make in BASES.items():  # the course's published solutions of each year: base files
        (folder.parent / f"base-{name}.py").write_text(make())
        bases.append(folder.parent / f"base-{name}.py")
    victim = next(s for s in ALL if s.name == VICTIM)
    planted = plant_copies(folder, source_of(victim), BASES["course"]())
    files = [str(p) for p in paths.values()] + [str(folder / n) for n in planted]
    return similarity.of_class(files, starters.built_in(), bases), planted


def snippets(sub) -> set[str]:
    return {e[-1] for e in sub.edits if e[0] in ("replace", "after", "append")}


def test_no_pair_of_independent_corpus_submissions_is_flagged(corpus_pairs):
    pairs, _ = corpus_pairs
    by_name = {s.name: s for s in ALL}
    flagged = [(Path(p.a).name, Path(p.b).name) for p in pairs if p.flagged]
    independent = [(a, b) for a, b in flagged if a in by_name and b in by_name
                   and not snippets(by_name[a]) & snippets(by_name[b])]
    assert independent == []
    # the corpus reuses one snippet set on purpose (the loops of 12 in 61): that is copied code, found
    assert ("12_python_loops.py", "61_own_checks_and_loops.ipynb") in flagged


def test_every_planted_copy_is_flagged_with_the_items_it_copied(corpus_pairs):
    pairs, planted = corpus_pairs
    for copy, items in planted.items():
        pair = next((p for p in pairs if {Path(p.a).name, Path(p.b).name} == {VICTIM, copy}), None)
        assert pair is not None and pair.flagged, copy
        found = {s.item for s in pair.items}
        assert set(items) - {"get_WOV", "get_post_final_ln_dir"} <= found <= set(items), (copy, found)
        others = [p for p in pairs if p.flagged and copy in (Path(p.a).name, Path(p.b).name)
                  and VICTIM not in (Path(p.a).name, Path(p.b).name) and not ({Path(p.a).name, Path(p.b).name}
                                                                             <= set(planted))]
        assert others == [], (copy, [(p.a, p.b) for p in others])  # only its source, and the other copies


def test_names_formatting_comments_and_cell_order_change_no_fingerprint():
    code = "def get_WOV(model, layer, head):\n    w = model.W_V[layer, head]\n    return w @ model.W_O[layer, head]\n"
    other = ("def get_WOV(m, l, h):\n    # the OV circuit\n    weights = m.W_V[l,\n        h]\n"
             "    return weights @ m.W_O[l, h]\n")
    a = similarity.own_code(code, ".py", ())["get_WOV"].prints
    assert a == similarity.own_code(other, ".py", ())["get_WOV"].prints
    assert a != similarity.own_code(code.replace("W_O", "W_Q"), ".py", ())["get_WOV"].prints
    assert similarity.own_code(code, ".py", starters.built_in())  # written, not the template's stub
    assert similarity.of_class(["/nonexistent/a.py", "/nonexistent/b.py"], ()) is None  # not computed: not "none shared"
    stub = starters.TEMPLATE.read_text()
    assert similarity.own_code(stub, ".py", starters.built_in()) == {}  # the starter's, unchanged: nothing own


def test_the_instructor_gets_it_in_the_json_report_and_on_the_class_page(corpus_pairs, tmp_path):
    from grader.catalogue import IDS
    from grader.reports import json_text
    from grader.results import ExerciseResult, SubmissionResult

    pairs, planted = corpus_pairs
    pair = next(p for p in pairs if Path(p.b).name == "zz_half.py" or Path(p.a).name == "zz_half.py")
    files = [pair.a, pair.b]
    results = [SubmissionResult(f, tuple(ExerciseResult(i, "passed", 1.0, 1.0) for i in IDS)) for f in files]
    (tmp_path / "in.json").write_text(json_text(results))
    base = Path(pair.a).parent.parent / "base-course.py"  # the published solutions, as the instructor has them
    assert main(["--from", str(tmp_path / "in.json"), "--json", str(tmp_path / "out.json"),
                 "--report", str(tmp_path / "class.html"), "--similar-base", str(base)]) == 0
    (reported,) = json.loads((tmp_path / "out.json").read_text())["similarity"]
    assert reported["flagged"] and {i["id"] for i in reported["items"]} == {s.item for s in pair.items}
    item = reported["items"][0]
    assert item["code_a"] and item["code_b"] and 0 < item["share_a"] <= 1
    page = (tmp_path / "class.html").read_text()
    assert "Code shared between submissions" in page and page.count("<div class='side'><pre>") == len(pair.items)
    assert main(["--from", str(tmp_path / "in.json"), "--json", str(tmp_path / "none.json"), "--no-similarity"]) == 0
    assert "similarity" not in json.loads((tmp_path / "none.json").read_text())
