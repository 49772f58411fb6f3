"""Reference helpers by proxy: arguments described as specs, answers rebuilt as live objects."""
from __future__ import annotations

import numpy as np
import pytest
import torch as t

from grader.answers import MAX_SUBMISSION_WORK, Questions, TooMuch
from grader.catalogue import BY_ID
from grader.inputs import InputFactory, UnknownModel
from reference.model import load_data_tuples
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


def test_other_datasets_go_by_their_strings_and_other_models_by_their_weights(factory, grader):
    """A submission's own model (loaded from the course's file) is named by the hash of its
    weights: the trusted side rebuilds it only if it knows those weights."""
    from reference.brackets import BracketsDataset
    from reference.model import build_model, parameter_hash

    args, _ = factory.build([{"$model": "main"}], {})
    mine = BracketsDataset([("()", True), ("(()", False)])
    assert to_spec(mine, factory.origins, args) == {"$data": {"strs": ["()", "(()"]}}
    loaded = build_model(factory.state("main"))
    h = parameter_hash(loaded)
    assert to_spec(loaded, factory.origins, [loaded]) == {"$model": {"hash": h}}
    assert to_spec(loaded.ln_final, factory.origins, [loaded]) == {"$module": [{"hash": h}, "ln_final"]}
    with pytest.raises(Unsendable):
        to_spec(object(), factory.origins, [loaded])
    trusted = InputFactory(grader.config.weights, grader.config.data)
    with pytest.raises(UnknownModel):
        trusted.build([{"$model": {"hash": h}}], {})
    trusted.known = {h: factory.state("main")}
    rebuilt, _ = trusted.build([{"$model": {"hash": h}}], {})
    assert parameter_hash(rebuilt[0]) == h


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
        files = None

        def ask(self, **fields):
            asked.append(fields)
            value, _ = grader.reference.helper_answer(fields["function"], fields["args"], fields["kwargs"])
            return {"ok": True, "value": value}

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


def test_questions_the_size_of_a_denial_of_service_are_refused(grader, tmp_path):
    """Bounded before anything is built: strings of data (the course's 5,000 at most), nesting,
    entries, and the total work for one submission."""
    questions = Questions(grader.reference, grader.known_models)
    answer = questions.answerer(tmp_path, set())
    strs = ["()" * 20] * 5001
    for args, message in [
        ([{"$model": "main"}, {"$data": {"strs": strs}}, "hook_embed"], "more than 5,000 strings"),
        ([[[[[[[[1]]]]]]]], "nested too deeply"),
        ([list(range(30_000))], "too many values"),
        ([{"$tuple": [{"$tuple": [{"$tuple": [{"$tuple": [{"$tuple": [{"$tuple": [1]}]}]}]}]}]}], "nested too deeply"),
    ]:
        with pytest.raises(TooMuch, match=message):
            answer({"function": "get_activations", "args": args, "kwargs": {}})
    assert answer({"function": "__import__", "args": ["os"], "kwargs": {}})["ok"] is False
    questions.work = MAX_SUBMISSION_WORK - 10
    with pytest.raises(TooMuch, match="more than the grader computes for one submission"):
        answer({"function": "get_activations", "args": [{"$model": "main"}, {"$data": {"strs": ["()"] * 20}},
                                                        ["hook_embed"]], "kwargs": {}})


def test_large_answers_reach_the_worker_through_a_file_in_its_folder(grader, tmp_path):
    """get_out_by_components on a submission's 1,000 examples is ~24M numbers: too many for the
    pipe. The trusted side writes it into the worker's own folder; only the worker reads files."""
    from grader.protocol import ProtocolError, decode

    answer = Questions(grader.reference, grader.known_models).answerer(tmp_path, set())
    strs = [s for s, _ in load_data_tuples(grader.config.data)[:300]]
    reply = answer({"function": "get_out_by_components", "args": [{"$model": "main"}, {"$data": {"strs": strs}}],
                    "kwargs": {}})
    assert reply["ok"] and "$file" in reply["value"]
    value = decode(reply["value"], files=str(tmp_path))
    assert value.shape[:2] == (10, 300)
    with pytest.raises(ProtocolError):
        decode(reply["value"])  # the trusted side never reads a file a worker names


def test_the_same_question_from_many_submissions_is_answered_once(grader, monkeypatch):
    import grader.reference_results as rr

    calls = []
    real = rr._solution

    def counting(name):
        calls.append(name)
        return real(name)

    monkeypatch.setattr(rr, "_solution", counting)
    question = ("get_ln_fit", [{"$model": "alt"}, {"$data": [3, 33]}, {"$module": "blocks.1.ln2"}], {"seq_pos": 2})
    first, computed = grader.reference.helper_answer(*question)
    again, computed_again = grader.reference.helper_answer(*question)
    assert calls == ["get_ln_fit"], "the second submission's question was computed again"
    assert again == first and computed and not computed_again
    other, _ = grader.reference.helper_answer(question[0], question[1], {"seq_pos": 3})
    assert calls == ["get_ln_fit", "get_ln_fit"] and other != first  # another question is not served from the cache


def test_every_question_the_workers_honestly_ask_passes_the_bounds():
    """The bounds refuse only what no honest question holds: every grading case's arguments, and
    the forms the stand-ins use for a submission's own model, modules and data."""
    from grader.answers import check_spec
    from grader.catalogue import EXERCISES

    for ex in EXERCISES:
        for case in ex.cases:
            for args in case.each or [case.args]:
                check_spec([list(args), list(case.kwargs.values())])
    own = [{"$model": {"hash": "ab" * 32}}, {"$data": {"strs": ["()"] * 5000}},
           {"$module": [{"hash": "ab" * 32}, "blocks.0.ln1"]}, {"$tuple": [1, 2.5, None, "x"]}]
    assert check_spec([own, []]) == 5000
