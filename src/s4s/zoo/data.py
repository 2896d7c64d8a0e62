"""scikit-learn's 8x8 handwritten digits (1,797 images; the data ships inside scikit-learn)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["load_digits", "digits_split", "SIGMA_DATA"]

SIGMA_DATA = 0.8
"""Scale of the digits in [-1, 1] (std 0.75 about a mean of -0.39), EDM's ``sigma_data``."""


def load_digits() -> tuple[Tensor, Tensor]:
    """Images ``[1797, 1, 8, 8]`` float32 in ``[-1, 1]`` and labels ``[1797]`` int64."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("the digits data needs scikit-learn: pip install 's4s[zoo]'") from e
    d = _load()
    x = torch.tensor(d.images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16 * 2 - 1
    return x, torch.tensor(d.target, dtype=torch.long)


def digits_split(seed: int = 0, held_out: float = 0.2) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """A fixed train / held-out split (``held_out`` of each class held out)."""
    x, y = load_digits()
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in range(10):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        k = int(round(held_out * idx.numel()))
        test.append(idx[:k])
        train.append(idx[k:])
    tr, te = torch.cat(train).sort().values, torch.cat(test).sort().values
    return (x[tr], y[tr]), (x[te], y[te])
