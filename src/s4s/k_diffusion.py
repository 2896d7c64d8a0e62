"""A k-diffusion-style sampler for s4s solvers (k-diffusion, ComfyUI and the web UIs share its
signature: ``sample_*(model, x, sigmas, extra_args=None, callback=None, disable=None)``).

k-diffusion's ``model(x, sigma[B], **extra_args)`` is a denoiser in the VE frame, which is
s4s's frame, and ``x`` arrives already scaled: ``x = sigmas[0] * noise``.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
from torch import Tensor

from .frame import Denoiser
from .io import load_solver
from .solvers.table import Solver, StepInfo

__all__ = ["sample_s4s"]


@torch.no_grad()
def sample_s4s(
    model: Callable[..., Tensor],
    x: Tensor,
    sigmas: Tensor,
    extra_args: dict[str, Any] | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
    disable: bool | None = None,
    solver: Solver | str | os.PathLike[str] | None = None,
) -> Tensor:
    """Run ``solver`` (an :class:`s4s.Solver` or a solver file) as a k-diffusion sampler.

    A learned solver owns its time steps, so ``sigmas`` only says where sampling starts and how
    many steps the host asked for: ``sigmas[0]`` must be the solver's ``sigma_max`` (to 0.1%)
    and ``len(sigmas) - 1`` its NFE (k-diffusion grids end with an appended 0); otherwise a
    ``ValueError`` says what to change. ``callback`` receives k-diffusion's dict
    (``x``, ``i``, ``sigma``, ``sigma_hat``, ``denoised``) after each model call. ``disable``
    is accepted for compatibility (no progress bar is drawn).

    Returns:
        The sample ``[B, ...]``, after exactly ``solver.nfe`` calls of ``model``.
    """
    if solver is None:
        raise ValueError("sample_s4s needs solver=an s4s.Solver or a solver file path")
    if not isinstance(solver, Solver):
        solver = load_solver(solver)
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64).flatten().cpu()
    steps = sigmas.numel() - 1
    if steps != solver.nfe:
        raise ValueError(f"the solver makes {solver.nfe} model calls but sigmas has {steps} steps; "
                         f"ask the host for {solver.nfe} steps")
    start = float(solver.sigmas[0])
    if abs(float(sigmas[0]) - start) > 1e-3 * start:
        raise ValueError(f"sigmas starts at {float(sigmas[0]):.6g} but the solver starts at sigma_max={start:.6g}; "
                         "the solver was learned for a model with another noise range")
    extra = extra_args or {}
    levels = solver.model_sigmas.detach()
    lo, hi = float(levels.min()), max(float(levels.max()), start)
    denoiser = Denoiser(lambda x_, s: model(x_, s, **extra), lo, hi if hi > lo else lo * (1 + 1e-6),
                        name="k-diffusion model")

    def report(info: StepInfo) -> None:
        if callback is not None:
            callback({"x": info.x, "i": info.step, "sigma": sigmas[info.step], "sigma_hat": info.sigma,
                      "denoised": info.denoised})

    return solver.sample(denoiser, x / start, callback=report)  # x_0 = x
