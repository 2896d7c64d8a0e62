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
import torch.utils.checkpoint
from torch import Tensor

from ..frame import Denoiser

__all__ = ["Solver", "StepInfo", "Stepper"]

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
        checkpoint_steps: bool = False,
    ) -> Tensor:
        """Solve the probability-flow ODE from ``noise[B, ...] ~ N(0, I)`` to a sample ``[B, ...]``.

        Makes exactly ``nfe`` calls of ``model``. Coefficients are applied in ``noise``'s
        dtype and device. With ``check_finite``, a NaN/Inf from the model raises a
        ``ValueError`` naming the step and sigma. With ``checkpoint_steps`` (and gradients
        enabled), each model call is activation-checkpointed: its internals are recomputed in
        the backward pass instead of stored, so memory stays flat as ``nfe`` grows.
        """
        if not isinstance(noise, Tensor):
            raise TypeError(f"noise must be a torch.Tensor, got {type(noise).__name__}")
        if not noise.is_floating_point():
            raise TypeError(f"noise must be a floating-point tensor, got {noise.dtype}")
        if noise.dim() < 1 or noise.shape[0] == 0:
            raise ValueError(f"noise must have shape [B, ...] with B >= 1, got {tuple(noise.shape)}")
        stepper = Stepper(self, noise)
        for k in range(self.nfe):
            sigma = stepper.sigma.expand(noise.shape[0])
            if checkpoint_steps and torch.is_grad_enabled():
                d = torch.utils.checkpoint.checkpoint(_call_model, model, stepper.x, sigma, cond, use_reentrant=False)
            else:
                d = _call_model(model, stepper.x, sigma, cond)
            if check_finite and not bool(torch.isfinite(d).all()):
                raise ValueError(
                    f"model returned NaN/Inf at step {k} of {self.nfe} (sigma={float(sigma[0]):.6g}); "
                    "check the model and its input scaling"
                )
            if callback is not None:
                callback(StepInfo(k, float(sigma[0]), stepper.x, d))
            stepper.tell(d)
        return stepper.x


def _call_model(model: Callable[..., Tensor], x: Tensor, sigma: Tensor, cond: Any) -> Tensor:
    return model(x, sigma) if cond is None else model(x, sigma, cond)


class Stepper:
    """The sampling loop in ask-tell form, for host loops that make the model call themselves
    (a diffusers scheduler, a k-diffusion-style sampler); :meth:`Solver.sample` runs on it.

    ``x`` is the state to evaluate next and ``sigma`` the level to give the model; ``tell(D)``
    takes the denoised value and advances to the next state. After ``nfe`` calls of ``tell``,
    ``done`` is true and ``x`` is the sample. Coefficients are applied in ``noise``'s dtype.
    """

    def __init__(self, solver: Solver, noise: Tensor) -> None:
        dtype, device = noise.dtype, noise.device
        self.solver = solver
        self.k = 0
        self._a = solver.a.to(dtype=dtype, device=device)
        self._b = solver.b.to(dtype=dtype, device=device)
        self._levels = solver.model_sigmas.to(dtype=dtype, device=device)
        self._uses_a, self._uses_b, self._free_x, self._free_d = _structure(solver.a.detach(), solver.b.detach())
        # the start (its state and level) is the host's, never learned: no graph through it, so the
        # first model call keeps no activations for a backward pass when later levels are learned
        self._states: dict[int, Tensor] = {0: noise * solver.sigmas[0].detach().to(dtype=dtype, device=device)}
        self._denoised: dict[int, Tensor] = {}

    @property
    def done(self) -> bool:
        return self.k >= self.solver.nfe

    @property
    def x(self) -> Tensor:
        """The current state ``x_k`` (the sample once ``done``)."""
        return self._states[self.k]

    @x.setter
    def x(self, value: Tensor) -> None:
        """Replace the current state (a host loop may edit its sample between steps)."""
        self._states[self.k] = value

    @property
    def sigma(self) -> Tensor:
        """The level given to the model at this evaluation (a 0-dim tensor)."""
        if self.done:
            raise RuntimeError(f"the solver has made all its {self.solver.nfe} evaluations")
        return self._levels[0].detach() if self.k == 0 else self._levels[self.k]  # the start level: see __init__

    def tell(self, denoised: Tensor) -> Tensor:
        """Take ``D(x_k, sigma_k)`` and return the next state ``x_{k+1}``."""
        if self.done:
            raise RuntimeError(f"the solver has made all its {self.solver.nfe} evaluations")
        k = self.k
        self._denoised[k] = denoised
        terms = [self._a[k, j] * self._states[j] for j in self._uses_a[k]]
        terms += [self._b[k, j] * self._denoised[j] for j in self._uses_b[k]]
        x = torch.zeros_like(self._states[k]) if not terms else terms[0]
        for term in terms[1:]:
            x = x + term
        self._states[k + 1] = x
        for j in self._free_x[k]:  # drop what no later row reads
            del self._states[j]
        for j in self._free_d[k]:
            del self._denoised[j]
        self.k = k + 1
        return x


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
