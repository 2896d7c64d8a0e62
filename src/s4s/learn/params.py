"""The learned parametrization of a solver (S4S / S4S-Alt, Frankel et al. 2025).

* Grid: interior levels from a softmax over log-sigma increments, so the grid is strictly
  decreasing by construction and its end points stay fixed (as in LD3). A grid that ends at 0
  (a final step to the data) learns its lowest positive level too.
* Decoupled model-input levels (LD3): ``model_sigma_k = level_k * exp(bound * tanh(delta_k))``
  for ``k >= 1``; the first evaluation keeps ``sigma_max`` (the pipeline's starting noise).
* Coefficients: corrections to the base solver's weights on the last ``band`` denoised
  values of each row (by default all of them: the full history), in units of the row's
  total denoised weight (``1 - s'/s`` for an exponential integrator), i.e. S4S's
  ``x' = r x + (1 - r) sum_j c_j D_{n-j}`` with ``c = c_base + dc``. The base weights are
  re-derived by the builder whenever the grid moves.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..solvers import SOLVERS
from ..solvers.table import Solver

__all__ = ["SolverParams"]


class SolverParams(nn.Module):
    """Parameters that make a :class:`Solver` from a base builder and a starting grid."""

    def __init__(self, base: str, grid: Tensor, band: int | None = None, decouple_bound: float = 0.3,
                 options: dict[str, Any] | None = None, sigma_floor: float | None = None) -> None:
        super().__init__()
        if base not in SOLVERS:
            raise ValueError(f"unknown base solver {base!r}")
        grid = grid.detach().to(torch.float64)
        self.zero_end = float(grid[-1]) == 0  # a final step to the data, whose start is learned too
        positive = grid[:-1] if self.zero_end else grid
        if positive.numel() < 2:
            raise ValueError("a learned grid needs at least two positive levels")
        self.base = base
        self.options = dict(options or {})
        self.decouple_bound = decouple_bound
        log_g = torch.log(positive)
        self.register_buffer("log_ends", torch.stack([log_g[0], log_g[-1]]))
        floor = min(float(positive[-1]), sigma_floor) if sigma_floor else float(positive[-1]) * 1e-3
        self.register_buffer("log_floor", torch.tensor(floor, dtype=torch.float64).log())  # the model's sigma_min
        self.low_shift = nn.Parameter(torch.zeros((), dtype=torch.float64))  # moves the lowest positive level
        inc = (log_g[1:] - log_g[:-1]) / (log_g[-1] - log_g[0])  # positive fractions summing to 1
        self.grid_logits = nn.Parameter(torch.log(inc))
        nfe = SOLVERS[base].build(grid, **self.options).nfe
        self.band = nfe if band is None else min(band, nfe)
        self.decouple = nn.Parameter(torch.zeros(nfe, dtype=torch.float64))
        self.coef = nn.Parameter(torch.zeros(nfe, self.band, dtype=torch.float64))

    def grid(self) -> Tensor:
        frac = torch.softmax(self.grid_logits, 0)
        cum = torch.cat([torch.zeros(1, dtype=frac.dtype), torch.cumsum(frac, 0)])
        cum = cum / cum[-1]  # exact end point despite rounding
        hi, lo = self.log_ends[0], self.log_ends[1]
        if not self.zero_end:
            return torch.exp(hi + cum * (lo - hi))
        lo = torch.clamp(lo + self.low_shift, min=self.log_floor, max=hi - 1e-3)
        return torch.cat([torch.exp(hi + cum * (lo - hi)), hi.new_zeros(1)])

    def solver(self) -> Solver:
        base = SOLVERS[self.base].build(self.grid(), **self.options)
        n = base.nfe
        rows = torch.arange(n).unsqueeze(1)
        cols = rows - torch.arange(self.band).unsqueeze(0)  # [n, band]: k, k-1, ...
        valid = cols >= 0
        weight = base.b.sum(1, keepdim=True)  # the row's total denoised weight
        where = (rows.expand_as(cols)[valid], cols[valid])
        delta = torch.zeros(n, n, dtype=torch.float64).index_put(where, (self.coef * weight)[valid])
        # the first evaluation keeps its level: it sees the initial noise at sigma_max, as in every
        # pipeline that feeds its starting latents straight to the model (diffusers, k-diffusion)
        free = torch.ones_like(self.decouple).index_fill(0, torch.tensor([0]), 0.0)
        levels = base.model_sigmas * torch.exp(self.decouple_bound * torch.tanh(self.decouple) * free)
        return base.with_(b=base.b + delta, model_sigmas=levels)

    def forward(self) -> Solver:
        """The solver (so ``torch.func.functional_call`` can make it from other parameter values)."""
        return self.solver()

    def groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameter groups by role: ``grid`` (the levels' positions), ``levels`` (the decoupled
        model-input levels) and ``coef``."""
        grid = [self.grid_logits] + ([self.low_shift] if self.zero_end else [])
        return {"grid": grid, "levels": [self.decouple], "coef": [self.coef]}
