"""Peak memory of the tensors a call creates, measured by watching every torch operation.

Process-level measures (RSS) are blurred by the allocator and by other work in the process; this
counts the bytes of tensor storage alive at once during the call, which is what "does not build
the [batch, neuron, d_model] tensor" means. Works on CPU and CUDA alike.
"""
from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class PeakTensorMemory(TorchDispatchMode):
    """`with PeakTensorMemory() as m: f()` then `m.peak_bytes` (bytes alive at the worst moment)."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak_bytes = 0

    def _forget(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                try:
                    storage = value.untyped_storage()
                except (RuntimeError, NotImplementedError):
                    continue
                key = storage.data_ptr()
                if key in self.live or key == 0:
                    continue
                self.live[key] = storage.nbytes()
                self.current += storage.nbytes()
                self.peak_bytes = max(self.peak_bytes, self.current)
                weakref.finalize(value, self._forget, key)
        return out


class LargestTensor(TorchDispatchMode):
    """`with LargestTensor((56, 56)) as m: f()` then `m.numel`: the most elements of any tensor of
    3 or more dimensions created whose last two sizes are `trailing` ([..., neuron, d_model]). The
    model's own forward pass builds big tensors of other shapes (TransformerLens's per-head results
    are [batch, seq, head, d_head, d_model] before summing), so only this shape tells whether a
    function built the per-neuron output it was meant to avoid."""

    def __init__(self, trailing: tuple[int, int]):
        super().__init__()
        self.trailing = tuple(trailing)
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor) and value.dim() >= 3 and tuple(value.shape[-2:]) == self.trailing:
                self.numel = max(self.numel, value.numel())
        return out
