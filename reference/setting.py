"""Everything a student's notebook imports from the project: the course setting, no solutions.

    from reference.setting import *

gives `SimpleTokenizer`, `BracketsDataset`, `load_model`, `load_datasets` and `pick_device`, the
same objects the course's `brackets_datasets` module and setup cell provide.
"""
from __future__ import annotations

import torch as t

from reference.brackets import BracketsDataset, SimpleTokenizer
from reference.model import (
    DEFAULT_DATA,
    DEFAULT_WEIGHTS,
    add_perma_hooks_to_mask_pad_tokens,
    load_data_tuples,
    load_datasets,
    load_model,
    make_config,
)

__all__ = [
    "BracketsDataset", "SimpleTokenizer", "DEFAULT_DATA", "DEFAULT_WEIGHTS",
    "add_perma_hooks_to_mask_pad_tokens", "load_data_tuples", "load_datasets", "load_model",
    "make_config", "pick_device",
]


def pick_device() -> str:
    """CUDA when present, else CPU (MPS lacks some ops TransformerLens uses here)."""
    return "cuda" if t.cuda.is_available() else "cpu"
