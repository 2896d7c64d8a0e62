"""Sample-quality measures: distance to a teacher, FD-digits, and exact measures for the mixture."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["rmse", "psnr", "frechet_distance", "fd_digits", "digits_features", "classify_digits",
           "sliced_wasserstein", "mean_log_likelihood", "inception_fid"]


def rmse(x: Tensor, reference: Tensor) -> float:
    """Root-mean-square error over all samples and coordinates (``x``, ``reference``: ``[B, ...]``)."""
    if x.shape != reference.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(reference.shape)}")
    return float((x.double() - reference.double()).pow(2).mean().sqrt())


def rmse_se(x: Tensor, reference: Tensor) -> float:
    """Standard error of :func:`rmse` over the samples (the delta method: the standard error of
    the per-sample mean squared errors' mean, over ``2 * rmse``); 0 for fewer than 2 samples."""
    per = (x.double() - reference.double()).pow(2).reshape(x.shape[0], -1).mean(1)
    if per.numel() < 2 or float(per.mean()) == 0:
        return 0.0
    return float(per.std() / per.numel() ** 0.5 / (2 * per.mean().sqrt()))


def psnr(x: Tensor, reference: Tensor, data_range: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB for data spanning ``data_range`` (2 for ``[-1, 1]`` images)."""
    err = rmse(x, reference)
    return math.inf if err == 0 else 20 * math.log10(data_range / err)


def _stats(features: Tensor) -> tuple[np.ndarray, np.ndarray]:
    f = features.detach().double().cpu().numpy()
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Fréchet distance between Gaussian fits of two feature sets ``[N, F]`` (Heusel et al. 2017)."""
    from scipy import linalg

    mu1, s1 = _stats(a)
    mu2, s2 = _stats(b)
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@lru_cache(maxsize=1)
def _classifier() -> Any:
    from .zoo.neural import classifier

    return classifier()


def digits_features(x: Tensor) -> Tensor:
    """FD-digits features of ``x[B, 1, 8, 8]`` in ``[-1, 1]`` (the shipped classifier's last hidden layer)."""
    with torch.no_grad():
        return _classifier().features(x.detach().float().cpu().clamp(-1, 1))


def classify_digits(x: Tensor) -> Tensor:
    """Class probabilities ``[B, 10]`` from the shipped digits classifier."""
    with torch.no_grad():
        return torch.softmax(_classifier()(x.detach().float().cpu().clamp(-1, 1)), dim=1)


def fd_digits(x: Tensor, reference: Tensor | None = None) -> float:
    """FD-digits: Fréchet distance in the classifier's feature space to ``reference`` (default: all 1,797 digits)."""
    if reference is None:
        from .zoo.data import load_digits

        reference = load_digits()[0]
    if x.shape[0] < 2:
        raise ValueError("FD-digits needs at least 2 samples")
    return frechet_distance(digits_features(x), digits_features(reference))


def sliced_wasserstein(a: Tensor, b: Tensor, projections: int = 256, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance between equal-size samples ``[N, d]`` (random directions, fixed seed)."""
    a, b = a.reshape(a.shape[0], -1).double(), b.reshape(b.shape[0], -1).double()
    if a.shape != b.shape:
        raise ValueError(f"need samples of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(a.shape[1], projections, generator=g, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    pa, pb = (a @ dirs).sort(0).values, (b @ dirs).sort(0).values
    return float((pa - pb).pow(2).mean().sqrt())


def mean_log_likelihood(model: Any, x: Tensor) -> float:
    """Exact mean log-density of samples under an analytic model (``model.log_prob``)."""
    if not hasattr(model, "log_prob"):
        raise TypeError(f"{type(model).__name__} has no exact density; use the analytic zoo models")
    return float(model.log_prob(x.double()).mean())


def inception_fid(samples: Tensor, reference: Tensor, **options: Any) -> float:
    """Inception FID through torch-fidelity, for users who have its Inception weights.

    ``samples``/``reference``: ``[N, 3, H, W]`` uint8 images. Raises ``ImportError`` with the
    fix when torch-fidelity is missing and ``RuntimeError`` when its weights cannot be had
    (this project's machines have no network access to fetch them).
    """
    try:
        import torch_fidelity  # type: ignore[import-not-found]
    except ImportError as e:
        raise ImportError("Inception FID needs torch-fidelity: pip install torch-fidelity "
                          "(and its Inception weights, fetched on first use or placed in its cache)") from e

    class _Images(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __init__(self, x: Tensor) -> None:
            self.x = x

        def __len__(self) -> int:
            return self.x.shape[0]

        def __getitem__(self, i: int) -> Tensor:
            return self.x[i]

    try:
        out = torch_fidelity.calculate_metrics(input1=_Images(samples), input2=_Images(reference), fid=True, **options)
    except Exception as e:  # network or cache failure inside torch-fidelity
        raise RuntimeError(f"torch-fidelity could not compute FID (are the Inception weights available?): {e}") from e
    return float(out["frechet_inception_distance"])
