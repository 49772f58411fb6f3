"""The lean slice: which of a submission's statements run when only grading is wanted."""
from __future__ import annotations

import ast

import pytest

from grader.worker.lean import lean_statements

ITEMS = {"get_WOV", "get_activations"}
NOTEBOOK = [
    "import torch as t\nimport tests\nfrom plotly_utils import imshow\nt.set_grad_enabled(False)\nMAIN = __name__ == '__main__'",
    "model = load()\nmodel.load_state_dict(sd)\nsd = t.load('x')\nprint(model)",
    "def get_WOV(model, layer, head):\n    return model.W_V[layer, head] @ model.W_O[layer, head] * SCALE",
    "SCALE = 1.0\nUNUSED = expensive()\nimshow(get_WOV(model, 0, 0))\ntests.test_get_WOV(get_WOV, model)",
    "if MAIN:\n    W = get_WOV(model, 0, 0)\n    v_L = W.sum(0)\n    plot(v_L)\n    for i in range(3):\n        print(i)",
    "def add_hooks(m):\n    m.add_hook('x', None)\nadd_hooks(model)\nget_WOV(model, 1, 1)",
]


def kept_sources(cells, as_main=True, objects=("v_L",)):
    kept, dropped, errors = lean_statements(cells, as_main, list(objects), ITEMS)
    return [ast.unparse(s.node) for s in kept], dropped, errors


def test_keeps_definitions_set_up_and_what_objects_and_functions_read():
    kept, dropped, _ = kept_sources(NOTEBOOK)
    for needed in ("import torch as t", "t.set_grad_enabled(False)", "model = load()", "model.load_state_dict(sd)",
                   "sd = t.load('x')", "SCALE = 1.0", "W = get_WOV(model, 0, 0)", "v_L = W.sum(0)",
                   "add_hooks(model)"):
        assert needed in kept, needed
    assert any(k.startswith("def get_WOV") for k in kept) and any(k.startswith("def add_hooks") for k in kept)


def test_drops_demo_code_plots_tests_and_displays():
    kept, dropped, _ = kept_sources(NOTEBOOK)
    for demo in ("print(model)", "UNUSED = expensive()", "imshow(get_WOV(model, 0, 0))",
                 "tests.test_get_WOV(get_WOV, model)", "plot(v_L)", "get_WOV(model, 1, 1)"):
        assert demo not in kept, demo
    assert not any(k.startswith("for i in range(3)") for k in kept)
    assert dropped == 8  # the six above, the loop, and `MAIN = ...` (guards are read as their bodies)


def test_main_blocks_are_skipped_when_a_module_is_imported():
    kept, _, _ = kept_sources(NOTEBOOK, as_main=False)
    assert "v_L = W.sum(0)" not in kept and "W = get_WOV(model, 0, 0)" not in kept


def test_locals_and_comprehension_variables_pull_in_nothing():
    cells = ["x = heavy()\nfor i in range(9):\n    print(i)",
             "def get_WOV(model, layer, head):\n    x = model.W_V\n    return [i for i in x]",
             "v_L = [i * 2 for i in range(3)]"]
    kept, _, _ = kept_sources(cells)
    assert "x = heavy()" not in kept and not any(k.startswith("for i") for k in kept)


def test_a_function_that_sets_globals_is_called_as_written():
    cells = ["def setup():\n    global TABLE\n    TABLE = 2", "setup()", "def get_WOV(model, layer, head):\n    return TABLE"]
    kept, _, _ = kept_sources(cells, objects=())
    assert "setup()" in kept


def test_statements_writing_an_object_keep_their_whole_loop():
    cells = ["v_L = []\nfor s in strs:\n    if check(s):\n        v_L.append(s)", "strs = make()"]
    kept, _, _ = kept_sources(cells)
    assert "strs = make()" in kept and any(k.startswith("for s in strs") for k in kept)


def test_a_cell_that_does_not_parse_is_an_error_and_the_rest_still_runs():
    kept, _, errors = kept_sources(["def get_WOV(:\n", "v_L = 1"])
    assert errors and errors[0]["cell"] == 1 and errors[0]["type"] == "SyntaxError"
    assert kept == ["v_L = 1"]


@pytest.mark.parametrize("guard", ["if MAIN:", "if __name__ == '__main__':", 'if __name__ == "__main__":'])
def test_every_spelling_of_the_main_guard(guard):
    kept, _, _ = kept_sources([f"{guard}\n    v_L = 1\n    print(v_L)"])
    assert kept == ["v_L = 1"]


def test_a_statement_past_its_limit_is_reported_by_key_and_left_out_where_it_was_slow_before():
    """In-process: the alarm stops a statement and its record carries the statement's key; a run on
    more data told that key was slow skips it, saying why, and runs the rest."""
    from grader.worker import statements

    cells = ["import time\nx = 1\nwhile True:\n    time.sleep(0.01)\ny = 2\n"]
    todo, _, _ = statements.plan(cells, True, False, [], set())
    said = []
    ns: dict = {}
    errors = statements.run(todo, ns, lambda kind, **kw: said.append(kw), "f.py", 0.3, set())
    [stopped] = [e for e in errors if e.get("kind") == "timeout"]
    loop = next(st for st in todo if isinstance(st.node, ast.While))
    assert stopped["key"] == loop.key and ns["y"] == 2
    ns = {}
    again = statements.run(todo, ns, lambda kind, **kw: None, "f.py", 1.5, set(), slow=frozenset({loop.key}))
    assert [e["type"] for e in again] == ["Skipped"] and "fewer examples" in again[0]["message"]
    assert ns["x"] == 1 and ns["y"] == 2
