"""s4s: learned few-step solvers for diffusion and flow models (Frankel et al., ICML 2025)."""

from __future__ import annotations

from . import schedules, zoo
from .frame import Denoiser, TimeMap
from .io import load_solver, save_solver
from .learn import learn
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
    "load_solver",
    "save_solver",
    "TeacherSpec",
    "generate_teacher",
    "schedules",
    "zoo",
    "__version__",
]
