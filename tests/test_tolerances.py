"""The tolerance table is measured (calibration/calibrate.py) on our model and on the course's, from
evidence on both sides (correct formulations and known mistakes, on each model), leaves a 10x
margin on both sides on each model, and is what the grader uses; items without one say why."""
from __future__ import annotations

import json

from grader.catalogue import BY_ID, EXERCISES, TOLERANCE_TABLE

TABLE = json.loads(TOLERANCE_TABLE.read_text())


def test_the_table_was_measured_on_both_models():
    assert TABLE["models"] == ["course", "ours"]


def test_every_numeric_item_has_a_measured_tolerance_with_10x_margins_on_each_model():
    """Function items and the two object items compared element by element (9 and 14); v_L_v_R
    and the random and exact items are checked below or say why they need no tolerance."""
    judged = [ex for ex in EXERCISES if ex.kind == "function" or ex.expect == "tensor"]
    assert {"out_by_component_in_unbalanced_dir", "out_by_component_in_pre_20_unbalanced_dir"} <= {e.id for e in judged}
    for ex in judged:
        row = TABLE["items"][ex.id]
        if not row["calibrated"]:
            assert row["reason"], ex.id
            continue
        assert set(row["models"]) == {"ours", "course"}, ex.id
        for model, evidence in row["models"].items():
            # a wrong variant measured on this model (not only a crash or a shape change)
            assert evidence["min_wrong"] is not None, (ex.id, model, evidence)
            assert evidence["margin_correct"] >= 10 and evidence["margin_wrong"] >= 10, (ex.id, model, evidence)


def test_a_fits_r2_tolerance_has_10x_margins_on_each_model_from_wrong_r2s_too():
    """r2 on its own: fits that are right but say a wrong r2 (the correlation r, the identity's
    score, 1 - r2) are its evidence on the wrong side, on both models."""
    row = TABLE["items"]["get_ln_fit"]
    assert set(row["r2_models"]) == {"ours", "course"}
    for model, evidence in row["r2_models"].items():
        assert evidence["min_wrong"] is not None, model
        assert row["r2_atol"] >= 10 * evidence["max_correct"], (model, evidence)
        assert evidence["min_wrong"] >= 10 * row["r2_atol"], (model, evidence)


def test_v_L_v_R_thresholds_separate_legitimate_fits_from_wrong_ones_by_10x():
    """Direction and size against the nearest right pair (grader.right_values.v_pair_bands: the fit
    over all positions or at position 1, each as float32 rounds it), between legitimate pairs that
    are not in the bands (rounded otherwise, float64 inputs, one thread, at both positions) and the
    wrong ones (no layernorm, another layer's fit, another head, coefficients untransposed), on both
    models at 1,000 and 5,000 examples."""
    pair = TABLE["items"]["v_L_v_R"]["pair"]
    assert pair["margin_direction"] >= 10 and pair["margin_size"] >= 10, pair
    assert pair["indistinguishable"] == []
    evidence = TABLE["items"]["v_L_v_R"]["evidence"]
    assert set(evidence) == {"ours", "course"}
    for model, per_size in evidence.items():
        assert set(per_size) == {"1000", "5000"}
        for n, measured in per_size.items():
            assert any("position 1" in k for k in measured["legit"]), (model, n)
            for wrong, (d, s) in measured["wrong"].items():
                assert d > pair["direction"] or s > pair["size"], (model, n, wrong)
            for legit, (d, s) in measured["legit"].items():
                assert d < pair["direction"] and s < pair["size"], (model, n, legit)


def test_the_grader_uses_the_table():
    for item, row in TABLE["items"].items():
        if not row["calibrated"]:
            continue
        tol = BY_ID[item].tolerance
        assert "measured" in tol.reason
        if "pair" in row:
            assert (tol.direction, tol.size) == (row["pair"]["direction"], row["pair"]["size"])
        else:
            assert tol.rtol == row["rtol"]
            assert tol.r2 == row.get("r2_atol", 1e-4)
