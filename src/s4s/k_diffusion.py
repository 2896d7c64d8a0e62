"""A k-diffusion-style sampler for s4s solvers (k-diffusion, ComfyUI and the web UIs share its
signature: ``sample_*(model, x, sigmas, extra_args=None, callback=None, disable=None)``).

Hosts call ``model(x, sigma[B], **extra_args) -> x0`` in one of two frames:

- ``"ve"``: k-diffusion's (and ComfyUI's for EPS, V and EDM models): ``x = x0 + sigma n``,
  which is s4s's frame, and ``sigmas`` are s4s's levels;
- ``"flow"``: ComfyUI's for flow-matching models (SD3, Flux, Wan): ``x = (1 - t) x0 + t n``
  with ``t`` in ``[0, 1]`` passed as ``sigma``; s4s's level is ``t / (1 - t)`` and its state
  ``x / (1 - t)`` (the same ODE, :func:`s4s.models.flow_denoiser`).

In both, ``x`` arrives already noised at ``sigmas[0]``.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any, Callable, Literal

import torch
from torch import Tensor

from .frame import Denoiser
from .io import load_solver
from .solvers.table import Solver, StepInfo

__all__ = ["sample_s4s", "host_sigmas", "to_host", "from_host", "host_denoiser", "check_timesteps", "FRAMES"]

logger = logging.getLogger(__name__)

Frame = Literal["ve", "flow"]
FRAMES: tuple[str, ...] = ("ve", "flow")
START_TOLERANCE = 1e-3
"""How far (relative) a host's first level may lie from the solver's start."""


def _check_frame(frame: str) -> None:
    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {list(FRAMES)}, got {frame!r}")


def to_host(sigmas: Tensor, frame: str) -> Tensor:
    """s4s levels (VE sigma) in a host's units: the same in ``"ve"``, ``t = s / (1 + s)`` in ``"flow"``."""
    _check_frame(frame)
    return sigmas if frame == "ve" else sigmas / (1 + sigmas)


def from_host(sigmas: Tensor, frame: str) -> Tensor:
    """A host's levels as s4s levels: the inverse of :func:`to_host` (``t < 1`` in ``"flow"``)."""
    _check_frame(frame)
    return sigmas if frame == "ve" else sigmas / (1 - sigmas)


def host_sigmas(solver: Solver, frame: str = "ve") -> Tensor:
    """The solver's grid in a host's units, ``[nfe + 1]`` float32, ending at 0 as k-diffusion's
    and ComfyUI's grids do: what ``sample_s4s`` expects as ``sigmas`` (another sampler given it
    takes the learned steps, not the learned coefficients or model levels)."""
    grid = to_host(solver.sigmas.detach().double().cpu(), frame)
    return torch.cat([grid[:-1], grid.new_zeros(1)]).float()


def host_denoiser(model: Callable[..., Tensor], frame: str, sigma_min: float, sigma_max: float,
                  extra_args: dict[str, Any] | None = None, name: str = "host model") -> Denoiser:
    """A host's ``model(x, sigma[B], **extra_args) -> x0`` (in ``frame``) as an s4s
    :class:`Denoiser` on the VE levels ``[sigma_min, sigma_max]``."""
    _check_frame(frame)
    extra = extra_args or {}
    if frame == "ve":
        return Denoiser(lambda x, s: model(x, s, **extra), sigma_min, sigma_max, name=name)

    def fn(x: Tensor, sigma: Tensor) -> Tensor:  # x = x_t / (1 - t) = x_t (1 + sigma)
        scale = (1 + sigma).view(-1, *([1] * (x.dim() - 1)))
        return model(x / scale, sigma / (1 + sigma), **extra)

    return Denoiser(fn, sigma_min, sigma_max, name=name)


def check_timesteps(solver: Solver, host: str | None, where: str = "this host") -> None:
    """Warn when ``solver`` was learned on a model fed ``"integer"`` (or ``"continuous"``)
    timesteps and the host feeds the other kind (sampling still runs; the figures learned for
    one do not hold for the other). Either side unknown: nothing to compare."""
    recorded = (solver.meta.get("model") or {}).get("timesteps")
    if host is None or recorded is None or recorded == host:
        return
    message = (f"this solver was learned on a model fed {recorded} timesteps, but {where} feeds {host} ones; "
               f"learn it on this host (or with round_time={host == 'integer'}) for the quality it was learned for")
    logger.warning(message)
    warnings.warn(message, stacklevel=3)


def _frame_of(solver: Solver, first: float) -> str:
    start = float(solver.sigmas[0])
    for frame in FRAMES:
        if frame == "flow" and not 0 < first < 1:
            continue
        level = float(from_host(torch.tensor(first, dtype=torch.float64), frame))
        if abs(level - start) <= START_TOLERANCE * start:
            return frame
    raise ValueError(
        f"sigmas starts at {first:.6g} but the solver starts at sigma_max={start:.6g} "
        f"(t={start / (1 + start):.6g} for a flow model): the solver was learned for a model with another noise "
        "range, or the host starts part-way (image-to-image, ComfyUI's denoise < 1): learn a solver for that start "
        "(s4s learn --strength), or sample from pure noise")


@torch.no_grad()
def sample_s4s(
    model: Callable[..., Tensor],
    x: Tensor,
    sigmas: Tensor,
    extra_args: dict[str, Any] | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
    disable: bool | None = None,
    solver: Solver | str | os.PathLike[str] | None = None,
    frame: str | None = None,
    timesteps: str | None = None,
) -> Tensor:
    """Run ``solver`` (an :class:`s4s.Solver` or a solver file) as a k-diffusion sampler.

    A learned solver owns its time steps, so ``sigmas`` only says where sampling starts, in
    which frame, and how many steps the host asked for: ``len(sigmas) - 1`` must be its NFE
    (k-diffusion grids end with an appended 0) and ``sigmas[0]`` its start (to 0.1%), as a VE
    level or, for ``frame="flow"``, as the flow time ``t``; otherwise a ``ValueError`` says what
    to change. ``frame=None`` takes whichever of the two ``sigmas[0]`` matches.
    ``timesteps`` (``"integer"`` or ``"continuous"``): what the host feeds its network, if
    known (k-diffusion's wrappers say so in ``model.quantize``); a solver learned on the other
    kind warns (:func:`check_timesteps`). ``callback`` receives k-diffusion's dict
    (``x``, ``i``, ``sigma``, ``sigma_hat``, ``denoised``, in the host's frame) after each
    model call. ``disable`` is accepted for compatibility (no progress bar is drawn).

    Returns:
        The sample ``[B, ...]``, ``solver.sample``'s for the same start, after exactly ``solver.nfe``
        calls of ``model`` (at level 0, where host grids end, the two frames agree).
    """
    if solver is None:
        raise ValueError("sample_s4s needs solver=an s4s.Solver or a solver file path")
    if not isinstance(solver, Solver):
        solver = load_solver(solver)
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64).flatten().cpu()
    steps = sigmas.numel() - 1
    if steps != solver.nfe:
        raise ValueError(f"the solver makes {solver.nfe} model calls but sigmas has {steps} steps; "
                         f"ask the host for {solver.nfe} steps (in ComfyUI: steps={solver.nfe}, or the S4S Sigmas node)")
    if frame is None:
        frame = _frame_of(solver, float(sigmas[0]))
    else:
        _check_frame(frame)
        found = _frame_of(solver, float(sigmas[0]))
        if found != frame:
            raise ValueError(f"sigmas starts at {float(sigmas[0]):.6g}, the solver's start in the {found!r} frame, "
                             f"not in the {frame!r} frame the host says it samples in")
    if timesteps is None and isinstance(getattr(model, "quantize", None), bool):  # k-diffusion's DiscreteSchedule
        timesteps = "integer" if model.quantize else "continuous"  # type: ignore[attr-defined]
    check_timesteps(solver, timesteps)
    start = float(solver.sigmas[0])
    levels = solver.model_sigmas.detach()
    lo, hi = float(levels.min()), max(float(levels.max()), start)
    denoiser = host_denoiser(model, frame, lo, hi if hi > lo else lo * (1 + 1e-6), extra_args, name="k-diffusion model")
    scale = 1.0 if frame == "ve" else 1 + start  # the host's x as s4s's state

    def report(info: StepInfo) -> None:
        if callback is not None:
            back = 1.0 if frame == "ve" else 1 + float(info.sigma)
            callback({"x": info.x / back, "i": info.step, "sigma": sigmas[info.step],
                      "sigma_hat": to_host(torch.tensor(float(info.sigma)), frame), "denoised": info.denoised})

    # the state starts at x * scale; the sample is s4s's, read as the host's final level 0 (both frames agree there)
    return solver.sample(denoiser, x * scale / start, callback=report)
