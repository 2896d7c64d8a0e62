"""The learning budget: model evaluations, counted.

The unit is one row (one sample) through the model: a row evaluated without autograd costs 1,
a row whose graph is kept for a backward pass costs 3 (forward and backward). A guided
evaluation counts as one row, as it counts as one NFE. Teacher pairs are charged apart, at
their rows times the teacher's NFE, whether they are made during the run or read from a
cache, so the figure of a run does not depend on what an earlier run left on disk; every
other model call is counted as it is made.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..frame import Denoiser
from ..models import carry

__all__ = ["Cost", "counted", "GRAD_UNITS"]

GRAD_UNITS = 3
"""Cost units of a row evaluated with autograd (forward and backward), against 1 without."""


@dataclass
class Cost:
    """Rows through the model, with and without autograd, and the teacher's share.

    Thread-safe: model calls from several threads may add to one ``Cost``."""

    rows_grad: int = 0
    rows_nograd: int = 0
    teacher_units: int = 0  # teacher pairs: rows x teacher NFE (see the module's docstring)
    started: float = field(default_factory=time.perf_counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def charge_teacher(self, rows: int, nfe: int | None) -> None:
        """Charge ``rows`` teacher pairs of ``nfe`` evaluations each (``None``: an adaptive
        teacher, whose cost is not known in advance, is not charged)."""
        if nfe is not None:
            with self._lock:
                self.teacher_units += rows * nfe

    def add(self, rows: int, grad: bool) -> None:
        with self._lock:
            if grad:
                self.rows_grad += rows
            else:
                self.rows_nograd += rows

    @property
    def learn_units(self) -> int:
        """What learning spent: ``3 * rows_grad + rows_nograd``."""
        return GRAD_UNITS * self.rows_grad + self.rows_nograd

    @property
    def units(self) -> int:
        """Learning and teacher together."""
        return self.learn_units + self.teacher_units

    def to_dict(self) -> dict[str, Any]:
        """The record kept in ``solver.meta["cost"]``; ``seconds`` since this ``Cost`` was made.
        Under ``torch.distributed`` the rows are every rank's (each rank counts its own share:
        call it on every rank)."""
        from .. import distributed

        rows = torch.tensor([self.rows_grad, self.rows_nograd], dtype=torch.float64)
        grad, nograd = (int(v) for v in distributed.all_reduce_sum(rows))
        learn_units = GRAD_UNITS * grad + nograd
        return {"units": learn_units + self.teacher_units, "learn_units": learn_units,
                "teacher_units": self.teacher_units, "rows_grad": grad, "rows_nograd": nograd,
                "seconds": round(time.perf_counter() - self.started, 2)}


def counted(model: Denoiser, cost: Cost) -> Denoiser:
    """``model`` with every call's rows added to ``cost``.

    A call counts as with autograd when grad mode is on and its input or noise level requires
    a gradient (so the model's activations are kept for a backward pass)."""

    def fn(x: Tensor, sigma: Tensor, *cond: Any) -> Tensor:
        grad = torch.is_grad_enabled() and (x.requires_grad or sigma.requires_grad)
        cost.add(int(x.shape[0]), grad)
        return model(x, sigma, *cond)

    # what a host integration recorded (host, timesteps) goes into the solver's fingerprint
    return carry(model, Denoiser(fn, model.sigma_min, model.sigma_max, model.sigma_data, time=model.time, name=model.name))

