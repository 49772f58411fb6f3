"""Reference helpers by proxy: arguments described as specs, answers rebuilt as live objects."""
from __future__ import annotations

import numpy as np
import pytest
import torch as t

from grader.answers import MAX_SUBMISSION_ROWS, Answerer, Grants, TooMuch
from grader.catalogue import BY_ID
from grader.inputs import InputFactory, UnknownModel
from reference.model import load_data_tuples
from grader.protocol import Cache, LinearFit
from grader.worker.helpers import ReferenceHelpers, Unsendable, to_live, to_spec


@pytest.fixture(scope="module")
def factory(reference):
    return InputFactory(reference.weights, reference.data)


@pytest.fixture(scope="module")
def known(reference):
    """The models a submission may load itself, by the hash of their weights (grader.judging)."""
    from reference.model import parameter_hash, read_state_dict

    state = read_state_dict(reference.weights)
    return lambda: {parameter_hash(state): state}


def test_the_graders_own_inputs_are_described_by_name(factory):
    args, _ = factory.build([{"$model": "alt"}, {"$data": [0, 5]}, 3], {})
    model, data, n = args
    specs = [to_spec(a, factory.origins, [model]) for a in args]
    assert specs == [{"$model": "alt"}, {"$data": [0, 5]}, 3]
    assert to_spec(model.blocks[1].ln2, factory.origins, [model]) == {"$module": ["alt", "blocks.1.ln2"]}
    assert to_spec(data.toks[:2], factory.origins, [model])["$tensor"]["shape"] == [2, data.toks.shape[1]]


def test_other_datasets_go_by_their_strings_and_other_models_by_their_weights(factory, reference):
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
    trusted = InputFactory(reference.weights, reference.data)
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


def test_a_proxy_asks_with_specs_and_the_namespace_is_restored(factory, reference):
    asked = []

    class Asker:
        files = None

        def ask(self, **fields):
            asked.append(fields)
            value, _ = reference.helper_answer(fields["function"], fields["args"], fields["kwargs"])
            return {"ok": True, "value": value}

    def own(model):
        return "the student's"

    namespace = {"get_post_final_ln_dir": own}
    args, _ = factory.build([{"$model": "main"}], {})
    with ReferenceHelpers(namespace, ["get_post_final_ln_dir"], Asker(), factory):
        got = namespace["get_post_final_ln_dir"](args[0])
    assert namespace["get_post_final_ln_dir"] is own
    assert asked == [{"function": "get_post_final_ln_dir", "args": [{"$model": "main"}], "kwargs": {}}]
    assert np.allclose(got.numpy(), reference.for_exercise(BY_ID["get_post_final_ln_dir"])["model"])


def test_the_trusted_side_answers_only_items(reference):
    with pytest.raises(ValueError):
        reference.helper_answer("__import__", ["os"], {})


def test_questions_the_size_of_a_denial_of_service_are_refused(reference, known, tmp_path):
    """Bounded before anything is built, whatever form the data takes (strings, a range of the
    grader's own data, its tokens, a row of them), and the numbers a tensor or an answer holds;
    then the total work for one submission."""
    answerer = Answerer(reference, known)
    answer = answerer.for_run("test", tmp_path, Grants())
    strs = ["()" * 20] * 5001
    for function, args, kwargs, message in [
        ("get_activations", [{"$model": "main"}, {"$data": {"strs": strs}}, "hook_embed"], {}, "5,001 strings"),
        ("get_activations", [{"$model": "main"}, {"$toks": [0, 100_000]}, ["hook_embed"]], {}, "100,000 strings"),
        ("is_balanced_vectorized_return_both", [{"$toks": {"indices": list(range(6000))}}], {}, "6,000 strings"),
        ("is_balanced_vectorized", [{"$tokrow": [[0, 50_000], 3]}], {}, "50,000 strings"),
        ("get_out_by_components", [{"$model": "main"}, {"$data": {"from": [0, 90_000], "max_len": 40, "n": 80_000}}],
         {}, "80,000 strings"),
        ("cos_sim_with_MLP_weights", [{"$model": "main"}, {"$tensor": {"dtype": "float32", "shape": [5000, 5000],
                                                                       "b64": ""}}, 0], {}, "25,000,000 numbers"),
        ("get_out_by_neuron", [{"$model": "main"}, {"$data": [0, 2000]}, 0], {"seq": None}, "numbers is larger"),
        ("get_activations", [{"$model": "main"}, {"$toks": [0, 4000]}, ["blocks.0.attn.hook_result"] * 80], {},
         "numbers is larger"),
        ("avg_squared_cos_sim", [{"$tensor": {"dtype": "float32", "shape": [56], "b64": ""}}], {"n_samples": 10**9},
         "1 to 100,000 samples"),
        ("get_activations", [[[[[[[[1]]]]]]]], {}, "nested too deeply"),
        ("get_activations", [list(range(30_000))], {}, "too many values"),
        ("get_activations", [{"$tuple": [{"$tuple": [{"$tuple": [{"$tuple": [{"$tuple": [{"$tuple": [1]}]}]}]}]}]}], {},
         "nested too deeply"),
    ]:
        with pytest.raises(TooMuch, match=message):
            answer({"function": function, "args": args, "kwargs": kwargs}, None, frozenset())
    assert answer({"function": "__import__", "args": ["os"], "kwargs": {}}, None, frozenset())["ok"] is False
    answerer.rows = MAX_SUBMISSION_ROWS - 10
    with pytest.raises(TooMuch, match="more than the grader computes for one submission"):
        answer({"function": "get_activations", "args": [{"$model": "main"}, {"$data": {"strs": ["()"] * 20}},
                                                        ["hook_embed"]], "kwargs": {}}, None, frozenset())


def test_a_question_is_answered_only_within_what_the_pass_grants_at_that_moment(reference, known, tmp_path):
    """While an item is computed, the helpers granted to it; while the statements run, theirs; never
    an item of the run whose results are not all in. Anything else asked is answered as the
    course's solutions would be, and that function is taken from the course (its item voided)."""
    grants = Grants({"get_pre_final_ln_dir": ("get_ln_fit",), "get_pre_20_dir": ("get_ln_fit", "get_pre_final_ln_dir")},
                    ("get_WOV",), frozenset({"get_pre_final_ln_dir", "get_pre_20_dir"}))
    assert grants.allowed("get_pre_final_ln_dir", frozenset()) == {"get_ln_fit"}
    assert grants.allowed("get_pre_20_dir", frozenset()) == {"get_ln_fit"}  # get_pre_final_ln_dir: not yet
    assert grants.allowed("get_pre_20_dir", frozenset({"get_pre_final_ln_dir"})) == {"get_ln_fit", "get_pre_final_ln_dir"}
    assert grants.allowed(None, frozenset()) == {"get_WOV"}
    assert grants.allowed("get_WOV", frozenset()) == set()
    answerer = Answerer(reference, known)
    answer = answerer.for_run("helpers-0", tmp_path, grants)
    question = {"function": "get_WOV", "args": [{"$model": "main"}, 0, 0], "kwargs": {}}
    assert answer(question, None, frozenset())["ok"] and not answerer.taken  # granted to the statements
    assert answer({**question, "function": "get_pre_final_ln_dir", "args": [{"$model": "main"}, {"$data": [0, 50]}]},
                  "get_pre_20_dir", frozenset())["ok"]
    assert answerer.taken == {"get_pre_final_ln_dir"}  # asked before its own results were in: voided
    assert answer(question, "get_pre_final_ln_dir", frozenset())["ok"] and answerer.taken == {"get_pre_final_ln_dir", "get_WOV"}
    assert [(a.item, a.function, a.granted) for a in answerer.log] == [
        (None, "get_WOV", True), ("get_pre_20_dir", "get_pre_final_ln_dir", False), ("get_pre_final_ln_dir", "get_WOV", False)]


def test_large_answers_reach_the_worker_through_a_file_in_its_folder(reference, known, tmp_path):
    """get_out_by_components on a submission's 1,000 examples is ~24M numbers: too many for the
    pipe. The trusted side writes it into the worker's own folder; only the worker reads files."""
    from grader.protocol import ProtocolError, decode

    answer = Answerer(reference, known).for_run("test", tmp_path, Grants())
    strs = [s for s, _ in load_data_tuples(reference.data)[:300]]
    reply = answer({"function": "get_out_by_components", "args": [{"$model": "main"}, {"$data": {"strs": strs}}],
                    "kwargs": {}}, None, frozenset())
    assert reply["ok"] and "$file" in reply["value"]
    value = decode(reply["value"], files=str(tmp_path))
    assert value.shape[:2] == (10, 300)
    with pytest.raises(ProtocolError):
        decode(reply["value"])  # the trusted side never reads a file a worker names


def test_the_same_question_from_many_submissions_is_answered_once(reference, monkeypatch):
    import grader.reference_results as rr

    calls = []
    real = rr._solution

    def counting(name):
        calls.append(name)
        return real(name)

    monkeypatch.setattr(rr, "_solution", counting)
    # nothing from an earlier session's disk cache (a contributor's runs keep it): this session's answers only
    monkeypatch.setattr(reference.disk, "get", lambda *a, **k: None)
    monkeypatch.setattr(reference, "_helper_answers", {})
    monkeypatch.setattr(reference, "_helper_bytes", 0)
    question = ("get_ln_fit", [{"$model": "alt"}, {"$data": [3, 33]}, {"$module": "blocks.1.ln2"}], {"seq_pos": 2})
    first, computed = reference.helper_answer(*question)
    again, computed_again = reference.helper_answer(*question)
    assert calls == ["get_ln_fit"], "the second submission's question was computed again"
    assert again == first and computed and not computed_again
    other, _ = reference.helper_answer(question[0], question[1], {"seq_pos": 3})
    assert calls == ["get_ln_fit", "get_ln_fit"] and other != first  # another question is not served from the cache


def test_every_question_the_workers_honestly_ask_passes_the_bounds():
    """The bounds refuse only what no honest question holds: every grading case's arguments, and
    the forms the stand-ins use for a submission's own model, modules and data (the course's 5,000
    strings, as the course-size pass gives them to get_out_by_components)."""
    from grader.answers import MAX_ANSWER_ELEMENTS, answer_elements, measure
    from grader.catalogue import EXERCISES

    for ex in EXERCISES:
        for case in ex.cases:
            for args in case.each or [case.args]:
                size = measure([list(args), list(case.kwargs.values())], 100_000)
                if ex.kind == "function":
                    assert answer_elements(ex.id, list(args), case.kwargs, size) <= MAX_ANSWER_ELEMENTS, ex.id
    own = [{"$model": {"hash": "ab" * 32}}, {"$data": {"strs": ["()" * 20] * 5000}}]
    size = measure([own, []], 100_000)
    assert size.rows == 5000 and answer_elements("get_out_by_components", own, {}, size) <= MAX_ANSWER_ELEMENTS
    more = [{"$module": [{"hash": "ab" * 32}, "blocks.0.ln1"]}, {"$tuple": [1, 2.5, None, "x"]}]
    assert measure([more, []], 100_000).models == 1
