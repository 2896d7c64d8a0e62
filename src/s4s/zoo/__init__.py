"""Bundled models, by name: ``s4s.zoo.load(name, **options) -> s4s.Denoiser``.

The analytic models (``gaussian``, ``gmm``) have exact denoisers in any dimension.
"""

from __future__ import annotations

from typing import Any, Callable

from ..frame import Denoiser
from .analytic import GaussianMixtureModel, GaussianModel, gaussian, gaussian_mixture

__all__ = ["load", "names", "gaussian", "gaussian_mixture", "GaussianModel", "GaussianMixtureModel"]

_MODELS: dict[str, Callable[..., Denoiser]] = {
    "gaussian": gaussian,
    "gmm": gaussian_mixture,
}


def names() -> list[str]:
    """The names :func:`load` accepts."""
    return sorted(_MODELS)


def load(name: str, **options: Any) -> Denoiser:
    """A bundled model as a ready :class:`s4s.Denoiser` (options: e.g. ``dim=``, ``seed=``)."""
    if name not in _MODELS:
        raise ValueError(f"unknown zoo model {name!r}; choose one of {names()}")
    return _MODELS[name](**options)
