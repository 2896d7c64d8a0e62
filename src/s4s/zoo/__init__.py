"""Bundled models, by name: ``s4s.zoo.load(name, **options) -> s4s.Denoiser``.

- ``gaussian``, ``gmm``: analytic models with exact denoisers in any dimension
  (options ``dim``, ``seed``, ...).
- ``digits``: EDM class-conditional U-Net on 8x8 digits (option ``guidance=`` for CFG;
  condition with labels 0-9, label 10 = unconditional).
- ``digits-ddpm``: diffusers ``UNet2DModel`` DDPM eps-model (``path("digits-ddpm")`` is its
  pipeline folder).
- ``digits-flow``: rectified-flow velocity model.
- ``digits-sd3``: a latent flow-matching model as a diffusers ``StableDiffusion3Pipeline``
  (prompts ``"0"``-``"9"``, option ``guidance=`` for CFG; ``path("digits-sd3")`` is its folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..frame import Denoiser
from .analytic import GaussianMixtureModel, GaussianModel, gaussian, gaussian_mixture
from .latent import digits_sd3, digits_sd3_path
from .neural import NULL_LABEL, ddpm_path, digits, digits_ddpm, digits_flow

__all__ = ["load", "names", "path", "sample_shape", "gaussian", "gaussian_mixture", "GaussianModel",
           "GaussianMixtureModel", "NULL_LABEL"]

_MODELS: dict[str, Callable[..., Denoiser]] = {
    "gaussian": gaussian,
    "gmm": gaussian_mixture,
    "digits": digits,
    "digits-ddpm": digits_ddpm,
    "digits-flow": digits_flow,
    "digits-sd3": digits_sd3,
}


def names() -> list[str]:
    """The names :func:`load` accepts."""
    return sorted(_MODELS)


def load(name: str, **options: Any) -> Denoiser:
    """A bundled model as a ready :class:`s4s.Denoiser`."""
    if name not in _MODELS:
        raise ValueError(f"unknown zoo model {name!r}; choose one of {names()}")
    return _MODELS[name](**options)


def path(name: str) -> Path:
    """Where a bundled model's files live (for ``digits-ddpm``: a diffusers pipeline folder)."""
    if name == "digits-ddpm":
        return ddpm_path()
    if name == "digits-sd3":
        return digits_sd3_path()
    from .neural import WEIGHTS

    if name in ("digits", "digits-flow", "classifier"):
        return WEIGHTS / f"{name}.safetensors"
    raise ValueError(f"{name!r} has no files; choose one of ['classifier', 'digits', 'digits-ddpm', 'digits-flow', 'digits-sd3']")


def sample_shape(model: Denoiser) -> tuple[int, ...]:
    """The shape of one sample of a zoo model (``[1, 8, 8]`` for digits, ``[dim]`` for analytic models)."""
    if isinstance(model, (GaussianModel, GaussianMixtureModel)):
        return (model.dim,)
    if hasattr(model, "sample_shape"):  # set by s4s.integrations.diffusers.from_diffusers
        return tuple(model.sample_shape)
    if model.name.startswith("digits"):
        return (1, 8, 8)
    raise ValueError(f"model {model.name!r} is not from the zoo; give the sample shape explicitly")
