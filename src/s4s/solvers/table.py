"""One solver representation and one sampling loop.

A solver with ``N`` model evaluations has states ``x_0 .. x_N``: ``x_0 = sigmas[0] * noise``
and ``x_N`` is the sample. State ``x_k`` (``k < N``) is evaluated once,
``D_k = D(x_k, model_sigmas[k])``, and every new state is a linear combination of the
earlier states and denoised values (the general linear form of BNS / GS solvers):

    x_{k+1} = sum_{j<=k} a[k, j] x_j + sum_{j<=k} b[k, j] D_j

Multistep methods (DDIM, DPM-Solver++, iPNDM, DEIS), Runge-Kutta methods (Heun: the
predictor is an evaluated state too) and predictor-corrector methods (UniPC: the corrected
state is itself such a combination, so the corrector costs no evaluation) are all tables.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch
from torch import Tensor

from ..frame import Denoiser

__all__ = ["Solver", "StepInfo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepInfo:
    """What a sampling callback receives after each model evaluation."""

    step: int
    sigma: float
    x: Tensor
    denoised: Tensor


@dataclass(frozen=True)
class Solver:
    """A sampler as data.

    Attributes:
        sigmas: ``[N+1]`` float64 noise level of each state (non-increasing; states of one
            Runge-Kutta step share a level). ``sigmas[0]`` scales the initial noise.
        model_sigmas: ``[N]`` level given to the model at each evaluation (equal to
            ``sigmas[:-1]`` unless decoupled, as LD3 learns).
        a, b: ``[N, N]`` lower-triangular float64 coefficients on states and denoised values.
        name: the method, e.g. ``"dpmpp_2m"``.
        meta: JSON-friendly facts (builder options, schedule) kept with the solver.

    Tensors may carry gradients: learning differentiates the loop through them.
    """

    sigmas: Tensor
    model_sigmas: Tensor
    a: Tensor
    b: Tensor
    name: str = "custom"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.nfe
        if n < 1:
            raise ValueError("a solver needs at least one model evaluation")
        for key, shape in (("sigmas", (n + 1,)), ("model_sigmas", (n,)), ("a", (n, n)), ("b", (n, n))):
            value = getattr(self, key)
            if not isinstance(value, Tensor):
                raise TypeError(f"{key} must be a tensor, got {type(value).__name__}")
            if tuple(value.shape) != shape:
                raise ValueError(f"{key} must have shape {shape} for nfe={n}, got {tuple(value.shape)}")
            if not bool(torch.isfinite(value.detach()).all()):
                raise ValueError(f"{key} has non-finite entries")
        s = self.sigmas.detach()
        if not bool((s[:-1] >= s[1:]).all()) or not bool((s[:-1] > 0).all()) or float(s[-1]) < 0:
            raise ValueError(f"state sigmas must be positive and non-increasing (last may be 0), got {s.tolist()}")
        if not bool((self.model_sigmas.detach() > 0).all()):
            raise ValueError("model sigmas must be positive")
        upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
        if bool((self.a.detach()[upper] != 0).any()) or bool((self.b.detach()[upper] != 0).any()):
            raise ValueError("coefficients a, b must be lower-triangular: a state can only use earlier states")

    @property
    def nfe(self) -> int:
        """Model evaluations per sample (a guided evaluation counts as one)."""
        return int(self.model_sigmas.shape[0])

    @property
    def grid(self) -> Tensor:
        """The distinct state levels, i.e. the time grid the solver steps on."""
        s = self.sigmas.detach()
        keep = torch.ones_like(s, dtype=torch.bool)
        keep[1:] = s[1:] != s[:-1]
        return s[keep]

    def with_(self, **changes: Any) -> "Solver":
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)

    def save(self, path: "str | os.PathLike[str]", *, overwrite: bool = True) -> "Path":
        """Write this solver as a versioned JSON file (see :mod:`s4s.io`)."""
        from ..io import save_solver

        return save_solver(self, path, overwrite=overwrite)

    def to(self, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> "Solver":
        cast = lambda t: t.to(dtype=dtype, device=device)  # noqa: E731
        return self.with_(sigmas=cast(self.sigmas), model_sigmas=cast(self.model_sigmas), a=cast(self.a), b=cast(self.b))

    def sample(
        self,
        model: Denoiser | Callable[..., Tensor],
        noise: Tensor,
        cond: Any = None,
        *,
        callback: Callable[[StepInfo], None] | None = None,
        check_finite: bool = True,
    ) -> Tensor:
        """Solve the probability-flow ODE from ``noise[B, ...] ~ N(0, I)`` to a sample ``[B, ...]``.

        Makes exactly ``nfe`` calls of ``model``. Coefficients are applied in ``noise``'s
        dtype and device. With ``check_finite``, a NaN/Inf from the model raises a
        ``ValueError`` naming the step and sigma.
        """
        if not isinstance(noise, Tensor):
            raise TypeError(f"noise must be a torch.Tensor, got {type(noise).__name__}")
        if not noise.is_floating_point():
            raise TypeError(f"noise must be a floating-point tensor, got {noise.dtype}")
        if noise.dim() < 1 or noise.shape[0] == 0:
            raise ValueError(f"noise must have shape [B, ...] with B >= 1, got {tuple(noise.shape)}")
        n, dtype, device = self.nfe, noise.dtype, noise.device
        a = self.a.to(dtype=dtype, device=device)
        b = self.b.to(dtype=dtype, device=device)
        levels = self.model_sigmas.to(dtype=dtype, device=device)
        uses_a, uses_b, free_x, free_d = _structure(self.a.detach(), self.b.detach())
        batch = noise.shape[0]

        states: dict[int, Tensor] = {0: noise * self.sigmas[0].to(dtype=dtype, device=device)}
        denoised: dict[int, Tensor] = {}
        for k in range(n):
            sigma = levels[k].expand(batch)
            d = model(states[k], sigma) if cond is None else model(states[k], sigma, cond)
            if check_finite and not bool(torch.isfinite(d).all()):
                raise ValueError(
                    f"model returned NaN/Inf at step {k} of {n} (sigma={float(levels[k]):.6g}); "
                    "check the model and its input scaling"
                )
            denoised[k] = d
            if callback is not None:
                callback(StepInfo(k, float(levels[k]), states[k], d))
            terms = [a[k, j] * states[j] for j in uses_a[k]] + [b[k, j] * denoised[j] for j in uses_b[k]]
            x = torch.zeros_like(noise) if not terms else terms[0]
            for term in terms[1:]:
                x = x + term
            states[k + 1] = x
            for j in free_x[k]:  # drop what no later row reads
                del states[j]
            for j in free_d[k]:
                del denoised[j]
        return states[n]


def _structure(a: Tensor, b: Tensor) -> tuple[list[list[int]], list[list[int]], list[list[int]], list[list[int]]]:
    """Non-zero columns of each row, and the states / denoised values each row reads last."""
    n = a.shape[0]
    nz_a, nz_b = (a != 0).tolist(), (b != 0).tolist()
    uses_a = [[j for j in range(k + 1) if nz_a[k][j]] for k in range(n)]
    uses_b = [[j for j in range(k + 1) if nz_b[k][j]] for k in range(n)]

    def frees(uses: list[list[int]]) -> list[list[int]]:
        last = list(range(n))  # value j exists from step j on
        for k, cols in enumerate(uses):
            for j in cols:
                last[j] = k
        out: list[list[int]] = [[] for _ in range(n)]
        for j, k in enumerate(last):
            out[k].append(j)
        return out

    return uses_a, uses_b, frees(uses_a), frees(uses_b)
