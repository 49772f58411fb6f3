"""Tokenizer and dataset for bracket strings, with the course's interface.

Students' code calls these exactly as the course's `brackets_datasets` module: the attribute
names, classmethods and token ids are part of the exercise contract, so do not rename them.
"""
from __future__ import annotations

from typing import Sequence

import torch as t
from torch import Tensor


class SimpleTokenizer:
    """Maps bracket strings to token ids: [start]=0, [pad]=1, [end]=2, then the alphabet from 3."""

    START_TOKEN = 0
    PAD_TOKEN = 1
    END_TOKEN = 2
    base_d = {"[start]": START_TOKEN, "[pad]": PAD_TOKEN, "[end]": END_TOKEN}

    def __init__(self, alphabet: str):
        self.alphabet = alphabet
        self.t_to_i = {**{c: i + 3 for i, c in enumerate(alphabet)}, **self.base_d}
        self.i_to_t = {i: c for c, i in self.t_to_i.items()}

    def tokenize(self, strs: str | Sequence[str], max_len: int | None = None) -> Tensor:
        """`[start] chars [end] [pad]...`, every row padded to the longest string (or max_len)."""
        if isinstance(strs, str):
            strs = [strs]
        if max_len is None:
            max_len = max(max((len(s) for s in strs), default=0), 1)

        def c_to_int(c: str) -> int:
            if c not in self.t_to_i:
                raise ValueError(f"character {c!r} is not in the alphabet {self.alphabet!r}")
            return self.t_to_i[c]

        rows = [
            [self.START_TOKEN] + [c_to_int(c) for c in s] + [self.END_TOKEN]
            + [self.PAD_TOKEN] * (max_len - len(s))
            for s in strs
        ]
        return t.tensor(rows)

    def decode(self, tokens: Tensor) -> list[str]:
        """Inverse of tokenize for a batch: drops [start], [end] and [pad]."""
        assert tokens.ndim >= 2, "Need to have a batch dimension"

        def int_to_c(i: int) -> str:
            if i not in self.i_to_t:
                raise ValueError(i)
            return self.i_to_t[i]

        return [
            "".join(int_to_c(int(i)) for i in seq[1:] if i not in (self.PAD_TOKEN, self.END_TOKEN))
            for seq in tokens
        ]


class BracketsDataset:
    """A list of (string, is_balanced) pairs, tokenized, with the course's attributes."""

    def __init__(self, data_tuples: Sequence):
        self.tokenizer = SimpleTokenizer("()")
        self.strs = [x[0] for x in data_tuples]
        self.isbal = t.tensor([bool(x[1]) for x in data_tuples], dtype=t.bool)
        self.toks = self.tokenizer.tokenize(self.strs)
        self.open_proportion = t.tensor([s.count("(") / len(s) if s else 0.0 for s in self.strs])
        self.starts_open = t.tensor([s[:1] == "(" for s in self.strs], dtype=t.bool)

    def __len__(self) -> int:
        return len(self.strs)

    def __getitem__(self, idx):
        if isinstance(idx, int):
            return (self.strs[idx], self.isbal[idx], self.toks[idx])
        isbal = self.isbal[idx]
        return self.__class__(list(zip(self.strs[idx], isbal.tolist())))

    def to(self, device) -> "BracketsDataset":
        self.isbal = self.isbal.to(device)
        self.toks = self.toks.to(device)
        self.open_proportion = self.open_proportion.to(device)
        self.starts_open = self.starts_open.to(device)
        return self

    @property
    def seq_length(self) -> int:
        return self.toks.size(-1)

    @classmethod
    def with_length(cls, data_tuples: Sequence, selected_len: int) -> "BracketsDataset":
        return cls([(s, b) for (s, b) in data_tuples if len(s) == selected_len])

    @classmethod
    def with_start_char(cls, data_tuples: Sequence, start_char: str) -> "BracketsDataset":
        return cls([(s, b) for (s, b) in data_tuples if s[:1] == start_char])


def is_balanced(parens: str) -> bool:
    """The labelling rule of the data: the running count of "(" minus ")" never drops below zero
    and ends at zero. (It is also item 1's answer; the data's labels give it away anyway.)"""
    depth = 0
    for c in parens:
        depth += 1 if c == "(" else -1
        if depth < 0:
            return False
    return depth == 0
