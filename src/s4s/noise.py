"""Per-sample seeded noise: sample ``i`` depends only on its seed, never on the batch size."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor

__all__ = ["seeded_noise"]


def seeded_noise(
    seeds: Iterable[int],
    shape: tuple[int, ...],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """``N(0, I)`` noise of shape ``[len(seeds), *shape]``, one CPU generator per seed (as EDM does)."""
    rows = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seeds must be non-negative ints, got {seed!r}")
        g = torch.Generator().manual_seed(seed)
        rows.append(torch.randn(shape, generator=g, dtype=torch.float64))
    if not rows:
        raise ValueError("need at least one seed")
    return torch.stack(rows).to(dtype=dtype, device=device)
