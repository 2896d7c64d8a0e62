"""A set of teacher pairs as an objective: the mean distance of a solver's samples to the teacher's.

Everything is computed in chunks of rows (memory bounded whatever the number of pairs); under
``torch.distributed`` each rank takes its share of the rows and sums are all-reduced, so every
rank sees the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from .. import conds, distributed
from ..frame import Denoiser
from ..solvers.table import Solver
from ..teacher import TeacherData
from .guidance import ScaledSolver, scales_of
from .objectives import Distance

__all__ = ["Pairs", "split_pairs"]


@dataclass
class Pairs:
    """Teacher pairs ``data`` judged by ``distance`` (after ``decode``, for latent models)."""

    model: Denoiser
    data: TeacherData
    distance: Distance
    decode: Callable[[Tensor], Tensor] | None = None
    chunk: int = 256
    checkpointing: bool = False  # recompute each model call in the backward pass
    weights: Tensor | None = None  # per pair: a multiplier of its distance (``[len(data)]``)

    def __len__(self) -> int:
        return len(self.data)

    def loss(self, solver: Solver | ScaledSolver, idx: Tensor, shift: Tensor | None = None) -> Tensor:
        """Distances of the pairs ``idx``, shape ``(len(idx),)``, differentiable; ``shift``
        (``[len(idx), ...]``) moves the student's noise (the relaxed objective). A non-finite
        sample gives a non-finite distance (no check: the caller rolls back). A
        :class:`ScaledSolver` samples each pair with the solver of its guidance scale."""
        if isinstance(solver, ScaledSolver):
            which = solver.index(scales_of(conds.take(self.data.cond, idx)))
            parts, order = [], []
            for m in which.unique().tolist():
                sel = torch.nonzero(which == m).flatten()
                parts.append(self._loss(solver.solvers[m], idx[sel], None if shift is None else shift[sel]))
                order.append(sel)
            out = torch.cat(parts)[torch.argsort(torch.cat(order))]
        else:
            out = self._loss(solver, idx, shift)
        return out if self.weights is None else out * self.weights[idx].to(out)

    def _loss(self, solver: Solver, idx: Tensor, shift: Tensor | None) -> Tensor:
        noise = self.data.noise[idx] if shift is None else self.data.noise[idx] + shift
        cond = None if self.data.cond is None else conds.take(self.data.cond, idx)
        x = solver.sample(self.model, noise, cond, check_finite=False, checkpoint_steps=self.checkpointing)
        y = self.data.samples[idx]
        if self.decode is not None:
            x, y = self.decode(x), self.decode(y)
        return self.distance(x, y)

    def _chunks(self) -> list[Tensor]:
        mine = distributed.local(torch.arange(len(self.data)))
        return [mine[i:i + self.chunk] for i in range(0, len(mine), self.chunk)]

    def each(self, solver: Solver) -> Tensor:
        """Distance of every pair, shape ``(len(self),)``, float64 on the CPU."""
        out = torch.zeros(len(self.data), dtype=torch.float64)
        with torch.no_grad():
            for idx in self._chunks():
                out[idx] = self.loss(solver, idx).to(torch.float64).cpu()
        return distributed.all_reduce_sum(out)

    def mean(self, solver: Solver) -> float:
        """Mean distance over the pairs (``inf`` when a sample is not finite)."""
        value = float(self.each(solver).mean())
        return value if math.isfinite(value) else math.inf

    def value_and_grad(self, make: Callable[[], Solver], params: Sequence[Tensor]) -> tuple[float, list[Tensor]]:
        """Mean distance of the solver ``make()`` and its gradient with respect to ``params``.

        ``make`` is called once per chunk (the solver's tensors are rebuilt from ``params`` for
        each chunk's graph). A non-finite mean returns ``inf`` and zero gradients."""
        total = torch.zeros((), dtype=torch.float64)
        grads = [torch.zeros_like(p) for p in params]
        n = len(self.data)
        for idx in self._chunks():
            loss = self.loss(make(), idx).sum() / n
            parts = torch.autograd.grad(loss, list(params), allow_unused=True)
            total += loss.detach().to(torch.float64).cpu()
            for g, part in zip(grads, parts):
                if part is not None:
                    g += part
        total = distributed.all_reduce_sum(total)
        for g in grads:
            distributed.all_reduce_sum(g)
        value = float(total)
        if not math.isfinite(value) or not all(bool(torch.isfinite(g).all()) for g in grads):
            return math.inf, [torch.zeros_like(p) for p in params]
        return value, grads


def val_size(n: int, val_fraction: float) -> int:
    """How many of ``n`` pairs :func:`split_pairs` keeps for validation."""
    return max(2, int(round(val_fraction * n)))


def split_pairs(data: TeacherData, val_fraction: float, generator: torch.Generator) -> tuple[TeacherData, TeacherData]:
    """(training, validation) pairs: a random ``val_fraction`` (at least 2) of ``data`` validates."""
    perm = torch.randperm(len(data), generator=generator)
    n_val = val_size(len(data), val_fraction)
    return data.subset(perm[n_val:].sort().values), data.subset(perm[:n_val].sort().values)
