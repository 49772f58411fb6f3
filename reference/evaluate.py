"""Print a model's accuracy on held-out strings: `python -m reference.evaluate [--weights F --data F]`.

By default: our shipped model on the first 5,000 examples of our data (never used in training,
see reference/train.py), overall and by length.
"""
from __future__ import annotations

import argparse
from collections import defaultdict

from reference.model import load_data_tuples, load_model, predict_balanced


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", default=None)
    p.add_argument("--data", default=None)
    p.add_argument("-n", type=int, default=5000)
    a = p.parse_args(argv)
    tuples = load_data_tuples(a.data)[: a.n]
    preds = predict_balanced(load_model(a.weights), [s for s, _ in tuples]).tolist()
    by_len = defaultdict(lambda: [0, 0])
    for (s, b), pred in zip(tuples, preds):
        by_len[len(s)][0] += pred == b
        by_len[len(s)][1] += 1
    correct = sum(c for c, _ in by_len.values())
    print(f"accuracy on {len(tuples)} held-out strings: {correct / len(tuples):.4%} ({correct}/{len(tuples)})")
    print("by length: " + ", ".join(f"{n}: {c}/{t}" for n, (c, t) in sorted(by_len.items())))


if __name__ == "__main__":
    main()
