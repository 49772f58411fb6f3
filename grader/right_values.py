"""Where the right answer is not one value but a range: float32 rounding in another process, or
a choice the exercise leaves open, moves it, and any value in the range is right.

- get_ln_fit: a fit's r2 and its predictions on the LayerNorm's inputs (expected_fit).
- v_L and v_R: the layer-0 ln1 fit over every position or at position 1 (v_pair_bands).
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch as t

from grader.compare import fit_predictions
from grader.inputs import InputFactory

FIT_DIRECTIONS = 1e-2  # a fit is judged where its inputs' spread is at least this share of the largest
R2_DRAWS = 8  # float32 refits on inputs moved by rounding, for r2's range of right values


def expected_fit(fn, case_json: dict, factory: InputFactory) -> tuple:
    """(fit, r2, probe, r2's other right values, band of right predictions): probe holds rows of
    the LayerNorm's real inputs, so a fit is judged by what it predicts on them. Where those inputs span fewer than d_model
    dimensions (ln1 of layer 0 reads embeddings: 5 tokens + 42 positions) coef_ itself is not
    unique, but predictions are. The rows are taken within the directions the inputs spread widely
    in (FIT_DIRECTIONS): in the others a float32 fit (the course's way) and a float64 fit disagree,
    and neither is wrong. The course model's layer-0 resid_mid is the case: singular values from
    200 down to 2e-6, and predictions in directions below 1% of the largest differed by 4% between
    the two fits, while in the others they agree to 0.13% and a fit at the wrong position is 15% off.

    r2 is not one number either where the inputs are that ill-conditioned: float32 rounding alone
    moves it (the course model's blocks.0.ln2 over every position: the same code gave 0.94949 here
    and 0.94857 in a worker; inputs moved by 1e-7 of their largest value give 0.94858 to 0.94901).
    Its right values are the float32 fit's, the float64 model's, and float32 fits on the inputs
    moved by that much (R2_DRAWS draws): an r2 anywhere between them is right. The predictions are
    not one array either: the same fits' predictions on the probe, element by element from the
    smallest to the largest, are the band a right fit's predictions are judged against
    (compare.linfit): (lowest, highest), the fifth value returned."""
    from reference.solutions import LN_hook_names, get_activations

    t.manual_seed(0)
    args, kwargs = factory.build(case_json["args"], case_json["kwargs"])
    with t.inference_mode():
        fit, r2 = fn(*args, **kwargs)
        model, data, layernorm = args[:3]
        seq_pos = kwargs.get("seq_pos", args[3] if len(args) > 3 else None)
        names = LN_hook_names(layernorm)
        cache = get_activations(model, data.toks, list(names))
        with _in_float64(model) as model64:
            fit64, r2_64 = fn(model64, *args[1:], **kwargs)
    x, y = (_rows(cache[name], seq_pos) for name in names)
    probe = _probe(x.astype(np.float64))
    others, predictions = [float(r2_64)], [fit_predictions(probe, f.coef_, f.intercept_) for f in (fit, fit64)]
    for moved, refit in _moved_refits(x, y):
        others.append(float(refit.score(moved, y)))
        predictions.append(fit_predictions(probe, refit.coef_, refit.intercept_))
    band = np.stack(predictions)
    return fit, r2, probe, others, (band.min(0), band.max(0))


def _rows(activation: t.Tensor, seq_pos: int | None) -> np.ndarray:
    """A LayerNorm's input or output as a fit reads it: every position, or one."""
    a = activation.reshape(-1, activation.shape[-1]) if seq_pos is None else activation[:, seq_pos]
    return a.cpu().numpy()


def _moved_refits(x: np.ndarray, y: np.ndarray):
    """(inputs, float32 least-squares fit) on `x` moved by 1e-7 of its largest value, R2_DRAWS times:
    what the same code gives where float32 rounds otherwise (another process, other kernels)."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    for _ in range(R2_DRAWS):
        moved = x + (1e-7 * np.abs(x).max() * rng.standard_normal(x.shape)).astype(x.dtype)
        yield moved, LinearRegression().fit(moved, y)


def _probe(x):
    """Rows of the LayerNorm's inputs `x` (float64), kept to the directions they spread widely in."""
    mean = x.mean(0)
    _, spread, basis = np.linalg.svd(x - mean, full_matrices=False)
    basis = basis[spread > FIT_DIRECTIONS * spread[0]]
    rows = np.linspace(0, len(x) - 1, num=min(512, len(x))).astype(int)
    return mean + (x[rows] - mean) @ basis.T @ basis


@contextlib.contextmanager
def _in_float64(model):
    """The model in float64 for the block, float32 again after. Quietly: TransformerLens prints each
    change, and redirecting stdout would swallow what other threads print meanwhile."""
    try:
        yield _quietly_to(model, t.float64)
    finally:
        _quietly_to(model, t.float32)


def _quietly_to(model, dtype):
    try:
        return model.to(dtype, print_details=False)
    except TypeError:  # a TransformerLens without the option
        return model.to(dtype)


V_POSITIONS = (None, 1)  # the fit over every position (the reference), and at position 1, where head 0.0 writes


def v_pair_bands(model, data) -> np.ndarray:
    """v_L and v_R's right values, [len(V_POSITIONS), (lowest, highest), 2 * d_model]: the pair
    (v_L then v_R) as one vector, element by element from the smallest to the largest right value,
    for each position the layer-0 ln1 fit may be taken at. The course does not say which ("the
    linear approximation for the layernorm before the first attention layer"), and at position 1
    the pair is 6-12% larger. Each band holds the float32 fit, the float64 model's, and float32
    fits on inputs moved by rounding (layer 0's ln1 reads embeddings: its fit is ill-conditioned
    where padding fills most positions, and v_L's direction moved by 0.0025 in 1 - cosine between
    float32 and float64 on our model)."""
    from sklearn.linear_model import LinearRegression

    from reference.brackets import SimpleTokenizer
    from reference.solutions import LN_hook_names, get_activations

    names = list(LN_hook_names(model.blocks[0].ln1))
    with t.inference_mode():
        cache = get_activations(model, data.toks, names)
        with _in_float64(model) as model64:
            cache64 = get_activations(model64, data.toks, names)
            embed = model64.W_E[[SimpleTokenizer("()").t_to_i[c] for c in "()"]].cpu().numpy()
            W_OV = (model64.W_V[0, 0] @ model64.W_O[0, 0]).cpu().numpy()

    def pair(fit) -> np.ndarray:
        return (embed @ np.asarray(fit.coef_, np.float64).T @ W_OV).reshape(-1)

    bands = []
    for pos in V_POSITIONS:
        x, y = (_rows(cache[n], pos) for n in names)
        fits = [LinearRegression().fit(x, y), LinearRegression().fit(*(_rows(cache64[n], pos) for n in names))]
        fits += [refit for _, refit in _moved_refits(x, y)]
        values = np.stack([pair(f) for f in fits])
        bands.append(np.stack([values.min(0), values.max(0)]))
    return np.stack(bands)
