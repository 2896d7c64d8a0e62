"""One phase's optimisation problem for the fit engine: some of a solver's parameters (and the
relaxation shifts) as one flat vector, the minibatch objective on the training pairs and the
selection score on the validation pairs.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor
from torch.func import functional_call

from .. import distributed
from ..solvers.table import Solver
from .engine import flat, unflat
from .pairs import Pairs
from .params import SolverParams

__all__ = ["Problem"]


class Problem:
    """Fit the parameter groups ``groups`` of ``params`` to ``train``; judge on ``val``.

    The flat vector is the groups' parameters in order, each divided by its group's ``scale``
    (Adam moves every coordinate by about its step size, so a group's scale is its step size
    relative to the others'), then, with ``radius > 0``, one shift of
    the student's noise per training pair (the relaxed objective of LD3 / S4S: the shift stays
    within ``radius * sqrt(dim)`` of the teacher's noise, ``dim`` the size of one sample;
    each problem's shifts start at zero)."""

    def __init__(self, params: SolverParams, groups: Sequence[str], train: Pairs, val: Pairs,
                 radius: float = 0.0, scale: dict[str, float] | None = None) -> None:
        named = dict(params.named_parameters())
        chosen = {id(p) for g in groups for p in params.groups()[g]}
        group_of = {id(p): g for g in groups for p in params.groups()[g]}
        self.params, self.train, self.val, self.radius = params, train, val, radius
        self.names = [k for k, p in named.items() if id(p) in chosen]
        self.like = [named[k] for k in self.names]
        self.size = sum(p.numel() for p in self.like)
        self.scale = torch.cat([torch.full((p.numel(),), float((scale or {}).get(group_of[id(p)], 1.0)),
                                           dtype=torch.float64) for p in self.like]) if self.like else torch.zeros(0)
        self.shape = tuple(train.data.noise.shape)
        self.shift0 = torch.zeros(self.shape, dtype=torch.float64) if radius > 0 else None

    def x0(self) -> Tensor:
        """The current parameters (and shifts) as the flat float64 vector."""
        parts = [flat(self.like) / self.scale] + ([self.shift0.reshape(-1).to(torch.float64)]
                                                  if self.shift0 is not None else [])
        return torch.cat(parts)

    def solver(self, x: Tensor) -> Solver:
        """The solver at ``x`` (differentiable with respect to ``x``)."""
        values = dict(zip(self.names, unflat(x[:self.size] * self.scale, self.like)))
        return functional_call(self.params, values, (), strict=False)

    def shifts(self, x: Tensor) -> Tensor | None:
        """The relaxation shifts in ``x`` (``[pairs, ...]``), or ``None`` for the plain objective."""
        return None if self.shift0 is None else x[self.size:].reshape(self.shape)

    def objective(self, x: Tensor, idx: Tensor) -> tuple[float, Tensor]:
        """Mean distance on the training pairs ``idx`` and its gradient (summed over ranks: each
        rank takes its share of ``idx``)."""
        x = x.detach().requires_grad_(True)
        part = distributed.local(idx)
        shift = self.shifts(x)
        noise_dtype = self.train.data.noise.dtype
        loss = self.train.loss(self.solver(x), part, None if shift is None else shift[part].to(noise_dtype)).sum()
        loss = loss / len(idx)
        value = float(distributed.all_reduce_sum(loss.detach().to(torch.float64).cpu().clone()))
        if not math.isfinite(value):
            return math.inf, torch.zeros_like(x)
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
        grad = torch.zeros_like(x) if grad is None else grad
        return value, distributed.all_reduce_sum(grad.detach())

    def score(self, x: Tensor) -> Tensor:
        """Distance of every validation pair (float64 ``[pairs]``; the selection score is its mean,
        ``inf`` when a sample is not finite)."""
        with torch.no_grad():
            return self.val.each(self.solver(x))

    def project(self, x: Tensor) -> Tensor:
        """``x`` with each shift moved onto the ball of radius ``radius * sqrt(dim)``."""
        if self.shift0 is None:
            return x
        shift = x[self.size:].reshape(self.shape[0], -1)
        bound = self.radius * math.sqrt(shift.shape[1])
        factor = (bound / shift.norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
        return torch.cat([x[:self.size], (shift * factor[:, None]).reshape(-1)])

    def load(self, x: Tensor) -> None:
        """Write ``x``'s parameters into ``params``."""
        with torch.no_grad():
            for p, v in zip(self.like, unflat(x[:self.size] * self.scale, self.like)):
                p.copy_(v)
