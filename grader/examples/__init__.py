"""Bundled submissions: a complete correct one in the course's own layout, and the example the
CLI grades when given no path (the same file with three mistakes students really make)."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
COURSE_LAYOUT_CORRECT = HERE / "course_layout_correct.py"

MISTAKES = [  # (what the student wrote, instead of)
    ("    if not seq_pos:\n        inputs = einops", "    if seq_pos is None:\n        inputs = einops"),
    ("    return model.W_O[layer, head].T @ model.W_V[layer, head].T", "    return model.W_V[layer, head] @ model.W_O[layer, head]"),
    ("def avg_sq_cos_sim(", "def avg_squared_cos_sim("),
    ("cos_sim_rand = avg_sq_cos_sim(v_R)", "cos_sim_rand = avg_squared_cos_sim(v_R)"),
]
HEADER = ("# The example `bracket-grade` grades when given no path: a submission in the course's own\n"
          "# layout, mostly right, with mistakes students really make: get_ln_fit treats seq_pos=0 as\n"
          "# 'all positions', get_WOV multiplies in the wrong order, avg_squared_cos_sim was renamed.\n")


def example_submission(folder: Path) -> Path:
    """Write the example into `folder` and return its path."""
    text = COURSE_LAYOUT_CORRECT.read_text()
    for wrong, right in MISTAKES:
        assert right in text, right
        text = text.replace(right, wrong)
    path = Path(folder) / "example_submission.py"
    path.write_text(HEADER + text)
    return path
