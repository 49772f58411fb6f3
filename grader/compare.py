"""Compare a decoded answer with the reference's, in the trusted process.

Each comparator takes (got, expected, tolerance) as decoded plain data and returns None when the
answer is right, or a Difference (grader.results): what differs in words (type, shape, how many
elements and by how much), the kind of difference, and the id of a likely cause when it matches a
known mistake (grader.mistakes). The words never quote the expected values, which a student could
paste back.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from grader.catalogue import Tolerance
from grader.mistakes import likely_cause
from grader.protocol import Cache, LinearFit, Opaque, Scalar
from grader.results import Difference

Comparator = Callable[[Any, Any, Tolerance], "Difference | None"]


class WrongType(Exception):
    pass


def describe_type(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {list(value.shape)} ({value.dtype})"
    if isinstance(value, Opaque):
        return f"a {value.type} object"
    if isinstance(value, Cache):
        return "an ActivationCache"
    if isinstance(value, LinearFit):
        return "a LinearRegression"
    if isinstance(value, Scalar):
        return f"a numpy {value.dtype}"
    return f"a {type(value).__name__}"


def as_array(value: Any, what: str = "a tensor") -> np.ndarray:
    """Tensors, numpy arrays, numpy scalars, numbers and (nested) lists of numbers as an array."""
    if isinstance(value, Scalar):
        value = value.value
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (bool, int, float)):
        return np.asarray(value)
    if isinstance(value, (list, tuple)):
        try:
            parts = [as_array(v, what) for v in value]
            return np.stack(parts) if parts else np.zeros((0,))
        except (WrongType, ValueError):
            raise WrongType(f"expected {what}, got a list that is not a regular array of numbers") from None
    raise WrongType(f"expected {what}, got {describe_type(value)}")


def compare_arrays(got: Any, expected: np.ndarray, tol: Tolerance, what: str = "tensor") -> Difference | None:
    try:
        g = as_array(got, f"a {what}")
    except WrongType as e:
        return Difference(str(e), "type")
    if g.dtype.kind not in "biuf":
        return Difference(f"expected a numeric {what}, got dtype {g.dtype}", "type")
    if g.shape != expected.shape:
        hint = ""
        if sorted(g.shape) == sorted(expected.shape):
            hint = " (the same sizes in another order: check your rearrange/transpose)"
        elif g.size == expected.size:
            hint = " (the same number of elements: check squeeze/reshape)"
        return Difference(f"wrong shape: expected {list(expected.shape)}, got {list(g.shape)}{hint}", "shape")
    if expected.dtype == np.bool_:
        if g.dtype.kind == "f" and not np.all(np.isin(g, (0.0, 1.0))):
            return Difference(f"expected booleans, got floats that are not 0 or 1 ({g.dtype})", "type")
        wrong = np.asarray(g).astype(bool) != expected
        n = int(wrong.sum())
        if n:
            first = np.argwhere(wrong)[0].tolist()
            return Difference(f"{n} of {expected.size} values are wrong (first at index {first})")
        return None
    g64, e64 = g.astype(np.float64), expected.astype(np.float64)
    # NaN in the answer marks an element whose value is undefined (the cosine with a dead neuron's
    # all-zero weights): whatever is there is not judged, and it does not set the scale
    undefined = np.isnan(e64)
    if undefined.all() and e64.size:
        return None
    if undefined.any():
        g64, e64 = np.where(undefined, 0.0, g64), np.where(undefined, 0.0, e64)
    if not np.all(np.isfinite(g64)):
        return Difference(f"contains {int((~np.isfinite(g64)).sum())} NaN or infinite values where the answer has "
                          "numbers", "nonfinite")
    scale = float(np.abs(e64).max()) if e64.size else 0.0
    bound = tol.atol + tol.rtol * scale

    def close(candidate: np.ndarray) -> bool:
        return bool(np.all(np.abs(g64 - candidate.astype(np.float64)) <= bound))

    diff = np.abs(g64 - e64)
    bad = diff > bound
    n = int(bad.sum())
    if not n:
        return None
    first = np.argwhere(bad)[0].tolist() if e64.ndim else []
    where = f" (first at index {first})" if first else ""
    return Difference(f"{n} of {e64.size} elements differ{where}; largest difference {diff.max():.3g} "
                      f"(allowed {bound:.2g})", "values", likely_cause(g64, e64, close))


def tensor(got: Any, expected: Any, tol: Tolerance) -> Difference | None:
    return compare_arrays(got, expected, tol)


def within(prefix: str, d: Difference, cause: str | None = None) -> Difference:
    """A part's difference as the whole's: its words after `prefix`, its cause unless another is given."""
    return Difference(f"{prefix}{d.detail}", d.category, d.cause if cause is None else cause)


def bool_value(got: Any, expected: bool) -> str | None:
    if isinstance(got, Scalar):
        got = got.value
    if isinstance(got, np.ndarray) and got.size == 1 and got.dtype.kind in "biu":
        got = bool(got.reshape(()))
    if isinstance(got, int) and got in (0, 1):
        got = bool(got)
    if not isinstance(got, bool):
        return f"expected a bool, got {describe_type(got)}"
    return None if got == expected else "wrong"


def bool_list(got: Any, expected: list, tol: Tolerance) -> Difference | None:
    if not isinstance(got, list) or len(got) != len(expected):
        return Difference("internal: the worker did not return one answer per call", "length")
    wrong, kinds = 0, []
    for g, e in zip(got, expected):
        problem = bool_value(g, e)
        if problem:
            wrong += 1
            if problem != "wrong":
                kinds.append(problem)
    if not wrong:
        return None
    if kinds:
        return Difference(kinds[0], "type")
    return Difference(f"wrong on {wrong} of {len(expected)} inputs")


def _pair(got: Any, n: int, what: str) -> tuple | Difference:
    if not isinstance(got, (tuple, list)):
        return Difference(f"expected a tuple of {n} ({what}), got {describe_type(got)}", "type")
    if len(got) != n:
        return Difference(f"expected a tuple of {n} ({what}), got {len(got)} values", "length")
    return tuple(got)


def _swapped(pair: tuple, expected: tuple, tol: Tolerance) -> bool:
    try:
        return all(compare_arrays(x, y, tol) is None for x, y in zip(pair, reversed(expected)))
    except Exception:
        return False


def tensor_pair(got: Any, expected: tuple, tol: Tolerance) -> Difference | None:
    pair = _pair(got, 2, "two tensors")
    if isinstance(pair, Difference):
        return pair
    for i, (g, e) in enumerate(zip(pair, expected)):
        problem = compare_arrays(g, e, tol)
        if problem:
            return within(f"{('first', 'second')[i]} tensor: ", problem,
                          "outputs_swapped" if _swapped(pair, expected, tol) else None)
    return None


def _direction_and_size(g: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    norm_g, norm_e = float(np.linalg.norm(g)), float(np.linalg.norm(e))
    if norm_g == 0 or norm_e == 0:
        return (0.0, 0.0) if norm_g == norm_e else (1.0, math.inf)
    return 1 - float(g @ e) / (norm_g * norm_e), math.log(norm_g / norm_e)


def nearest_band(got: np.ndarray, bands: np.ndarray, tol: Tolerance | None = None) -> tuple[float, float]:
    """(1 - cosine, log of the norm ratio) of `got` against the right value nearest to it, element by
    element, in the band ([lowest, highest]) where it comes nearest to passing `tol` (without one:
    where 1 - cosine plus |log ratio| is least)."""
    best, found = math.inf, (1.0, math.inf)
    for low, high in np.asarray(bands, np.float64):
        off, scale = _direction_and_size(got, np.clip(got, low, high))
        score = max(off / tol.direction, abs(scale) / tol.size) if tol and tol.direction and tol.size else off + abs(scale)
        if score < best:
            best, found = score, (off, scale)
    return found


def direction_pair(got: Any, expected: tuple, tol: Tolerance) -> Difference | None:
    """Two vectors judged together by direction and size (v_L and v_R): the pair, as one vector,
    must point the way a right pair does (1 - cosine within `tol.direction`) and have its size
    (|log of the norm ratio| within `tol.size`). `expected` is the reference pair, and may hold
    bands of right pairs third (grader.right_values.v_pair_bands): a fit of the layernorm over all
    positions and one at position 1 are both right, and float32 rounding moves each."""
    expected, bands = tuple(expected[:2]), (expected[2] if len(expected) > 2 else None)
    pair = _pair(got, 2, "two vectors")
    if isinstance(pair, Difference):
        return pair
    try:
        parts = [as_array(v, "a vector").astype(np.float64) for v in pair]
    except WrongType as e:
        return Difference(str(e), "type")
    for i, (g, e) in enumerate(zip(parts, expected)):
        if g.shape != e.shape:
            return Difference(f"{('first', 'second')[i]} vector: wrong shape: expected {list(e.shape)}, got "
                              f"{list(g.shape)}", "shape")
        if not np.all(np.isfinite(g)):
            return Difference(f"{('first', 'second')[i]} vector contains NaN or infinite values", "nonfinite")

    if bands is None:  # the reference pair alone: a band with nothing inside it
        ref = np.concatenate([np.asarray(e, np.float64) for e in expected])
        bands = [(ref, ref)]
    off, scale = nearest_band(np.concatenate(parts), bands, tol)
    if off <= tol.direction and abs(scale) <= tol.size:
        return None
    swapped = nearest_band(np.concatenate(parts[::-1]), bands, tol)
    cause = "outputs_swapped" if swapped[0] <= tol.direction and abs(swapped[1]) <= tol.size else ""
    if off > tol.direction:
        each = [_direction_and_size(g, np.asarray(e, np.float64))[0] for g, e in zip(parts, expected)]
        worst = int(np.argmax(each))
        if not cause and each[worst] > 1.9:  # that vector points the opposite way
            cause = "sign_flipped"
        return Difference(f"{('first', 'second')[worst]} vector: points in another direction than the right one "
                          f"(cosine {1 - each[worst]:.3f}); the pair together: cosine {1 - off:.5f} with the nearest "
                          f"right pair, at least {1 - tol.direction:.5f} needed", "values", cause)
    return Difference(f"the pair points the right way but is {math.exp(scale):.2f} times the size of the nearest "
                      f"right pair (within {100 * math.expm1(tol.size):.2g}% of it needed): is the layernorm's fit "
                      "left out, or taken from another layer?", "values", cause)


def bool_tensors(got: Any, expected: tuple, tol: Tolerance) -> Difference | None:
    pair = _pair(got, 2, "total_elevation_failure, negative_failure")
    if isinstance(pair, Difference):
        return pair
    for name, g, e in zip(("total_elevation_failure", "negative_failure"), pair, expected):
        problem = compare_arrays(g, e, tol, "bool tensor")
        if problem:
            other = expected[1] if name == "total_elevation_failure" else expected[0]
            try:
                swapped = compare_arrays(g, other, tol) is None
            except Exception:
                swapped = False
            return within(f"{name}: ", problem, "outputs_swapped" if swapped else None)
    return None


def str_pair(got: Any, expected: tuple, tol: Tolerance) -> Difference | None:
    pair = _pair(got, 2, "input hook name, output hook name")
    if isinstance(pair, Difference):
        return pair
    if not all(isinstance(s, str) for s in pair):
        return Difference("expected two strings", "type")
    if pair == tuple(expected):
        return None
    if pair == tuple(reversed(expected)):
        return Difference("", "names", "names_reversed")
    wrong = [("input", "output")[i] for i in range(2) if pair[i] != expected[i]]
    return Difference(f"the {' and '.join(wrong)} hook name is wrong", "names")


def cache(got: Any, expected: Any, tol: Tolerance) -> Difference | None:
    """An ActivationCache, a dict, or (for one name) a tensor: every asked-for name must match."""
    if isinstance(expected, np.ndarray):  # one name asked: a tensor (or a cache holding it)
        if isinstance(got, (Cache, dict)):
            entries = got.entries if isinstance(got, Cache) else got
            if len(entries) != 1:
                return Difference("given one name, return that activation (a tensor)", "type")
            got = next(iter(entries.values()))
        return compare_arrays(got, expected, tol)
    if not isinstance(got, (Cache, dict)):
        return Difference(f"expected an ActivationCache (or dict of activations), got {describe_type(got)}", "type")
    entries = got.entries if isinstance(got, Cache) else got
    for name, value in expected.entries.items():
        if name not in entries:
            return Difference(f"the cache has no entry {name!r}", "names")
        problem = compare_arrays(entries[name], value, tol)
        if problem:
            return within(f"{name}: ", problem)
    return None


def linfit(got: Any, expected: tuple, tol: Tolerance) -> tuple[Difference | None, list[str]]:
    """(LinearRegression, r2). The fit is judged by what it predicts on the LayerNorm's real inputs
    (coef_ and intercept_ together; coef_ alone is not unique where the inputs span fewer dimensions
    than d_model), and r2 on its own. Returns the message and the parts that failed."""
    pair = _pair(got, 2, "fit, r2")
    if isinstance(pair, Difference):
        return pair, ["fit", "r2"]
    fit, r2 = pair
    # r2's other right values and the band of right predictions, where known (right_values.expected_fit)
    e_fit, e_r2, probe, *others = expected
    if not isinstance(fit, LinearFit):
        return Difference(f"the first value should be a fitted LinearRegression, got {describe_type(fit)}", "type"), ["fit"]
    failed, problems, categories, causes = [], [], [], []
    try:
        coef, intercept = as_array(fit.coef), as_array(fit.intercept)
    except WrongType as e:
        coef = intercept = None
        failed.append("fit")
        problems.append(f"coef_/intercept_: {e}")
        categories.append("type")
    if coef is not None:
        if coef.shape != e_fit.coef.shape or intercept.shape != e_fit.intercept.shape:
            failed.append("fit")
            problems.append(f"coef_ should be {list(e_fit.coef.shape)} and intercept_ {list(e_fit.intercept.shape)}, "
                            f"got {list(coef.shape)} and {list(intercept.shape)}")
            categories.append("shape")
        else:
            if len(others) > 1:
                right = others[1]
            else:  # the reference fit alone: a band with nothing inside it
                right = (fit_predictions(probe, e_fit.coef, e_fit.intercept),) * 2
            problem = compare_arrays(*_within(fit_predictions(probe, coef, intercept), right), tol)
            if problem:
                if compare_arrays(*_within(fit_predictions(probe, coef.T, intercept), right), tol) is None:
                    problem = within("", problem, "coef_transposed")
                failed.append("fit")
                problems.append(f"the fit's predictions on the LayerNorm's inputs: {problem.detail}")
                categories.append(problem.category)
                causes.append(problem.cause)
    problem = compare_arrays(r2, np.asarray(_nearest(r2, [e_r2, *(others[0] if others else [])])),
                             Tolerance(tol.r2, 0.0, "r2"), "float")
    if problem:
        failed.append("r2")
        problems.append(f"r2: {problem.detail}")
        categories.append(problem.category)
        causes.append(problem.cause)
    if not problems:
        return None, failed
    return Difference("; ".join(problems), categories[0], next((c for c in causes if c), "")), failed


def fit_predictions(probe: np.ndarray, coef: Any, intercept: Any) -> np.ndarray:
    """What a linear fit predicts on the rows of `probe`, in float64."""
    return probe.astype(np.float64) @ np.asarray(coef, np.float64).T + np.asarray(intercept, np.float64)


def _within(got: np.ndarray, band: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(got, the right value nearest to it element by element) for a band (lowest, highest)
    anything inside which is right."""
    low, high = (np.asarray(r, np.float64) for r in band)
    if got.shape != low.shape:
        return got, low
    return got, np.where(np.isfinite(got), np.clip(got, low, high), low)  # NaN is not "undefined" here


def _nearest(got: Any, right: list) -> Any:
    """The right value nearest to a student's number, where anything between the smallest and the
    largest right value is right (the first right value when theirs is not a number)."""
    right = [float(r) for r in right if np.isfinite(r)] or right[:1]
    try:
        value = float(as_array(got, "a float"))
    except (WrongType, TypeError, ValueError, OverflowError):
        return right[0]
    if not np.isfinite(value):
        return right[0]
    return min(max(value, min(right)), max(right))


EXACTLY = 1e-7  # relative: float32's rounding of 1/d, well inside the spread of any estimate (3% at 2,000 samples)


def mean_sq_cos(got: Any, expected: dict, tol: Tolerance) -> Difference | None:
    """Random answer: within 6 standard errors of the exact expectation 1/d for n samples."""
    try:
        array = as_array(got, "a float")
        if array.dtype.kind not in "biuf" or array.size != 1:
            raise WrongType
        value = float(array.reshape(()))
    except (WrongType, ValueError, TypeError, OverflowError):
        return Difference(f"expected a float, got {describe_type(got)}", "type")
    if not np.isfinite(value):
        return Difference(f"{value} is not a finite number", "nonfinite")
    d, n = expected["d"], expected["n"]
    mean = 1.0 / d
    std = np.sqrt(2.0 * (d - 1) / (d * d * (d + 2)) / n)
    if abs(value - mean) <= EXACTLY * mean:  # 1/d in float32 or float64: an estimate lands there about once in a million
        return Difference(f"{value:.7g} is 1/d itself, the expectation, not an estimate from n_samples={n} random "
                          "vectors", "range", "expectation_written_in")
    if abs(value - mean) <= 6 * std:
        return None
    cause = ""
    if abs(value - 1.0) < 0.2:
        cause = "not_normalised"
    elif abs(value * n - 1) < 0.3 or abs(value - mean * n) < mean * n * 0.2:
        cause = "sum_not_mean"
    elif abs(value) < 6 * std and mean > 6 * std:
        cause = "not_squared"
    return Difference(f"{value:.4g} is not within the statistical range expected for d={d}, n_samples={n}", "range", cause)


COMPARATORS: dict[str, Comparator] = {
    "tensor": tensor,
    "bool_list": bool_list,
    "tensor_pair": tensor_pair,
    "direction_pair": direction_pair,
    "bool_tensors": bool_tensors,
    "str_pair": str_pair,
    "cache": cache,
    "mean_sq_cos": mean_sq_cos,
}
