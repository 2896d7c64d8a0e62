"""s4s: learned few-step solvers for diffusion and flow models (Frankel et al., ICML 2025)."""

from __future__ import annotations

from typing import Any

from . import k_diffusion, schedules, zoo
from .frame import Denoiser, TimeMap
from .io import load_solver, save_solver
from .learn import LearnConfig, learn
from .learn.guidance import GuidanceSolver, load_guidance_solver
from .models import ContinuousVP, DiscreteVP, flow_denoiser, guided, vp_denoiser
from .solvers import SOLVERS, Solver, StepInfo, make_solver
from .teacher import TeacherSpec, generate_teacher

__version__ = "0.1.0"

__all__ = [
    "Denoiser",
    "TimeMap",
    "DiscreteVP",
    "ContinuousVP",
    "vp_denoiser",
    "flow_denoiser",
    "guided",
    "Solver",
    "StepInfo",
    "SOLVERS",
    "make_solver",
    "learn",
    "LearnConfig",
    "load_solver",
    "save_solver",
    "GuidanceSolver",
    "load_guidance_solver",
    "TeacherSpec",
    "generate_teacher",
    "schedules",
    "zoo",
    "k_diffusion",
    "from_diffusers",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """``s4s.from_diffusers`` is imported on first use (diffusers is slow to import)."""
    if name == "from_diffusers":
        from .integrations.diffusers import from_diffusers

        return from_diffusers
    raise AttributeError(f"module 's4s' has no attribute {name!r}")
