"""The tolerance table is measured (calibration/calibrate.py), leaves a 10x margin on both sides,
and is what the grader uses; items without one say why."""
from __future__ import annotations

import json

from grader.catalogue import BY_ID, EXERCISES, TOLERANCE_TABLE


def test_every_numeric_function_item_has_a_measured_tolerance_with_10x_margins():
    table = json.loads(TOLERANCE_TABLE.read_text())["items"]
    for ex in EXERCISES:
        if ex.kind != "function":
            continue
        row = table[ex.id]
        if not row["calibrated"]:
            assert row["reason"], ex.id
            continue
        assert row["margin_correct"] >= 10, (ex.id, row)
        assert row["min_wrong"] is None or row["margin_wrong"] >= 10, (ex.id, row)


def test_the_grader_uses_the_table():
    table = json.loads(TOLERANCE_TABLE.read_text())["items"]
    for item, row in table.items():
        if row["calibrated"]:
            assert BY_ID[item].tolerance.rtol == row["rtol"]
            assert "measured" in BY_ID[item].tolerance.reason
