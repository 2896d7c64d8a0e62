"""Noise-level grids: ``steps + 1`` strictly decreasing float64 sigmas, ``sigma_max`` first.

A grid may end at 0 (as k-diffusion's and diffusers' default grids do); the step onto 0 is
then the denoised value itself.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from .frame import Denoiser

__all__ = ["karras", "logsnr", "time_uniform", "time_quadratic", "validate_grid", "get_schedule", "split_zero", "SCHEDULES"]


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"steps must be an int, got {type(steps).__name__}")
    if steps < 1:
        raise ValueError(f"a grid needs at least 1 step, got steps={steps}")
    return steps


def _check_range(sigma_min: float, sigma_max: float) -> None:
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")


def validate_grid(sigmas: Tensor | Sequence[float]) -> Tensor:
    """Check a user grid and return it as float64 (gradients kept).

    Raises ``ValueError`` unless the grid has at least 2 finite entries, is strictly
    decreasing and positive, except that the last entry may be exactly 0.
    """
    if isinstance(sigmas, Tensor):
        grid = sigmas.to(torch.float64)
    else:
        try:
            grid = torch.as_tensor([float(s) for s in sigmas], dtype=torch.float64)
        except (TypeError, ValueError) as e:
            raise TypeError(f"a grid must be a sequence of numbers: {e}") from None
    if grid.dim() != 1 or grid.numel() < 2:
        raise ValueError(f"a grid must be 1-D with at least 2 levels, got shape {tuple(grid.shape)}")
    g = grid.detach()
    if not bool(torch.isfinite(g).all()):
        raise ValueError(f"grid has non-finite levels: {g.tolist()}")
    if not bool((g[:-1] > g[1:]).all()):
        i = int(torch.nonzero(g[:-1] <= g[1:])[0])
        raise ValueError(
            f"grid must be strictly decreasing (sigma_max first); level {i + 1} = {float(g[i + 1]):g} "
            f"is not below level {i} = {float(g[i]):g}"
        )
    if not bool((g[:-1] > 0).all()) or float(g[-1]) < 0:
        raise ValueError(f"grid levels must be positive (only the last may be 0), got {g.tolist()}")
    return grid


def karras(sigma_min: float, sigma_max: float, steps: int, rho: float = 7.0) -> Tensor:
    """EDM's grid (Karras et al. 2022, eq. 5): uniform in ``sigma^(1/rho)``."""
    _check_steps(steps)
    _check_range(sigma_min, sigma_max)
    if not rho > 0:
        raise ValueError(f"rho must be positive, got {rho}")
    u = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    grid = (hi + u * (lo - hi)) ** rho
    grid[0], grid[-1] = sigma_max, sigma_min  # exact end points despite rounding
    return grid


def logsnr(sigma_min: float, sigma_max: float, steps: int) -> Tensor:
    """Uniform in ``lambda = -log sigma`` (DPM-Solver's "logSNR" grid)."""
    _check_steps(steps)
    _check_range(sigma_min, sigma_max)
    u = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    return torch.exp(torch.log(torch.tensor(sigma_max, dtype=torch.float64)) * (1 - u)
                     + torch.log(torch.tensor(sigma_min, dtype=torch.float64)) * u)


def _in_time(model: Denoiser, sigma_min: float, sigma_max: float, u: Tensor) -> Tensor:
    t_hi, t_lo = model.time_of(torch.tensor(sigma_max)), model.time_of(torch.tensor(sigma_min))
    grid = model.sigma_of(t_hi + u * (t_lo - t_hi))
    grid[0], grid[-1] = sigma_max, sigma_min
    return grid


def time_uniform(model: Denoiser, sigma_min: float, sigma_max: float, steps: int) -> Tensor:
    """Uniform in the model's own time ``t`` (DDIM's uniform spacing; sigma itself for EDM)."""
    _check_steps(steps)
    _check_range(sigma_min, sigma_max)
    return _in_time(model, sigma_min, sigma_max, torch.linspace(0, 1, steps + 1, dtype=torch.float64))


def time_quadratic(model: Denoiser, sigma_min: float, sigma_max: float, steps: int) -> Tensor:
    """Quadratic in the model's own time, dense near ``sigma_min`` (DDIM's quadratic spacing)."""
    _check_steps(steps)
    _check_range(sigma_min, sigma_max)
    u = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    return _in_time(model, sigma_min, sigma_max, 1 - (1 - u) ** 2)


SCHEDULES: dict[str, Callable[..., Tensor]] = {
    "karras": lambda model, lo, hi, n, **kw: karras(lo, hi, n, **kw),
    "logsnr": lambda model, lo, hi, n, **kw: logsnr(lo, hi, n, **kw),
    "time_uniform": lambda model, lo, hi, n, **kw: time_uniform(model, lo, hi, n, **kw),
    "time_quadratic": lambda model, lo, hi, n, **kw: time_quadratic(model, lo, hi, n, **kw),
}


def get_schedule(
    name: str,
    steps: int,
    model: Denoiser | None = None,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    **kwargs: float,
) -> Tensor:
    """A named grid of ``steps`` intervals over the model's range (or the one given).

    ``NAME+zero`` (e.g. ``"time_uniform+zero"``) ends the grid at 0 instead of at sigma_min:
    the named grid's last level is replaced by 0, so the final step jumps from the previous
    level to the data (diffusers' ``final_sigmas_type="zero"``).
    """
    base, zero = split_zero(name)
    if base not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)} (optionally +zero) or pass a grid")
    if model is None and (sigma_min is None or sigma_max is None or name.startswith("time")):
        raise ValueError(f"schedule {name!r} needs a model (or sigma_min and sigma_max for karras/logsnr)")
    lo = model.sigma_min if sigma_min is None else float(sigma_min)
    hi = model.sigma_max if sigma_max is None else float(sigma_max)
    grid = SCHEDULES[base](model, lo, hi, steps, **kwargs)
    return torch.cat([grid[:-1], grid.new_zeros(1)]) if zero else grid


def split_zero(name: str) -> tuple[str, bool]:
    """``"karras+zero"`` -> ``("karras", True)``; ``"karras"`` -> ``("karras", False)``."""
    return (name[: -len("+zero")], True) if name.endswith("+zero") else (name, False)
