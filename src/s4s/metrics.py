"""Sample-quality measures against a reference (teacher) solution."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["rmse", "psnr"]


def rmse(x: Tensor, reference: Tensor) -> float:
    """Root-mean-square error over all samples and coordinates (``x``, ``reference``: ``[B, ...]``)."""
    if x.shape != reference.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(reference.shape)}")
    return float((x.double() - reference.double()).pow(2).mean().sqrt())


def psnr(x: Tensor, reference: Tensor, data_range: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB for data spanning ``data_range`` (2 for ``[-1, 1]`` images)."""
    err = rmse(x, reference)
    return math.inf if err == 0 else 20 * math.log10(data_range / err)
