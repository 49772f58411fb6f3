"""Measure every numeric item's tolerance instead of guessing it.

    python calibration/calibrate.py [--device cpu|cuda] [--out grader/tolerances.json]

For each function item whose answer is numeric, on every argument combination of the catalogue:
- correct formulations: the reference in float32 (the grader's expected answer), the reference
  in float64, the reference on one CPU thread, and the "written differently" variant students
  write (einsum for matmul, hook_z @ W_O for hook_result, numpy, ...);
- wrong formulations: the known mistakes in tests/variants.py.
It records the largest relative discrepancy of a correct formulation and the smallest of a wrong
one (|got - expected| / max|expected|), and writes the tolerance halfway between them on a log
scale, with both margins. A test fails when a margin is under 10x. Booleans, names and the random
item are compared exactly or statistically, and the table says so.
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
from grader.compare import as_array  # noqa: E402
from grader.inputs import InputFactory  # noqa: E402
from grader.protocol import LinearFit, decode, encode  # noqa: E402
from reference.model import DEFAULT_DATA, DEFAULT_WEIGHTS  # noqa: E402

NOT_CALIBRATED = {
    "bool_list": "booleans: compared exactly",
    "bool_tensors": "booleans: compared exactly",
    "str_pair": "hook names: compared exactly",
    "mean_sq_cos": "random: judged by a confidence interval around 1/d (6 standard errors)",
}


def namespace_with(variant: str | None) -> dict:
    import reference.solutions as sol

    ns = dict(vars(sol))
    if variant:
        exec(compile(variant, "<variant>", "exec"), ns)  # noqa: S102 - our own variants
    return ns


def flatten(value) -> list[np.ndarray]:
    """Numeric parts of an answer, in a fixed order (a fit becomes its predictions' inputs)."""
    value = decode(encode(value))
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], LinearFit):
        return [as_array(value[0].coef), as_array(value[0].intercept), np.asarray(float(value[1]))]
    if isinstance(value, (tuple, list)):
        return [as_array(v) for v in value]
    if hasattr(value, "entries") or isinstance(value, dict):
        entries = value.entries if hasattr(value, "entries") else value
        return [as_array(entries[k]) for k in sorted(entries)]
    return [as_array(value)]


def discrepancy(got, expected) -> float:
    try:
        g, e = flatten(got), flatten(expected)
    except Exception:
        return math.inf
    if len(g) != len(e) or any(a.shape != b.shape for a, b in zip(g, e)):
        return math.inf
    worst = 0.0
    for a, b in zip(g, e):
        scale = float(np.abs(b).max()) if b.size else 0.0
        diff = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if b.size else 0.0
        worst = max(worst, diff / scale if scale else diff)
    return worst


def fit_discrepancy(got, expected) -> float:
    """As the grader judges a fit: its predictions on the LayerNorm's real inputs, and its r2."""
    fit_e, r2_e, probe = expected
    try:
        fit_g, r2_g = got
        pred = lambda f: probe.astype(np.float64) @ np.asarray(f.coef_, np.float64).T + np.asarray(f.intercept_, np.float64)  # noqa: E731
        e = pred(fit_e)
        return max(float(np.abs(pred(fit_g) - e).max() / np.abs(e).max()), abs(float(r2_g) - float(r2_e)))
    except Exception:
        return math.inf


def call(ns: dict, item: str, factory: InputFactory, case, double: bool = False):
    args, kwargs = factory.build(list(case.args), case.kwargs)
    if double:
        args = [a.to(t.float64) if hasattr(a, "cfg") else a for a in args]
        args = [a.double() if isinstance(a, t.Tensor) and a.is_floating_point() else a for a in args]
    with t.inference_mode():
        return ns[item](*args, **kwargs)


def calibrate(device: str) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from variants import ALTERNATIVE, WRONG

    factory = InputFactory(str(DEFAULT_WEIGHTS), str(DEFAULT_DATA), device)
    reference = namespace_with(None)
    table = {}
    for ex in EXERCISES:
        if ex.kind != "function":
            continue
        if ex.expect in NOT_CALIBRATED:
            table[ex.id] = {"calibrated": False, "reason": NOT_CALIBRATED[ex.expect]}
            continue
        correct_max, wrong_worst = 0.0, 0.0  # a wrong variant fails the item if it fails any case
        alternative, wrong = namespace_with(ALTERNATIVE[ex.id]), namespace_with(WRONG[ex.id])
        for case in ex.cases:
            t.set_num_threads(2)
            expected = call(reference, ex.id, factory, case)
            measure = discrepancy
            if ex.expect == "linfit":
                from grader.reference_results import _expected_fit

                fit, r2, probe = _expected_fit(reference[ex.id], case.to_json(), factory)
                expected, measure = (fit, r2, probe), fit_discrepancy
            candidates = [call(alternative, ex.id, factory, case)]
            try:
                candidates.append(call(reference, ex.id, factory, case, double=True))
            except Exception:
                pass  # some formulations do not run in float64 (sklearn keeps float64 anyway)
            t.set_num_threads(1)
            candidates.append(call(reference, ex.id, factory, case))
            t.set_num_threads(2)
            correct_max = max([correct_max] + [measure(c, expected) for c in candidates])
            try:
                wrong_worst = max(wrong_worst, measure(call(wrong, ex.id, factory, case), expected))
            except Exception:
                wrong_worst = math.inf  # it crashes: caught as an error, whatever the tolerance
        wrong_min = wrong_worst
        rtol = math.sqrt(max(correct_max, 1e-9) * wrong_min) if math.isfinite(wrong_min) else max(correct_max, 1e-9) * 100
        table[ex.id] = {"calibrated": True, "rtol": float(f"{rtol:.3g}"), "max_correct": float(f"{correct_max:.3g}"),
                        "min_wrong": float(f"{wrong_min:.3g}") if math.isfinite(wrong_min) else None,
                        "margin_correct": float(f"{rtol / max(correct_max, 1e-9):.3g}"),
                        "margin_wrong": float(f"{wrong_min / rtol:.3g}") if math.isfinite(wrong_min) else None,
                        "reason": "halfway (log scale) between the largest correct and the smallest wrong discrepancy"}
        print(ex.id, table[ex.id], flush=True)
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(ROOT / "grader" / "tolerances.json"))
    a = p.parse_args()
    t.set_grad_enabled(False)
    table = calibrate(a.device)
    Path(a.out).write_text(json.dumps({"device": a.device, "items": table}, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
