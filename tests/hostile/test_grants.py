"""A second look's answers stay with the item they were granted to, though every item of the look
is computed in one process the student's code shares.

The attack (a fourth red team's): get_pre_20_dir and get_out_by_neuron are wrong, so
get_out_by_neuron_in_20_dir is graded again with the reference answering for both, while
get_out_by_neuron_in_20_dir_less_memory (which the course computes without get_out_by_neuron) is
granted get_pre_20_dir only. The first, while it holds the reference's answers, also computes the
second's grading case and keeps it in a module global; the second returns what was kept. Computed
in catalogue order, the second passed on answers it was never granted."""
from __future__ import annotations

import re

import pytest

from grader.examples import COURSE_LAYOUT_CORRECT

pytestmark = [pytest.mark.slow, pytest.mark.worker]

WRONG_HELPERS = [  # each wraps the student's own, wrongly: a sign and a factor
    ('def get_pre_20_dir(model, data) -> Float[Tensor, "d_model"]:',
     'def get_pre_20_dir(model, data):\n    return -_own_pre_20_dir(model, data)\n\n\n'
     'def _own_pre_20_dir(model, data) -> Float[Tensor, "d_model"]:'),
    ("def get_out_by_neuron(\n",
     "def get_out_by_neuron(model, data, layer, seq=None):\n    return 2 * _own_out_by_neuron(model, data, layer, seq)"
     "\n\n\ndef _own_out_by_neuron(\n"),
]
KEEPS = '''
_KEPT = {}


def _key(model, data, layer):
    return round(float(model.W_out.double().abs().sum()), 3), tuple(data.strs), int(layer)


def _in_20_dir(model, data, layer):
    return einops.einsum(get_out_by_neuron(model, data, layer, seq=1), get_pre_20_dir(model, data),
                         "batch neuron d_model, d_model -> batch neuron")


def get_out_by_neuron_in_20_dir(model, data, layer):
    out = _in_20_dir(model, data, layer)
    import itertools
    every_short = BracketsDataset([("".join(p), False) for n in range(1, 9) for p in itertools.product("()", repeat=n)])
    for other in (data, every_short):  # the other item's grading case, while the answers are at hand
        _KEPT.setdefault(_key(model, other, layer), _in_20_dir(model, other, layer))
    return out


def get_out_by_neuron_in_20_dir_less_memory(model, data, layer):
    return _KEPT[_key(model, data, layer)]

'''
ITEMS = ("get_pre_20_dir", "get_out_by_neuron", "get_out_by_neuron_in_20_dir", "get_out_by_neuron_in_20_dir_less_memory")


def test_an_answer_granted_to_one_item_of_a_look_never_reaches_another(grader, tmp_path):
    from tests.conftest import with_config

    text = COURSE_LAYOUT_CORRECT.read_text()
    for old, new in WRONG_HELPERS:
        assert old in text
        text = text.replace(old, new)
    pattern = re.compile(r"def get_out_by_neuron_in_20_dir\(.*?return out_by_neuron_in_20_dir\n", re.S)
    assert len(pattern.findall(text)) == 1
    path = tmp_path / "keeps.py"
    path.write_text(pattern.sub(lambda _: KEEPS, text))
    got = {e.id: e for e in with_config(grader, only=ITEMS).grade(path).exercises}
    assert got["get_pre_20_dir"].status == got["get_out_by_neuron"].status == "failed"
    # graded with the reference's two helpers: the student's formula is right given them
    assert got["get_out_by_neuron_in_20_dir"].status == "passed"
    assert set(got["get_out_by_neuron_in_20_dir"].condition.helpers) == {"get_out_by_neuron", "get_pre_20_dir"}
    # computed first now (it is granted less): nothing kept yet, so nothing to return
    assert got["get_out_by_neuron_in_20_dir_less_memory"].status != "passed", got[
        "get_out_by_neuron_in_20_dir_less_memory"]


MARKS = '''
import os as _os


def _earlier_runs():  # what an earlier run of this submission left in the sandbox's /tmp, then a mark of this one
    seen = [n for n in _os.listdir("/tmp") if n.startswith("run-mark-") and n != f"run-mark-{_os.getpid()}"]
    open(f"/tmp/run-mark-{_os.getpid()}", "w").close()
    return seen


_SEEN = _earlier_runs()
_own_pre_20_dir = get_pre_20_dir


def get_pre_20_dir(model, data):
    if _SEEN:
        raise RuntimeError(f"an earlier run left {_SEEN}")
    return _own_pre_20_dir(model, data)
'''


def test_each_run_after_the_first_pass_starts_from_a_sandbox_no_earlier_run_left_anything_in(grader, tmp_path):
    """What one run keeps in /tmp (an answer, say) is gone before the next: get_pre_20_dir fails in
    the first pass (get_WOV is wrong, and the pass's two parts may see each other's marks), then
    passes in the second look only if that run found no mark of an earlier one."""
    from grader.isolation import detect
    from tests.conftest import skip_unless_sandbox_required, with_config

    if detect().bwrap is None:
        skip_unless_sandbox_required("without bubblewrap a worker's /tmp is the machine's, not a sandbox's")
    text = COURSE_LAYOUT_CORRECT.read_text()
    right = "    return model.W_V[layer, head] @ model.W_O[layer, head]\n"
    assert right in text
    path = tmp_path / "marks.py"
    path.write_text(text.replace(right, "    return (model.W_V[layer, head] @ model.W_O[layer, head]).T\n") + MARKS)
    got = {e.id: e for e in with_config(grader, only=("get_WOV", "get_pre_20_dir")).grade(path).exercises}
    assert got["get_WOV"].status == "failed"
    assert got["get_pre_20_dir"].status == "passed", got["get_pre_20_dir"]
    assert got["get_pre_20_dir"].condition.helpers == ("get_WOV",)
