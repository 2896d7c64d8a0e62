"""diffusers interop: a pipeline (or its folder) as an :class:`s4s.Denoiser`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..frame import Denoiser
from ..models import DiscreteVP, vp_denoiser

__all__ = ["from_diffusers", "load_pipeline"]

_PREDICTIONS = {"epsilon": "eps", "v_prediction": "v", "sample": "sample"}


def load_pipeline(path: str | os.PathLike[str]) -> Any:
    """``DiffusionPipeline.from_pretrained`` on a local folder (safetensors only, no downloads)."""
    try:
        from diffusers import DiffusionPipeline
    except ImportError as e:
        raise ImportError("diffusers pipelines need diffusers: pip install 's4s[diffusers]'") from e
    folder = Path(path)
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"{folder} is not a diffusers pipeline folder (no model_index.json)")
    return DiffusionPipeline.from_pretrained(folder, use_safetensors=True, local_files_only=True, low_cpu_mem_usage=False)


def from_diffusers(pipe: Any, *, round_time: bool = False) -> Denoiser:
    """Wrap an unconditional UNet pipeline (``DDPMPipeline``-like: ``pipe.unet``, ``pipe.scheduler``).

    The scheduler's ``alphas_cumprod`` and ``prediction_type`` define the adapter; the
    sample shape is ``(in_channels, sample_size, sample_size)`` (see :func:`sample_shape`).
    """
    unet, scheduler = getattr(pipe, "unet", None), getattr(pipe, "scheduler", None)
    if unet is None or scheduler is None or not hasattr(scheduler, "alphas_cumprod"):
        raise TypeError("expected a pipeline with a UNet `unet` and a discrete-time `scheduler`")
    prediction = scheduler.config.get("prediction_type", "epsilon")
    if prediction not in _PREDICTIONS:
        raise ValueError(f"unsupported prediction_type {prediction!r}; expected one of {sorted(_PREDICTIONS)}")
    unet.eval()
    for p in unet.parameters():
        p.requires_grad_(False)
    dtype = next(unet.parameters()).dtype

    def net(x_t: Tensor, t: Tensor) -> Tensor:
        return unet(x_t.to(dtype), t.to(dtype)).sample.to(x_t.dtype)

    model = vp_denoiser(net, DiscreteVP(scheduler.alphas_cumprod), _PREDICTIONS[prediction],  # type: ignore[arg-type]
                        round_time=round_time, name=type(pipe).__name__)
    size = unet.config.sample_size
    size = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
    model.sample_shape = (unet.config.in_channels, *size)  # type: ignore[attr-defined]
    return model
