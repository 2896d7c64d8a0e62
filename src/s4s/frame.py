"""The one frame every model is reduced to: a denoiser in the EDM/VE parametrization.

A noisy sample is ``x = x0 + sigma * n`` with ``n ~ N(0, I)``; the denoiser returns an
estimate of ``x0``. The probability-flow ODE in this frame is
``dx/dsigma = (x - D(x, sigma)) / sigma`` (Karras et al., "Elucidating the Design Space of
Diffusion-Based Generative Models", NeurIPS 2022, eq. 3 with s(t)=1, sigma(t)=t).

Solvers only ever see a :class:`Denoiser`; prediction types, model time variables and
input scalings live in the adapters of :mod:`s4s.models`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
from torch import Tensor

__all__ = ["Denoiser", "DenoiserFn", "TimeMap", "identity_time"]


class DenoiserFn(Protocol):
    """``fn(x[B, ...], sigma[B]) -> x0[B, ...]``, or ``fn(x, sigma, cond)`` when conditioned."""

    def __call__(self, x: Tensor, sigma: Tensor, *cond: Any) -> Tensor: ...


@dataclass(frozen=True)
class TimeMap:
    """A model's own time variable ``t`` as a monotone function of ``sigma``.

    Schedules that are uniform "in time" (time-uniform, time-quadratic) are uniform in this
    ``t``. Both functions take and return float64 tensors, are differentiable, and ``t``
    grows with ``sigma``.
    """

    sigma_to_t: Callable[[Tensor], Tensor]
    t_to_sigma: Callable[[Tensor], Tensor]
    name: str = "sigma"


identity_time = TimeMap(sigma_to_t=lambda s: s, t_to_sigma=lambda t: t, name="sigma")
"""EDM's convention: the time variable is sigma itself."""


def _check_level(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


class Denoiser:
    """A model in the EDM/VE frame: ``D(x, sigma[, cond]) -> x0``.

    Args:
        fn: the denoiser, ``fn(x[B, ...], sigma[B]) -> x0[B, ...]``; called as
            ``fn(x, sigma, cond)`` only when a condition is given. ``sigma`` has the dtype
            and device of ``x``.
        sigma_min: the lowest noise level the model was trained on; default schedules end there.
        sigma_max: the highest; default schedules start there.
        sigma_data: the data's standard deviation, if known (informational).
        time: the model's own time variable, for time-uniform schedules (default: sigma).
        name: a label used in reports and solver files.

    Calling the denoiser checks that the output has the input's shape and device, so a
    mis-wired model fails at its first call with a clear message.
    """

    def __init__(
        self,
        fn: DenoiserFn,
        sigma_min: float,
        sigma_max: float,
        sigma_data: float | None = None,
        *,
        time: TimeMap = identity_time,
        name: str = "denoiser",
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.sigma_min = _check_level("sigma_min", sigma_min)
        self.sigma_max = _check_level("sigma_max", sigma_max)
        if self.sigma_min >= self.sigma_max:
            raise ValueError(
                f"sigma_min must be below sigma_max, got sigma_min={self.sigma_min} "
                f">= sigma_max={self.sigma_max}"
            )
        self.sigma_data = None if sigma_data is None else _check_level("sigma_data", sigma_data)
        self.time = time
        self.name = name

    def __call__(self, x: Tensor, sigma: Tensor | float, cond: Any = None) -> Tensor:
        """Denoise ``x[B, ...]`` at noise level ``sigma`` (a scalar or a ``[B]`` tensor)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 1:
            raise ValueError("x must have a batch dimension: shape [B, ...]")
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.dim() == 0:
            sigma = sigma.expand(x.shape[0])
        if sigma.shape != (x.shape[0],):
            raise ValueError(
                f"sigma must be a scalar or have shape [B]=[{x.shape[0]}], got {tuple(sigma.shape)}"
            )
        out = self.fn(x, sigma) if cond is None else self.fn(x, sigma, cond)
        if not isinstance(out, Tensor):
            raise TypeError(f"model {self.name!r} returned {type(out).__name__}, expected a Tensor")
        if out.shape != x.shape:
            raise ValueError(
                f"model {self.name!r} returned shape {tuple(out.shape)} for input shape "
                f"{tuple(x.shape)}; a denoiser must return x0 of the input's shape"
            )
        if out.dtype != x.dtype:
            raise ValueError(
                f"model {self.name!r} returned dtype {out.dtype} for input dtype {x.dtype}; "
                "cast its output with .to(x.dtype)"
            )
        if out.device != x.device:
            raise ValueError(
                f"model {self.name!r} returned a tensor on {out.device} for input on {x.device}"
            )
        return out

    def time_of(self, sigma: Tensor) -> Tensor:
        """The model's own time for ``sigma`` (float64)."""
        return self.time.sigma_to_t(torch.as_tensor(sigma, dtype=torch.float64))

    def sigma_of(self, t: Tensor) -> Tensor:
        """The noise level at model time ``t`` (float64)."""
        return self.time.t_to_sigma(torch.as_tensor(t, dtype=torch.float64))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, sigma_min={self.sigma_min:g}, "
            f"sigma_max={self.sigma_max:g}, time={self.time.name!r})"
        )
