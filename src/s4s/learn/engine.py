"""The fit engine: minibatch Adam on one flat parameter vector, state in and state out.

One job: minimise a minibatch objective over a flat float64 vector ``x`` for a fixed number
of steps, keeping the best ``x`` by a selection score checked every ``check_every`` steps.
Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Algorithm 1, with
bias correction) with the step size on a half cosine from ``lr`` to 0 over the run, and the
gradient clipped to norm ``clip``.

:func:`fit` is a pure loop over an explicit :class:`AdamState`: every field is a tensor or a
number (the minibatch generator's state included), so a caller can save the state after any
step and call ``fit`` again with it to go on bit for bit where it stopped.

A step whose loss or gradient is not finite, or that leaves a non-finite ``x``, rolls back:
``x`` returns to the best so far, the moments are cleared and the step size is halved. With
``backtrack``, so does a check that scores no better than the best so far (the step size was
too large for where the iterate stands); with a ``tolerance``, only a check worse than the best
by more than ``tolerance`` standard errors of the paired per-pair differences (a score given per
validation pair), so that the noise of the score alone does not shrink the step size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["AdamConfig", "AdamState", "Minibatch", "fit", "flat", "init_state", "unflat"]

Minibatch = Callable[[Tensor, Tensor], tuple[float, Tensor]]
"""``f(x, idx) -> (mean loss, gradient)`` on the pairs ``idx`` (int64 ``[batch]``) for the flat
float64 ``x``; the gradient has ``x``'s shape."""


@dataclass(frozen=True)
class AdamConfig:
    """One fit's length and step.

    Attributes:
        steps: Adam steps in all (the cosine runs over them).
        pairs: how many pairs the minibatches are drawn from (uniformly, with replacement).
        batch_size: pairs per step.
        lr: the step size at step 0.
        check_every: steps between selection checks (the last step is always checked).
        clip: the largest gradient norm used (larger gradients are scaled down to it).
        backtrack: a check that does not improve on the best score rolls back as a non-finite
            step does.
        tolerance: with ``backtrack`` and a per-pair score, a check rolls back only when its mean
            exceeds the best's by more than this many standard errors of the paired differences.
    """

    steps: int
    pairs: int
    batch_size: int = 16
    lr: float = 0.05
    check_every: int = 50
    clip: float = 1.0
    backtrack: bool = False
    tolerance: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        for key in ("steps", "pairs", "batch_size", "check_every"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"AdamConfig.{key} must be a positive int, got {value!r}")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"AdamConfig.tolerance must be a finite number of at least 0, got {self.tolerance!r}")
        if not (self.lr > 0 and self.clip > 0):
            raise ValueError(f"AdamConfig.lr and clip must be positive, got {self.lr!r} and {self.clip!r}")


@dataclass
class AdamState:
    """Where a fit stands: the iterate and Adam's moments, the minibatch generator's state, the
    best iterate by the selection score (with its per-pair scores when the score gives them),
    and the step-size factor (halved at each rollback)."""

    x: Tensor
    m: Tensor
    v: Tensor
    rng: Tensor
    best_x: Tensor
    best_score: float
    step: int = 0
    t: int = 0  # Adam's own step count (restarts at a rollback, as the moments do)
    lr_scale: float = 1.0
    rollbacks: int = 0  # after non-finite steps
    backtracks: int = 0  # after checks that did not improve (``AdamConfig.backtrack``)
    best_each: Tensor | None = None  # the best's per-pair scores, when the score gives them (else empty)

    def __post_init__(self) -> None:
        if self.best_each is None:
            self.best_each = torch.zeros(0, dtype=torch.float64)

    def tensors(self) -> dict[str, Tensor]:
        return {"x": self.x, "m": self.m, "v": self.v, "rng": self.rng, "best_x": self.best_x,
                "best_each": self.best_each}

    def numbers(self) -> dict[str, float | int]:
        return {"best_score": self.best_score, "step": self.step, "t": self.t, "lr_scale": self.lr_scale,
                "rollbacks": self.rollbacks, "backtracks": self.backtracks}

    @classmethod
    def from_parts(cls, tensors: dict[str, Tensor], numbers: dict[str, float | int]) -> "AdamState":
        return cls(**tensors, best_score=float(numbers["best_score"]), step=int(numbers["step"]),
                   t=int(numbers["t"]), lr_scale=float(numbers["lr_scale"]), rollbacks=int(numbers["rollbacks"]),
                   backtracks=int(numbers["backtracks"]))


def init_state(x0: Tensor, score0: float, seed: int) -> AdamState:
    """The state before the first step from ``x0``, whose selection score is ``score0`` (the
    start is a candidate: a fit never returns an iterate scoring worse); ``seed`` fixes the
    minibatch order."""
    x0 = x0.detach().to(torch.float64).clone()
    rng = torch.Generator().manual_seed(seed).get_state()
    return AdamState(x=x0, m=torch.zeros_like(x0), v=torch.zeros_like(x0), rng=rng, best_x=x0.clone(),
                     best_score=score0)


def _lr(config: AdamConfig, state: AdamState) -> float:
    # (pi * k) / n, in this order: the learner's trajectory follows the last bit of the step size
    return config.lr * state.lr_scale * 0.5 * (1 + math.cos(math.pi * state.step / config.steps))


Score = Callable[[Tensor], "float | Tensor"]
"""``score(x)``: the selection score (lower is better), or every validation pair's (a float64
``[pairs]`` tensor, whose mean is the score)."""


def fit(objective: Minibatch, state: AdamState, config: AdamConfig, score: Score,
        project: Callable[[Tensor], Tensor] | None = None,
        on_step: Callable[[AdamState, float, float | None], None] | None = None) -> AdamState:
    """Adam steps from ``state`` up to ``config.steps``; returns the new state (``best_x`` is
    the result). The input ``state`` is not modified.

    ``score(x)`` is the selection score (:data:`Score`); ``project(x)`` maps an iterate back
    onto the feasible set after each step (``None``: unconstrained). ``on_step(state, loss,
    score_or_None)`` is called after every step (to report, or to save the state)."""
    st = replace(state, x=state.x.clone(), m=state.m.clone(), v=state.v.clone(), rng=state.rng.clone())
    gen = torch.Generator()
    gen.set_state(st.rng)
    b1, b2 = config.betas
    while st.step < config.steps:
        idx = torch.randint(0, config.pairs, (min(config.batch_size, config.pairs),), generator=gen)
        value, grad = objective(st.x, idx)
        ok = math.isfinite(value) and bool(torch.isfinite(grad).all())
        if ok:
            norm = float(grad.norm())
            if norm > config.clip:
                grad = grad * (config.clip / norm)
            t = st.t + 1
            m = b1 * st.m + (1 - b1) * grad
            v = b2 * st.v + (1 - b2) * grad * grad
            step = _lr(config, st) * (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + config.eps)
            x = st.x - step
            if project is not None:
                x = project(x)
            ok = bool(torch.isfinite(x).all())
        if ok:
            st.x, st.m, st.v, st.t = x, m, v, t
        else:
            _roll_back(st)
            st.rollbacks += 1
        st.step += 1
        st.rng = gen.get_state()
        checked = None
        if st.step % config.check_every == 0 or st.step == config.steps:
            checked, each = _scored(score, st.x)
            if checked < st.best_score:
                st.best_x, st.best_score = st.x.clone(), checked
                st.best_each = each if each is not None else torch.zeros(0, dtype=torch.float64)
            elif config.backtrack and st.step < config.steps and _worse(config, st, checked, each, score):
                _roll_back(st)
                st.backtracks += 1
        if on_step is not None:
            on_step(st, value, checked)
    return st


def _scored(score: Score, x: Tensor) -> tuple[float, Tensor | None]:
    """The selection score at ``x`` and its per-pair values (``None`` when the score gives one number)."""
    value = score(x)
    if isinstance(value, Tensor):
        each = value.detach().to(torch.float64).reshape(-1)
        mean = float(each.mean())
        return (mean if math.isfinite(mean) else math.inf), each
    return float(value), None


def _worse(config: AdamConfig, st: AdamState, checked: float, each: Tensor | None, score: Score) -> bool:
    """Whether a check that did not improve is worse than the best by more than the tolerance."""
    if not config.tolerance or each is None or not math.isfinite(checked):
        return True
    if st.best_each.numel() != each.numel():  # the best's per-pair values, once per fit when unknown
        best_each = _scored(score, st.best_x)[1]
        st.best_each = best_each if best_each is not None else torch.zeros(0, dtype=torch.float64)
        if st.best_each.numel() != each.numel():
            return True
    diff = each - st.best_each
    se = float(diff.std() / math.sqrt(diff.numel())) if diff.numel() > 1 else 0.0
    return float(diff.mean()) > config.tolerance * se


def _roll_back(st: AdamState) -> None:
    """Back to the best iterate, the moments forgotten, half the step size."""
    st.x, st.m, st.v, st.t = st.best_x.clone(), torch.zeros_like(st.m), torch.zeros_like(st.v), 0
    st.lr_scale *= 0.5


def flat(params: Sequence[Tensor]) -> Tensor:
    """The parameters as one float64 vector (detached)."""
    return torch.cat([p.detach().reshape(-1).to(torch.float64) for p in params]) if params else torch.zeros(0)


def unflat(x: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """``x`` cut into tensors shaped as ``like``."""
    out, i = [], 0
    for p in like:
        out.append(x[i:i + p.numel()].reshape(p.shape).to(p.dtype))
        i += p.numel()
    return out
