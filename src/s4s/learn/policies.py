"""The learner's decisions, each a small object that works on plain numbers (testable without a
learning run): which hand-designed start to learn from, how many steps a budget buys, and
whether a learned solver may replace its start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .budget import GRAD_UNITS

__all__ = ["RankStarts", "StepBudget", "Guard"]


@dataclass(frozen=True)
class RankStarts:
    """Start from the hand-designed (solver, grid) candidate with the lowest mean distance to
    the teacher on the first ``pairs`` validation pairs.

    Ties go to the earlier candidate in the order given; a candidate whose distance is not
    finite is never chosen."""

    pairs: int = 64

    def __post_init__(self) -> None:
        if isinstance(self.pairs, bool) or not isinstance(self.pairs, int) or self.pairs < 2:
            raise ValueError(f"RankStarts.pairs must be an int of at least 2, got {self.pairs!r}")

    def choose(self, scores: dict[str, float]) -> str:
        """The chosen candidate's key among ``scores`` (key -> mean distance)."""
        finite = {k: v for k, v in scores.items() if math.isfinite(v)}
        if not finite:
            raise ValueError(f"no hand-designed start gives finite samples on this model (tried {sorted(scores)})")
        return min(finite, key=lambda k: finite[k])  # min keeps the first of equal values


@dataclass(frozen=True)
class StepBudget:
    """How many optimisation steps a learning budget buys.

    The budget is ``multiple`` times the teacher pairs' cost (rows x teacher NFE), in
    model-evaluation units (:mod:`s4s.learn.budget`). What is spent without a gradient (ranking
    the starts, the selection checks, the guard) comes off first; each step then costs
    ``batch_size`` sample gradients. A sample gradient through an ``nfe``-evaluation solver
    costs ``GRAD_UNITS`` units for each evaluation whose input depends on the parameters, and 1
    for the first evaluation when it does not (it sees the fixed starting noise at a fixed
    level)."""

    multiple: float = 2.0

    def __post_init__(self) -> None:
        if not (isinstance(self.multiple, (int, float)) and math.isfinite(self.multiple) and self.multiple > 0):
            raise ValueError(f"the learning budget must be a positive multiple of the teacher's cost, got "
                             f"{self.multiple!r}")

    @staticmethod
    def per_sample(nfe: int, first_free: bool = True) -> int:
        """Units of one sample gradient through ``nfe`` evaluations."""
        return GRAD_UNITS * (nfe - 1) + (1 if first_free else GRAD_UNITS)

    def steps(self, teacher_units: int, overhead: int, nfe: int, batch_size: int, first_free: bool = True) -> int:
        """Steps in all for a run whose other work costs ``overhead`` units; a budget that buys
        no step is refused, naming the least that would."""
        step = batch_size * self.per_sample(nfe, first_free)
        left = self.multiple * teacher_units - overhead
        if left < step:
            least = (overhead + step) / max(teacher_units, 1)
            raise ValueError(f"a learning budget of {self.multiple:g}x the teacher's {teacher_units:,} units buys no "
                             f"step: ranking the starts, the checks and the guard cost {overhead:,} and a step "
                             f"{step:,}; raise the budget to at least {least:.2f}x, or give the steps (iters)")
        return int(left // step)


@dataclass(frozen=True)
class Guard:
    """A learned solver replaces its start only when its mean distance is lower on the training
    pairs and on the validation pairs both (the selection score saw only the validation
    pairs; the training pairs were fitted): a last check against a noisy or overfitted
    selection."""

    def accepts(self, train_now: float, val_now: float, train_start: float, val_start: float) -> bool:
        return train_now < train_start and val_now < val_start
