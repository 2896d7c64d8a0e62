"""The learning methods as data: a recipe is a sequence of phases, each fitting one part of the
solver's parameters (:class:`s4s.learn.params.SolverParams`) for a share of the step budget.

* ``grid``: the time grid and the decoupled model-input levels (LD3's parameters: Tong et al.,
  "Learning to Discretize Denoising Diffusion ODEs", ICLR 2025);
* ``coef``: the solver's coefficients on its grid (S4S: Frankel et al., "S4S: Solving for a
  Diffusion Model Solver", ICML 2025);
* ``joint``: both at once;
* ``same``: the part of the phase that gave the best parameters so far (``joint`` when none
  has improved on the start): after two openings (``@start`` phases), go on with the one that won.

Each phase goes on from the best parameters of the phases before it (an opening, ``@start``,
begins at the start instead), and only a phase's improvements on the best so far are kept: a
recipe never ends worse, on the selection score, than its start, and one that opens with two
``@start`` phases goes on from the better of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PARTS", "SAME", "resolve_part", "Phase", "Recipe", "RECIPES", "S4S", "S4S_ALT", "LD3", "JOINT", "parse_plan"]

PARTS: dict[str, tuple[str, ...]] = {"grid": ("grid", "levels"), "coef": ("coef",), "joint": ("grid", "levels", "coef")}
"""A phase's part -> the parameter groups it fits (``SolverParams.groups()``)."""
SAME = "same"
"""The part that continues with whatever part gave the best parameters so far."""


def resolve_part(part: str, best_part: str | None) -> str:
    """The part a phase fits: ``part`` itself, or for ``same`` the part of the phase that gave
    the best parameters so far (``best_part``; ``joint`` when there is none)."""
    return (best_part or "joint") if part == SAME else part


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@dataclass(frozen=True)
class Phase:
    """Fit ``part`` for ``share`` of the recipe's steps (shares are relative weights), from the
    best parameters so far or, with ``from_start``, from the start, with ``lr`` times the
    learner's step size (``LearnConfig.lr``)."""

    part: str
    share: float = 1.0
    from_start: bool = False
    lr: float = 1.0

    def __post_init__(self) -> None:
        if self.part not in PARTS and self.part != SAME:
            raise ValueError(f"a phase's part must be one of {sorted([*PARTS, SAME])}, got {self.part!r}")
        if not _positive(self.share):
            raise ValueError(f"a phase's share must be a positive number, got {self.share!r}")
        if not _positive(self.lr):
            raise ValueError(f"a phase's step-size factor (lr) must be a positive number, got {self.lr!r}")


@dataclass(frozen=True)
class Recipe:
    """A learning method: its name and its phases."""

    name: str
    phases: tuple[Phase, ...]

    def steps(self, total: int) -> list[int]:
        """Steps of each phase when the recipe has ``total`` steps (each phase at least 1)."""
        weight = sum(p.share for p in self.phases)
        counts = [max(1, round(total * p.share / weight)) for p in self.phases]
        counts[-1] = max(1, total - sum(counts[:-1]))
        return counts

    def plan(self) -> str:
        """The recipe in :func:`parse_plan`'s notation."""
        return ",".join(f"{p.part}:{p.share:g}{'@start' if p.from_start else ''}{f'*{p.lr:g}' if p.lr != 1 else ''}"
                        for p in self.phases)


S4S = Recipe("s4s", (Phase("coef"),))
LD3 = Recipe("ld3", (Phase("grid"),))
JOINT = Recipe("joint", (Phase("joint"),))
S4S_ALT = Recipe("s4s_alt", JOINT.phases)
"""S4S-Alt: the time grid, the decoupled model-input levels and the coefficients, fitted together
in one phase from the start (Frankel et al. 2025 alternate time steps and coefficients; under a
budget of a few hundred minibatch steps one phase of everything does at least as well as
alternating or opening with the grid alone, and spends nothing on restarts). The same phases as
``JOINT``, under the paper's name."""

RECIPES: dict[str, Recipe] = {r.name: r for r in (S4S, S4S_ALT, LD3, JOINT)}


def parse_plan(plan: str, name: str = "plan") -> Recipe:
    """A recipe from a plan such as ``"grid:1@start,joint:1@start,joint:6"``: comma-separated
    ``part[:share][@start][*lr]`` items, ``part`` one of ``grid``, ``coef``, ``joint``, ``same``,
    ``share`` a positive number (the phase's weight in the step budget; 1 when left out),
    ``@start`` beginning the phase at the start instead of the best parameters so far, and
    ``*lr`` a positive factor on the step size (``"joint:6*0.4"``: 0.4 times ``LearnConfig.lr``)."""
    if not isinstance(plan, str) or not plan.strip():
        raise ValueError(f"plan must be a non-empty string such as 'joint:3,coef:1', got {plan!r}")
    phases = []
    for item in plan.split(","):
        rest, star, lr = item.strip().partition("*")
        body, at, flag = rest.partition("@")
        part, _, share = body.partition(":")
        try:
            if at and flag.strip() != "start":
                raise ValueError(flag)
            phases.append(Phase(part.strip(), float(share) if share.strip() else 1.0, from_start=bool(at),
                                lr=float(lr) if star else 1.0))
        except ValueError:
            raise ValueError(f"bad plan item {item.strip()!r} in {plan!r}: expected part[:share][@start][*lr] with "
                             f"part one of {sorted([*PARTS, SAME])} and share and lr positive numbers") from None
    return Recipe(name, tuple(phases))
