"""Comparators on plain data: right answers in other forms pass, wrong ones say what differs."""
from __future__ import annotations

import re

import numpy as np

from grader import compare as comparators
from grader.catalogue import EXACT, FIT, MATMUL, Tolerance
from grader.feedback import difference_text
from grader.protocol import Cache, LinearFit, Opaque, Scalar
from grader.results import Difference


class _InWords:
    """The comparators, their Difference in the words the feedback gives it (grader.feedback)."""

    def __getattr__(self, name):
        fn = getattr(comparators, name)

        def said(value):
            return difference_text(value.detail, value.cause) if isinstance(value, Difference) else value

        def call(*args, **kwargs):
            out = fn(*args, **kwargs)
            return (said(out[0]), out[1]) if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], list) \
                else said(out)

        return call


compare = _InWords()

rng = np.random.default_rng(0)
E = rng.standard_normal((6, 5)).astype(np.float32)


def test_a_difference_carries_its_kind_and_likely_cause_as_fields():
    assert comparators.tensor(-E, E, MATMUL).cause == "sign_flipped"
    assert comparators.tensor(E[::-1], E, MATMUL).cause == "batch_reversed"
    shape = comparators.tensor(E.T, E, MATMUL)
    assert (shape.category, shape.cause) == ("shape", "")
    assert comparators.tensor(Opaque("Foo", "m"), E, MATMUL).category == "type"
    assert comparators.str_pair(("b", "a"), ("a", "b"), EXACT).cause == "names_reversed"
    swapped = comparators.bool_tensors((np.array([False, True]), np.array([True, False])),
                                       (np.array([True, False]), np.array([False, True])), EXACT)
    assert swapped.cause == "outputs_swapped" and swapped.detail.startswith("total_elevation_failure: ")


def test_float64_and_lists_pass():
    assert compare.tensor(E.astype(np.float64), E, MATMUL) is None
    assert compare.tensor(E.tolist(), E, MATMUL) is None
    assert compare.tensor(E + 1e-7, E, MATMUL) is None


def test_wrong_shape_says_expected_and_got():
    msg = compare.tensor(E.T, E, MATMUL)
    assert "wrong shape: expected [6, 5], got [5, 6]" in msg and "another order" in msg


def test_counts_elements_and_largest_difference():
    got = E.copy()
    got[2, 3] += 0.5
    msg = compare.tensor(got, E, MATMUL)
    assert msg.startswith("1 of 30 elements differ (first at index [2, 3])") and "0.5" in msg


def test_known_mistakes_are_named():
    assert "sign is flipped" in compare.tensor(-E, E, MATMUL)
    sq = rng.standard_normal((4, 4))
    assert "transposed" in compare.tensor(sq.T, sq, MATMUL)
    assert "batch order is reversed" in compare.tensor(E[::-1], E, MATMUL)
    assert "scaled differently" in compare.tensor(E * 2, E, MATMUL)


def test_no_expected_values_leak_into_messages():
    got = E + 1.0
    msg = compare.tensor(got, E, MATMUL)
    for v in E.reshape(-1)[:5]:
        assert f"{v:.3g}" not in msg.split("largest difference")[0]


def test_nan_and_non_numeric():
    bad = E.copy()
    bad[0, 0] = np.nan
    assert "NaN" in compare.tensor(bad, E, MATMUL)
    assert "got a Foo object" in compare.tensor(Opaque("Foo", "m"), E, MATMUL)


def test_undefined_elements_of_the_answer_are_not_judged_and_the_rest_still_is():
    """The course model has dead neurons: the cosine with an all-zero column of W_in is undefined
    (NaN in the answer). Whatever a submission puts there passes; every other element is judged."""
    expected = E[0].copy()
    expected[[1, 3]] = np.nan
    for there in (0.0, np.nan, 7.0):
        got = E[0].copy()
        got[[1, 3]] = there
        assert compare.tensor(got, expected, MATMUL) is None
    wrong = E[0] * 2
    assert "elements differ" in compare.tensor(wrong, expected, MATMUL)  # a NaN must not make every bound NaN
    nan_elsewhere = E[0].copy()
    nan_elsewhere[0] = np.nan
    assert "NaN" in compare.tensor(nan_elsewhere, expected, MATMUL)


def test_bools_accept_python_numpy_and_0d_tensors():
    assert compare.bool_list([True, Scalar("bool", False), np.array(True), 1], [True, False, True, True], EXACT) is None
    assert compare.bool_list([True, True], [True, False], EXACT) == "wrong on 1 of 2 inputs"
    assert "expected a bool" in compare.bool_list(["yes"], [True], EXACT)


def test_pairs_accept_lists_and_name_the_wrong_part():
    assert compare.str_pair(["a", "b"], ("a", "b"), EXACT) is None
    assert "wrong order" in compare.str_pair(("b", "a"), ("a", "b"), EXACT)
    assert compare.str_pair(("a", "c"), ("a", "b"), EXACT) == "the output hook name is wrong"
    assert "tuple of 2" in compare.tensor_pair(E, (E, E), MATMUL)


def test_bool_tensors_detects_swapped_outputs():
    a, b = np.array([True, False, False]), np.array([False, False, True])
    assert compare.bool_tensors((a.astype(int), b.tolist()), (a, b), EXACT) is None
    assert "swapped" in compare.bool_tensors((b, a), (a, b), EXACT)


def test_cache_accepts_dicts_and_extra_names():
    expected = Cache({"x": E})
    assert compare.cache({"x": E, "y": E}, expected, MATMUL) is None
    assert "no entry 'x'" in compare.cache(Cache({"y": E}), expected, MATMUL)
    assert compare.cache(Cache({"x": E}), E, MATMUL) is None  # one name: a cache holding just it is fine


def test_linfit_judges_predictions_and_r2():
    probe = rng.standard_normal((50, 5))
    coef = rng.standard_normal((5, 5))
    fit = LinearFit(coef, np.zeros(5))
    assert compare.linfit((fit, 0.99), (fit, 0.99, probe), FIT) == (None, [])
    msg, failed = compare.linfit((LinearFit(coef.T, np.zeros(5)), 0.5), (fit, 0.99, probe), FIT)
    assert failed == ["fit", "r2"] and "coef_ is transposed" in msg


def test_r2_is_right_anywhere_in_its_range_of_right_values_and_wrong_away_from_it():
    """Where a fit's inputs are ill-conditioned, float32 rounding moves r2 (the course model's
    blocks.0.ln2: 0.94949 here, 0.94857 in a worker): every r2 between the right values passes, a
    wrong r2 (the correlation r, 1 - r2, NaN, a string) is judged against the nearer end."""
    probe = rng.standard_normal((50, 5))
    fit = LinearFit(rng.standard_normal((5, 5)), np.zeros(5))
    tol = Tolerance(1e-12, 2e-3, "test", r2=2e-4)
    expected = (fit, 0.94949, probe, [0.94951, 0.94858, 0.94901])
    for right in (0.94949, 0.94857, 0.94900, 0.94970):
        assert compare.linfit((fit, right), expected, tol) == (None, []), right
    for wrong in (0.94830, 0.94949 ** 0.5, 1 - 0.94949, float("nan"), "r2", 10**400, [0.9, 0.9]):
        msg, failed = compare.linfit((fit, wrong), expected, tol)
        assert failed == ["r2"], (wrong, msg)
    assert compare.linfit((fit, 0.94900), expected[:3], tol)[1] == ["r2"]  # one right value known: only it
    assert compare.linfit((fit, 0.94949), (fit, 0.94949, probe, [float("nan")]), tol) == (None, [])
    assert compare.linfit((fit, 0.5), (fit, 0.94949, probe, [float("nan"), float("inf")]), tol)[1] == ["r2"]


def test_a_fits_predictions_are_right_anywhere_in_their_band_and_wrong_outside_it():
    """The band of right predictions (grader.right_values.expected_fit: the float32 fit, the float64
    model's and fits on inputs moved by rounding): inside it anything passes, though it is farther
    from the reference fit than the tolerance; outside it by more than the tolerance fails; NaN
    fails (it is not an "undefined" element); a transposed coef_ is named."""
    probe = rng.standard_normal((50, 5))
    coef = rng.standard_normal((5, 5))
    fit = LinearFit(coef, np.zeros(5))
    tol = Tolerance(1e-12, 1e-3, "test", r2=1e-4)
    right = compare.fit_predictions(probe, coef, np.zeros(5))
    width = 5e-3 * np.abs(right).max()  # 5x the tolerance
    expected = (fit, 0.9, probe, [0.9], (right - width, right + width))
    inside = LinearFit(coef, np.full(5, 0.8 * width))  # every prediction moved by 0.8 of the width
    assert compare.linfit((inside, 0.9), expected, tol) == (None, [])
    assert compare.linfit((inside, 0.9), expected[:4], tol)[1] == ["fit"]  # the reference fit alone: too far
    outside = LinearFit(coef, np.full(5, 3 * width))
    msg, failed = compare.linfit((outside, 0.9), expected, tol)
    assert failed == ["fit"] and "largest difference" in msg
    nan = LinearFit(np.where(np.eye(5, dtype=bool), np.nan, coef), np.zeros(5))
    assert compare.linfit((nan, 0.9), expected, tol)[1] == ["fit"]
    msg, failed = compare.linfit((LinearFit(coef.T, np.zeros(5)), 0.9), expected, tol)
    assert failed == ["fit"] and "coef_ is transposed" in msg


def test_avg_squared_cos_sim_is_judged_statistically():
    assert compare.mean_sq_cos(1 / 56 + 0.0005, {"d": 56, "n": 2000}, None) is None
    assert "not normalised" in compare.mean_sq_cos(1.0, {"d": 56, "n": 2000}, None)
    assert compare.mean_sq_cos(1 / 56, {"d": 20, "n": 2000}, None) is not None


def test_a_pair_is_judged_by_direction_and_size_against_the_nearest_right_pair():
    """v_L and v_R: a fit at position 1 (7% larger, nearly the same direction) is right when the
    reference says so (its band, grader.right_values.v_pair_bands), and so is anything inside a
    band or rounded just outside it; the same pair with no such band, leaving the layernorm out
    (same direction, 1.55 times the size) or another head (another direction) is wrong, and the
    feedback says which way; swapped vectors are named."""
    from grader.catalogue import BY_ID

    tol = BY_ID["v_L_v_R"].tolerance
    v_l, v_r = rng.standard_normal(56), rng.standard_normal(56)
    at_1 = np.concatenate([1.07 * v_l + rng.standard_normal(56) * 0.03, 1.07 * v_r])
    ref = np.concatenate([v_l, v_r])
    bands = np.stack([np.stack([x - 1e-4 * np.abs(x), x + 1e-4 * np.abs(x)]) for x in (ref, at_1)])
    right = (v_l, v_r, bands)
    assert compare.direction_pair((at_1[:56], at_1[56:]), right, tol) is None
    inside = at_1 * (1 + 0.9e-4 * rng.uniform(-1, 1, 112))  # anywhere in the band
    assert compare.direction_pair((inside[:56], inside[56:]), right, tol) is None
    rounded = ref * (1 + 2e-4 * rng.uniform(-1, 1, 112))  # just outside, by float32 rounding's order
    assert compare.direction_pair((rounded[:56], rounded[56:]), right, tol) is None
    assert "1.07 times the size" in compare.direction_pair((1.07 * v_l, 1.07 * v_r), (v_l, v_r), tol)
    assert compare.direction_pair([list(v_l), v_r.astype(np.float32)], right, tol) is None  # other forms
    too_big = compare.direction_pair((1.55 * v_l, 1.55 * v_r), right, tol)  # nearest: the fit at position 1
    ratio = float(re.search(r"is ([0-9.]+) times the size of the nearest right pair", too_big).group(1))
    assert 1.55 / 1.12 < ratio < 1.55 / 1.03 and "layernorm" in too_big
    other = compare.direction_pair((rng.standard_normal(56), v_r), right, tol)
    assert other.startswith("first vector: points in another direction")
    assert "outputs are swapped" in compare.direction_pair((v_r, v_l), right, tol)
    assert "sign is flipped" in compare.direction_pair((v_l, -v_r), right, tol)
    assert "wrong shape" in compare.direction_pair((v_l[:5], v_r), (v_l, v_r), tol)
