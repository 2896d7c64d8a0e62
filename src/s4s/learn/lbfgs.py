"""Full-batch L-BFGS on one parametrisation and one set of pairs, state in and state out.

The parameters of a learned solver are a few dozen numbers, and the objective (the mean
distance to the teacher over a fixed set of pairs) is smooth and deterministic, so the
engine is full-batch L-BFGS (Nocedal & Wright, "Numerical Optimization", 2nd ed., Alg. 7.4,
the two-loop recursion) with a backtracking Armijo line search (Alg. 3.1). Each iteration
costs one gradient evaluation over the pairs when its first trial step is accepted, which
is the common case.

:func:`fit` is a pure loop over an explicit :class:`FitState`: a caller can stop after any
iteration, save the state (every field is a tensor or a number) and call ``fit`` again with
it to go on exactly where it stopped.

``s4s.learn`` uses minibatch Adam (:mod:`s4s.learn.engine`); ``benchmarks/optimizers.py``
measures this full-batch alternative against it at equal cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import Tensor

__all__ = ["FitConfig", "FitState", "FitResult", "Objective", "fit", "init_state"]

Objective = Callable[[Tensor], tuple[float, Tensor]]
"""``f(x) -> (value, gradient)`` for a flat float64 parameter vector ``x``; ``inf`` when undefined."""

Score = Callable[[Tensor, float], float]
"""``score(x, value) -> selection score`` of the parameters ``x`` whose objective is ``value``."""


@dataclass(frozen=True)
class FitConfig:
    """How long and how boldly one fit runs.

    Attributes:
        steps: L-BFGS iterations at most.
        history: curvature pairs kept (L-BFGS's ``m``).
        first_step: the first step's largest change of any parameter (the gradient step of an
            iteration with no curvature history is scaled to it).
        max_backtracks: halvings of a step before the fit stops for want of progress.
        c1: the Armijo constant: a step must decrease the value by ``c1 * t * slope``.
        tol: an iteration whose relative decrease is below ``tol`` counts as a stall.
        patience: stalls, or selection checks without a new best, before the fit stops.
        check_every: iterations between selection checks (and at the last one).
    """

    steps: int = 30
    history: int = 10
    first_step: float = 0.1
    max_backtracks: int = 6
    c1: float = 1e-4
    tol: float = 1e-4
    patience: int = 3
    check_every: int = 3

    def __post_init__(self) -> None:
        for key in ("steps", "history", "patience", "check_every"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FitConfig.{key} must be a positive int, got {value!r}")
        if isinstance(self.max_backtracks, bool) or not isinstance(self.max_backtracks, int) or self.max_backtracks < 0:
            raise ValueError(f"FitConfig.max_backtracks must be a non-negative int, got {self.max_backtracks!r}")
        if not (isinstance(self.first_step, (int, float)) and self.first_step > 0):
            raise ValueError(f"FitConfig.first_step must be positive, got {self.first_step!r}")


@dataclass
class FitState:
    """Where a fit stands: the iterate, its value and gradient, the curvature history, the best
    parameters seen by the selection score, and the counters that decide when it stops."""

    x: Tensor
    value: float
    grad: Tensor
    best_x: Tensor
    best_score: float
    s: list[Tensor] = field(default_factory=list)
    y: list[Tensor] = field(default_factory=list)
    step: int = 0
    evals: int = 1
    stalls: int = 0  # consecutive iterations (or checks) without progress
    done: str = ""  # why the fit stopped ("" while it runs)


@dataclass(frozen=True)
class FitResult:
    """The end of a fit: the best parameters by the selection score, and the final state."""

    x: Tensor
    score: float
    state: FitState


def init_state(x0: Tensor, objective: Objective, score0: float) -> FitState:
    """The state before the first iteration: ``x0`` evaluated once (one gradient evaluation);
    ``score0`` is its selection score (the start is a candidate: a fit never returns worse)."""
    x0 = x0.detach().to(torch.float64).clone()
    value, grad = objective(x0)
    return FitState(x=x0, value=value, grad=grad, best_x=x0.clone(), best_score=score0)


def _direction(state: FitState) -> Tensor:
    """``-H g`` by the two-loop recursion over the curvature pairs (``H`` the inverse-Hessian
    estimate, scaled by ``s.y / y.y`` of the latest pair)."""
    q = state.grad.clone()
    alphas = []
    for s, y in zip(reversed(state.s), reversed(state.y)):
        a = float(s @ q) / float(y @ s)
        alphas.append(a)
        q -= a * y
    if state.s:
        q *= float(state.s[-1] @ state.y[-1]) / float(state.y[-1] @ state.y[-1])
    for (s, y), a in zip(zip(state.s, state.y), reversed(alphas)):
        b = float(y @ q) / float(y @ s)
        q += (a - b) * s
    return -q


def fit(objective: Objective, state: FitState, config: FitConfig = FitConfig(), score: Score | None = None,
        on_step: Callable[[FitState], None] | None = None) -> FitResult:
    """Run L-BFGS iterations from ``state`` until ``config.steps``, a stall or a failed line
    search; returns the best parameters by ``score`` (the objective value when ``None``),
    checked every ``config.check_every`` iterations and at the last.

    ``on_step(state)`` is called after each iteration with the new state (to report, or to
    save it: ``fit(objective, saved_state, config)`` goes on exactly from there). The input
    ``state`` is not modified."""
    st = replace(state, s=list(state.s), y=list(state.y))
    if st.done == "steps":  # stopped by a step count: a larger one goes on
        st.done = ""
    judge = score or (lambda x, value: value)
    while not st.done:
        if st.step >= config.steps:
            st.done = "steps"
            break
        d = _direction(st)
        slope = float(st.grad @ d)
        if not math.isfinite(slope) or slope >= 0:  # not a descent direction: restart from the gradient
            st.s, st.y = [], []
            d, slope = -st.grad, -float(st.grad @ st.grad)
        if slope == 0:
            st.done = "stationary"
            break
        t = 1.0 if st.s else config.first_step / max(float(d.abs().max()), 1e-30)
        for _ in range(config.max_backtracks + 1):
            x_new = st.x + t * d
            value, grad = objective(x_new)
            st.evals += 1
            if math.isfinite(value) and value <= st.value + config.c1 * t * slope:
                break
            t *= 0.5
        else:
            st.done = "line search"
            break
        s_k, y_k = x_new - st.x, grad - st.grad
        if float(s_k @ y_k) > 1e-12 * float(y_k @ y_k):  # keep the estimate positive definite
            st.s.append(s_k)
            st.y.append(y_k)
            if len(st.s) > config.history:
                st.s.pop(0), st.y.pop(0)
        decrease = (st.value - value) / max(abs(st.value), 1e-30)
        st.x, st.value, st.grad, st.step = x_new, value, grad, st.step + 1
        st.stalls = st.stalls + 1 if decrease < config.tol else 0
        if st.step % config.check_every == 0 or st.step >= config.steps:
            now = judge(st.x, st.value)
            if now < st.best_score:
                st.best_x, st.best_score = st.x.clone(), now
            else:
                st.stalls += 1
        if st.stalls >= config.patience:
            st.done = "stalled"
        if on_step is not None:
            on_step(st)
    return FitResult(st.best_x.clone(), st.best_score, st)
