"""Solvers: one table type, one sampling loop, and builders for the hand-designed methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from torch import Tensor

from ..frame import Denoiser
from ..schedules import SCHEDULES, get_schedule, split_zero, validate_grid
from . import builders
from .table import Solver, StepInfo

__all__ = ["Solver", "StepInfo", "make_solver", "SOLVERS", "builders"]


@dataclass(frozen=True)
class _Method:
    build: Callable[..., Solver]
    evals_per_step: int = 1  # model evaluations per grid step (the step onto sigma=0 costs one)


SOLVERS: dict[str, _Method] = {
    "ddim": _Method(builders.ddim),
    "heun": _Method(builders.heun, evals_per_step=2),
    "dpmpp_2m": _Method(lambda g, **kw: builders.dpmpp(g, order=2, **kw)),
    "dpmpp_3m": _Method(lambda g, **kw: builders.dpmpp(g, order=3, **kw)),
    "unipc": _Method(builders.unipc),
    "ipndm": _Method(builders.ipndm),
    "deis": _Method(builders.deis),
}


def _nfe_on(method: _Method, grid: Tensor) -> int:
    steps = grid.numel() - 1
    return method.evals_per_step * steps - (method.evals_per_step - 1) * int(float(grid.detach()[-1]) == 0)


def make_solver(
    name: str,
    nfe: int,
    schedule: str | Tensor | Sequence[float] = "karras",
    model: Denoiser | None = None,
    *,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    **options: Any,
) -> Solver:
    """Build a hand-designed solver that makes exactly ``nfe`` model evaluations.

    Args:
        name: one of ``ddim, heun, dpmpp_2m, dpmpp_3m, unipc, ipndm, deis``.
        nfe: model evaluations per sample.
        schedule: a grid name (``karras``, ``logsnr``, ``time_uniform``, ``time_quadratic``)
            spanning ``[sigma_min, sigma_max]`` (the model's range unless given), or an
            explicit decreasing grid (which may end at 0) whose length must fit ``nfe``.
        model: the denoiser whose range and time variable the named grid uses.
        **options: builder options, e.g. ``order=3``, ``variant="bh1"``, ``corrector=False``,
            ``lower_order_final=True``, and ``rho`` for the Karras grid.

    Named grids end at ``sigma_min`` with no extra final denoising call.
    """
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; choose one of {sorted(SOLVERS)}")
    if isinstance(nfe, bool) or not isinstance(nfe, int):
        raise TypeError(f"nfe must be an int, got {type(nfe).__name__}")
    if nfe < 1:
        raise ValueError(f"nfe must be at least 1, got {nfe}")
    method = SOLVERS[name]
    grid_options = {k: options.pop(k) for k in ("rho",) if k in options}
    if isinstance(schedule, str):
        base_schedule, zero = split_zero(schedule)
        if base_schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; choose one of {sorted(SCHEDULES)} (optionally +zero) "
                             "or pass a grid")
        per_step = method.evals_per_step
        evals = nfe + (per_step - 1) * zero  # a final step to 0 skips its second stage
        if evals % per_step:
            raise ValueError(
                f"{name} makes {per_step} evaluations per step, so on a grid ending at "
                f"{'0' if zero else 'sigma_min'} nfe must be {'one less than ' if zero else ''}a multiple of "
                f"{per_step}, got nfe={nfe}"
            )
        grid = get_schedule(schedule, evals // per_step, model, sigma_min, sigma_max, **grid_options)
        schedule_name = schedule
    else:
        if grid_options:
            raise ValueError(f"options {sorted(grid_options)} apply to named schedules only")
        grid = validate_grid(schedule)
        schedule_name = "custom"
        if _nfe_on(method, grid) != nfe:
            raise ValueError(
                f"{name} makes {_nfe_on(method, grid)} evaluations on a grid of {grid.numel()} levels, "
                f"not the nfe={nfe} asked for"
            )
    try:
        solver = method.build(grid, **options)
    except TypeError as e:
        raise TypeError(f"{name}: {e}") from None
    return solver.with_(meta={**solver.meta, "schedule": schedule_name, **grid_options})
