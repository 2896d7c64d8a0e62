"""Everything ``s4s.learn`` can be told beyond the model, the NFE, the method and the pairs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import Tensor

from ..schedules import SCHEDULES, split_zero
from ..solvers import SOLVERS
from ..teacher import TeacherSpec
from .guidance import GuidanceRange
from .objectives import DISTANCES, Distance
from .policies import Guard, RankStarts, StepBudget
from .recipes import parse_plan

__all__ = ["LearnConfig", "TEACHER_NFE", "NUM_SAMPLES"]

TEACHER_NFE = 100
"""The NFE of the learner's default teacher (UniPC-3 on the Karras grid). The teacher that
benchmarks measure held-out figures against is ``TeacherSpec()``, a separate default that a
coarser learning teacher leaves unchanged."""
NUM_SAMPLES = 1024
"""The teacher pairs ``s4s.learn`` makes by default (seeds ``0 .. NUM_SAMPLES - 1``)."""


def _positive_int(name: str, value: object, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


@dataclass(frozen=True)
class LearnConfig:
    """How ``s4s.learn`` learns.

    Attributes:
        shape: one sample's shape (zoo models, and models with a ``sample_shape``, know theirs).
        base, schedule: the starting solver and grid, e.g. ``"deis"`` and ``"logsnr"``; by
            default ``rank`` chooses among ``CANDIDATE_SOLVERS x CANDIDATE_SCHEDULES``.
        teacher: how teacher pairs are made (default UniPC-3, ``TEACHER_NFE`` NFE, Karras grid), and so
            what they cost.
        plan: phases replacing the method's recipe, e.g. ``"joint:3,coef:1"``
            (:func:`s4s.learn.recipes.parse_plan`).
        distance: ``"l2"``, ``"l1"``, ``"pseudo_huber"`` or ``f(x, y) -> [B]``, measured after
            ``decode`` when given (latent models).
        decode: latents -> what the distance compares (a VAE decoder).
        radius: the relaxed objective: the student's noise may move within
            ``radius * sqrt(dim)`` of the teacher's (0: the plain objective).
        budget: the learning budget (a multiple of the teacher pairs' cost) and how it buys steps.
        iters: optimisation steps in all, overriding ``budget`` (``None``: from the budget).
        batch_size: pairs per Adam step.
        lr: Adam's step size at the start of each phase (a half cosine to 0 over the phase).
        coef_lr: the step size of the coefficients and of the decoupled model-input levels,
            relative to ``lr`` per unit of the start's relative error (its RMSE to the teacher
            over the teacher samples' RMS, on the validation pairs;
            :func:`s4s.learn.learner.relative_error`; over a guidance range, the geometric
            mean of each training scale's): both change the sample by an amount that
            does not shrink with the start's error. The grid's step size is ``lr`` (moving a
            level changes the discretisation error in proportion to that error).
        backtrack: a check that scores no better than the phase's best returns there with half
            the step size.
        tolerance: with ``backtrack``, only a check worse than the best by more than this many
            standard errors (of the paired differences on the validation pairs) goes back.
        band: history depth of the learned coefficients (``None``: every earlier evaluation).
        val_fraction: the share of the pairs held out to select and guard (at least 2 pairs).
        checks: selection checks on the validation pairs in each phase.
        rank: how the start is chosen; guard: whether the learned solver may replace it.
        device, dtype: where and in what precision teacher pairs are made and learning runs.
        cache_dir: a teacher cache (``s4s.teacher``).
        checkpointing: recompute each model call in the backward pass (memory flat in NFE,
            about one more forward pass of time).
        parallel: make teacher shards side by side on CPU threads (``None``: on for a CPU).
        strength: learn a solver that starts where image-to-image with this strength starts
            (:func:`s4s.models.strength_level`; teacher pairs from
            :func:`s4s.teacher.generate_img2img_teacher`); 1 is sampling from noise.
        guidance: learn one solver for every classifier-free-guidance scale in ``(lo, hi)``
            (or a :class:`~s4s.learn.guidance.GuidanceRange`) for a model guided with
            ``scale=None``; ``s4s.learn`` then returns a
            :class:`~s4s.learn.guidance.GuidanceSolver`.
    """

    shape: Sequence[int] | None = None
    base: str | None = None
    schedule: str | None = None
    teacher: TeacherSpec = field(default_factory=lambda: TeacherSpec(nfe=TEACHER_NFE))
    plan: str | None = None
    distance: str | Distance = "l2"
    decode: Callable[[Tensor], Tensor] | None = None
    radius: float = 0.0
    budget: StepBudget = field(default_factory=StepBudget)
    iters: int | None = None
    batch_size: int = 16
    lr: float = 0.1
    coef_lr: float = 1.5
    backtrack: bool = False
    tolerance: float = 0.0
    band: int | None = None
    val_fraction: float = 0.2
    checks: int = 8
    rank: RankStarts = field(default_factory=RankStarts)
    guard: Guard = field(default_factory=Guard)
    device: torch.device | str = "cpu"
    dtype: torch.dtype = torch.float32
    cache_dir: str | None = None
    checkpointing: bool = False
    parallel: bool | None = None
    strength: float = 1.0
    guidance: GuidanceRange | tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.guidance is not None and not isinstance(self.guidance, GuidanceRange):
            try:
                lo, hi = self.guidance  # type: ignore[misc]
            except (TypeError, ValueError):
                raise ValueError(f"guidance must be (lo, hi) or a GuidanceRange, got {self.guidance!r}") from None
            object.__setattr__(self, "guidance", GuidanceRange(lo, hi))
        for name in ("batch_size", "checks"):
            _positive_int(name, getattr(self, name))
        _positive_int("iters", self.iters, allow_none=True)
        _positive_int("band", self.band, allow_none=True)
        if self.base is not None and self.base not in SOLVERS:
            raise ValueError(f"unknown base solver {self.base!r}; choose one of {sorted(SOLVERS)}")
        if self.schedule is not None and split_zero(self.schedule)[0] not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {sorted(SCHEDULES)} (optionally +zero)")
        if self.plan is not None:
            parse_plan(self.plan)
        if not callable(self.distance) and self.distance not in DISTANCES:
            raise ValueError(f"unknown distance {self.distance!r}; choose one of {sorted(DISTANCES)} or pass a callable")
        if not (isinstance(self.radius, (int, float)) and 0 <= self.radius < 1):
            raise ValueError(f"radius must be in [0, 1), got {self.radius!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.coef_lr, (int, float)) and math.isfinite(self.coef_lr) and self.coef_lr > 0):
            raise ValueError(f"coef_lr must be a positive number, got {self.coef_lr!r}")
        if isinstance(self.tolerance, bool) or not (isinstance(self.tolerance, (int, float))
                                                    and 0 <= self.tolerance < math.inf):
            raise ValueError(f"tolerance must be a number of standard errors of at least 0, got {self.tolerance!r}")
        if not (isinstance(self.val_fraction, (int, float)) and 0 < self.val_fraction < 1):
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)) or not 0 < self.strength <= 1:
            raise ValueError(f"strength must be in (0, 1], got {self.strength!r}")
        if not isinstance(self.budget, StepBudget):
            raise ValueError(f"budget must be a StepBudget, e.g. StepBudget(2.0), got {self.budget!r}")
        if not isinstance(self.teacher, TeacherSpec):
            raise ValueError(f"teacher must be a TeacherSpec, got {self.teacher!r}")
