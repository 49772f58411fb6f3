"""Reference helpers by proxy: arguments described as specs, answers rebuilt as live objects."""
from __future__ import annotations

import numpy as np
import pytest
import torch as t

from grader.catalogue import BY_ID
from grader.inputs import InputFactory
from grader.protocol import Cache, LinearFit
from grader.worker.helpers import ReferenceHelpers, Unsendable, to_live, to_spec


@pytest.fixture(scope="module")
def factory(grader):
    return InputFactory(grader.config.weights, grader.config.data)


def test_the_graders_own_inputs_are_described_by_name(factory):
    args, _ = factory.build([{"$model": "alt"}, {"$data": [0, 5]}, 3], {})
    model, data, n = args
    specs = [to_spec(a, factory.origins, [model]) for a in args]
    assert specs == [{"$model": "alt"}, {"$data": [0, 5]}, 3]
    assert to_spec(model.blocks[1].ln2, factory.origins, [model]) == {"$module": ["alt", "blocks.1.ln2"]}
    assert to_spec(data.toks[:2], factory.origins, [model])["$tensor"]["shape"] == [2, data.toks.shape[1]]


def test_other_datasets_go_by_their_strings_and_unknown_models_are_not_sent(factory):
    from reference.brackets import BracketsDataset
    from reference.model import build_model

    args, _ = factory.build([{"$model": "main"}], {})
    mine = BracketsDataset([("()", True), ("(()", False)])
    assert to_spec(mine, factory.origins, args) == {"$data": {"strs": ["()", "(()"]}}
    stranger = build_model(factory.state("main"))
    with pytest.raises(Unsendable):
        to_spec(stranger, factory.origins, [stranger])


def test_answers_come_back_as_the_objects_the_reference_returns(factory):
    args, _ = factory.build([{"$model": "main"}], {})
    fit = to_live(LinearFit(np.ones((2, 3)), np.zeros(2)), None, "cpu")
    assert fit.predict(np.ones((1, 3))).tolist() == [[3.0, 3.0]]
    cache = to_live(Cache({"hook_embed": np.zeros((1, 2, 56), np.float32)}), args[0], "cpu")
    assert type(cache).__name__ == "ActivationCache" and cache["hook_embed"].shape == (1, 2, 56)
    pair = to_live((np.ones(2), 0.5), None, "cpu")
    assert isinstance(pair[0], t.Tensor) and pair[1] == 0.5


def test_a_proxy_asks_with_specs_and_the_namespace_is_restored(factory, grader):
    asked = []

    class Questions:
        def ask(self, **fields):
            asked.append(fields)
            return {"ok": True, "value": grader.reference.helper_answer(fields["function"], fields["args"], fields["kwargs"])}

    def own(model):
        return "the student's"

    namespace = {"get_post_final_ln_dir": own}
    args, _ = factory.build([{"$model": "main"}], {})
    with ReferenceHelpers(namespace, ["get_post_final_ln_dir"], Questions(), factory):
        got = namespace["get_post_final_ln_dir"](args[0])
    assert namespace["get_post_final_ln_dir"] is own
    assert asked == [{"function": "get_post_final_ln_dir", "args": [{"$model": "main"}], "kwargs": {}}]
    assert np.allclose(got.numpy(), grader.reference.for_exercise(BY_ID["get_post_final_ln_dir"])["model"])


def test_the_trusted_side_answers_only_items(grader):
    with pytest.raises(ValueError):
        grader.reference.helper_answer("__import__", ["os"], {})


def test_questions_the_size_of_a_denial_of_service_are_refused(grader):
    with pytest.raises(ValueError, match="larger than the grader answers"):
        grader.reference.helper_answer("get_activations", [{"$model": "main"}, {"$toks": [0, 5000]}, "hook_embed"], {})


def test_the_same_question_from_many_submissions_is_answered_once(grader, monkeypatch):
    import grader.reference_results as rr

    calls = []
    real = rr._solution

    def counting(name):
        calls.append(name)
        return real(name)

    monkeypatch.setattr(rr, "_solution", counting)
    question = ("get_ln_fit", [{"$model": "alt"}, {"$data": [3, 33]}, {"$module": "blocks.1.ln2"}], {"seq_pos": 2})
    first = grader.reference.helper_answer(*question)
    again = grader.reference.helper_answer(*question)
    assert calls == ["get_ln_fit"], "the second submission's question was computed again"
    assert again == first
    other = grader.reference.helper_answer(question[0], question[1], {"seq_pos": 3})
    assert calls == ["get_ln_fit", "get_ln_fit"] and other != first  # another question is not served from the cache
