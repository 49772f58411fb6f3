"""Deterministic generator of our bracket data set, with the course's distribution.

Run `python -m reference.datagen` to (re)write `reference/assets/brackets_data.json`: 100,000
`[string, is_balanced]` pairs, even lengths 2 to 40 (length 2 about 17%, falling to about 3% each
for 16-40), about 46% balanced, and unbalanced strings of both failure kinds: a total elevation
that is not zero, and a total of zero that goes negative on the way.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from reference.brackets import is_balanced  # noqa: F401 - the labelling rule, re-exported

LENGTHS = list(range(2, 42, 2))
# Relative weight of each even length 2..40; the tail (16-40) is flat at about 3% each.
_HEAD = [17.0, 12.0, 9.0, 7.0, 6.0, 5.0, 4.0]
LENGTH_WEIGHTS = _HEAD + [3.0] * (len(LENGTHS) - len(_HEAD))
P_BALANCED = 0.46
# Of the unbalanced strings, this share fails on total elevation (the rest: total zero, but the
# running count goes negative); and of those, this share are the hardest near misses (one "()"
# of a balanced string swapped). Both set so the data is about as hard as the course's (about 10%
# of all strings fail only by going negative; about 35 in 10,000 are such near misses of 30+).
P_ELEVATION = 0.82
P_SWAP = 0.3


def random_balanced(n: int, rng: random.Random) -> str:
    """A random balanced string of even length n (random walk that never goes negative)."""
    out, depth = [], 0
    for i in range(n):
        remaining = n - i
        if depth == 0:
            c = "("
        elif depth == remaining:
            c = ")"
        else:
            c = "(" if rng.random() < 0.5 else ")"
        depth += 1 if c == "(" else -1
        out.append(c)
    return "".join(out)


def random_elevation_failure(n: int, rng: random.Random) -> str:
    """Unequal numbers of ( and ): often a near miss (one bracket flipped in a balanced string)."""
    while True:
        if rng.random() < 0.5:
            s = list(random_balanced(n, rng))
            i = rng.randrange(n)
            s[i] = "(" if s[i] == ")" else ")"
            s = "".join(s)
        else:
            s = "".join(rng.choice("()") for _ in range(n))
        if s.count("(") != s.count(")"):
            return s


def random_negative_failure(n: int, rng: random.Random, p_swap: float = P_SWAP) -> str:
    """Equal numbers of ( and ) but the running count drops below zero somewhere."""
    while True:
        if rng.random() < p_swap:
            # near miss: swap one adjacent "()" of a balanced string into ")("
            s = list(random_balanced(n, rng))
            spots = [i for i in range(n - 1) if s[i] == "(" and s[i + 1] == ")"]
            i = rng.choice(spots)
            s[i], s[i + 1] = ")", "("
            s = "".join(s)
        else:
            chars = ["("] * (n // 2) + [")"] * (n // 2)
            rng.shuffle(chars)
            s = "".join(chars)
        if not is_balanced(s):
            return s


def generate(n_examples: int = 100_000, seed: int = 0, p_elevation: float = P_ELEVATION,
             p_swap: float = P_SWAP) -> list[tuple[str, bool]]:
    """`n_examples` labelled strings. The first models were trained on p_elevation=0.6, p_swap=0.5
    (harder than the course's data); see reference/assets/manifest.json."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_examples):
        n = rng.choices(LENGTHS, weights=LENGTH_WEIGHTS)[0]
        r = rng.random()
        if r < P_BALANCED:
            s = random_balanced(n, rng)
        elif r < P_BALANCED + (1 - P_BALANCED) * p_elevation or n == 2:
            s = random_elevation_failure(n, rng)
        else:
            s = random_negative_failure(n, rng, p_swap)
        out.append((s, is_balanced(s)))
    return out


def main(argv: list[str] | None = None) -> None:
    from reference.model import DEFAULT_DATA

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--p-elevation", type=float, default=P_ELEVATION)
    p.add_argument("--p-swap", type=float, default=P_SWAP)
    p.add_argument("--out", type=Path, default=DEFAULT_DATA)
    a = p.parse_args(argv)
    data = generate(a.n, a.seed, a.p_elevation, a.p_swap)
    a.out.write_text(json.dumps(data, separators=(",", ":")))
    bal = sum(b for _, b in data) / len(data)
    print(f"wrote {len(data)} examples to {a.out} ({bal:.1%} balanced, {len(set(s for s, _ in data))} unique)")


if __name__ == "__main__":
    main()
