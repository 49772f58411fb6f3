"""Adversarial examples: bracket strings (length <= 40) that a given model misclassifies.

`python -m reference.adversarial [--weights FILE]` searches for them and prints what it finds;
the lists below were found that way and are checked in the tests against the model they target.
The search tries the course's pattern (a long balanced run that hides a `)(` near the end) and
random near misses, and keeps the strings the model gets wrong.
"""
from __future__ import annotations

import argparse
import random

from reference.brackets import is_balanced as _truth

# The course's best known example for the course model: 15 "(", 15 ")", then ")(", then 4 "(" and 4 ")".
COURSE_EXAMPLE = "(" * 15 + ")" * 15 + ")(" + "(" * 4 + ")" * 4

# Found by `python -m reference.adversarial` for each model, keyed by reference.model.parameter_hash.
KNOWN: dict[str, list[str]] = {
    # our shipped model (reference/assets/brackets_model.safetensors): a long balanced run, then a
    # single dip below zero that the model's averaged elevation is too coarse to see
    "46a14578c1978eff891a645671f3ee204b2357318ad44146d9130a5435a1276d": [
        "((((((((((((((((())))))))))))))))))(",
        "((((((((((((((())))))))))))))))(()()()",
        "(((((((((((((()))))))))))))))((((())))",
        "((((((((((((((((())))))))))))))))))(()",
    ],
}

COURSE_MODEL_EXAMPLES = [COURSE_EXAMPLE]




def candidates(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.4:  # the course's pattern with random sizes
            a, b = rng.randint(1, 19), rng.randint(0, 9)
            s = "(" * a + ")" * a + ")(" + "(" * b + ")" * b
        elif kind < 0.7:  # a balanced string with one adjacent "()" swapped
            depth, s = 0, []
            length = rng.choice(range(20, 42, 2))
            for i in range(length):
                c = "(" if depth == 0 or (depth < length - i and rng.random() < 0.5) else ")"
                depth += 1 if c == "(" else -1
                s.append(c)
            spots = [i for i in range(length - 1) if s[i] == "(" and s[i + 1] == ")"]
            i = rng.choice(spots)
            s[i], s[i + 1] = ")", "("
            s = "".join(s)
        else:  # deep nesting with a dip
            a = rng.randint(1, 18)
            s = "(" * a + ")" * (a + 1) + "(" + "()" * rng.randint(0, (38 - 2 * a) // 2)
        if 0 < len(s) <= 40:
            out.append(s)
    return out


def search(model, n: int = 20_000, seed: int = 0, keep: int = 10) -> list[str]:
    from reference.model import predict_balanced

    strs = sorted(set(candidates(random.Random(seed), n)))
    preds = predict_balanced(model, strs).tolist()
    return [s for s, p in zip(strs, preds) if p != _truth(s)][:keep]


def known_examples(model) -> list[str]:
    """The listed examples for this model (by weight hash); the course's example otherwise."""
    from reference.model import parameter_hash

    return list(KNOWN.get(parameter_hash(model), COURSE_MODEL_EXAMPLES))


def main(argv: list[str] | None = None) -> None:
    from reference.model import load_model, parameter_hash

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", default=None)
    p.add_argument("--n", type=int, default=20_000)
    a = p.parse_args(argv)
    model = load_model(a.weights)
    found = search(model, a.n)
    print(f"model {parameter_hash(model)}: {len(found)} misclassified")
    for s in found:
        print(repr(s))


if __name__ == "__main__":
    main()
