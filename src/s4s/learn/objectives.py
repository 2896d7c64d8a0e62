"""Distances between student and teacher samples: per-sample values ``[B]``."""

from __future__ import annotations

from typing import Callable, Union

import torch
from torch import Tensor

__all__ = ["Distance", "get_distance", "DISTANCES"]

Distance = Callable[[Tensor, Tensor], Tensor]


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)


def l2(x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error per sample (its mean over a set is the squared RMSE)."""
    return _flat(x - y).pow(2).mean(1)


def l1(x: Tensor, y: Tensor) -> Tensor:
    return _flat(x - y).abs().mean(1)


def pseudo_huber(x: Tensor, y: Tensor, c: float = 0.03) -> Tensor:
    """``sqrt(mse + c^2) - c`` (Song & Dhariwal 2023): L2 near 0, L1-like for outliers."""
    return torch.sqrt(l2(x, y) + c * c) - c


DISTANCES: dict[str, Distance] = {"l2": l2, "l1": l1, "pseudo_huber": pseudo_huber}


def get_distance(distance: Union[str, Distance]) -> Distance:
    if callable(distance):
        return distance
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; choose one of {sorted(DISTANCES)} or pass a callable")
    return DISTANCES[distance]
