"""Measure every numeric item's tolerance instead of guessing it, on our model and on the course's.

    python calibration/calibrate.py [--device cpu|cuda] [--out grader/tolerances.json] [--only ID,ID]

For each function item whose answer is numeric, on every argument combination of the catalogue,
on each model with that model's own data (ours; the course's published one too, from
../shared/arena-1.5.1, when it is there):
- correct formulations: the reference in float32 (the grader's expected answer), the reference in
  float64, the reference on one CPU thread, the "written differently" variant and the other
  correct ways students write it (tests/variants.py: F.cosine_similarity, dividing after the
  product, a float64 fit);
- wrong formulations: the known mistakes in tests/variants.py.
It records the largest relative discrepancy of a correct formulation and the smallest of a wrong
one (|got - expected| / max|expected|, elements whose right value is undefined left out: the
cosine with a dead neuron), per model, and writes the tolerance halfway between them on a log
scale over both models. `get_ln_fit`'s correct fits include the course's code where float32 rounds
otherwise (inputs moved by 1e-7, as the same code in another process does, with other seeds than
the grader's); its predictions and r2 are measured outside their ranges of right values
(grader.right_values.expected_fit), and r2 gets a tolerance of its own, from fits that are right
with an r2 that is not (tests/variants.py R2_WRONG). The object items compared element by element (9 and 14) are
measured on each model's data at 1,000 and 5,000 examples, computed as a student's cell computes
them: the reference in float32, float64 and on one thread, other correct ways, and known
mistakes (no centring, the mean over every example or the unbalanced ones, another position,
another direction). `v_L_v_R` is
judged by direction (1 - cosine) and size (|log of the norm ratio|) against the nearest right pair
(grader.right_values.v_pair_bands: the fit over every position or at position 1, each as float32
rounds it), each with thresholds measured the same way from legitimate pairs outside those bands
(rounded otherwise, float64 inputs, one thread, at both positions) and wrong ones (no layernorm
fit, another layer's fit, another head, coefficients untransposed). Booleans, names and the
random item are compared exactly or statistically, and the table says so. tests/test_tolerances.py checks the margins on both models.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch as t

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.catalogue import EXERCISES  # noqa: E402
from grader.compare import _within, as_array, fit_predictions  # noqa: E402
from grader.inputs import InputFactory  # noqa: E402
from grader.protocol import decode, encode  # noqa: E402
from grader.reference_results import _mark_undefined  # noqa: E402
from reference.model import DEFAULT_DATA, DEFAULT_WEIGHTS  # noqa: E402

COURSE = ROOT.parent / "shared" / "arena-1.5.1"
NOT_CALIBRATED = {
    "bool_list": "booleans: compared exactly",
    "bool_tensors": "booleans: compared exactly",
    "str_pair": "hook names: compared exactly",
    "mean_sq_cos": "random: judged by a confidence interval around 1/d (6 standard errors)",
}


def models() -> dict[str, tuple[str, str]]:
    out = {"ours": (str(DEFAULT_WEIGHTS), str(DEFAULT_DATA))}
    if (COURSE / "brackets_model_state_dict.pt").exists():
        out["course"] = (str(COURSE / "brackets_model_state_dict.pt"), str(COURSE / "brackets_data.json"))
    return out


def namespace_with(variant: str | None) -> dict:
    import reference.solutions as sol

    ns = dict(vars(sol))
    ns["_reference_get_ln_fit"] = sol.get_ln_fit  # for variants that get the fit right and r2 wrong
    if variant:
        exec(compile(variant, "<variant>", "exec"), ns)  # noqa: S102 - our own variants
    return ns


def flatten(value) -> list[np.ndarray]:
    """Numeric parts of an answer, in a fixed order."""
    value = decode(encode(value))
    if isinstance(value, (tuple, list)):
        return [as_array(v) for v in value]
    if hasattr(value, "entries") or isinstance(value, dict):
        entries = value.entries if hasattr(value, "entries") else value
        return [as_array(entries[k]) for k in sorted(entries)]
    return [as_array(value)]


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b| over the elements where b is defined (not NaN)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    defined = ~np.isnan(b)
    if not defined.any():
        return 0.0
    a, b = a[defined], b[defined]
    if not np.all(np.isfinite(a)):
        return math.inf
    scale = float(np.abs(b).max())
    diff = float(np.abs(a - b).max())
    return diff / scale if scale else diff


def discrepancy(got, expected) -> float:
    try:
        g, e = flatten(got), flatten(expected)
    except Exception:
        return math.inf
    if len(g) != len(e) or any(a.shape != b.shape for a, b in zip(g, e)):
        return math.inf
    return max((relative(a, b) for a, b in zip(g, e)), default=0.0)


def fit_discrepancy(got, expected) -> tuple[float, float]:
    """As the grader judges a fit: (its predictions' distance from the band of right predictions
    on the LayerNorm's real inputs, its r2's distance from r2's range of right values: both from
    grader.right_values.expected_fit)."""
    _, r2_e, probe, others, band = expected
    try:
        fit_g, r2_g = got
        right = [float(r2_e), *others]  # anything between the smallest and the largest is right
        return (relative(*_within(fit_predictions(probe, fit_g.coef_, fit_g.intercept_), band)),
                max(min(right) - float(r2_g), float(r2_g) - max(right), 0.0))
    except Exception:
        return math.inf, math.inf


def call(ns: dict, item: str, factory: InputFactory, case, double: bool = False):
    args, kwargs = factory.build(list(case.args), case.kwargs)
    if double:
        args = [a.to(t.float64) if hasattr(a, "cfg") else a for a in args]
        args = [a.double() if isinstance(a, t.Tensor) and a.is_floating_point() else a for a in args]
    with t.inference_mode():
        return ns[item](*args, **kwargs)


def expected_value(ex, reference: dict, factory: InputFactory, case):
    args, kwargs = factory.build(list(case.args), case.kwargs)
    with t.inference_mode():
        return _mark_undefined(ex, args, reference[ex.id](*args, **kwargs))


def measure_item(ex, factory: InputFactory) -> dict:
    """One model's evidence for one function item."""
    from variants import ALTERNATIVE, MORE_CORRECT, MORE_WRONG, R2_WRONG, WRONG

    reference = namespace_with(None)
    correct = [namespace_with(v) for v in [ALTERNATIVE[ex.id], *MORE_CORRECT.get(ex.id, [])]]
    wrong = [namespace_with(v) for v in [WRONG[ex.id], *MORE_WRONG.get(ex.id, [])]]
    r2_only = [namespace_with(v) for v in R2_WRONG.get(ex.id, [])]
    linfit = ex.expect == "linfit"
    correct_max = [0.0, 0.0]  # predictions (or values), r2
    wrong_worst = [[0.0, 0.0] for _ in wrong + r2_only]  # a wrong variant fails the item if it fails any case
    for case in ex.cases:
        t.set_num_threads(2)
        if linfit:
            from grader.right_values import expected_fit

            expected = expected_fit(reference[ex.id], case.to_json(), factory)
            measure = fit_discrepancy
        else:
            expected = expected_value(ex, reference, factory, case)
            measure = lambda g, e: (discrepancy(g, e), 0.0)  # noqa: E731
        candidates = [call(ns, ex.id, factory, case) for ns in correct]
        try:
            candidates.append(call(reference, ex.id, factory, case, double=True))
        except Exception:
            pass  # some formulations do not run in float64 (sklearn keeps float64 anyway)
        t.set_num_threads(1)
        candidates.append(call(reference, ex.id, factory, case))
        t.set_num_threads(2)
        for c in candidates:
            correct_max = [max(a, b) for a, b in zip(correct_max, measure(c, expected))]
        for i, ns in enumerate(wrong + r2_only):
            try:
                got = measure(call(ns, ex.id, factory, case), expected)
            except Exception:
                got = (math.inf, math.inf)  # it crashes: caught as an error, whatever the tolerance
            wrong_worst[i] = [max(a, b) for a, b in zip(wrong_worst[i], got)]
    out = {"max_correct": correct_max[0], "min_wrong": min(w[0] for w in wrong_worst[:len(wrong)])}
    if linfit:  # r2 on its own: the fits that are right but say a wrong r2
        out["r2_max_correct"] = correct_max[1]
        out["r2_min_wrong"] = min((w[1] for w in wrong_worst[len(wrong):]), default=math.inf)
    return out


# ---------------------------------------------------------------- object items 9 and 14

def object_values(item: str, model, data) -> tuple:
    """(the reference object, correct formulations, wrong ones), computed from `model` and `data`
    as a student's cell computes them: the reference in float32 (what the grader expects), the
    reference in float64 and on one thread, and the variants of tests/variants.py."""
    from variants import ALTERNATIVE, MORE_CORRECT, MORE_WRONG, WRONG

    def assigned(code: str | None, double: bool = False):
        """The object as the cell assigns it (discrepancy() reads it as the grader does)."""
        ns = namespace_with(None)
        try:
            ns.update(model=model.to(t.float64) if double else model, data=data)
            exec(compile(code or f"{item} = compute_{item}(model, data)", "<object>", "exec"), ns)  # noqa: S102
            return ns[item]
        finally:
            if double:
                model.to(t.float32)

    with t.inference_mode():
        expected = assigned(None)
        t.set_num_threads(1)
        correct = [assigned(None)]
        t.set_num_threads(2)
        correct += [assigned(None, double=True)] + [assigned(v) for v in [ALTERNATIVE[item], *MORE_CORRECT.get(item, [])]]
        wrong = [assigned(v) for v in [WRONG[item], *MORE_WRONG.get(item, [])]]
    return expected, correct, wrong


def measure_object(item: str, weights: str, data_path: str) -> dict:
    """One model's evidence for an object item, on what submissions run on first (1,000 examples)
    and on the course's size (5,000)."""
    from reference.brackets import BracketsDataset
    from reference.model import load_data_tuples, load_model

    model = load_model(weights)
    correct, wrong = 0.0, math.inf
    for n in (1000, 5000):
        expected, right, wrongs = object_values(item, model, BracketsDataset(load_data_tuples(data_path)[:n]))
        correct = max([correct, *(discrepancy(c, expected) for c in right)])
        wrong = min([wrong, *(discrepancy(w, expected) for w in wrongs)])
    return {"max_correct": correct, "min_wrong": wrong}


# ---------------------------------------------------------------- v_L and v_R

def v_pairs(model, data) -> tuple[np.ndarray, dict[str, tuple], dict[str, tuple]]:
    """(the bands of right pairs, legitimate pairs, wrong pairs), each pair (v_L, v_R) as float64
    arrays. The legitimate ones are not in the bands: fits rounded otherwise (other seeds than the
    bands'), on float64 inputs, on one thread."""
    import reference.solutions as sol
    from reference.brackets import SimpleTokenizer
    from grader.right_values import v_pair_bands
    from variants import MORE_CORRECT, PERTURBED_FIT

    tok = SimpleTokenizer("()")
    moved = lambda seed: namespace_with(PERTURBED_FIT.replace("SEED", str(seed)))["get_ln_fit"]  # noqa: E731
    float64_inputs = namespace_with(MORE_CORRECT["get_ln_fit"][0])["get_ln_fit"]

    def through(layernorm, seq_pos, layer=0, head=0, transpose=True, fit=True, get_ln_fit=sol.get_ln_fit):
        W_OV = sol.get_WOV(model, layer, head)
        if fit:
            coefs = t.from_numpy(get_ln_fit(model, data, layernorm(model), seq_pos)[0].coef_).to(W_OV)
            mapping = (coefs.T if transpose else coefs) @ W_OV
        else:
            mapping = W_OV
        return tuple((sol.embedding(model, tok, c).to(mapping) @ mapping).double().numpy() for c in "()")

    ln1 = lambda layer: (lambda m: m.blocks[layer].ln1)  # noqa: E731
    with t.inference_mode():
        bands = v_pair_bands(model, data)
        t.set_num_threads(1)
        one_thread = through(ln1(0), None)
        t.set_num_threads(2)
        legit = {"one thread": one_thread, "float64 inputs": through(ln1(0), None, get_ln_fit=float64_inputs),
                 "fit at position 1, float64 inputs": through(ln1(0), 1, get_ln_fit=float64_inputs)}
        for seed in (2023, 2024):
            legit[f"rounded otherwise ({seed})"] = through(ln1(0), None, get_ln_fit=moved(seed))
            legit[f"fit at position 1 (where head 0.0 writes), rounded otherwise ({seed})"] = \
                through(ln1(0), 1, get_ln_fit=moved(seed))
        wrong = {"no layernorm fit": through(ln1(0), None, fit=False),
                 "layer 1's ln1 fit": through(ln1(1), None),
                 "head 0.1": through(ln1(0), None, head=1),
                 "coefficients not transposed": through(ln1(0), None, transpose=False)}
    return bands, legit, wrong


def direction_and_size(pair, bands, wrong: bool = False) -> tuple[float, float]:
    """The pair (v_L and v_R together) against the right pairs nearest to it, as
    grader.compare.direction_pair judges it: (1 - cosine, |log of the norm ratio|). A legitimate
    pair is measured against the one band it comes nearest; a wrong one, on each count, against
    whichever band it comes nearest on that count."""
    from grader.compare import nearest_band

    g = np.concatenate(pair)
    if not wrong:
        d, s = nearest_band(g, bands)
        return d, abs(s)
    each = [nearest_band(g, band[None]) for band in bands]
    return min(d for d, _ in each), min(abs(s) for _, s in each)


def measure_v(weights: str, data_path: str) -> dict:
    from reference.brackets import BracketsDataset
    from reference.model import load_data_tuples, load_model

    model = load_model(weights)
    out = {}
    for n in (1000, 5000):  # what submissions run on first, and the course's size
        data = BracketsDataset(load_data_tuples(data_path)[:n])
        bands, legit, wrong = v_pairs(model, data)
        out[n] = {"legit": {k: direction_and_size(v, bands) for k, v in legit.items()},
                  "wrong": {k: direction_and_size(v, bands, wrong=True) for k, v in wrong.items()}}
    return out


def v_thresholds(evidence: dict) -> dict:
    """Direction and size thresholds from every model's and size's evidence. Each wrong pair is left
    to the criterion it is farther off by (as a multiple of the legitimate pairs' largest value on
    that count); each threshold lies halfway (log scale) between the legitimate pairs' largest value
    and the nearest wrong pair left to it. A wrong pair inside the legitimate spread on both counts
    cannot be told from a right one on that model; it is listed, not used."""
    legit = [m for per_model in evidence.values() for per_n in per_model.values() for m in per_n["legit"].values()]
    d_ok, s_ok = max(max(d for d, _ in legit), 1e-9), max(max(s for _, s in legit), 1e-9)
    by_direction, by_size, alike = [], [], []
    for model, per_model in evidence.items():
        for n, per_n in per_model.items():
            for k, (d, s) in per_n["wrong"].items():
                if d <= d_ok and s <= s_ok:
                    alike.append(f"{model} {n}: {k}")
                else:
                    (by_direction if d / d_ok >= s / s_ok else by_size).append(d if d / d_ok >= s / s_ok else s)
    d_min, s_min = min(by_direction, default=math.inf), min(by_size, default=math.inf)
    direction = math.sqrt(d_ok * d_min) if math.isfinite(d_min) else 10 * d_ok
    size = math.sqrt(s_ok * s_min) if math.isfinite(s_min) else 10 * s_ok
    g = lambda x: float(f"{x:.3g}") if math.isfinite(x) else None  # noqa: E731
    return {"direction": g(direction), "size": g(size), "direction_max_correct": g(d_ok), "direction_min_wrong": g(d_min),
            "size_max_correct": g(s_ok), "size_min_wrong": g(s_min),
            "margin_direction": g(min(direction / d_ok, d_min / direction)),
            "margin_size": g(min(size / s_ok, s_min / size)), "indistinguishable": sorted(alike)}


def _row(rtol: float, evidence: dict[str, dict]) -> dict:
    correct = max(e["max_correct"] for e in evidence.values())
    wrong = min(e["min_wrong"] for e in evidence.values())
    per_model = {name: {"max_correct": float(f"{e['max_correct']:.3g}"),
                        "min_wrong": float(f"{e['min_wrong']:.3g}") if math.isfinite(e["min_wrong"]) else None,
                        "margin_correct": float(f"{rtol / max(e['max_correct'], 1e-9):.3g}"),
                        "margin_wrong": float(f"{e['min_wrong'] / rtol:.3g}") if math.isfinite(e["min_wrong"]) else None}
                 for name, e in evidence.items()}
    return {"calibrated": True, "rtol": float(f"{rtol:.3g}"), "max_correct": float(f"{correct:.3g}"),
            "min_wrong": float(f"{wrong:.3g}") if math.isfinite(wrong) else None,
            "margin_correct": float(f"{rtol / max(correct, 1e-9):.3g}"),
            "margin_wrong": float(f"{wrong / rtol:.3g}") if math.isfinite(wrong) else None, "models": per_model,
            "reason": "halfway (log scale) between the largest correct and the smallest wrong discrepancy, over both models"}


def _tolerance(evidence: dict[str, dict]) -> float:
    correct = max(e["max_correct"] for e in evidence.values())
    wrong = min(e["min_wrong"] for e in evidence.values())
    return math.sqrt(max(correct, 1e-9) * wrong) if math.isfinite(wrong) else max(correct, 1e-9) * 100


def calibrate(device: str, only: set[str] | None = None) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    factories = {name: InputFactory(w, d, device) for name, (w, d) in models().items()}
    table = {}
    for ex in EXERCISES:
        if only and ex.id not in only:
            continue
        if ex.kind == "object" and ex.expect == "tensor":
            evidence = {name: measure_object(ex.id, w, d) for name, (w, d) in models().items()}
            table[ex.id] = _row(_tolerance(evidence), evidence)
            print(ex.id, table[ex.id], flush=True)
            continue
        if ex.kind != "function":
            continue
        if ex.expect in NOT_CALIBRATED:
            table[ex.id] = {"calibrated": False, "reason": NOT_CALIBRATED[ex.expect]}
            continue
        evidence = {name: measure_item(ex, f) for name, f in factories.items()}
        table[ex.id] = _row(_tolerance(evidence), evidence)
        if ex.expect == "linfit":
            r2_ok = max(e["r2_max_correct"] for e in evidence.values())
            r2_wrong = min(e["r2_min_wrong"] for e in evidence.values())
            r2_tol = math.sqrt(max(r2_ok, 1e-9) * r2_wrong) if math.isfinite(r2_wrong) else 10 * max(r2_ok, 1e-9)
            table[ex.id].update({"r2_atol": float(f"{r2_tol:.3g}"), "r2_max_correct": float(f"{r2_ok:.3g}"),
                                 "r2_min_wrong": float(f"{r2_wrong:.3g}") if math.isfinite(r2_wrong) else None,
                                 "r2_models": {name: {"max_correct": float(f"{e['r2_max_correct']:.3g}"),
                                                      "min_wrong": float(f"{e['r2_min_wrong']:.3g}")}
                                               for name, e in evidence.items()}})
        print(ex.id, table[ex.id], flush=True)
    if only and "v_L_v_R" not in only:
        return table
    evidence = {name: measure_v(w, d) for name, (w, d) in models().items()}
    table["v_L_v_R"] = {"calibrated": True, "pair": v_thresholds(evidence),
                        "evidence": {name: {str(n): v for n, v in per.items()} for name, per in evidence.items()},
                        "reason": "direction (1 - cosine) and size (|log norm ratio|) of v_L and v_R against the "
                                  "reference, each halfway (log scale) between legitimate fits and wrong ones"}
    print("v_L_v_R", table["v_L_v_R"]["pair"], flush=True)
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(ROOT / "grader" / "tolerances.json"))
    p.add_argument("--only", default="", help="comma-separated items to measure again; the others keep their rows")
    a = p.parse_args()
    t.set_grad_enabled(False)
    only = set(filter(None, a.only.split(",")))
    table = calibrate(a.device, only)
    if only:  # measured again: these rows; the rest as they were
        table = {**json.loads(Path(a.out).read_text())["items"], **table}
        table = {ex.id: table[ex.id] for ex in EXERCISES if ex.id in table}
    Path(a.out).write_text(json.dumps({"device": a.device, "models": sorted(models()), "items": table}, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
